"""Request-rate limits of the HTTP API: one token bucket per key (a session id, a client address).

A bucket holds up to ``per_minute`` requests and refills at ``per_minute / 60`` a second, so a shopper may send a
short burst and then one request every ``60 / per_minute`` seconds. The buckets live in the limiter object, which
the API factory creates per app (:func:`ui.api.build_api`): two apps never share limits, and nothing is kept in
module globals. Full buckets are dropped once a minute, so the memory held is that of recently active keys.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_PRUNE_EVERY_S = 60.0


class RateLimiter:
    """Token buckets keyed by name; thread-safe.

    Example:
        >>> now = [0.0]
        >>> limiter = RateLimiter(2, clock=lambda: now[0])
        >>> limiter.take("web-1"), limiter.take("web-1"), limiter.take("web-1")
        (0.0, 0.0, 30.0)
        >>> limiter.take("web-2")
        0.0
        >>> now[0] = 30.0
        >>> limiter.take("web-1")
        0.0
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
            raise ValueError(f"a rate limit needs at least 1 request a minute, got {per_minute!r}")
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (tokens left, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._next_prune = clock() + _PRUNE_EVERY_S

    def take(self, key: str) -> float:
        """Take one request from ``key``'s bucket: ``0.0`` when it was allowed, else the seconds until it would
        be (nothing is taken then)."""
        with self._lock:
            now = self._clock()
            if now >= self._next_prune:
                self._prune(now)
            tokens = self._tokens(key, now)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate

    def _tokens(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - then) * self._rate)

    def _prune(self, now: float) -> None:
        full = [key for key in self._buckets if self._tokens(key, now) >= self.per_minute]
        for key in full:
            del self._buckets[key]
        self._next_prune = now + _PRUNE_EVERY_S

    def __len__(self) -> int:
        """How many keys are held (recently active ones)."""
        with self._lock:
            return len(self._buckets)
