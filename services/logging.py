"""Structured logs: JSON lines when stderr is not a terminal, readable columns when it is.

Never log birth dates or free text from events: log ids, types, rule ids, offsets, and
``ContractError.summary()`` (fields and kinds, no values).
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "info", json_logs: bool | None = None) -> None:
    """Set up structlog for a TrialGuard process (logs go to stderr)."""
    if json_logs is None:
        json_logs = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_CurrentStderr,
        # Not cached: a logger made before a reconfiguration (a test capturing logs, a command run
        # in the same process) follows the configuration of the moment.
        cache_logger_on_first_use=False,
    )
    # aiokafka and FastStream log through the standard library: their warnings become structlog
    # events too, so every line on stderr is one JSON object.
    root = logging.getLogger()
    root.handlers = [handler for handler in root.handlers if not isinstance(handler, _ToStructlog)]
    root.addHandler(_ToStructlog())
    root.setLevel(logging.WARNING)


class _CurrentStderr:
    """Writes each line to whatever ``sys.stderr`` is when it logs (a test runner swaps it), never
    to a stream that was closed since logging was configured."""

    def __init__(self, *_: object) -> None:
        pass

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = failure = err = msg


class _ToStructlog(logging.Handler):
    """A standard-library record as a structlog event: the logger, and its message cut short (the
    libraries we use do not put event data in their messages; a bound keeps a surprise small)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()[:300]
        except (TypeError, ValueError):
            message = str(record.msg)[:300]
        fields = {"logger": record.name, "message": message}
        if record.exc_info and record.exc_info[0] is not None:
            fields["error"] = record.exc_info[0].__name__
        structlog.get_logger("stdlib").log(record.levelno, "library_" + record.levelname.lower(), **fields)
