"""The Graph emulator follows the published paths, paging, $batch rules and error bodies."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from orchestrator.sandbox.district import generate
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.graph_state import GraphState
from orchestrator.sandbox.httpbase import Fault

DEVICES = "deviceManagement/managedDevices"


@pytest.fixture()
def emulator() -> Iterator[GraphEmulator]:
    server = GraphEmulator.start_local(generate(devices=400))
    yield server
    server.stop()


@pytest.fixture()
def http(emulator: GraphEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url.rstrip("/")) as client:
        yield client


def _intune_count(emulator: GraphEmulator) -> int:
    return len(emulator.state.devices)


def test_device_list_pages_with_absolute_next_links(emulator: GraphEmulator, http: httpx.Client) -> None:
    url: str | None = f"/v1.0/{DEVICES}?$top=50&$select=id,serialNumber"
    seen: list[str] = []
    while url:
        page = http.get(url).json()
        seen += [d["serialNumber"] for d in page["value"]]
        assert all(set(d) == {"id", "serialNumber"} for d in page["value"])
        url = page.get("@odata.nextLink")
        assert url is None or url.startswith(emulator.url.rstrip("/") + "/v1.0/")
    assert len(seen) == len(set(seen)) == _intune_count(emulator)


def test_default_page_is_small_and_top_is_capped_at_1000() -> None:
    server = GraphEmulator.start_local(state=GraphState.from_district(generate(devices=4000)))
    try:
        with httpx.Client(base_url=server.url.rstrip("/")) as client:
            assert len(client.get(f"/v1.0/{DEVICES}").json()["value"]) == 100
            assert len(client.get(f"/v1.0/{DEVICES}?$top=5000").json()["value"]) == 1000
    finally:
        server.stop()


def test_unsupported_filter_is_silently_ignored(emulator: GraphEmulator, http: httpx.Client) -> None:
    total = _intune_count(emulator)
    for unsupported in ("startswith(serialNumber,'PF')", "isSupervised eq true", "serialNumber ne 'x'"):
        page = http.get(f"/v1.0/{DEVICES}", params={"$filter": unsupported, "$top": "1000"}).json()
        assert len(page["value"]) == total
    one = http.get(f"/v1.0/{DEVICES}", params={"$filter": "serialNumber eq 'PF0000009'"}).json()["value"]
    assert [d["serialNumber"] for d in one] == ["PF0000009"]


def test_lost_mode_state_is_beta_only(http: httpx.Client) -> None:
    v1 = http.get(f"/v1.0/{DEVICES}?$top=1").json()["value"][0]
    beta = http.get(f"/beta/{DEVICES}?$top=1").json()["value"][0]
    assert "lostModeState" not in v1
    assert beta["lostModeState"] == "disabled"


def _device(emulator: GraphEmulator, *, os: str, supervised: bool | None = None) -> dict:
    for record in emulator.state.devices.values():
        if record["operatingSystem"] == os and (supervised is None or record["isSupervised"] == supervised):
            return record
    raise AssertionError("no such device in the district")


def test_enable_lost_mode_needs_beta_and_a_supervised_ipad(emulator: GraphEmulator, http: httpx.Client) -> None:
    ipad = _device(emulator, os="iPadOS", supervised=True)
    body = {"message": "Return to school", "phoneNumber": "555", "footer": "PVSD"}
    refused = http.post(f"/v1.0/{DEVICES}/{ipad['id']}/enableLostMode", json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "BadRequest"
    assert set(refused.json()["error"]) == {"code", "message", "innerError"}
    assert http.post(f"/beta/{DEVICES}/{ipad['id']}/enableLostMode", json=body).status_code == 204
    assert ipad["lostModeState"] == "enabled"
    laptop = _device(emulator, os="Windows")
    assert http.post(f"/beta/{DEVICES}/{laptop['id']}/enableLostMode", json=body).status_code == 400


def test_ipads_report_ipados_and_their_device_type_on_beta(emulator: GraphEmulator, http: httpx.Client) -> None:
    ipad = _device(emulator, os="iPadOS")
    beta = http.get(f"/beta/{DEVICES}/{ipad['id']}").json()
    assert (beta["operatingSystem"], beta["deviceType"]) == ("iPadOS", "iPad")
    v1 = http.get(f"/v1.0/{DEVICES}/{ipad['id']}").json()
    assert v1["operatingSystem"] == "iPadOS" and "deviceType" not in v1
    assert not any(r["operatingSystem"] == "iOS" and r["deviceType"] == "iPad" for r in emulator.state.devices.values())


def test_actions_return_204_and_record_action_results(emulator: GraphEmulator, http: httpx.Client) -> None:
    laptop = _device(emulator, os="Windows")
    assert http.post(f"/v1.0/{DEVICES}/{laptop['id']}/remoteLock").status_code == 400  # not on Windows
    laptop = _device(emulator, os="iPadOS", supervised=False)
    assert http.post(f"/v1.0/{DEVICES}/{laptop['id']}/remoteLock").status_code == 204
    wipe = {"keepEnrollmentData": True, "keepUserData": False}
    assert http.post(f"/v1.0/{DEVICES}/{laptop['id']}/wipe", json=wipe).status_code == 204
    got = http.get(f"/v1.0/{DEVICES}/{laptop['id']}").json()
    assert [r["actionName"] for r in got["deviceActionResults"]] == ["remoteLock", "wipe"]
    assert got["deviceActionResults"][0]["actionState"] == "pending"
    assert emulator.calls["POST managedDevices/remoteLock"] == 2


def test_batch_over_20_requests_is_refused(http: httpx.Client) -> None:
    requests = [{"id": str(i), "method": "GET", "url": "/groups"} for i in range(21)]
    reply = http.post("/v1.0/$batch", json={"requests": requests})
    assert reply.status_code == 400


def test_batch_write_without_body_or_content_type_fails_whole_batch(
    emulator: GraphEmulator, http: httpx.Client
) -> None:
    laptop = _device(emulator, os="iPadOS", supervised=False)
    bodyless = {"id": "1", "method": "POST", "url": f"/{DEVICES}/{laptop['id']}/remoteLock"}
    reply = http.post("/v1.0/$batch", json={"requests": [bodyless]})
    assert reply.status_code == 400
    assert "Content-Type" in reply.json()["error"]["message"]
    ok = {**bodyless, "body": {}, "headers": {"Content-Type": "application/json"}}
    reply = http.post("/v1.0/$batch", json={"requests": [ok]})
    assert reply.status_code == 200 and reply.json()["responses"][0]["status"] == 204


def test_batch_urls_must_be_relative_without_version(http: httpx.Client, emulator: GraphEmulator) -> None:
    absolute = {"id": "1", "method": "GET", "url": emulator.url + "v1.0/groups"}
    assert http.post("/v1.0/$batch", json={"requests": [absolute]}).status_code == 400
    versioned = {"id": "1", "method": "GET", "url": "/v1.0/groups"}
    reply = http.post("/v1.0/$batch", json={"requests": [versioned]}).json()
    assert reply["responses"][0]["status"] == 400


def test_batch_inner_requests_are_throttled_on_their_own(emulator: GraphEmulator, http: httpx.Client) -> None:
    emulator.faults.queue.append(Fault(429, retry_after=3, endpoint="GET group"))
    emulator.faults.queue.append(Fault(429, retry_after=None, endpoint="GET group"))
    gid = next(iter(emulator.state.groups))
    requests = [{"id": str(i), "method": "GET", "url": f"/groups/{gid}"} for i in range(3)]
    reply = http.post("/v1.0/$batch", json={"requests": requests})
    assert reply.status_code == 200
    statuses = [(r["status"], r["headers"].get("Retry-After")) for r in reply.json()["responses"]]
    assert statuses == [(429, "3"), (429, None), (200, None)]
    assert emulator.calls["GET group"] == 3 and emulator.calls["POST $batch"] == 1


def test_throttled_request_has_graph_error_and_optional_retry_after(
    emulator: GraphEmulator, http: httpx.Client
) -> None:
    emulator.faults.queue.append(Fault(429, retry_after=2, endpoint="GET groups"))
    emulator.faults.queue.append(Fault(429, retry_after=None, endpoint="GET groups"))
    first, second = http.get("/v1.0/groups"), http.get("/v1.0/groups")
    assert first.status_code == second.status_code == 429
    assert first.headers["Retry-After"] == "2" and "Retry-After" not in second.headers
    assert first.json()["error"]["code"] == "TooManyRequests"


def test_app_assign_replaces_assignments(emulator: GraphEmulator, http: httpx.Client) -> None:
    app = http.get(
        "/v1.0/deviceAppManagement/mobileApps", params={"$filter": "displayName eq 'Microsoft Word'"}
    ).json()["value"]
    assert len(app) == 1
    groups = list(emulator.state.groups)
    url = f"/v1.0/deviceAppManagement/mobileApps/{app[0]['id']}"
    for gid in (groups[0], groups[1]):
        target = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid}
        body = {"mobileAppAssignments": [{"intent": "required", "target": target}]}
        assert http.post(f"{url}/assign", json=body).status_code == 204
    assigned = http.get(f"{url}/assignments").json()["value"]
    assert [a["target"]["groupId"] for a in assigned] == [groups[1]]


def test_device_configuration_create_assign_and_expand(emulator: GraphEmulator, http: httpx.Client) -> None:
    body = {
        "@odata.type": "#microsoft.graph.iosDeviceFeaturesConfiguration",
        "displayName": "K12 test",
        "contentFilterSettings": {
            "@odata.type": "#microsoft.graph.iosWebContentFilterAutoFilter",
            "blockedUrls": ["https://a.example"],
            "allowedUrls": [],
        },
    }
    created = http.post("/beta/deviceManagement/deviceConfigurations", json=body)
    assert created.status_code == 201
    cid = created.json()["id"]
    gid = next(iter(emulator.state.groups))
    target = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid}
    assign = http.post(
        f"/v1.0/deviceManagement/deviceConfigurations/{cid}/assign", json={"assignments": [{"target": target}]}
    )
    assert assign.status_code == 200
    listed = http.get("/beta/deviceManagement/deviceConfigurations?$expand=assignments").json()["value"]
    assert listed[0]["assignments"][0]["target"]["groupId"] == gid
    assert listed[0]["contentFilterSettings"]["blockedUrls"] == ["https://a.example"]
    v1 = http.get("/v1.0/deviceManagement/deviceConfigurations").json()["value"][0]
    assert "contentFilterSettings" not in v1
    missing_type = http.post("/beta/deviceManagement/deviceConfigurations", json={"displayName": "x"})
    assert missing_type.status_code == 400


# ---------------------------------------------------------------------------------------------- fault rules


def _wipe_batch(emulator: GraphEmulator, n: int) -> dict:
    ids = list(emulator.state.devices)[:n]
    body = {"keepEnrollmentData": True, "keepUserData": False}
    requests = [
        {
            "id": str(i),
            "method": "POST",
            "url": f"/{DEVICES}/{d}/wipe",
            "body": body,
            "headers": {"Content-Type": "application/json"},
        }
        for i, d in enumerate(ids)
    ]
    return {"requests": requests}


def test_inner_wipe_fault_after_effect_runs_the_wipe_and_counts_it(emulator: GraphEmulator, http) -> None:
    emulator.inject("POST managedDevices/wipe", 503, on_calls={2})
    reply = http.post("/v1.0/$batch", json=_wipe_batch(emulator, 3)).json()
    assert [r["status"] for r in reply["responses"]] == [204, 503, 204]
    assert sorted(emulator.state.destructive_counts().values()) == [1, 1, 1], "the 503 item ran too"
    device = emulator.state.devices[list(emulator.state.devices)[1]]
    assert device["deviceActionResults"][-1]["actionName"] == "wipe"
    assert device["managementState"] == "wipePending"


def test_outer_fault_around_an_executed_batch_and_a_dropped_connection(emulator: GraphEmulator, http) -> None:
    from orchestrator.sandbox.graph_emulator import RESET

    emulator.inject("POST $batch", 502, on_calls={1})
    emulator.inject("POST $batch", RESET, on_calls={2})
    assert http.post("/v1.0/$batch", json=_wipe_batch(emulator, 2)).status_code == 502
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1.0/$batch", json=_wipe_batch(emulator, 2))
    assert sorted(emulator.state.destructive_counts().values()) == [2, 2], "both batches ran"


def test_fault_before_effect_and_rate_rules(emulator: GraphEmulator, http) -> None:
    emulator.inject("POST managedDevices/wipe", 429, on_calls={1}, after_effect=False, retry_after=3)
    reply = http.post("/v1.0/$batch", json=_wipe_batch(emulator, 2)).json()
    assert [r["status"] for r in reply["responses"]] == [429, 204]
    assert reply["responses"][0]["headers"]["Retry-After"] == "3"
    assert sum(emulator.state.destructive_counts().values()) == 1, "a throttled wipe did not run"
    rule = emulator.inject("POST managedDevices/wipe", 500, rate=0.5, seed=1)
    http.post("/v1.0/$batch", json=_wipe_batch(emulator, 20))
    assert 3 <= rule.struck <= 17 and rule.seen == 20
