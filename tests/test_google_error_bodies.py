"""Both Google error-body styles are retried (issue 12 item 7).

Legacy bodies carry the reason in `error.errors[].reason` (`userRateLimitExceeded`, ...); newer ones (AIP-193)
in `error.details[]` as a `google.rpc.ErrorInfo` (`RATE_LIMIT_EXCEEDED`, googleapis google/api/error_reason.proto)
with `error.status`. A 403 carrying either is throttling, never a permission problem.
"""

from __future__ import annotations

import json

import httplib2
import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from test_google_backend import sample_desired

from orchestrator.backends.google.backend import GoogleBackend
from orchestrator.backends.google.client import classify, error_reasons
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.backends.pacing import CallCounter
from orchestrator.core.errors import AuthError, TransientError
from orchestrator.sandbox.google_emulator import start_emulator
from orchestrator.sandbox.httpbase import Fault

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def http_error(status: int, error: dict) -> HttpError:
    return HttpError(httplib2.Response({"status": status}), json.dumps({"error": error}).encode())


def rate_info(reason: str = "RATE_LIMIT_EXCEEDED") -> dict:
    return {"@type": ERROR_INFO, "reason": reason, "domain": "googleapis.com", "metadata": {"service": "x"}}


@pytest.mark.parametrize(
    "error",
    [
        {"code": 403, "message": "Quota", "status": "PERMISSION_DENIED", "details": [rate_info()]},
        {"code": 403, "message": "Quota", "status": "RESOURCE_EXHAUSTED", "details": [rate_info()]},
        {  # both: googleapiclient keeps only `details` in error_details; the legacy reason must still count
            "code": 403,
            "message": "User Rate Limit Exceeded",
            "errors": [{"reason": "userRateLimitExceeded", "domain": "usageLimits", "message": "x"}],
            "status": "PERMISSION_DENIED",
            "details": [{"@type": "type.googleapis.com/google.rpc.Help", "links": []}],
        },
        {"code": 403, "message": "Quota", "errors": [{"reason": "quotaExceeded", "domain": "usageLimits"}]},
    ],
)
def test_a_403_whose_reason_is_in_either_body_style_is_throttling(error):
    assert isinstance(classify("x.list", http_error(403, error), idempotent=False), TransientError)


def test_other_403_reasons_stay_permission_errors():
    error = {
        "code": 403,
        "message": "Request had insufficient authentication scopes.",
        "status": "PERMISSION_DENIED",
        "details": [rate_info("ACCESS_TOKEN_SCOPE_INSUFFICIENT"), rate_info("RESOURCE_QUOTA_EXCEEDED")],
    }
    assert error_reasons(http_error(403, error)) == {"ACCESS_TOKEN_SCOPE_INSUFFICIENT", "RESOURCE_QUOTA_EXCEEDED"}
    assert isinstance(classify("x.list", http_error(403, error), idempotent=True), AuthError)


@pytest.fixture
def emulator():
    server = start_emulator(200, seed=11)
    yield server
    server.stop()


@pytest.mark.parametrize("style", ["legacy", "details", "both"])
def test_the_emulator_answers_in_the_style_asked(emulator, style):
    emulator.faults.queue.append(Fault(403, "userRateLimitExceeded", endpoint="orgunits.list", style=style))
    directory = build(
        "admin",
        "directory_v1",
        static_discovery=True,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.url},
    )
    with pytest.raises(HttpError) as caught:
        directory.orgunits().list(customerId="my_customer").execute()
    error = json.loads(caught.value.content)["error"]
    assert ("errors" in error) == (style != "details")
    assert ("details" in error) == (style != "legacy")
    if style != "legacy":
        assert error["details"][0] == {**rate_info(), "metadata": error["details"][0]["metadata"]}
    assert error_reasons(caught.value) & {"userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"}


@pytest.mark.parametrize(
    ("status", "endpoint"),
    [(403, "orgunits.list"), (403, "policies.resolve"), (429, "policies.resolve")],
)
def test_newer_error_bodies_are_retried_by_the_backend(emulator, status, endpoint):
    emulator.faults.queue.append(Fault(status, "rateLimitExceeded", endpoint=endpoint, style="details"))
    config = GoogleConfig(
        directory_endpoint=emulator.url,
        policy_endpoint=emulator.url,
        credentials_file_env="K12_TEST_NO_GOOGLE_CREDENTIALS",
        policy_writes_per_minute=6000,
        requests_per_minute=60000,
    )
    backend = GoogleBackend(
        config,
        counter=CallCounter(),
        sleep=lambda _: None,
        poll_interval=0.0,
        timeout=5.0,
        policy_reads_per_minute=60000,
    )
    try:
        assert backend.observe(sample_desired())
    finally:
        backend.close()
    assert emulator.calls[endpoint] >= 2
    assert not emulator.faults.queue
