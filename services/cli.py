"""``trialguard``: the command line of TrialGuard."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from contracts import ContractError, parse_event
from protocol.registry import ProtocolLookupError
from services.defaults import DEFAULT_STUDY
from services.durable_host import quiet_durable_host
from services.logging import configure_logging
from services.replay import run as run_replay

if TYPE_CHECKING:
    from services.kafka import KafkaSettings
    from services.notifier.subscriptions import Owner

# The broker, web and gateway stacks are imported where a command needs them, not here:
# `trialguard replay`, an offline tool, would otherwise carry tens of MB it never uses (its peak
# memory is a benchmark: docs/benchmarks.md).


async def _dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard until SIGTERM/SIGINT."""
    from services.dashboard.serve import chosen_studies, serve  # the web stack loads only for this command
    from services.options import check_names, settings_from_args

    studies = chosen_studies(args)
    args.study = studies[0]
    check_names(args)

    return await serve(settings_from_args(args), args, studies)


async def _publish(args: argparse.Namespace) -> int:
    """Publish contract-v1 JSON lines, keyed by participant id. Bad lines are reported and skipped."""
    from aiokafka import AIOKafkaProducer

    from services.kafka import ensure_topics
    from services.options import settings_from_args

    settings = settings_from_args(args)
    await ensure_topics(settings)
    source: TextIO = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115, ASYNC230
    producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all", enable_idempotence=True)
    await producer.start()
    sent = rejected = 0
    try:
        with source:
            for number, line in enumerate(source, 1):
                if not line.strip():
                    continue
                try:
                    event = parse_event(line)
                except ContractError as e:
                    print(f"{args.file}:{number}: {e}", file=sys.stderr)
                    rejected += 1
                    continue
                await producer.send(
                    settings.topics.participant_events, line.strip().encode(), key=event.participant_id.encode()
                )
                sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    print(
        f"published {sent} events to {settings.topics.participant_events}; {rejected} lines rejected", file=sys.stderr
    )
    return 1 if rejected else 0


async def _wait_for_rules_service(settings: KafkaSettings, seconds: float) -> bool:
    """Wait until the rules service has consumed every published event; report progress."""
    from services.kafka import group_lag, rules_group_id

    last: int | None = -1
    try:
        async with asyncio.timeout(seconds):
            while True:
                lag = await group_lag(settings, rules_group_id(settings))
                remaining = None if lag is None else sum(lag.values())
                if remaining == 0:
                    return True
                if remaining != last:
                    shown = "?" if remaining is None else remaining
                    print(f"waiting for the rules service: {shown} events to go", file=sys.stderr)
                    last = remaining
                await asyncio.sleep(0.5)
    except TimeoutError:
        print(f"trialguard: the rules service has not caught up after {seconds:.0f}s; is it running?", file=sys.stderr)
        return False


async def _deviations(args: argparse.Namespace) -> int:
    """Print the committed findings (deviations and alerts) as JSON lines."""
    from services.kafka import read_to_end
    from services.options import settings_from_args

    settings = settings_from_args(args)
    if args.wait and not await _wait_for_rules_service(settings, args.wait):
        return 1
    async for record in read_to_end(settings, settings.topics.deviations):
        finding = json.loads(record.value or b"{}")
        if args.format == "table":
            pid, rule, at = finding["participant_id"], finding["rule_id"], finding["occurred_at"]
            print(f"{pid:<10} {rule:<14} {at:<26} {finding['term']}")
        else:
            print(json.dumps(finding, sort_keys=True))
    return 0


