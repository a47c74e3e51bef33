"""The one retry policy (backends/pacing.py): tenacity parts, jittered backoff, Retry-After, and what running out means.

Unit tests drive the real tenacity loop with an injected sleep (nothing waits); the end-to-end tests run the
Google and Graph emulators and check that exhausted retries map to the error tree the same way in both
backends: still throttled → QuotaError, still 5xx → a BackendError naming the status (never a quota error).
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.backends.google.backend import GoogleBackend
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.backends.intune.backend import IntuneBackend
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.pacing import RetryPolicy
from orchestrator.core.errors import BackendError, QuotaError, TransientError
from orchestrator.sandbox.district import District, generate
from orchestrator.sandbox.google_emulator import start_emulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.httpbase import Fault

BACKENDS = Path(__file__).resolve().parent.parent / "orchestrator" / "backends"


def failing(exc: Exception, times: int | None = None) -> tuple[Callable[[], str], list[int]]:
    """A call that raises `exc` (the first `times` calls, or always) and then answers "ok"; counts calls."""
    calls = [0]

    def call() -> str:
        calls[0] += 1
        if times is None or calls[0] <= times:
            raise exc
        return "ok"

    return call, calls


# ---- waits --------------------------------------------------------------------------------------------


def test_backoff_without_retry_after_is_jittered_within_the_exponential_window() -> None:
    policy = RetryPolicy(attempts=6, initial_wait=0.5, max_wait=60.0)
    random.seed(11)
    firsts = set()
    for _ in range(20):
        sleeps: list[float] = []
        call, _ = failing(TransientError("HTTP 503", status=503), times=5)
        assert policy.call(call, sleep=sleeps.append) == "ok"
        assert len(sleeps) == 5
        for n, seconds in enumerate(sleeps):
            assert 0.0 <= seconds <= min(60.0, 0.5 * 2**n)  # full jitter: uniform in [0, window]
        firsts.add(round(sleeps[0], 6))
    assert len(firsts) > 10, "the waits are random, so uncoordinated clients do not retry in lockstep"


def test_backoff_window_is_capped_at_max_wait() -> None:
    policy = RetryPolicy(attempts=12, initial_wait=0.5, max_wait=3.0)
    sleeps: list[float] = []
    call, _ = failing(TransientError("HTTP 500", status=500), times=11)
    policy.call(call, sleep=sleeps.append)
    assert max(sleeps) <= 3.0


def test_retry_after_is_honoured_exactly() -> None:
    sleeps: list[float] = []
    call, calls = failing(TransientError("HTTP 429", retry_after=7.0, status=429), times=2)
    assert RetryPolicy().call(call, sleep=sleeps.append) == "ok"
    assert sleeps == [7.0, 7.0] and calls == [3]


def test_retry_after_is_capped() -> None:
    sleeps: list[float] = []
    call, _ = failing(TransientError("HTTP 429", retry_after=3600.0, status=429), times=1)
    RetryPolicy(max_retry_after=120.0).call(call, sleep=sleeps.append)
    assert sleeps == [120.0]


def test_a_failure_that_is_not_transient_is_never_retried() -> None:
    sleeps: list[float] = []
    call, calls = failing(BackendError("HTTP 400 badRequest"))
    with pytest.raises(BackendError, match="400"):
        RetryPolicy().call(call, sleep=sleeps.append)
    assert calls == [1] and sleeps == []


# ---- running out --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 403])
def test_still_throttled_when_attempts_run_out_is_a_quota_error(status: int) -> None:
    call, calls = failing(TransientError(f"orgunits.list: HTTP {status} rateLimitExceeded", status=status))
    with pytest.raises(QuotaError, match="still throttled after 3 attempts"):
        RetryPolicy(attempts=3).call(call, sleep=lambda s: None)
    assert calls == [3]


@pytest.mark.parametrize("status", [500, 503, 504])
def test_still_failing_5xx_when_attempts_run_out_names_the_status_and_is_not_a_quota_error(status: int) -> None:
    call, _ = failing(TransientError(f"policies.resolve: HTTP {status}", status=status))
    with pytest.raises(BackendError, match=f"HTTP {status}") as caught:
        RetryPolicy(attempts=3).call(call, sleep=lambda s: None)
    assert not isinstance(caught.value, QuotaError)
    assert "after 3 attempts" in str(caught.value)


def test_a_timeout_on_every_attempt_is_a_backend_error_saying_no_answer() -> None:
    call, _ = failing(TransientError("chromeosdevices.list: TimeoutError"))
    with pytest.raises(BackendError, match="no answer") as caught:
        RetryPolicy(attempts=2).call(call, sleep=lambda s: None)
    assert not isinstance(caught.value, QuotaError)


def test_rounds_stop_quietly_after_the_last_attempt_and_use_the_same_waits() -> None:
    sleeps: list[float] = []
    call, calls = failing(TransientError("3 item(s) to re-send", retry_after=4.0, status=429))
    assert RetryPolicy(attempts=4).rounds(call, sleep=sleeps.append) is None
    assert calls == [4] and sleeps == [4.0, 4.0, 4.0]


def test_no_backend_module_builds_tenacity_state_by_hand() -> None:
    """Waits come from tenacity's own loop, never from a RetryCallState or Future made up in production code."""
    offenders = []
    for path in BACKENDS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("RetryCallState", "Future"):
                offenders.append(f"{path.relative_to(BACKENDS)}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr == "attempt_number" and isinstance(node.ctx, ast.Store):
                offenders.append(f"{path.relative_to(BACKENDS)}:{node.lineno}")
    assert offenders == []


# ---- end to end: the same mapping in both backends ----------------------------------------------------


@pytest.fixture
def google() -> Iterator[tuple[GoogleBackend, object]]:
    server = start_emulator(50, seed=2026)
    config = GoogleConfig(
        directory_endpoint=server.url,
        policy_endpoint=server.url,
        credentials_file_env="K12_TEST_NO_GOOGLE_CREDENTIALS",
        requests_per_minute=60000,
    )
    backend = GoogleBackend(config, sleep=lambda s: None, retry=RetryPolicy(attempts=3), timeout=5.0)
    yield backend, server
    backend.close()
    server.stop()


def test_google_exhausted_503_is_a_backend_error_not_a_quota_error(google) -> None:
    backend, server = google
    for _ in range(3):
        server.faults.queue.append(Fault(503, endpoint="orgunits.list"))
    with pytest.raises(BackendError, match="HTTP 503") as caught:
        backend.known_targets("google_ou", ["/Students"])
    assert not isinstance(caught.value, QuotaError)
    assert server.calls["orgunits.list"] == 3


def test_google_exhausted_429_is_a_quota_error(google) -> None:
    backend, server = google
    for _ in range(3):
        server.faults.queue.append(Fault(429, "rateLimitExceeded", endpoint="chromeosdevices.list"))
    with pytest.raises(QuotaError, match="still throttled after 3 attempts"):
        backend.inventory_records()


@pytest.fixture(scope="module")
def district() -> District:
    return generate(devices=200, seed=11)


@pytest.fixture
def intune(district: District) -> Iterator[tuple[IntuneBackend, GraphEmulator]]:
    server = GraphEmulator.start_local(district)
    backend = IntuneBackend(
        IntuneConfig(graph_endpoint=server.url), sleep=lambda s: None, policy=RetryPolicy(attempts=3), timeout=5.0
    )
    yield backend, server
    backend.close()
    server.stop()


def test_intune_exhausted_503_is_a_backend_error_not_a_quota_error(intune) -> None:
    backend, server = intune
    for _ in range(3):
        server.faults.queue.append(Fault(503, endpoint="GET managedDevices"))
    with pytest.raises(BackendError, match="503") as caught:
        backend.inventory_records()
    assert not isinstance(caught.value, QuotaError)


def test_intune_exhausted_429_is_a_quota_error(intune) -> None:
    backend, server = intune
    for _ in range(3):
        server.faults.queue.append(Fault(429, retry_after=1, endpoint="GET managedDevices"))
    with pytest.raises(QuotaError, match="still throttled after 3 attempts"):
        backend.inventory_records()
