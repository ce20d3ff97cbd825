"""``trialguard notifier serve`` and ``trialguard notify subscribe|list|remove|retry``.

Subscription owners are the dashboard's users; the command line passes in how to read them
(``OwnersFromFile``), so this component does not import the dashboard's.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.notifier.consumer import OwnersLookup
from services.notifier.signing import new_secret
from services.notifier.store import NotifierStore
from services.notifier.subscriptions import (
    Channel,
    Subscription,
    SubscriptionError,
    check_filters,
    check_target,
    scoped_site,
)

OwnersFromFile = Callable[[Path, str], OwnersLookup]
"""Given the dashboard's users file and a study, the lookup of subscription owners: the users with
a role in that study (roles are per study), a site user with their site there."""


def _store(args: argparse.Namespace) -> NotifierStore:
    from services.notifier.serve import STORE_FILE

    return NotifierStore(Path(args.data_dir) / STORE_FILE)


def add_notifier_commands(commands: Any, owners_from_file: OwnersFromFile) -> None:
    """Add ``notifier serve`` and ``notify …`` to the ``trialguard`` subcommands."""
    from services.notifier.settings import add_data_args, add_serve_args
    from services.options import add_kafka_args
    from services.studies import STUDIES_HELP

    notifier = commands.add_parser("notifier", help="deliver findings to subscribers (email, webhooks)")
    serve = notifier.add_subparsers(dest="action", required=True).add_parser(
        "serve",
        help="consume the deviations topic and deliver each matching finding at least once per subscriber",
        description="Serve every installed study (or those named with --study), each from its own deviations "
        "topic in its own consumer group, to that study's subscribers; one outbox and one delivery loop.",
    )
    add_kafka_args(serve, studies=STUDIES_HELP)
    add_serve_args(serve)

    async def run_serve(args: argparse.Namespace) -> int:
        from services.notifier.serve import serve as serve_notifier
        from services.notifier.settings import delivery_from_args, smtp_from_args
        from services.options import check_names, settings_from_args
        from services.studies import chosen_studies

        studies = chosen_studies(args.study)
        args.study = studies[0]
        check_names(args)
        if not os.path.exists(args.users_file):  # noqa: ASYNC240 (once, at start)
            # Not an error (the dashboard may create it later), but until then no one is told anything.
            print(f"trialguard notifier: {args.users_file}: no users file yet; nothing will match", file=sys.stderr)
        users_file = Path(args.users_file)
        return await serve_notifier(
            settings_from_args(args),
            studies,
            _store(args),
            lambda study: owners_from_file(users_file, study),
            smtp_from_args(args),
            delivery_from_args(args),
            args.host,
            args.port,
        )

    serve.set_defaults(run=run_serve)

    notify = commands.add_parser("notify", help="manage notification subscriptions").add_subparsers(
        dest="action", required=True
    )
    subscribe = notify.add_parser(
        "subscribe",
        help="subscribe a dashboard user to findings by email or webhook",
        description="Subscribe a dashboard user to the findings of a study, optionally only one kind, some rules "
        "or one site. A site user gets their own site's findings only. A webhook subscription prints its "
        "signing secret once. Findings published from now on are delivered.",
    )
    target = subscribe.add_mutually_exclusive_group(required=True)
    target.add_argument("--email", metavar="ADDRESS")
    target.add_argument("--webhook", metavar="URL")
    subscribe.add_argument("--user", required=True, help="the dashboard user the subscription belongs to")
    subscribe.add_argument("--study", default=None, help="the study (default: TRIALGUARD_STUDY_ID or NCT06904729)")
    subscribe.add_argument("--kind", choices=["deviation", "alert"], help="only deviations or only safety alerts")
    subscribe.add_argument("--rule", action="append", default=[], metavar="RULE_ID", help="only this rule (repeat)")
    subscribe.add_argument("--site", help="only this site")
    add_data_args(subscribe)

    def run_subscribe(args: argparse.Namespace) -> int:
        from services.kafka import KafkaSettings

        try:
            channel = Channel.EMAIL if args.email else Channel.WEBHOOK
            target_value = check_target(channel, args.email or args.webhook)
            kind, rules = check_filters(args.kind, args.rule, args.site)
            owner = owners_from_file(Path(args.users_file), args.study or KafkaSettings().study_id)().get(args.user)
            site = scoped_site(owner, args.user, args.site)
        except SubscriptionError as error:
            print(f"trialguard notify subscribe: {error}", file=sys.stderr)
            return 2
        subscription = Subscription(
            subscription_id="sub-" + secrets.token_hex(6),
            owner=args.user,
            channel=channel,
            target=target_value,
            study_id=args.study or KafkaSettings().study_id,
            kind=kind,
            rules=rules,
            site=site,
            secret=new_secret() if channel is Channel.WEBHOOK else None,
            created_at=time.time(),
        )
        _store(args).add_subscription(subscription)
        print(subscription.subscription_id)
        if subscription.secret:
            print(f"webhook secret (shown once; verify X-TrialGuard-Signature with it): {subscription.secret}")
        return 0

    subscribe.set_defaults(run=run_subscribe, sync=True)

    listing = notify.add_parser("list", help="the subscriptions with their deliveries (secrets are not shown)")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    add_data_args(listing)

    def run_list(args: argparse.Namespace) -> int:
        store = _store(args)
        counts = store.counts()
        rows: list[dict[str, Any]] = []
        for s in store.subscriptions():
            states = counts.get(s.subscription_id, {"pending": 0, "delivered": 0, "dead": 0})
            rows.append(
                {
                    "subscription_id": s.subscription_id,
                    "owner": s.owner,
                    "channel": s.channel.value,
                    "target": s.target,
                    "study_id": s.study_id,
                    "kind": None if s.kind is None else s.kind.value,
                    "rules": list(s.rules),
                    "site": s.site,
                    **states,
                }
            )
        if args.format == "json":
            print(json.dumps(rows, indent=2))
            return 0
        for r in rows:
            filters = " ".join(
                f"{k}={v}" for k, v in (("kind", r["kind"]), ("rules", ",".join(r["rules"])), ("site", r["site"])) if v
            )
            print(
                f"{r['subscription_id']}  {r['owner']:<16} {r['channel']:<7} {r['target']:<40} {r['study_id']}"
                f" {filters or 'all findings'}  delivered {r['delivered']} pending {r['pending']} dead {r['dead']}"
            )
        return 0

    listing.set_defaults(run=run_list, sync=True)

    remove = notify.add_parser("remove", help="remove a subscription (its pending deliveries are dropped)")
    remove.add_argument("subscription_id")
    add_data_args(remove)

    def run_remove(args: argparse.Namespace) -> int:
        try:
            _store(args).remove_subscription(args.subscription_id)
        except SubscriptionError as error:
            print(f"trialguard notify remove: {error}", file=sys.stderr)
            return 1
        return 0

    remove.set_defaults(run=run_remove, sync=True)

    retry = notify.add_parser("retry", help="send dead letters again (of one subscription, or all)")
    retry.add_argument("subscription_id", nargs="?")
    add_data_args(retry)

    def run_retry(args: argparse.Namespace) -> int:
        print(f"{_store(args).retry_dead(args.subscription_id)} dead letter(s) queued again")
        return 0

    retry.set_defaults(run=run_retry, sync=True)
