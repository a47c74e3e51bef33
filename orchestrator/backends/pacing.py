"""Client-side pacing (a sliding window per published quota) and the one retry policy all backends share.

The retry policy is composed from tenacity parts: retry only errors classified as transient, wait the
server's Retry-After when it gives one (capped), otherwise jittered exponential backoff. Clock and sleep
are injectable so tests never wait for real.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from orchestrator.core.errors import BackendError, QuotaError, TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class Limit:
    """A published quota: at most `count` calls in any `seconds`-long window (e.g. 200 per 20 s)."""

    count: int
    seconds: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.seconds <= 0:
            raise ValueError(f"a rate limit needs count >= 1 and seconds > 0, not {self.count}/{self.seconds}")

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds:g}s"


class Pacer:
    """Admit calls so that no window of any of its `limits` ever holds more calls than the limit allows.

    A sliding-window log: the admission times of the last `max(count)` calls are kept, and a call waits until
    the `count`-th most recent admission is `seconds` old for every limit. Unlike a token bucket with a burst on
    top of its refill (which let 360 Intune device writes through in the first 20 s of a 200-per-20-s quota),
    this holds each published limit over every window, at the start and in a long run alike; several limits
    combine (Chrome Policy writes: 30 per minute per customer and 15 per second per project). Windows are
    half-open: calls at t and t + seconds fall in different windows. Thread-safe; `clock` and `sleep` are
    injectable attributes so tests run thousands of calls on a simulated clock.
    """

    def __init__(
        self,
        *limits: Limit,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not limits:
            raise ValueError("a pacer needs at least one limit")
        self.limits = tuple(sorted(limits, key=lambda limit: limit.count / limit.seconds))
        self.clock = clock
        self.sleep = sleep
        self._admitted: deque[float] = deque(maxlen=max(limit.count for limit in limits))
        self.lock = threading.Lock()
        self.waited_seconds = 0.0

    @property
    def per_second(self) -> float:
        """The sustained rate the tightest limit allows."""
        return min(limit.count / limit.seconds for limit in self.limits)

    def _wait(self, now: float, calls: int) -> float:
        wait = 0.0
        for limit in self.limits:
            # room for `calls` more: the (count - calls + 1)-th most recent admission has left the window
            nth = limit.count - calls + 1
            if len(self._admitted) >= nth:
                wait = max(wait, self._admitted[-nth] + limit.seconds - now)
        return wait

    def acquire(self, calls: int = 1) -> None:
        """Block until `calls` more calls (the inner requests of one batch) fit in every window, then count
        them as admitted now."""
        too_many = [limit for limit in self.limits if calls > limit.count]
        if too_many:
            raise ValueError(f"{calls} calls at once can never fit {too_many[0]}")
        while True:
            with self.lock:
                now = self.clock()
                wait = self._wait(now, calls)
                if wait <= 0:
                    self._admitted.extend([now] * calls)
                    return
            self.waited_seconds += wait
            self.sleep(wait)

    def __repr__(self) -> str:
        return f"Pacer({', '.join(map(str, self.limits))})"


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (numeric or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


THROTTLED_STATUS = frozenset({429, 403})  # a TransientError with 403 is a rate-limit reason (Google's quotaExceeded)


class wait_retry_after(wait_base):  # lower case like tenacity's own strategies
    """Wait the server's Retry-After (capped) when the TransientError carries one, else `fallback`.

    A tenacity wait strategy: a callable of the RetryCallState tenacity builds, like `wait_exception`.
    """

    def __init__(self, fallback: wait_base, cap: float):
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self.cap)
        return self.fallback(retry_state)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientError)


def _log_retry(retry_state: RetryCallState) -> None:
    """before_sleep: one line per retry with its wait (INFO: shown with -v)."""
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    extra = {"retry_wait": round(wait, 3), "attempt": retry_state.attempt_number}
    logging.getLogger("orchestrator.retry").info(
        "retry %d after %s: waiting %.2f s", retry_state.attempt_number, exc, wait, extra=extra
    )


def _give_up_quietly(retry_state: RetryCallState) -> None:
    """retry_error_callback of `rounds`: running out is not an error there (the caller reports what is left)."""
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """The one retry policy, composed from tenacity parts.

    retry: only `TransientError` (raised at a client's error-mapping point); stop: after `attempts` tries;
    wait: the server's Retry-After capped at `max_retry_after`, else full-jitter exponential backoff
    (`wait_random_exponential`: uniform in [0, min(max_wait, initial_wait * 2**n)]). When attempts run out,
    `call` turns the last TransientError into the error tree with `give_up`: throttling becomes QuotaError,
    anything else (5xx, timeout) a BackendError naming the status.
    """

    attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 60.0
    max_retry_after: float = 120.0

    @property
    def wait(self) -> wait_base:
        backoff = wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)
        return wait_retry_after(backoff, cap=self.max_retry_after)

    def _parts(self) -> dict[str, Any]:
        parts = {"retry": retry_if_exception(_transient), "stop": stop_after_attempt(self.attempts), "wait": self.wait}
        return {**parts, "before_sleep": _log_retry}

    def retrying(self, *, sleep: Callable[[float], None] = time.sleep) -> Retrying:
        """A tenacity `Retrying` with this policy; the last TransientError is re-raised when attempts run out."""
        return Retrying(**self._parts(), sleep=sleep, reraise=True)

    def async_retrying(self, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> AsyncRetrying:
        return AsyncRetrying(**self._parts(), sleep=sleep, reraise=True)

    def give_up(self, exc: TransientError) -> BackendError:
        """The error for a call whose retries ran out: QuotaError when throttled, else BackendError (5xx, timeout)."""
        if exc.status in THROTTLED_STATUS:
            return QuotaError(f"{exc}: still throttled after {self.attempts} attempts")
        status = f"HTTP {exc.status}" if exc.status is not None else "no answer"
        return BackendError(f"{exc}: still failing ({status}) after {self.attempts} attempts")

    def call(self, fn: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
        """Run `fn`, retrying TransientError; when attempts run out, raise `give_up(last error)`."""
        try:
            return self.retrying(sleep=sleep)(fn)
        except TransientError as exc:
            raise self.give_up(exc) from exc

    async def acall(
        self, fn: Callable[[], Awaitable[T]], *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> T:
        """`call` for a coroutine function."""
        try:
            return await self.async_retrying(sleep=sleep)(fn)
        except TransientError as exc:
            raise self.give_up(exc) from exc

    def rounds(self, send_round: Callable[[], None], *, sleep: Callable[[float], None] = time.sleep) -> None:
        """Re-run `send_round` while it raises TransientError (items of a batch still to re-send), up to
        `attempts` rounds with this policy's waits. Running out is not an error: the round records each
        item's last answer and the caller reports what is left, item by item."""
        Retrying(**self._parts(), sleep=sleep, retry_error_callback=_give_up_quietly)(send_round)

    async def arounds(
        self, send_round: Callable[[], Awaitable[None]], *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """`rounds` for a coroutine function."""
        await AsyncRetrying(**self._parts(), sleep=sleep, retry_error_callback=_give_up_quietly)(send_round)


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
