"""``trialguard rules serve`` and ``trialguard rules shadow``: the rules service as a process."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
from dataclasses import replace
from pathlib import Path

from protocol.registry import versions_for
from protocol.versions import ProtocolHistory, VersionError
from services.allocator import fix_mmap_threshold, giving_back_free_memory
from services.errors import ConfigurationError
from services.http import serve_http
from services.options import add_kafka_args, check_names, env_int, settings_from_args
from services.rules.membership import STATIC_SESSION_TIMEOUT_MS
from services.rules.rounds import DEFAULT_SNAPSHOT_EVERY
from services.rules.service import RulesService
from services.rules.studies import Studies, loadable
from services.studies import STUDIES_HELP, chosen_studies, named_studies

VERSION_NAME = re.compile(r"[A-Za-z0-9._-]{1,60}")


async def run_service(service: RulesService | Studies, http_port: int, http_host: str) -> int:
    """Run ``service`` (one study's, or several studies') and its /health and /metrics until SIGTERM/SIGINT."""
    fix_mmap_threshold()  # Kafka's fetch buffers out of the main heap (services/allocator.py)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    http = None
    if http_port >= 0:
        registry = service.registry if isinstance(service, Studies) else service.metrics.registry
        try:
            http = await serve_http(http_port, registry, lambda: service.status, http_host)
        except OSError as e:
            raise ConfigurationError(
                f"cannot serve HTTP on {http_host}:{http_port}: {e.strerror} "
                "(set --http-port or TRIALGUARD_HTTP_PORT; -1: none)"
            ) from None
    try:
        async with giving_back_free_memory():
            await service.run(stop)
    finally:
        if http is not None:
            await http.stop()
    return 0


def _service(args: argparse.Namespace, history: ProtocolHistory, shadow: str | None = None) -> RulesService:
    check_names(args)
    key = args.audit_key or os.environ.get("TRIALGUARD_AUDIT_KEY") or None
    return RulesService(
        replace(settings_from_args(args), shadow=shadow),
        history,
        session_timeout_ms=env_int(
            "TRIALGUARD_SESSION_TIMEOUT_MS", 10_000 if not args.instance_id else STATIC_SESSION_TIMEOUT_MS
        ),
        audit_key=None if shadow is not None or key is None else Path(key),
        checkpoint_every=env_int("TRIALGUARD_CHECKPOINT_EVERY", args.checkpoint_every),
        snapshot_every=_snapshot_every(args),
        freeze_restored=True,
        instance_id=args.instance_id,
    )


def _snapshot_every(args: argparse.Namespace) -> int:
    """``--snapshot-every``, else TRIALGUARD_SNAPSHOT_EVERY, else the default.

    Raises:
        ConfigurationError: not a positive integer.
    """
    every: int = args.snapshot_every
    if every is None:
        every = env_int("TRIALGUARD_SNAPSHOT_EVERY", DEFAULT_SNAPSHOT_EVERY)
    if every < 1:
        raise ConfigurationError(f"--snapshot-every {every}: offsets between two snapshot rounds, at least 1")
    return every


async def _serve(args: argparse.Namespace) -> int:
    """Run the rules service of every chosen study until SIGTERM/SIGINT; exits early only on a
    configuration error."""
    studies = loadable(chosen_studies(args.study), versions_for, named=named_studies(args.study))
    services = {
        study: _service(argparse.Namespace(**{**vars(args), "study": study}), versions_for(study)) for study in studies
    }
    return await run_service(Studies(services), args.http_port, args.http_host)


async def _shadow(args: argparse.Namespace) -> int:
    """Run candidate version ``--version`` beside the live service, on topics of its own."""
    if not VERSION_NAME.fullmatch(args.version):
        raise ConfigurationError(f"--version {args.version[:60]!r}: a version is 1-60 of A-Z a-z 0-9 . _ -")
    try:
        candidate = versions_for(args.study).version(args.version)
    except VersionError as e:
        raise ConfigurationError(str(e)) from None
    # Every event is judged by the candidate alone: what it would have raised, from the start.
    return await run_service(
        _service(args, ProtocolHistory.of(candidate), shadow=args.version), args.http_port, args.http_host
    )


def _http_args(parser: argparse.ArgumentParser, default_port: str) -> None:
    parser.add_argument(
        "--http-port",
        type=int,
        default=default_port,
        help="port of /health and /metrics on 127.0.0.1 (0: any free port; -1: none; default %(default)s)",
    )
    parser.add_argument(
        "--http-host",
        default=os.environ.get("TRIALGUARD_HTTP_HOST", "127.0.0.1"),
        help="address of /health and /metrics (env TRIALGUARD_HTTP_HOST; default %(default)s)",
    )


def _snapshot_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--snapshot-every",
        type=int,
        default=None,
        metavar="N",
        help="offsets of a partition between two snapshot rounds, each writing the participants changed since "
        "the last; a restart processes at most about N records again (env TRIALGUARD_SNAPSHOT_EVERY; "
        f"default {DEFAULT_SNAPSHOT_EVERY})",
    )


def add_rules_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``trialguard rules serve|shadow``."""
    rules = commands.add_parser("rules", help="the rules service").add_subparsers(dest="action", required=True)
    serve = rules.add_parser(
        "serve",
        help="consume participant events, publish deviations and alerts",
        description="Serve every installed study (or those named with --study), each on its own topics, with "
        "its own consumer group and transactional ids: exactly once per study. /health is ready once every "
        "study is; /metrics labels each series with its study.",
    )
    add_kafka_args(serve, studies=STUDIES_HELP)
    _http_args(serve, os.environ.get("TRIALGUARD_HTTP_PORT", "8081"))
    serve.add_argument(
        "--audit-key",
        metavar="KEYFILE",
        help="Ed25519 key (`trialguard audit keygen`) that signs the hash-chain checkpoints written to "
        "audit-checkpoints in each transaction (env TRIALGUARD_AUDIT_KEY; none: no checkpoints)",
    )
    serve.add_argument(
        "--checkpoint-every",
        type=int,
        default=1000,
        metavar="N",
        help="records of a partition between two checkpoints (env TRIALGUARD_CHECKPOINT_EVERY; default %(default)s)",
    )
    _snapshot_args(serve)
    serve.add_argument(
        "--instance-id",
        default=os.environ.get("TRIALGUARD_INSTANCE_ID") or None,
        metavar="NAME",
        help="a stable name of this instance, its own (1-100 of A-Z a-z 0-9 . _ -): it joins each study's group as "
        "a static member, so that a restart under the same name takes its partitions back at once, without a "
        "rebalance that would stop the other instances too. A process stopped for good keeps its partitions "
        "for the session timeout (TRIALGUARD_SESSION_TIMEOUT_MS; 30 s with an id, else 10 s). A second live "
        "process under the same name takes it over; the first stops with an error (env TRIALGUARD_INSTANCE_ID; "
        "default none: a dynamic member)",
    )
    serve.set_defaults(run=_serve)

    shadow = rules.add_parser(
        "shadow",
        help="run a candidate protocol version beside the live service, on topics of its own",
        description="Consume the live participant-events in a consumer group of its own and judge every event "
        "under candidate version V; write to trialguard.<study>.shadow.<V>.deviations (and shadow state and "
        "dead-letter topics). Nothing the live service owns is touched. Compare with `trialguard audit diff "
        "--shadow V`.",
    )
    shadow.add_argument("--version", required=True, metavar="V", help="the candidate protocol version")
    add_kafka_args(shadow)
    _http_args(shadow, "-1")
    _snapshot_args(shadow)
    shadow.set_defaults(run=_shadow, audit_key=None, checkpoint_every=1000, instance_id=None)
