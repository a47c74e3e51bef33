"""Chrome Policy reads stay under the published per-user quota (issue 12 item 5).

developers.google.com/chrome/policy/guides/api-quotas: `customers.policies` and `customers.policySchemas`
allow up to 5 queries per second per project per user; a service account impersonating one admin is one user.
Against Google the read pace defaults to that (300/min and 5 in any second); it stays configurable, and a loopback
emulator keeps the quicker sandbox pace.
"""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials

from orchestrator.backends.google.client import GoogleApi
from orchestrator.backends.google.config import GoogleConfig


def reads(config: GoogleConfig, **kwargs) -> tuple[float, float]:
    api = GoogleApi(config, credentials=AnonymousCredentials(), **kwargs)
    per_second = [limit.count for limit in api.policy_read_bucket.limits if limit.seconds == 1.0]
    return api.policy_read_bucket.per_second, float(per_second[0])


def test_against_google_reads_default_to_five_per_second():
    assert reads(GoogleConfig(admin_subject="admin@district.example")) == (5.0, 5.0)


def test_the_read_pace_stays_configurable():
    config = GoogleConfig(admin_subject="admin@district.example", policy_reads_per_minute=600)
    assert reads(config) == (10.0, 10.0)
    assert reads(GoogleConfig(admin_subject="a@d.example"), policy_reads_per_minute=120) == (2.0, 2.0)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8765", "http://localhost:9000"])
def test_a_loopback_emulator_keeps_the_sandbox_pace(endpoint):
    assert reads(GoogleConfig(directory_endpoint=endpoint, policy_endpoint=endpoint))[0] == 25.0
