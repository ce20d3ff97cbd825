"""durable_rules without its background threads, for the processes that run the protocol.

durable_rules' host (``durable.engine.Host``, made at the first ruleset) starts two chains of
``threading.Timer`` threads: every 0.2 s, a new thread per ruleset and chain polls the engine for
queued actions and due timers. TrialGuard queues no action and sets no timer: ``protocol.engine``
asserts one fact and retracts it in the same call, and the actions of the rules it matched run in
the caller, before the call returns (DESIGN.md, "Known properties": never its timers). The threads
only cost the process a new OS thread about ten times a second for as long as it runs, each taking
the interpreter lock from the event loop (`strace -c` of a rules service at 1,000 events/s: 147
threads made in 15 s); and a thread that ran an action left pending would run it at a time of its
own, outside the order of the events.

A host that starts no thread is therefore installed before any ruleset is made. Findings are the
same with and without it (``tests/unit/test_durable_host.py``); the ruleset fingerprint does not
change (this module is not one the fingerprint covers: the rules are the same).
"""

from __future__ import annotations

from durable import engine, lang


class QuietHost(engine.Host):  # type: ignore[misc]  # durable_rules has no type hints
    """A durable_rules host that starts no background thread (``Host._run`` starts them)."""

    def _run(self) -> None:
        return None


def quiet_durable_host() -> bool:
    """Make durable_rules' process-wide host a ``QuietHost``, unless a host was made already.

    Returns:
        Whether it was installed (False when a ruleset was made before: its host keeps its
        threads, and rulesets stay with the host they were registered on).
    """
    if lang._main_host is not None:
        return isinstance(lang._main_host, QuietHost)
    lang._main_host = QuietHost()
    return True
