"""Hypothesis profiles for the whole suite, and the fuzz tally at the end of a run.

``HYPOTHESIS_PROFILE`` picks the profile (``everyday`` when unset): ``fuzz`` runs the fuzz test
(tests/unit/test_fuzz.py) on 10,000 inputs without the example database. Tests that set their own
``@settings`` keep them; a profile only fills in what they leave unset.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from services.kafka import KafkaSettings
from tests.processes import Broker

hypothesis_settings.register_profile("everyday", max_examples=300, deadline=None, print_blob=True)
hypothesis_settings.register_profile("fuzz", max_examples=10_000, deadline=None, database=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "everyday"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Count the fuzzer's inputs by outcome, with the profile and the seed that replays them."""
    from tests.hostile import TALLY  # imported late: only a run that fuzzed has anything to say

    if not TALLY.outcomes:
        return
    TALLY.profile = hypothesis_settings.get_current_profile_name()  # HYPOTHESIS_PROFILE, or --hypothesis-profile
    terminalreporter.write_sep("-", "fuzz")
    terminalreporter.write_line(TALLY.line())
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in TALLY.kinds.most_common(12))
    terminalreporter.write_line(f"fuzz: violations by kind (most common): {kinds}")
    terminalreporter.write_line(f"fuzz: replay with FUZZ_SEED={TALLY.seed} HYPOTHESIS_PROFILE={TALLY.profile}")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A single-node Kafka of the run's own (one for integration and e2e tests alike); set
    TRIALGUARD_TEST_BOOTSTRAP=host:port to use a broker you already run instead."""
    if given := os.environ.get("TRIALGUARD_TEST_BOOTSTRAP"):
        yield given
        return
    broker = Broker(tmp_path_factory.mktemp("kafka"))
    broker.up()
    try:
        yield broker.bootstrap
    finally:
        broker.down()


@pytest.fixture
def settings(kafka_bootstrap: str) -> KafkaSettings:
    """The example study's topics, in a namespace of this test's own."""
    return KafkaSettings(kafka_bootstrap, "NCT06904729", f"test-{uuid.uuid4().hex[:10]}")
