"""Slow down password guessing: after repeated failed logins, refuse attempts for a while.

Keep one ``LoginThrottle`` per kind of key (one for user names, one for client addresses), or
prefix the keys (``"user:…"``, ``"addr:…"``): a user may well be named ``10.0.0.7``.

The login handler asks ``retry_after`` for the name and for the address before it checks the
password, refuses (HTTP 429 with ``Retry-After``) while either is above zero, then reports the
outcome with ``failed`` or ``succeeded``. Time is a parameter (``time.monotonic()`` in the
service), so tests need no sleeping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class _KeyState:
    failures: list[float] = field(default_factory=list)
    """Times of the failed attempts since the last lock-out, within the window."""
    locked_until: float = 0.0
    lockouts: int = 0
    """Lock-outs in a row: each one lasts twice as long as the one before, up to the cap."""
    last_seen: float = 0.0


class LoginThrottle:
    """In-memory failed-login counter per key, with lock-outs that double up to a cap.

    After ``max_failures`` failures of a key within ``window`` seconds, attempts for that key are
    refused for ``base_backoff`` seconds; the next lock-out of the same key lasts twice as long,
    and so on up to ``max_backoff``. The count of failures starts again after each lock-out. A
    successful login forgets the key; so does a key that has seen no failure for ``window +
    max_backoff`` seconds, which also keeps memory bounded under a spray of names or addresses.
    State is per process: several dashboard processes each count on their own.

    Args:
        max_failures: Failures within the window that trigger a lock-out.
        window: Seconds over which failures are counted.
        base_backoff: Seconds of the first lock-out.
        max_backoff: The longest lock-out, in seconds.
        max_keys: Keys remembered at most; beyond it the least recently seen are forgotten.
    """

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 300.0,
        base_backoff: float = 30.0,
        max_backoff: float = 900.0,
        max_keys: int = 100_000,
    ) -> None:
        if max_failures < 1 or window <= 0 or base_backoff <= 0 or max_backoff < base_backoff or max_keys < 1:
            raise ValueError("need max_failures ≥ 1, window > 0, 0 < base_backoff ≤ max_backoff, max_keys ≥ 1")
        self.max_failures = max_failures
        self.window = window
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.max_keys = max_keys
        # Logins may be handled on several threads (FastAPI runs sync handlers in a pool).
        self._lock = threading.Lock()
        # Insertion order = least recently seen first: a key seen again is moved to the end.
        self._keys: dict[str, _KeyState] = {}

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until an attempt for this key is allowed again; 0 when it is allowed now."""
        with self._lock:
            state = self._keys.get(key)
            return 0.0 if state is None else max(0.0, state.locked_until - now)

    def failed(self, key: str, now: float) -> None:
        """Record a failed login for this key at ``now`` (monotonic seconds).

        A failure reported while the key is locked out is not counted: the caller should have
        refused the attempt without checking the password, and the lock-out runs its course.
        """
        with self._lock:
            state = self._keys.pop(key, None)
            if state is None or now - state.last_seen > self.window + self.max_backoff:
                state = _KeyState()
            self._keys[key] = state
            state.last_seen = now
            if now < state.locked_until:
                return
            state.failures = [at for at in state.failures if now - at < self.window]
            state.failures.append(now)
            if len(state.failures) >= self.max_failures:
                backoff = min(self.base_backoff * 2**state.lockouts, self.max_backoff)
                state.locked_until = now + backoff
                if backoff < self.max_backoff:  # stop counting at the cap: 2**n must not overflow
                    state.lockouts += 1
                state.failures.clear()
            self._forget_stale(now)

    def succeeded(self, key: str) -> None:
        """Forget the key's failures and lock-outs: its owner has proved who they are."""
        with self._lock:
            self._keys.pop(key, None)

    def _forget_stale(self, now: float) -> None:
        """Drop keys quiet for longer than any lock-out, then the oldest beyond ``max_keys``."""
        horizon = self.window + self.max_backoff
        # Keys are in order of last sighting, so the stale ones are at the front: this stops at
        # the first fresh key and costs nothing per call when nothing is stale.
        while self._keys:
            oldest = next(iter(self._keys))
            if now - self._keys[oldest].last_seen <= horizon and len(self._keys) <= self.max_keys:
                break
            del self._keys[oldest]

    def __len__(self) -> int:
        """How many keys are remembered (for metrics and tests)."""
        with self._lock:
            return len(self._keys)