async def _topics(args: argparse.Namespace) -> int:
    from services.kafka import ensure_topics
    from services.options import settings_from_args

    settings = settings_from_args(args)
    await ensure_topics(settings)
    topics = settings.topics
    print("\n".join([topics.participant_events, topics.deviations, topics.dead_letter]))
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from contracts import schemas as contract_schemas
    from services import asyncapi

    if not args.check:
        for path in [*contract_schemas.write(), asyncapi.write()]:
            print(path)
        return 0
    stale = [
        name
        for name, schema in contract_schemas.generate().items()
        if not (path := contract_schemas.SCHEMA_DIR / name).exists()
        or path.read_text("utf-8") != contract_schemas.render(schema)
    ]
    if not asyncapi.DOCUMENT.exists() or asyncapi.DOCUMENT.read_text("utf-8") != asyncapi.render():
        stale.append("../asyncapi.json")
    for name in stale:
        print(f"contracts/schemas/{name} is out of date: run `trialguard contracts schemas`", file=sys.stderr)
    return 1 if stale else 0


def _owners_from_users_file(path: Path, study: str) -> Callable[[], dict[str, Owner]]:
    """The notifier's subscription owners: the dashboard's enabled users with a role in ``study``,
    a site user with its site there (read again at each call; no file yet: no one). A user of
    another study only is nobody here: they are told nothing of this one."""
    from services.dashboard.roles import GRANTS, Role
    from services.dashboard.users import UserStore
    from services.notifier.subscriptions import Owner

    def owners() -> dict[str, Owner]:
        if not path.exists():
            return {}
        return {
            row["name"]: Owner(row["name"], row["site"] if GRANTS[Role(row["role"])].own_site_only else None)
            for row in UserStore(path).list_states(study)
            if row["enabled"]
        }

    return owners


def _replay(args: argparse.Namespace) -> int:
    """Replay a JSON-lines event log offline: findings on stdout (or --out), summary on stderr."""
    try:
        return run_replay(
            args.file,
            args.out,
            args.study,
            stdin=sys.stdin.buffer,
            stdout=sys.stdout.buffer,
            stderr=sys.stderr,
            jobs=args.jobs,
        )
    except BrokenPipeError:
        # The reader of stdout left (`trialguard replay log.jsonl | head`): stop quietly, as Unix
        # tools do. Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a count of worker processes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def _simulate(args: argparse.Namespace) -> int:
    """Write a synthetic cohort (JSON lines) and its ground-truth labels, progress and summary on stderr;
    or, with --live, publish it to participant-events at a watchable pace, progress in the log."""
    from services.simulator import STUDY_ID
    from services.simulator import run as run_simulator

    if not args.live:
        if args.minutes is not None:
            print("trialguard simulate: --minutes goes with --live", file=sys.stderr)
            return 2
        from services.simulator.scripted import run as run_scripted
        from services.simulator.scripted import scripted_studies

        if args.study in scripted_studies():
            return run_scripted(
                args.study, args.participants, args.seed, args.out, args.labels, args.deviation_rate, stderr=sys.stderr
            )
        return run_simulator(
            args.participants, args.seed, args.out, args.labels, args.deviation_rate, stderr=sys.stderr
        )
    from services.options import check_names, settings_from_args

    check_names(args)
    from services.simulator.scripted import scripted_studies

    if args.study != STUDY_ID and args.study not in scripted_studies():
        known = ", ".join((STUDY_ID, *scripted_studies()))
        print(f"trialguard simulate: the simulator makes events of {known}, not {args.study[:60]}", file=sys.stderr)
        return 2
    from services.simulator.live import run as run_live

    minutes = 5.0 if args.minutes is None else args.minutes
    return run_live(
        settings_from_args(args),
        args.participants,
        args.seed,
        args.deviation_rate,
        minutes=minutes,
        labels=args.labels,
        stderr=sys.stderr,
    )


OFFLINE_COMMANDS = ("replay", "protocol")
"""Commands that need neither a broker nor the web stack: ``main`` builds only their parser."""


