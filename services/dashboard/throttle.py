"""Slow down password guessing with a delay that grows with each attempt, never a lock-out.

Every login attempt is **reserved before the password is checked**: ``reserve`` counts the attempt
against each of its keys at once, under one lock, or refuses it with the seconds to wait. So a
burst of concurrent wrong passwords cannot all be verified: once a key has used its free attempts,
the next reservation sets its delay and every attempt after it is refused until the delay passes.

A key's first ``free_attempts`` attempts pass at once; after that each attempt makes the next one
wait ``base_delay * 2**k`` seconds (k = 0, 1, 2, … for the attempts past the free ones), up to the
cap of its kind. A successful login forgives its user's key and hands back its own attempt to the
address key (``succeeded``); a key quiet for ``forget_after`` seconds past its delay starts over.

The keys the dashboard uses (``services.dashboard.auth``), a kind per prefix:

* ``client:<address>``: the peer's address (proxies are believed only when configured, see
  ``services.http_limits``); the delay grows up to 15 minutes. This is what stops one machine.
* ``user:<name>``: a name, whoever tries it; the delay is capped at one minute, so guesses at one
  name from many machines run at most about one a minute, and no single wait that strangers'
  guesses impose on the name's owner is longer than that (though one who retries at the moment
  each delay ends can keep a new browser waiting again and again: hence the device key).
* ``device:<name>:<id>``: replaces ``user:<name>`` for a browser that has logged in as that name
  before (a signed cookie): strangers' guesses at the name do not delay its owner at all.

Time comes from the throttle's clock (``time.monotonic`` unless told otherwise), so tests move
time on by hand and never sleep. State is
per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

DEFAULT_MAX_DELAYS = {"client": 900.0, "user": 60.0, "device": 900.0}
"""The longest delay, in seconds, per kind of key (the text before the first ``:``)."""


@dataclass
class _KeyState:
    attempts: int = 0
    """Attempts counted and not forgiven."""
    next_allowed: float = 0.0
    last_seen: float = 0.0


class LoginThrottle:
    """In-memory attempt counter per key, with a delay that doubles per attempt up to a cap.

    Args:
        free_attempts: Attempts per key that pass without delay.
        base_delay: Seconds of the first delay.
        max_delays: The longest delay per kind of key; a kind not listed gets ``default_max_delay``.
        default_max_delay: The longest delay of other kinds.
        forget_after: Seconds of quiet, past its delay, after which a key starts over.
        max_keys: Keys remembered at most; beyond it the least recently seen are forgotten.
        clock: Monotonic seconds now.
    """

    def __init__(
        self,
        free_attempts: int = 5,
        base_delay: float = 1.0,
        max_delays: Mapping[str, float] = DEFAULT_MAX_DELAYS,
        default_max_delay: float = 900.0,
        forget_after: float = 900.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        delays = [*max_delays.values(), default_max_delay]
        if free_attempts < 1 or base_delay <= 0 or min(delays) < base_delay or forget_after <= 0 or max_keys < 1:
            raise ValueError("need free_attempts ≥ 1, 0 < base_delay ≤ every max delay, forget_after > 0, max_keys ≥ 1")
        self.free_attempts = free_attempts
        self.base_delay = base_delay
        self.max_delays = dict(max_delays)
        self.default_max_delay = default_max_delay
        self.forget_after = forget_after
        self.max_keys = max_keys
        self.clock = clock
        # Logins are handled on several threads (FastAPI runs sync handlers in a pool).
        self._lock = threading.Lock()
        # Insertion order = least recently seen first: a key seen again is moved to the end.
        self._keys: dict[str, _KeyState] = {}

    def reserve(self, keys: Sequence[str]) -> float:
        """Count one attempt against every key, or refuse it.

        Args:
            keys: the attempt's keys (its address, its name or device).

        Returns:
            0 when the attempt may go ahead (it is counted); else the seconds until one of its
            keys allows an attempt again (nothing is counted).
        """
        with self._lock:
            now = self.clock()
            self._forget_stale(now)
            wait = max((self._keys[k].next_allowed - now for k in keys if k in self._keys), default=0.0)
            if wait > 0:
                return wait
            for key in keys:
                state = self._keys.pop(key, None) or _KeyState()
                self._keys[key] = state
                state.last_seen = now
                state.attempts += 1
                past_free = state.attempts - self.free_attempts
                if past_free >= 0:
                    # min() before the power: 2**k of a huge k must not grow without bound.
                    delay = self.base_delay * 2 ** min(past_free, 64)
                    state.next_allowed = now + min(delay, self._max_delay(key))
            return 0.0

    def succeeded(self, forgiven: str, refunded: Sequence[str] = ()) -> None:
        """A reserved attempt proved its user: forget ``forgiven`` (the name's or device's key)
        and hand back the attempt to each of ``refunded`` (the address: a valid account must not
        clear an address's count, but its owner's logins must not add to it either)."""
        with self._lock:
            self._keys.pop(forgiven, None)
            for key in refunded:
                state = self._keys.get(key)
                if state is not None:
                    state.attempts = max(0, state.attempts - 1)
                    if state.attempts < self.free_attempts:
                        state.next_allowed = 0.0

    def _max_delay(self, key: str) -> float:
        kind = key.split(":", 1)[0]
        return self.max_delays.get(kind, self.default_max_delay)

    def _forget_stale(self, now: float) -> None:
        """Drop keys quiet for ``forget_after`` past their delay, then the oldest beyond ``max_keys``."""
        # Keys are in order of last sighting, so stale ones are at the front: this stops at the
        # first fresh key and costs nothing per call when nothing is stale.
        while self._keys:
            oldest = next(iter(self._keys))
            state = self._keys[oldest]
            quiet_since = max(state.last_seen, state.next_allowed)
            if now - quiet_since <= self.forget_after and len(self._keys) <= self.max_keys:
                break
            del self._keys[oldest]

    def __len__(self) -> int:
        """How many keys are remembered (for metrics and tests)."""
        with self._lock:
            return len(self._keys)
