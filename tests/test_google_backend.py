"""GoogleBackend end to end: the real googleapiclient against the emulator over HTTP."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.backends.google.backend import GoogleBackend
from orchestrator.backends.google.client import SCOPES, make_credentials
from orchestrator.backends.google.compiler import compile_google
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.backends.pacing import CallCounter, RetryPolicy
from orchestrator.backends.registry import CATALOG
from orchestrator.core.errors import ConfigError
from orchestrator.core.resources import Change, ChangeResult, Resource, ResourceId
from orchestrator.inventory.devices import load_inventory
from orchestrator.policy.loader import load_policies
from orchestrator.sandbox.google_emulator import start_emulator
from orchestrator.sandbox.httpbase import Fault

REPO = Path(__file__).resolve().parent.parent
URL_BLOCKING = "chrome.users.UrlBlocking"


@pytest.fixture
def emulator():
    server = start_emulator(1000, seed=2026)
    yield server
    server.stop()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def backend(emulator, sleeps):
    config = GoogleConfig(
        directory_endpoint=emulator.url,
        policy_endpoint=emulator.url,
        credentials_file_env="K12_TEST_NO_GOOGLE_CREDENTIALS",
        policy_writes_per_minute=6000,
        requests_per_minute=60000,
    )
    instance = GoogleBackend(
        config, counter=CallCounter(), sleep=sleeps, poll_interval=0.0, timeout=5.0, policy_reads_per_minute=60000
    )
    yield instance
    instance.close()


def diff(desired: list[Resource], observed: list[Resource]) -> list[Change]:
    """The engine's job in miniature: changes that make observed equal desired (deletes when authoritative)."""
    seen = {r.id: r for r in observed}
    wanted = {r.id: r for r in desired}
    changes = []
    for rid, want in wanted.items():
        if rid.type == "reimage":
            changes.append(Change(rid, "action", None, want.value, want.sources, want.policy))
        elif rid not in seen:
            changes.append(Change(rid, "create", None, want.value, want.sources, want.policy))
        elif seen[rid].value != want.value:
            changes.append(Change(rid, "update", seen[rid].value, want.value, want.sources, want.policy))
    for rid, have in seen.items():
        if rid not in wanted and CATALOG.type_of(rid).authoritative:
            changes.append(Change(rid, "delete", have.value, None))
    return changes


def run(backend: GoogleBackend, changes: list[Change]) -> dict[str, ChangeResult]:
    sent: list[str] = []
    results: dict[str, ChangeResult] = {}

    def on_result(result: ChangeResult) -> None:
        assert result.change_key not in results, "reported twice"
        results[result.change_key] = result

    backend.apply(changes, lambda c: sent.append(c.key), on_result)
    assert set(results) == {c.key for c in changes}
    return {str(c.id): results[c.key] for c in changes}


def policy(key: str, value: dict, kind: str = "ou_policy") -> Resource:
    return Resource(ResourceId("google", kind, key), value)


def status(serial: str, value: str) -> Resource:
    return Resource(ResourceId("google", "device_status", serial), value)


def sample_desired() -> list[Resource]:
    policies = load_policies(REPO / "policies", display_root=REPO)
    inventory = load_inventory(REPO / "inventory" / "devices.csv", display="inventory/devices.csv")
    return [r for r in compile_google(policies, inventory) if r.id.type != "reimage"]


def test_sample_policies_apply_grouped_per_ou_and_namespace_then_observe_in_sync(emulator, backend):
    desired = sample_desired()
    changes = diff(desired, backend.observe(desired))
    assert changes and all(c.op == "create" for c in changes if c.id.type != "device_status")
    results = run(backend, changes)
    assert all(r.state == "succeeded" for r in results.values()), results
    groups = {(c.id.key.split("|")[0], c.id.type) for c in changes if c.id.type.startswith("ou_")}
    assert emulator.calls["policies.orgunits.batchModify"] == len(groups) == 7
    assert diff(desired, backend.observe(desired)) == []


def test_devices_are_read_in_pages_of_300_never_one_by_one(emulator, backend):
    backend.observe([status("CB0000011", "DISABLED")])
    assert emulator.calls["chromeosdevices.list"] == math.ceil(len(emulator.state.devices) / 300)
    assert emulator.calls["chromeosdevices.get"] == 0