def build_parser(*, offline_only: bool = False, rules_only: bool = False) -> argparse.ArgumentParser:
    """The argument parser of ``trialguard`` and its subcommands (only ``OFFLINE_COMMANDS``
    with ``offline_only``, and ``rules`` besides with ``rules_only``, so that the other
    commands' modules are not imported)."""
    parser = argparse.ArgumentParser(
        prog="trialguard", description="Protocol-as-code rules service for clinical trials."
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_replay(commands)
    from services.protocol_kit.commands import add_protocol_commands

    protocol_help = "author a protocol: test its scenarios, check coverage, write its spec, diff versions"
    add_protocol_commands(commands.add_parser("protocol", help=protocol_help))
    if offline_only:
        return parser
    from services.rules.commands import add_rules_commands

    add_rules_commands(commands)
    if rules_only:  # half the start-up CPU (no matplotlib, no web stack): a restarted instance is back sooner
        return parser

    from services.audit.commands import add_audit_commands
    from services.dashboard.settings import add_serve_args as add_dashboard_args
    from services.dashboard.users_cli import add_users_commands
    from services.gateway.commands import add_gateway_commands
    from services.notifier.commands import add_notifier_commands
    from services.options import add_kafka_args
    from services.studies import STUDIES_HELP

    dashboard = commands.add_parser("dashboard", help="the deviation dashboard (web)").add_subparsers(
        dest="action", required=True
    )
    dashboard_serve = dashboard.add_parser(
        "serve", help="serve the dashboard: findings, reviews, participant timelines, operations"
    )
    add_kafka_args(dashboard_serve, studies=STUDIES_HELP)
    add_dashboard_args(dashboard_serve)
    dashboard_serve.set_defaults(run=_dashboard)
    add_users_commands(commands)
    add_audit_commands(commands)
    add_gateway_commands(commands)
    add_notifier_commands(commands, _owners_from_users_file)

    publish = commands.add_parser("publish", help="publish contract-v1 JSON lines to participant-events")
    publish.add_argument("file", help="a JSON-lines file, or - for standard input")
    add_kafka_args(publish)
    publish.set_defaults(run=_publish)

    deviations = commands.add_parser("deviations", help="print the committed deviations and alerts, then stop")
    deviations.add_argument("--format", choices=["json", "table"], default="json")
    deviations.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait (at most SECONDS) until the rules service has consumed every published event",
    )
    add_kafka_args(deviations)
    deviations.set_defaults(run=_deviations)

    topics = commands.add_parser("topics", help="create the study's topics when absent and print their names")
    add_kafka_args(topics)
    topics.set_defaults(run=_topics)

    simulate = commands.add_parser(
        "simulate",
        help="write (or publish live) a synthetic NCT06904729 cohort with injected deviations and ground-truth labels",
        description="Write a synthetic cohort as contract-v1 JSON lines in log order, with protocol deviations "
        "injected into a share of the participants, and (with --labels) the rule ids a replay must raise for "
        "each participant. The same seed gives byte-identical files. With --live, publish the same events to "
        "the participant-events topic instead, keyed by participant id, in event-time order and with the "
        "scheduler's ClockTicked watermarks, at a watchable pace: the whole simulated span, from the first event "
        "to the data cut-off (a little over three years of event time), takes --minutes of wall-clock time. Event "
        "times are published as simulated (not shifted to now); SIGINT or SIGTERM stops publishing cleanly. "
        "Exit status: 0 written or published (or stopped), 1 Kafka error (--live), 2 usage or I/O error.",
    )
    simulate.add_argument("--participants", type=int, required=True, metavar="N", help="participants to simulate")
    simulate.add_argument("--seed", type=int, required=True, metavar="S", help="random seed")
    where = simulate.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="FILE", help="the events file, written complete or not at all")
    where.add_argument(
        "--live", action="store_true", help="publish to the participant-events topic at a watchable pace instead"
    )
    simulate.add_argument(
        "--minutes",
        type=float,
        metavar="M",
        help="with --live: wall-clock minutes for the whole simulated span (first event to the data cut-off, "
        "about 1,200 days: 1 minute is about 20 simulated days a second); 0 publishes as fast as the broker "
        "takes the events (default 5)",
    )
    simulate.add_argument("--labels", metavar="FILE", help="write {participant_id: [rule ids]} as JSON to FILE")
    simulate.add_argument(
        "--deviation-rate",
        type=float,
        default=0.3,
        metavar="R",
        help="probability that a participant has a deviation injected (default %(default)s)",
    )
    add_kafka_args(simulate)
    simulate.set_defaults(run=_simulate, sync=True)

    contracts = commands.add_parser("contracts", help="the wire contract").add_subparsers(dest="action", required=True)
    schemas = contracts.add_parser(
        "schemas", help="write the JSON Schemas and the AsyncAPI document generated from the models"
    )
    schemas.add_argument("--check", action="store_true", help="fail if the checked-in schemas differ from the models")
    schemas.set_defaults(run=_schemas, sync=True)
    return parser


