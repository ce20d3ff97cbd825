"""Structured logs: JSON lines when stderr is not a terminal, readable columns when it is.

Never log birth dates or free text from events: log ids, types, rule ids, offsets, and
``ContractError.summary()`` (fields and kinds, no values).
"""

from __future__ import annotations

import logging
import sys

import structlog

from services.log_limits import REPEATED_ATTRIBUTE, RepeatLimit, record_message, repeat_interval_from_env


def configure_logging(
    level: str = "info", json_logs: bool | None = None, repeat_limit: RepeatLimit | None = None
) -> None:
    """Set up structlog for a TrialGuard process (logs go to stderr).

    Args:
        level: the lowest level of our own events written.
        json_logs: JSON lines (default: when stderr is not a terminal).
        repeat_limit: limits repeated library records (default: one per
            ``TRIALGUARD_LOG_REPEAT_INTERVAL_MS``, else per 10 s; see services/log_limits.py).

    Raises:
        ConfigurationError: ``TRIALGUARD_LOG_REPEAT_INTERVAL_MS`` is not a number of milliseconds.
    """
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
    # events too, so every line on stderr is one JSON object. Their repeats are limited (a broker
    # outage makes aiokafka log a thousand lines a second).
    bridge = _ToStructlog()
    limit = repeat_limit or RepeatLimit(repeat_interval_from_env())
    limit.report = bridge.report_repeats
    bridge.addFilter(limit)
    root = logging.getLogger()
    root.handlers = [handler for handler in root.handlers if not isinstance(handler, _ToStructlog)]
    root.addHandler(bridge)
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
    libraries we use do not put event data in their messages; a bound keeps a surprise small).
    ``repeated``: how many records of its kind its :class:`RepeatLimit` dropped just before it."""

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, object] = {"logger": record.name, "message": record_message(record)}
        if record.exc_info and record.exc_info[0] is not None:
            fields["error"] = record.exc_info[0].__name__
        if repeated := getattr(record, REPEATED_ATTRIBUTE, 0):
            fields["repeated"] = repeated
        structlog.get_logger("stdlib").log(record.levelno, "library_" + record.levelname.lower(), **fields)

    def report_repeats(self, logger: str, level: int, message: str, repeated: int) -> None:
        """Repeats of a kind that stopped (or outlived the process) before a record carried them."""
        structlog.get_logger("stdlib").log(level, "library_repeated", logger=logger, message=message, repeated=repeated)

    def flush(self) -> None:
        """At exit (``logging.shutdown``): write the counts of repeats no record carried yet."""
        for limit in self.filters:
            if isinstance(limit, RepeatLimit):
                limit.flush()