def test_child_that_inherits_the_desired_value_is_in_sync(backend):
    value = {"urlBlocklist": ["a.com"], "urlAllowlist": []}
    parent, child = "/Students/Elementary", "/Students/Elementary/Lincoln"
    run(backend, [Change(ResourceId("google", "ou_policy", f"{parent}|{URL_BLOCKING}"), "create", None, value)])
    desired = [policy(f"{parent}|{URL_BLOCKING}", value), policy(f"{child}|{URL_BLOCKING}", value)]
    observed = {str(r.id): r for r in backend.observe(desired)}
    assert observed[f"google/ou_policy/{child}|{URL_BLOCKING}"].meta["inherited_from"] == parent
    assert diff(desired, list(observed.values())) == []


def test_inherited_value_from_an_ou_no_policy_keeps_is_not_counted(backend):
    value = {"urlBlocklist": ["a.com"], "urlAllowlist": []}
    parent, child = "/Students/Middle", "/Students/Middle/Roosevelt"
    run(backend, [Change(ResourceId("google", "ou_policy", f"{parent}|{URL_BLOCKING}"), "create", None, value)])
    changes = diff(
        [policy(f"{child}|{URL_BLOCKING}", value)], backend.observe([policy(f"{child}|{URL_BLOCKING}", value)])
    )
    assert {(c.op, c.id.key.split("|")[0]) for c in changes} == {("create", child), ("delete", parent)}


def test_unwanted_local_policy_is_observed_and_deleted_with_batch_inherit(emulator, backend):
    key = f"/Labs|{URL_BLOCKING}"
    run(
        backend,
        [
            Change(
                ResourceId("google", "ou_policy", key), "create", None, {"urlBlocklist": ["x.com"], "urlAllowlist": []}
            )
        ],
    )
    changes = diff([], backend.observe([]))
    assert [(c.op, c.id.key) for c in changes] == [("delete", key)]
    assert run(backend, changes)[f"google/ou_policy/{key}"].state == "succeeded"
    assert emulator.calls["policies.orgunits.batchInherit"] == 1
    assert diff([], backend.observe([])) == []


def test_app_is_added_then_removed_at_its_org_unit(emulator, backend):
    app = policy("/Testing|hblfbmjdaalalhifaajnlbfhfplojdhd", {"appInstallType": "FORCED_AND_PIN_TO_TOOLBAR"}, "ou_app")
    assert run(backend, diff([app], backend.observe([app])))[str(app.id)].state == "succeeded"
    observed = backend.observe([app])
    assert [(str(r.id), r.value) for r in observed if r.id.type == "ou_app"] == [(str(app.id), app.value)]
    removal = diff([], backend.observe([]))
    assert [(c.op, str(c.id)) for c in removal] == [("delete", str(app.id))]
    run(backend, removal)
    assert not [r for r in backend.observe([]) if r.id.type == "ou_app"]


def test_disable_and_reenable_in_chunks_of_50_with_a_per_device_failure_inside_a_200(emulator, backend):
    serials = sorted(d["serialNumber"] for d in emulator.state.devices.values())[:60]
    refused = next(i for i, d in emulator.state.devices.items() if d["serialNumber"] == serials[3])
    emulator.state.device_faults[refused] = [{"code": 7, "message": "Not authorized for this device."}]
    desired = [status(s, "DISABLED") for s in serials]
    results = run(backend, diff(desired, backend.observe(desired)))
    assert results[f"google/device_status/{serials[3]}"].state == "failed"
    assert "Not authorized" in results[f"google/device_status/{serials[3]}"].detail
    assert sum(r.state == "succeeded" for r in results.values()) == 59
    assert emulator.calls["chromeosdevices.batchChangeStatus"] == 2
    found = [status(s, "ACTIVE") for s in serials[:5]]
    results = run(backend, diff(found, backend.observe(found)))
    assert [r.state for r in results.values()].count("succeeded") == 4  # serials[3] was never disabled
    assert emulator.state.devices[refused]["status"] == "ACTIVE"


