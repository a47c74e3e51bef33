"""Client-side pacing (token buckets per quota) and the one retry policy all backends share.

The retry policy is composed from tenacity parts: retry only errors classified as transient, wait the
server's Retry-After when it gives one (capped), otherwise jittered exponential backoff. Clock and sleep
are injectable so tests never wait for real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from orchestrator.core.errors import TransientError

T = TypeVar("T")


class TokenBucket:
    """Allow `rate` calls per `per` seconds with bursts up to `burst`; `acquire()` blocks until allowed."""

    def __init__(
        self,
        rate: float,
        per: float,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.capacity = float(burst if burst is not None else max(1, int(rate)))
        self.refill_per_second = rate / per
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.lock = threading.Lock()
        self.waited_seconds = 0.0

    def acquire(self, tokens: float = 1.0) -> None:
        while True:
            with self.lock:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.refill_per_second)
                self.updated = now
                if self.tokens >= tokens:
                    self.tokens -= tokens
                    return
                wait = (tokens - self.tokens) / self.refill_per_second
            self.waited_seconds += wait
            self.sleep(wait)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (numeric or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 60.0
    max_retry_after: float = 120.0

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_after)
        return wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)(state)

    def call(
        self,
        fn: Callable[[], T],
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[TransientError], None] | None = None,
    ) -> T:
        """Run `fn`, retrying TransientError; the last error is re-raised when attempts run out."""

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if on_retry is not None and isinstance(exc, TransientError):
                on_retry(exc)

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
            stop=stop_after_attempt(self.attempts),
            wait=self.wait,
            sleep=sleep,
            reraise=True,
            before_sleep=before_sleep,
        )
        return retrying(fn)


@dataclass
class CallCounter:
    """HTTP calls by endpoint, for the plan summary and the benchmarks."""

    counts: dict[str, int]

    def __init__(self) -> None:
        self.counts = {}
        self._lock = threading.Lock()

    def add(self, endpoint: str, n: int = 1) -> None:
        with self._lock:
            self.counts[endpoint] = self.counts.get(endpoint, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return dict(sorted(self.counts.items()))
