"""The quick retries after a commit (services/kafka_retries.py): which refusals, how quick, and
that aiokafka still has the handlers they adapt (an upgrade that changes them fails here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import (
    ConcurrentTransactions,
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    InvalidProducerEpoch,
    NoError,
    ProducerFenced,
)
from aiokafka.producer import sender as aiokafka_sender
from aiokafka.structs import TopicPartition

import services.kafka  # noqa: F401  (installs the quick handlers)
from services.kafka_retries import (
    FIRST_RETRY_SECONDS,
    QuickAddPartitionsToTxnHandler,
    QuickTxnOffsetCommitHandler,
)

DEFAULT = 0.1  # aiokafka's retry_backoff_ms, in seconds
TP = TopicPartition("trialguard.deviations", 0)


@dataclass
class FakeTxnManager:
    txn_partitions: set[TopicPartition] = field(default_factory=set)
    committed: list[tuple[TopicPartition, int]] = field(default_factory=list)

    def partition_added(self, tp: TopicPartition) -> None:
        self.txn_partitions.add(tp)

    def offset_committed(self, tp: TopicPartition, offset: int, group_id: str) -> None:
        self.committed.append((tp, offset))


@dataclass
class FakeSender:
    _txn_manager: FakeTxnManager = field(default_factory=FakeTxnManager)
    _retry_backoff: float = DEFAULT
    dead: list[object] = field(default_factory=list)

    def _coordinator_dead(self, kind: object) -> None:
        self.dead.append(kind)


def answer(error: Any) -> Any:
    return SimpleNamespace(errors=[(TP.topic, [(TP.partition, error.errno)])])


def add_partitions(sender: FakeSender, error: type) -> float | None:
    result: float | None = QuickAddPartitionsToTxnHandler(sender, [TP]).handle_response(answer(error))
    return result


def offset_commit(sender: FakeSender, error: type) -> float | None:
    offsets = {TP: SimpleNamespace(offset=42, metadata="")}
    result: float | None = QuickTxnOffsetCommitHandler(sender, offsets, "group").handle_response(answer(error))
    return result


def test_the_handlers_are_installed_in_aiokafkas_sender() -> None:
    assert aiokafka_sender.AddPartitionsToTxnHandler is QuickAddPartitionsToTxnHandler
    assert aiokafka_sender.TxnOffsetCommitHandler is QuickTxnOffsetCommitHandler
    # What they adapt is still there (an aiokafka upgrade that renames it fails here, not in production).
    assert aiokafka_sender.Sender._do_txn_offset_commit
    assert aiokafka_sender.Sender._do_add_partitions_to_txn


@pytest.mark.parametrize("refuse", [add_partitions, offset_commit], ids=["AddPartitionsToTxn", "TxnOffsetCommit"])
def test_a_refusal_the_previous_commit_explains_is_retried_quickly_then_less_and_less(refuse: Any) -> None:
    sender = FakeSender()
    error = ConcurrentTransactions if refuse is add_partitions else CoordinatorNotAvailableError
    waits = [refuse(sender, error) for _ in range(10)]
    assert waits[0] == FIRST_RETRY_SECONDS
    assert waits[1] == 2 * FIRST_RETRY_SECONDS
    assert waits == sorted(waits)
    # Never longer than aiokafka itself would wait (20 ms for a transaction's first partitions).
    ceiling = aiokafka_sender.BACKOFF_OVERRIDE if refuse is add_partitions else DEFAULT
    assert waits[-1] == ceiling


def test_an_answer_resets_the_quick_retries() -> None:
    sender = FakeSender()
    for _ in range(5):
        offset_commit(sender, CoordinatorNotAvailableError)
    assert offset_commit(sender, NoError) is None
    assert sender._txn_manager.committed == [(TP, 42)]
    assert offset_commit(sender, CoordinatorNotAvailableError) == FIRST_RETRY_SECONDS


def test_other_retriable_refusals_keep_aiokafkas_wait() -> None:
    sender = FakeSender()
    assert offset_commit(sender, CoordinatorLoadInProgressError) == DEFAULT
    sender._txn_manager.txn_partitions.add(TopicPartition("other", 0))  # not the transaction's first request
    assert add_partitions(sender, CoordinatorLoadInProgressError) == DEFAULT


def test_a_fenced_producer_is_still_fenced() -> None:
    with pytest.raises(ProducerFenced):
        add_partitions(FakeSender(), InvalidProducerEpoch)