def test_transient_per_device_error_is_retried_not_dropped(emulator, backend):
    device_id, device = next(iter(emulator.state.devices.items()))
    emulator.state.device_faults[device_id] = [{"code": 14, "message": "Backend unavailable."}]
    results = run(
        backend,
        diff(
            [status(device["serialNumber"], "DISABLED")], backend.observe([status(device["serialNumber"], "DISABLED")])
        ),
    )
    assert [r.state for r in results.values()] == ["succeeded"]
    assert emulator.calls["chromeosdevices.batchChangeStatus"] == 2
    assert device["status"] == "DISABLED"


def test_429_with_retry_after_is_waited_then_succeeds(emulator, backend, sleeps):
    emulator.faults.queue.append(Fault(429, "rateLimitExceeded", retry_after=7, endpoint="chromeosdevices.list"))
    observed = backend.observe([status("CB0000011", "DISABLED")])
    assert [r.value for r in observed] == ["ACTIVE"]
    assert 7.0 in sleeps
    assert backend.counter.counts["chromeosdevices.list"] == emulator.calls["chromeosdevices.list"]


def test_quota_exceeded_403_is_retried(emulator, backend):
    emulator.faults.queue.append(Fault(403, "quotaExceeded", endpoint="orgunits.list"))
    assert backend.org_units(refresh=True)["/Students"]
    assert emulator.calls["orgunits.list"] == 2


def test_exhausted_retries_are_reported_as_failed_results(emulator, backend):
    for _ in range(RetryPolicy().attempts):
        emulator.faults.queue.append(Fault(503, endpoint="policies.orgunits.batchModify"))
    change = Change(
        ResourceId("google", "ou_policy", f"/Staff|{URL_BLOCKING}"),
        "create",
        None,
        {"urlBlocklist": ["a.com"], "urlAllowlist": []},
    )
    result = run(backend, [change])[str(change.id)]
    assert result.state == "failed" and "503" in result.detail
    assert emulator.calls["policies.orgunits.batchModify"] == RetryPolicy().attempts


def test_a_serial_that_prefixes_others_matches_exactly_one_device(emulator, backend):
    emulator.state.devices["prefixdevice01"] = {
        **emulator.state.devices[emulator.state.order[0]],
        "deviceId": "prefixdevice01",
        "serialNumber": "CB000001",
    }
    emulator.state.order.append("prefixdevice01")
    desired = [status("CB000001", "DISABLED")]
    observed = backend.observe(desired)
    assert [(r.id.key, r.meta["deviceId"]) for r in observed] == [("CB000001", "prefixdevice01")]
    run(backend, diff(desired, observed))
    disabled = sorted(d["serialNumber"] for d in emulator.state.devices.values() if d["status"] == "DISABLED")
    assert disabled == ["CB000001"]


def test_absent_serial_is_simply_absent(backend):
    assert backend.observe([status("NOSUCHSERIAL", "DISABLED")]) == []


def reimage(serial: str) -> Change:
    return Change(
        ResourceId("google", "reimage", f"{serial}|2026-thanksgiving"),
        "action",
        None,
        {"command": "WIPE_USERS"},
        destructive=True,
    )


def test_reimage_issues_one_command_per_device_and_polls_to_completion(emulator, backend):
    changes = [reimage("CB0000004"), reimage("CB0000001")]
    results = run(backend, changes)
    assert all(r.state == "succeeded" and r.response["state"] == "EXECUTED_BY_CLIENT" for r in results.values())
    assert all(r.response["commandId"] for r in results.values())
    assert emulator.calls["chromeosdevices.issueCommand"] == 2
    assert emulator.calls["commands.get"] == 8  # four successive states each


def test_timeout_on_issue_command_is_unknown_and_never_resent(emulator, sleeps):
    config = GoogleConfig(
        directory_endpoint=emulator.url,
        policy_endpoint=emulator.url,
        credentials_file_env="K12_TEST_NO_GOOGLE_CREDENTIALS",
    )
    backend = GoogleBackend(config, sleep=sleeps, poll_interval=0.0, timeout=0.3)
    emulator.faults.queue.append(Fault(0, delay=1.0, endpoint="chromeosdevices.issueCommand", after_effect=True))
    result = run(backend, [reimage("CB0000004")])["google/reimage/CB0000004|2026-thanksgiving"]
    assert result.state == "unknown"
    assert emulator.calls["chromeosdevices.issueCommand"] == 1


