"""``trialguard gateway serve`` and ``trialguard sources add|set|list|rotate-key|disable|enable|remove|mllp-allow``.

Wired into ``services/cli.py`` by one line in ``build_parser``: ``add_gateway_commands(commands)``.

Every change to a source is published to the study's access log (operator = the OS user) before it
is kept; when Kafka does not take it, nothing changes. Exit status of ``sources``: 0 done; 1 no
such source; 2 a source that cannot be changed as asked, or a store that cannot be opened; 3 the
access log (Kafka) did not take the change. ``gateway serve`` runs until SIGTERM/SIGINT (0), 2 when
it cannot listen.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import ssl
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TextIO

import structlog

from services.access_log import AccessLogError, AccessRecorder, cli_recorder
from services.allocator import fix_mmap_threshold, giving_back_free_memory
from services.defaults import DEFAULT_STUDY
from services.errors import ConfigurationError
from services.gateway.settings import GatewaySettings, add_data_dir_arg, add_serve_args
from services.gateway.sources import ChangeRecorder, SourceError, SourceStore
from services.options import add_kafka_args, check_names, settings_from_args
from services.studies import STUDIES_HELP, chosen_studies

log = structlog.get_logger("trialguard.gateway.serve")


async def serve(args: argparse.Namespace) -> int:
    """Serve the gateway until SIGTERM/SIGINT.

    Raises:
        ConfigurationError: a bad study or namespace, or an address that cannot be bound.
    """
    studies = tuple(chosen_studies(args.study))
    args = argparse.Namespace(**{**vars(args), "study": studies[0]})
    check_names(args)
    fix_mmap_threshold()  # Kafka's fetch buffers out of the main heap (services/allocator.py)
    from services.gateway.app import create_app  # the web stack loads only for this command
    from services.gateway.lab_api import mllp_handler
    from services.gateway.mllp import serve_mllp
    from services.http import serve_asgi
    from services.http_limits import limits_from_args

    try:
        limits = limits_from_args(args)
    except ValueError as e:
        raise ConfigurationError(f"gateway serve: {e}") from None

    settings = GatewaySettings(
        settings_from_args(args),
        args.data_dir,
        args.host,
        args.port,
        args.instance,
        max_body_bytes=limits.max_body_bytes,
        mllp_host=args.mllp_host,
        mllp_port=args.mllp_port,
        mllp_max_bytes=args.mllp_max_bytes,
        mllp_idle_timeout=args.mllp_idle_timeout,
        mllp_max_connections=args.mllp_max_connections,
        mllp_tls_cert=args.mllp_tls_cert,
        mllp_tls_key=args.mllp_tls_key,
        mllp_tls_client_ca=args.mllp_tls_client_ca,
        fhir_identifier_system=args.fhir_identifier_system,
        fhir_patient_reference=args.fhir_patient_reference,
        hl7_assigning_authority=args.hl7_assigning_authority,
        studies=studies,
    )
    tls = _mllp_tls(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(settings)
    try:
        server = await serve_asgi(app, settings.host, settings.port, lifespan="on", name="gateway", limits=limits)
    except OSError as e:
        raise ConfigurationError(f"cannot serve the gateway on {settings.host}:{settings.port}: {e.strerror}") from None
    mllp = None
    if settings.mllp_port >= 0:
        try:
            mllp = await serve_mllp(
                settings.mllp_host,
                settings.mllp_port,
                mllp_handler(app.state),
                max_bytes=settings.mllp_max_bytes,
                idle_timeout=settings.mllp_idle_timeout,
                max_connections=settings.mllp_max_connections,
                peer_allowed=app.state.sources.mllp_peer_allowed,
                ssl=tls,
            )
        except OSError as e:
            await server.stop()
            raise ConfigurationError(
                f"cannot listen for MLLP on {settings.mllp_host}:{settings.mllp_port}: {e.strerror}"
            ) from None
    log.info(
        "gateway_listening",
        url=f"http://{settings.host}:{server.port}/",
        data_dir=str(settings.data_dir),
        mllp=None if mllp is None else f"{settings.mllp_host}:{mllp.sockets[0].getsockname()[1]}",
    )
    waiting = asyncio.create_task(stop.wait())
    async with giving_back_free_memory():
        await asyncio.wait([server.task, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if mllp is not None:
        mllp.close()
        await mllp.wait_closed()
    await server.stop()
    return 0


def _mllp_tls(settings: GatewaySettings) -> ssl.SSLContext | None:
    """The MLLP listener's TLS context, or None without ``--mllp-tls-cert``.

    Raises:
        ConfigurationError: a certificate without its key (or a client CA without both), or a
            file that cannot be read or is not what it should be.
    """
    from services.gateway.mllp import tls_context

    cert, key, client_ca = settings.mllp_tls_cert, settings.mllp_tls_key, settings.mllp_tls_client_ca
    if cert is None and key is None and client_ca is None:
        return None
    if cert is None or key is None:
        raise ConfigurationError("--mllp-tls-cert and --mllp-tls-key go together (and --mllp-tls-client-ca needs them)")
    try:
        return tls_context(cert, key, client_ca)
    except (OSError, ssl.SSLError) as e:
        files = ", ".join(str(f) for f in (cert, key, client_ca) if f is not None)
        raise ConfigurationError(f"cannot set up MLLP TLS from {files}: {e}") from None


def _store(args: argparse.Namespace) -> SourceStore:
    return SourceStore(GatewaySettings(data_dir=args.data_dir).sources_path)


def _source_change(
    args: argparse.Namespace,
    change: Callable[[SourceStore, ChangeRecorder], str],
    stdout: TextIO | None,
    stderr: TextIO | None,
    recorder: AccessRecorder | None,
) -> int:
    """Run one change with the access-log recorder; print its result on stdout, map errors to statuses."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        store = _store(args)
        printed = change(store, recorder or _recorders_of(store, args))
    except SourceError as e:
        print(f"trialguard sources {args.action}: {e}", file=stderr)
        return 1 if str(e).startswith("no source") else 2
    except AccessLogError as e:
        print(f"trialguard sources {args.action}: {e}", file=stderr)
        return 3
    except (OSError, sqlite3.Error) as e:
        print(f"trialguard sources {args.action}: cannot open the sources store: {type(e).__name__}", file=stderr)
        return 2
    if printed:
        print(printed, file=stdout)
    return 0


