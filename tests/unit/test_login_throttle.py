"""The login throttle on its own: attempts reserved before the check, a delay that doubles per
attempt past the free ones up to its kind's cap, success forgiving the name, bounded memory.
Time is a hand-moved clock."""

from __future__ import annotations

import pytest

from services.dashboard.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_five_attempts_pass_then_each_must_wait_twice_as_long(clock: Clock) -> None:
    throttle = LoginThrottle(free_attempts=5, base_delay=1.0, clock=clock)
    assert [throttle.reserve(["user:mona"]) for _ in range(5)] == [0.0] * 5
    waits = []
    for _ in range(6):
        wait = throttle.reserve(["user:mona"])
        waits.append(wait)
        clock.now += wait
        assert throttle.reserve(["user:mona"]) == 0.0  # allowed once the wait has passed
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert throttle.reserve(["user:dana"]) == 0.0  # other keys are not affected


@pytest.mark.parametrize(("kind", "cap"), [("user", 60.0), ("client", 900.0), ("device", 900.0)])
def test_each_kind_of_key_has_its_cap(clock: Clock, kind: str, cap: float) -> None:
    throttle = LoginThrottle(clock=clock)
    key = f"{kind}:x"
    for _ in range(80):  # far past the cap: 2**75 must not overflow anything
        clock.now += throttle.reserve([key])
        throttle.reserve([key])
    assert throttle.reserve([key]) == cap


def test_a_refused_attempt_is_not_counted_and_does_not_extend_the_delay(clock: Clock) -> None:
    throttle = LoginThrottle(free_attempts=1, base_delay=10.0, clock=clock)
    throttle.reserve(["user:mona"])
    clock.now += 5
    for _ in range(100):
        assert throttle.reserve(["user:mona"]) == 5.0


def test_an_attempt_waits_for_the_slowest_of_its_keys_and_counts_on_all_of_them(clock: Clock) -> None:
    throttle = LoginThrottle(free_attempts=2, base_delay=10.0, clock=clock)
    throttle.reserve(["client:10.0.0.1"])
    throttle.reserve(["client:10.0.0.1"])  # the address now waits 10 s
    assert throttle.reserve(["user:mona", "client:10.0.0.1"]) == 10.0
    assert throttle.reserve(["user:mona", "client:10.0.0.2"]) == 0.0
    assert throttle.reserve(["user:mona", "client:10.0.0.3"]) == 0.0
    assert throttle.reserve(["user:mona", "client:10.0.0.4"]) == 10.0  # mona used her two: she waits too


def test_success_forgives_the_name_and_refunds_the_address_its_own_attempt(clock: Clock) -> None:
    throttle = LoginThrottle(free_attempts=3, base_delay=30.0, clock=clock)
    for _ in range(2):
        throttle.reserve(["user:mona", "client:a"])
    throttle.reserve(["user:mona", "client:a"])  # the third: both keys now wait
    throttle.succeeded("user:mona", refunded=["client:a"])
    assert throttle.reserve(["user:mona", "client:a"]) == 0.0
    # The address keeps the two failures: one more attempt and it waits again.
    assert throttle.reserve(["user:dana", "client:a"]) == 30.0


def test_an_owner_who_logs_in_many_times_from_one_address_is_never_delayed(clock: Clock) -> None:
    throttle = LoginThrottle(free_attempts=5, clock=clock)
    for _ in range(50):
        assert throttle.reserve(["user:mona", "client:office"]) == 0.0
        throttle.succeeded("user:mona", refunded=["client:office"])


def test_a_long_quiet_key_starts_over_and_is_forgotten(clock: Clock) -> None:
    throttle = LoginThrottle(free_attempts=1, base_delay=30.0, forget_after=300.0, clock=clock)
    throttle.reserve(["user:mona"])
    clock.now += 30
    throttle.reserve(["user:mona"])  # next wait 60 s
    clock.now += 60 + 300 + 1
    throttle.reserve(["user:other"])
    assert len(throttle) == 1  # mona was swept
    throttle.reserve(["user:mona"])
    assert throttle.reserve(["user:mona"]) == 30.0  # back to the first delay


def test_memory_is_bounded(clock: Clock) -> None:
    throttle = LoginThrottle(max_keys=100, clock=clock)
    for number in range(1_000):
        throttle.reserve([f"client:10.0.{number // 256}.{number % 256}"])
    assert len(throttle) <= 101


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="free_attempts"):
        LoginThrottle(free_attempts=0)
    with pytest.raises(ValueError, match="base_delay"):
        LoginThrottle(base_delay=60, max_delays={"user": 30})