def _add_replay(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    replay = commands.add_parser(
        "replay",
        help="run the protocol over a JSON-lines event log, offline (no broker)",
        description="Run the protocol over contract-v1 JSON lines and write every finding (DeviationRaised, "
        "SafetyAlertRaised, and FindingSuperseded after a lab correction) as one JSON object per line. "
        "The same input always gives byte-identical output. "
        "Lines that break the contract are reported on stderr as FILE:LINE: error and skipped; a summary "
        "follows on stderr. Exit status: 0 every line was fine, 1 some lines were rejected (the other "
        "lines' findings are still written), 2 usage or I/O error.",
    )
    replay.add_argument("file", help="a JSON-lines file, or - for standard input")
    replay.add_argument(
        "--out", metavar="FILE", help="write the findings to FILE, complete or not at all (default: standard output)"
    )
    replay.add_argument(
        "--study",
        default=os.environ.get("TRIALGUARD_STUDY_ID", DEFAULT_STUDY),
        help="study whose protocol judges the log; events of other studies are rejected "
        "(env TRIALGUARD_STUDY_ID; default %(default)s)",
    )
    replay.add_argument(
        "--jobs",
        type=_positive,
        default=1,
        metavar="N",
        help="replay in N worker processes, each participant's events in one of them (by a hash of its id); "
        "findings, messages, summary and exit status are the same as with 1, but written once every worker has "
        "finished (a worker that dies fails the replay: exit 2, nothing written). The workers' findings wait in "
        "temporary files in $TMPDIR; with - and N > 1, standard input is first copied there too "
        "(default %(default)s)",
    )
    replay.set_defaults(run=_replay, sync=True)


def _command_word(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (None when none is: ``trialguard --help``)."""
    words = iter(argv)
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _configuration_errors() -> tuple[type[BaseException], ...]:
    """ConfigurationError and KafkaSecurityError, when the modules that raise them were imported
    (offline: never)."""
    errors = sys.modules.get("services.errors")
    security = sys.modules.get("services.kafka_security")
    return (() if errors is None else (errors.ConfigurationError,)) + (
        () if security is None else (security.KafkaSecurityError,)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trialguard`` command."""
    words = sys.argv[1:] if argv is None else list(argv)
    word = _command_word(words)
    args = build_parser(offline_only=word in OFFLINE_COMMANDS, rules_only=word == "rules").parse_args(words)
    # Every event allocates many small, short-lived, acyclic objects while participant state
    # stays alive for long: with the default thresholds the cyclic collector rescans that state
    # over and over (a third of replay time). Collect young objects less often.
    gc.set_threshold(50_000, 20, 100)
    quiet_durable_host()  # before any ruleset: durable_rules' polling threads are not needed
    try:
        configure_logging(args.log_level)  # in the try: a bad setting of its is a configuration error
        if getattr(args, "sync", False):
            return int(args.run(args))
        return int(asyncio.run(args.run(args)))
    except ProtocolLookupError as e:
        print(f"trialguard: {e.args[0]}", file=sys.stderr)
        return 2
    except _configuration_errors() as e:
        print(f"trialguard: configuration error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"trialguard: {e.filename}: no such file", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