def _recorders_of(store: SourceStore, args: argparse.Namespace) -> ChangeRecorder:
    """The access logs a change to an existing source is recorded in: each study it sends for
    (the change concerns every one of them), or ``--study``'s when it is unknown (the store then
    refuses the change and nothing is recorded)."""
    settings = settings_from_args(args)
    source = store.get(args.name) if args.action != "add" else None
    if source is None or not source.studies:
        return cli_recorder(settings)
    return _Each([cli_recorder(replace(settings, study_id=study)) for study in source.studies])


def sources_add(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
                recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``trialguard sources add NAME --site SITE [--study S ...] [--hl7-application APP --hl7-facility FAC]``:
    prints the new API key, once. The addition is recorded in the access log of each study it sends for."""
    err = stderr or sys.stderr
    studies = args.study or [os.environ.get("TRIALGUARD_STUDY_ID") or DEFAULT_STUDY]
    args = argparse.Namespace(**{**vars(args), "study": studies[0]})

    def add(store: SourceStore, changes: ChangeRecorder) -> str:
        settings = settings_from_args(args)
        recorders = [changes] + [cli_recorder(replace(settings, study_id=study)) for study in studies[1:]]
        source, key = store.add(
            args.name, args.site, args.hl7_application, args.hl7_facility, args.mllp_allow, _Each(recorders),
            time_zone=args.time_zone, strict=args.strict, studies=studies,
        )  # fmt: skip
        print(f"source {source.name} added for site {source.site}, studies {', '.join(source.studies)}; "
              "its API key (shown once, keep it safe):", file=err)  # fmt: skip
        return key

    return _source_change(args, add, stdout, stderr, recorder)


class _Each:
    """Records one change in the access log of each of several studies (all, or an error: the
    store keeps nothing then; a study's log may hold the event of a change that was not kept,
    which an auditor reads as an attempt)."""

    def __init__(self, recorders: list[ChangeRecorder]) -> None:
        self.recorders = recorders

    def record(self, *args: Any, **fields: Any) -> None:
        for recorder in self.recorders:
            recorder.record(*args, **fields)


def sources_rotate_key(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
                       recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``trialguard sources rotate-key NAME``: prints the new key once; the old one stops working at once."""
    err = stderr or sys.stderr

    def rotate(store: SourceStore, changes: ChangeRecorder) -> str:
        key = store.rotate_key(args.name, changes)
        print(f"source {args.name}: new API key (shown once; the old key no longer works):", file=err)
        return key

    return _source_change(args, rotate, stdout, stderr, recorder)


def sources_state(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
                  recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``trialguard sources disable|enable|remove NAME``: takes effect on the gateway's next request."""

    def apply(store: SourceStore, changes: ChangeRecorder) -> str:
        if args.action == "remove":
            store.remove(args.name, changes)
        else:
            store.set_enabled(args.name, args.action == "enable", changes)
        return f"source {args.name}: {args.action}d"

    return _source_change(args, apply, stdout, stderr, recorder)


def sources_mllp_allow(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
                       recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``trialguard sources mllp-allow NAME [NETWORK ...]``: the networks a source may send MLLP
    from, replacing the earlier list (none given: no MLLP for it)."""

    def allow(store: SourceStore, changes: ChangeRecorder) -> str:
        source = store.allow_mllp(args.name, args.networks, changes)
        return f"source {source.name} may send MLLP from: {' '.join(source.mllp_allow) or 'no address (MLLP refused)'}"

    return _source_change(args, allow, stdout, stderr, recorder)


def sources_set(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
                recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``trialguard sources set NAME [--time-zone ZONE] [--strict | --filter]``: how its messages are read."""

    def configure(store: SourceStore, changes: ChangeRecorder) -> str:
        source = store.configure(args.name, changes, time_zone=args.time_zone, strict=args.strict)
        mode = "strict" if source.strict else "filter"
        return f"source {source.name}: time zone {source.time_zone or '(none)'}, {mode}"

    return _source_change(args, configure, stdout, stderr, recorder)


def sources_list(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``trialguard sources list``: name, site, HL7 sending application and facility, MLLP networks,
    time zone, strict or filter, studies, added, state (no keys)."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        sources = _store(args).list_sources()
    except (OSError, sqlite3.Error) as e:
        print(f"trialguard sources list: cannot open the sources store: {type(e).__name__}", file=stderr)
        return 2
    for s in sources:
        state = "enabled" if s.enabled else "disabled"
        hl7 = f"{s.hl7_application or '-'}\t{s.hl7_facility or '-'}"
        reading = f"{s.time_zone or '-'}\t{'strict' if s.strict else 'filter'}"
        print(f"{s.name}\t{s.site}\t{hl7}\t{','.join(s.mllp_allow) or '-'}\t{reading}\t{','.join(s.studies)}\t"
              f"{s.created_at}\t{state}",
              file=stdout)  # fmt: skip
    return 0


def _reading_args(parser: argparse.ArgumentParser, default_strict: bool | None) -> None:
    parser.add_argument(
        "--time-zone",
        metavar="ZONE",
        help="IANA time zone (Asia/Shanghai) its times without a UTC offset are read in; without one they are refused",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--strict",
        dest="strict",
        action="store_true",
        default=default_strict,
        help="refuse a whole message that carries a result the study does not use",
    )
    mode.add_argument(
        "--filter",
        dest="strict",
        action="store_false",
        help="publish the study's results and acknowledge the others as not used (the default)",
    )


def add_gateway_commands(commands: Any) -> None:
    """Register ``gateway serve`` and ``sources add|list`` on the CLI's subcommands."""
    gateway = commands.add_parser("gateway", help="the lab gateway (HTTP in, Kafka out)").add_subparsers(
        dest="action", required=True
    )
    serve_parser = gateway.add_parser(
        "serve",
        help="serve the lab gateway: POST /v1/events (contract-v1 JSON) from registered sources",
        description="Accept contract-v1 events over HTTP from registered sources (Authorization: Bearer KEY) "
        "and publish each request's events to participant-events in one Kafka transaction: 202 once Kafka has "
        "them all, 422 with every problem and nothing published, 413 for a body over 1 MiB.",
    )
    add_kafka_args(serve_parser, studies=STUDIES_HELP)
    add_serve_args(serve_parser)
    serve_parser.set_defaults(run=serve)

    sources = commands.add_parser("sources", help="the lab gateway's registered sources").add_subparsers(
        dest="action", required=True
    )
    add = sources.add_parser("add", help="register a source and print its API key (once)")
    add.add_argument("name", help="the source's name: source.system of its events")
    add.add_argument("--site", required=True, help="the site id of its events")
    add.add_argument("--hl7-application", metavar="APP", help="MSH-3 of its HL7 v2 messages")
    add.add_argument("--hl7-facility", metavar="FAC", help="MSH-4 of its HL7 v2 messages")
    add.add_argument(
        "--mllp-allow",
        action="append",
        default=[],
        metavar="NETWORK",
        help="an address or network (10.0.0.5/32) it may send MLLP from; repeat for more (default: none, no MLLP)",
    )
    _reading_args(add, default_strict=False)
    add_data_dir_arg(add)
    add_kafka_args(add, studies="the studies it sends for, each recording the addition in its access log; "
                   "default TRIALGUARD_STUDY_ID or " + DEFAULT_STUDY)  # fmt: skip
    add.set_defaults(run=sources_add, sync=True)
    settings = sources.add_parser(
        "set", help="change how a source's messages are read: its time zone, strict or filter (the rest unchanged)"
    )
    settings.add_argument("name", help="the source's name")
    _reading_args(settings, default_strict=None)
    add_data_dir_arg(settings)
    add_kafka_args(settings)
    settings.set_defaults(run=sources_set, sync=True)
    for action, what, run in (
        (
            "rotate-key",
            "give a source a new API key (printed once); the old key stops working at once",
            sources_rotate_key,
        ),
        ("disable", "refuse a source's key and HL7 messages at once (401)", sources_state),
        ("enable", "accept a disabled source again", sources_state),
        ("remove", "remove a source and its key; the name may be registered again", sources_state),
    ):
        parser = sources.add_parser(action, help=what, description=f"{what[0].upper()}{what[1:]}. Exit status: 0 "
                                    "done, 1 no such source, 3 the access log (Kafka) did not take it.")  # fmt: skip
        parser.add_argument("name")
        add_data_dir_arg(parser)
        add_kafka_args(parser)
        parser.set_defaults(run=run, sync=True)
    allow = sources.add_parser(
        "mllp-allow", help="set the addresses or networks a source may send MLLP from (none given: no MLLP)"
    )
    allow.add_argument("name", help="the source's name")
    allow.add_argument("networks", nargs="*", metavar="NETWORK", help="e.g. 10.0.0.5/32 or 2001:db8::/48")
    add_data_dir_arg(allow)
    add_kafka_args(allow)
    allow.set_defaults(run=sources_mllp_allow, sync=True)
    listing = sources.add_parser("list", help="list the registered sources and their state (never their keys)")
    add_data_dir_arg(listing)
    listing.set_defaults(run=sources_list, sync=True)
