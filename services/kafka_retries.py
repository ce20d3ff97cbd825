"""Quick retries for a transaction's first requests while the previous commit is being completed.

When a transaction commits, the broker answers ``EndTxn`` once the commit is decided and writes
the commit markers to the transaction's partitions just after. Until they are written, the next
transaction of the same producer is refused: its ``AddPartitionsToTxn`` with
``CONCURRENT_TRANSACTIONS`` (KAFKA-5477) and its ``TxnOffsetCommit`` — in the old request version
aiokafka speaks — with ``COORDINATOR_NOT_AVAILABLE`` (the broker's mapping for old clients,
KAFKA-9656). aiokafka retries the first after 20 ms and the second after ``retry_backoff_ms``
(100 ms) and a new coordinator lookup. The markers take a millisecond or two on a healthy broker,
so these fixed waits were most of the rules service's commit time at its 99th percentile (commit
p99 144 ms, event→deviation p99 245 ms at 1,000 events/s in ``bench/live.py``; 35 ms and 46 ms
with the quick retries).

Lowering ``retry_backoff_ms`` itself would do the same but also make every other retry quick: a
producer whose broker is away would then try to connect hundreds of times a second. So only these
two refusals are retried quickly, starting at ``FIRST_RETRY_SECONDS`` and doubling while they
repeat, up to what aiokafka would have waited: a broker that keeps refusing is not asked more
often than before after a few tries.

This adapts aiokafka's private sender handlers (``aiokafka.producer.sender``), which is why it is
one small module with a test that fails when an aiokafka upgrade changes them
(``tests/unit/test_kafka_retries.py``); :func:`install` runs when :mod:`services.kafka` is imported.
"""

from __future__ import annotations

from typing import Any

from aiokafka.errors import ConcurrentTransactions, CoordinatorNotAvailableError, NoError, for_code
from aiokafka.producer import sender as aiokafka_sender

FIRST_RETRY_SECONDS = 0.002
"""The first quick retry: about what writing the markers takes on a healthy broker."""

_REFUSALS = "_trialguard_quick_refusals"
"""The sender's count of consecutive quick-retried refusals (reset by any other answer)."""


def quick_backoff(sender: Any, default: float) -> float:
    """The wait before the next retry of a refusal that the previous commit's markers explain:
    ``FIRST_RETRY_SECONDS``, doubled for each consecutive such refusal, never more than
    ``default`` (what aiokafka would have waited)."""
    refusals: int = getattr(sender, _REFUSALS, 0)
    setattr(sender, _REFUSALS, refusals + 1)
    return min(default, FIRST_RETRY_SECONDS * 2.0 ** min(refusals, 16))


def _answered(sender: Any) -> None:
    setattr(sender, _REFUSALS, 0)


def _error_types(resp: Any) -> set[type]:
    return {for_code(code) for _topic, partitions in resp.errors for _partition, code in partitions}


class QuickAddPartitionsToTxnHandler(aiokafka_sender.AddPartitionsToTxnHandler):  # type: ignore[misc]
    """``AddPartitionsToTxn`` refused with ``CONCURRENT_TRANSACTIONS``: retried quickly."""

    def handle_response(self, resp: Any) -> float | None:
        backoff: float | None = super().handle_response(resp)
        if backoff is not None and ConcurrentTransactions in _error_types(resp):
            return quick_backoff(self._sender, backoff)
        _answered(self._sender)
        return backoff


class QuickTxnOffsetCommitHandler(aiokafka_sender.TxnOffsetCommitHandler):  # type: ignore[misc]
    """``TxnOffsetCommit`` refused with ``COORDINATOR_NOT_AVAILABLE`` alone: retried quickly (the
    coordinator is looked up again first, as aiokafka does for that answer)."""

    def handle_response(self, resp: Any) -> float | None:
        backoff: float | None = super().handle_response(resp)
        if backoff is not None and _error_types(resp) <= {NoError, CoordinatorNotAvailableError}:
            return quick_backoff(self._sender, backoff)
        _answered(self._sender)
        return backoff


def install() -> None:
    """Make aiokafka's sender use the quick handlers (idempotent; every producer of the process)."""
    aiokafka_sender.AddPartitionsToTxnHandler = QuickAddPartitionsToTxnHandler
    aiokafka_sender.TxnOffsetCommitHandler = QuickTxnOffsetCommitHandler
