"""The read model knows the Kafka cluster and topic namespace its offsets come from: on another
one it is rebuilt from the beginning instead of skipping what it never read."""

from __future__ import annotations

from pathlib import Path

from events import Topics
from services.dashboard.store import ReadModel
from tests.unit.test_read_model import _finding, _record

TOPICS = Topics("NCT06904729", "trialguard")


def _count(model: ReadModel) -> int:
    with model.reader() as db:
        return int(db.execute("SELECT count(*) FROM findings").fetchone()[0])


def _filled(path: Path) -> ReadModel:
    model = ReadModel(path, TOPICS)
    assert not model.check_origin("cluster-A", "trialguard"), "a new read model has nothing to drop"
    model.apply([_record(TOPICS.deviations, n, _finding(n)) for n in range(5)])
    return model


def test_the_same_cluster_and_namespace_keep_the_read_model(tmp_path: Path) -> None:
    model = _filled(tmp_path / "rm.sqlite3")
    assert not model.check_origin("cluster-A", "trialguard")
    assert _count(model) == 5
    assert model.offsets(TOPICS.deviations) == {0: 5}


def test_another_cluster_rebuilds_from_the_beginning(tmp_path: Path) -> None:
    """A broker on other ports, or formatted again, has other offsets: reading on from 5 would
    skip its first five records."""
    _filled(tmp_path / "rm.sqlite3").close()
    model = ReadModel(tmp_path / "rm.sqlite3", TOPICS)
    assert model.check_origin("cluster-B", "trialguard")
    assert _count(model) == 0
    assert model.offsets(TOPICS.deviations) == {}
    assert model.meta("kafka_cluster_id") == "cluster-B"
    assert not model.check_origin("cluster-B", "trialguard"), "rebuilt once, then kept"


def test_another_namespace_rebuilds_from_the_beginning(tmp_path: Path) -> None:
    model = _filled(tmp_path / "rm.sqlite3")
    assert model.check_origin("cluster-A", "other")
    assert _count(model) == 0
    assert model.meta("topic_namespace") == "other"


def test_offsets_of_an_unrecorded_origin_are_not_trusted(tmp_path: Path) -> None:
    """A file written before the origin was recorded: where its offsets come from is unknown."""
    model = ReadModel(tmp_path / "rm.sqlite3", TOPICS)
    model.apply([_record(TOPICS.deviations, 0, _finding(0))])
    assert model.check_origin("cluster-A", "trialguard")
    assert _count(model) == 0