def test_move_devices_reads_back_to_confirm(emulator, backend):
    outcome = backend.move_devices(["CB0000001", "CB0000002", "NOSUCHSERIAL"], "/Testing")
    assert outcome == {"CB0000001": "moved", "CB0000002": "moved", "NOSUCHSERIAL": "not_found"}
    assert emulator.calls["chromeosdevices.moveDevicesToOu"] == 1


def test_no_credentials_against_a_real_endpoint_is_a_config_error():
    with pytest.raises(ConfigError, match="K12_NONE"):
        make_credentials(GoogleConfig(credentials_file_env="K12_NONE"), env={})


@pytest.fixture
def service_account(tmp_path):
    """Credentials built from a freshly generated service-account key file (never a real one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "sa.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "sa@p.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    config = GoogleConfig(admin_subject="it-admin@district.example", credentials_file_env="SA_FILE")
    return make_credentials(config, env={"SA_FILE": str(path)})


def test_service_account_uses_domain_wide_delegation_subject_and_scopes(service_account):
    assert service_account._subject == "it-admin@district.example"
    assert set(service_account.scopes) == set(SCOPES)


def test_update_that_drops_a_managed_field_clears_it_in_the_console(emulator, backend):
    key = "/Staff|chrome.users.SafeSearchRestrictedMode"
    both = {"forceGoogleSafeSearch": True, "forceYoutubeRestrictedMode": "STRICT"}
    run(backend, [Change(ResourceId("google", "ou_policy", key), "create", None, both)])
    only = {"forceGoogleSafeSearch": True}
    run(backend, [Change(ResourceId("google", "ou_policy", key), "update", both, only)])
    staff = backend.org_units()["/Staff"]
    assert emulator.state.policies[(staff, "chrome.users.SafeSearchRestrictedMode", "")] == only


def test_lockdown_observe_reads_devices_but_no_policies(emulator, backend):
    backend.observe([status("CB0000011", "DISABLED")])
    assert emulator.calls["policies.resolve"] == 0 and emulator.calls["chromeosdevices.list"] > 0


def test_service_account_token_exchange_asserts_the_admin_subject(service_account):
    import base64

    import google.auth.transport.requests
    import responses

    with responses.RequestsMock() as mock:
        mock.post("https://oauth2.googleapis.com/token", json={"access_token": "tok", "expires_in": 3600})
        service_account.refresh(google.auth.transport.requests.Request())
        body = mock.calls[0].request.body
    body = body.decode() if isinstance(body, bytes) else body
    assertion = dict(p.split("=", 1) for p in body.split("&"))["assertion"]
    claims = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
    assert claims["sub"] == "it-admin@district.example"
    assert set(claims["scope"].split()) == set(SCOPES)
    assert service_account.token == "tok"


def test_status_change_retried_after_a_lost_reply_counts_the_landed_change_as_succeeded(emulator, backend):
    device = next(iter(emulator.state.devices.values()))
    emulator.faults.queue.append(Fault(503, endpoint="chromeosdevices.batchChangeStatus", after_effect=True))
    desired = [status(device["serialNumber"], "DISABLED")]
    results = run(backend, diff(desired, backend.observe(desired)))
    assert [(r.state, r.detail) for r in results.values()] == [("succeeded", "already DISABLED")]
    assert emulator.calls["chromeosdevices.batchChangeStatus"] == 2 and device["status"] == "DISABLED"


def test_issue_command_is_retried_when_throttled_but_a_5xx_is_unknown(emulator, backend, sleeps):
    emulator.faults.queue.append(Fault(429, retry_after=2, endpoint="chromeosdevices.issueCommand"))
    throttled = run(backend, [reimage("CB0000004")])["google/reimage/CB0000004|2026-thanksgiving"]
    assert throttled.state == "succeeded" and 2.0 in sleeps
    emulator.faults.queue.append(Fault(500, endpoint="chromeosdevices.issueCommand", after_effect=True))
    calls = emulator.calls["chromeosdevices.issueCommand"]
    ambiguous = run(backend, [reimage("CB0000001")])["google/reimage/CB0000001|2026-thanksgiving"]
    assert ambiguous.state == "unknown"
    assert emulator.calls["chromeosdevices.issueCommand"] == calls + 1


# ---------------------------------------------------------------------------------------------- issue 18


def deprovision(serial: str, **meta) -> Change:
    return Change(
        ResourceId("google", "reimage", f"{serial}|retire-2026"),
        "action",
        None,
        {"command": "DEPROVISION", "deprovisionReason": "DEPROVISION_REASON_RETIRING_DEVICE"},
        destructive=True,
        meta=meta,
    )


def test_issue_command_answered_408_is_unknown(emulator, backend):
    emulator.faults.queue.append(Fault(408, endpoint="chromeosdevices.issueCommand", after_effect=True))
    result = run(backend, [reimage("CB0000004")])["google/reimage/CB0000004|2026-thanksgiving"]
    assert result.state == "unknown" and emulator.calls["chromeosdevices.issueCommand"] == 1


def test_deprovision_per_device_internal_error_is_unknown_and_a_refusal_failed(emulator, backend):
    first, second = "CB0000001", "CB0000002"
    ids = {d["serialNumber"]: i for i, d in emulator.state.devices.items()}
    emulator.state.device_faults[ids[first]] = [{"code": 13, "message": "Internal error."}]
    emulator.state.device_faults[ids[second]] = [{"code": 3, "message": "Invalid device."}]
    results = run(backend, [deprovision(first), deprovision(second)])
    assert results[f"google/reimage/{first}|retire-2026"].state == "unknown"
    assert results[f"google/reimage/{second}|retire-2026"].state == "failed"
    assert emulator.calls["chromeosdevices.batchChangeStatus"] == 1


def test_outer_5xx_around_an_executed_deprovision_is_unknown_then_settled_from_the_console(emulator, backend):
    sent_at = "2026-01-01T00:00:00Z"
    emulator.faults.queue.append(Fault(502, endpoint="chromeosdevices.batchChangeStatus", after_effect=True))
    change = deprovision("CB0000001", sent_at=sent_at)
    assert run(backend, [change])[str(change.id)].state == "unknown"
    (settled,) = backend.settle([change])
    assert settled.state == "succeeded" and settled.response["status"] == "DEPROVISIONED"
    assert emulator.calls["chromeosdevices.batchChangeStatus"] == 1, "settling sends nothing"


def test_settle_deprovision_proves_not_run_only_with_a_sent_time(emulator, backend):
    active = "CB0000003"
    assert backend.settle([deprovision(active)]) == [], "without sent_at: cannot tell"
    (settled,) = backend.settle([deprovision(active, sent_at="2026-01-01T00:00:00Z")])
    assert settled.state == "failed" and "ACTIVE" in settled.detail


def test_settle_command_reads_commands_get_for_the_recorded_command_id(emulator, backend):
    done = run(backend, [reimage("CB0000004")])["google/reimage/CB0000004|2026-thanksgiving"]
    command_id = done.response["commandId"]
    asked = replace(reimage("CB0000004"), meta={"response": {"commandId": command_id}})
    (settled,) = backend.settle([asked])
    assert settled.state == "succeeded" and settled.response["commandId"] == command_id
    # A command the admin cancelled proves the wipe did not run; without an id nothing can be told.
    emulator.state.command_steps = 0
    issued = emulator.state.issue_command(done.response["deviceId"], "WIPE_USERS", "", "2026-11-25T00:00:00Z")
    cancelled = replace(reimage("CB0000004"), meta={"response": {"commandId": issued.command_id}})
    emulator.state.get_command = lambda device_id, command_id: {  # type: ignore[method-assign]
        "commandId": command_id,
        "type": "WIPE_USERS",
        "state": "CANCELLED",
    }
    (refused,) = backend.settle([cancelled])
    assert refused.state == "failed" and "CANCELLED" in refused.detail
    assert backend.settle([reimage("CB0000001")]) == []
    assert emulator.calls["chromeosdevices.issueCommand"] == 1
