"""Chrome Policy enum values come from policySchemas, not from memory (issue 12 item 6).

The backend reads `policySchemas.get` once per managed enum schema per run and maps the compiler's values
(`STRICT`, `FORCED`, ...) to the schema's own names, whichever way the schema spells them (bare or with a
prefix), and back when observing. A value the schema does not offer is a plan error naming the policy.
"""

from __future__ import annotations

import pytest
from test_google_backend import diff, policy, run

from orchestrator.backends.google.backend import GoogleBackend
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.backends.google.schemas import SchemaEnums, SchemaValueError
from orchestrator.backends.pacing import CallCounter
from orchestrator.core.errors import PlanError
from orchestrator.core.resources import Resource, ResourceId
from orchestrator.sandbox.google_emulator import start_emulator

SAFE = "chrome.users.SafeSearchRestrictedMode"
INSTALL = "chrome.users.apps.InstallType"
PREFIXED = ("YOUTUBE_RESTRICTED_MODE_OFF", "YOUTUBE_RESTRICTED_MODE_MODERATE", "YOUTUBE_RESTRICTED_MODE_STRICT")


@pytest.fixture
def emulator():
    server = start_emulator(200, seed=5)
    yield server
    server.stop()


def make_backend(emulator) -> GoogleBackend:
    config = GoogleConfig(
        directory_endpoint=emulator.url,
        policy_endpoint=emulator.url,
        credentials_file_env="K12_TEST_NO_GOOGLE_CREDENTIALS",
        policy_writes_per_minute=6000,
        requests_per_minute=60000,
    )
    return GoogleBackend(
        config,
        counter=CallCounter(),
        sleep=lambda _: None,
        poll_interval=0.0,
        timeout=5.0,
        policy_reads_per_minute=60000,
    )


def respell(emulator, schema: str, field: str, values: tuple[str, ...]) -> None:
    kind, _ = emulator.state.schemas[schema][field]
    emulator.state.schemas[schema][field] = (kind, ("YOUTUBE_RESTRICTED_MODE_UNSPECIFIED", *values))


def test_the_emulator_serves_policy_schemas_with_known_values(emulator):
    backend = make_backend(emulator)
    try:
        assert backend.schemas.known(SAFE, "forceYoutubeRestrictedMode") == ["OFF", "MODERATE", "STRICT"]
        assert "FORCED_AND_PIN_TO_TOOLBAR" in backend.schemas.known(INSTALL, "appInstallType")
        backend.schemas.known(SAFE, "forceGoogleSafeSearch")
        assert emulator.calls["policySchemas.get"] == 2, "read once per schema, then cached"
    finally:
        backend.close()


@pytest.mark.parametrize("spelling", ["bare", "prefixed"])
def test_youtube_value_is_written_as_the_schema_spells_it_and_then_in_sync(emulator, spelling):
    if spelling == "prefixed":
        respell(emulator, SAFE, "forceYoutubeRestrictedMode", PREFIXED)
    backend = make_backend(emulator)
    try:
        want = [policy(f"/Students|{SAFE}", {"forceGoogleSafeSearch": True, "forceYoutubeRestrictedMode": "STRICT"})]
        results = run(backend, diff(want, backend.observe(want)))
        assert [r.state for r in results.values()] == ["succeeded"], results
        stored = [v for (_, schema, _), v in emulator.state.policies.items() if schema == SAFE]
        expected = "STRICT" if spelling == "bare" else "YOUTUBE_RESTRICTED_MODE_STRICT"
        assert [v["forceYoutubeRestrictedMode"] for v in stored] == [expected]
        assert diff(want, backend.observe(want)) == [], "observed values are mapped back: no drift"
        assert emulator.calls["policySchemas.get"] == 1
    finally:
        backend.close()


def test_a_value_the_schema_does_not_offer_is_a_plan_error_listing_what_it_offers(emulator):
    respell(emulator, SAFE, "forceYoutubeRestrictedMode", ("YOUTUBE_RESTRICTED_MODE_OFF", "YOUTUBE_RESTRICTED_MODE_ON"))
    backend = make_backend(emulator)
    try:
        rid = ResourceId("google", "ou_policy", f"/Students|{SAFE}")
        want = [Resource(rid, {"forceYoutubeRestrictedMode": "STRICT"}, sources=("p.yaml:7",))]
        with pytest.raises(PlanError) as raised:
            backend.observe(want)
        message = str(raised.value)
        assert "p.yaml:7" in message and "'STRICT'" in message
        assert "YOUTUBE_RESTRICTED_MODE_OFF, YOUTUBE_RESTRICTED_MODE_ON" in message
        assert "UNSPECIFIED" not in message
        assert emulator.calls["policies.orgunits.batchModify"] == 0
    finally:
        backend.close()


def test_mapping_rules():
    schemas = {
        SAFE: {"fieldDescriptions": [{"field": "forceYoutubeRestrictedMode", "knownValueDescriptions": []}]},
        INSTALL: {
            "fieldDescriptions": [
                {"field": "appInstallType", "knownValueDescriptions": [{"value": v} for v in ("FORCED", "NORMAL")]}
            ]
        },
    }
    enums = SchemaEnums(schemas.__getitem__)
    assert enums.to_console(INSTALL, {"appInstallType": "FORCED"}) == {"appInstallType": "FORCED"}
    assert enums.from_console(INSTALL, {"appInstallType": "NORMAL"}) == {"appInstallType": "NORMAL"}
    with pytest.raises(SchemaValueError, match="FORCED, NORMAL"):
        enums.to_console(INSTALL, {"appInstallType": "FORCED_AND_PIN_TO_TOOLBAR"})
    with pytest.raises(SchemaValueError, match="lists no values"):
        enums.to_console(SAFE, {"forceYoutubeRestrictedMode": "STRICT"})
