"""The Google emulator through the real googleapiclient: published limits, paging, errors, state rules."""

from __future__ import annotations

import math

import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from orchestrator.sandbox.google_emulator import serve, start_emulator
from orchestrator.sandbox.httpbase import Fault

CUSTOMER = "my_customer"


@pytest.fixture(scope="module")
def emulator():
    server = start_emulator(1000, seed=7)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def directory(emulator):
    return build(
        "admin",
        "directory_v1",
        static_discovery=True,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.url},
    )


@pytest.fixture(scope="module")
def policy(emulator):
    return build(
        "chromepolicy",
        "v1",
        static_discovery=True,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.url},
    )


def _ou_id(directory, path: str) -> str:
    return (
        directory.orgunits()
        .get(customerId=CUSTOMER, orgUnitPath=path.lstrip("/") or "/")
        .execute()["orgUnitId"]
        .removeprefix("id:")
    )


def _all_devices(directory, **params):
    request = directory.chromeosdevices().list(customerId=CUSTOMER, **params)
    pages = []
    while request is not None:
        page = request.execute()
        pages.append(page)
        request = directory.chromeosdevices().list_next(request, page)
    return pages


def test_device_list_pages_of_300_cover_every_chromebook_once(emulator, directory):
    pages = _all_devices(directory, maxResults=300, projection="BASIC")
    serials = [d["serialNumber"] for p in pages for d in p.get("chromeosdevices", [])]
    assert len(serials) == len(set(serials)) == len(emulator.state.devices)
    assert len(pages) == math.ceil(len(emulator.state.devices) / 300)
    assert "nextPageToken" not in pages[-1]


def test_max_results_over_300_is_a_google_400_error_body(directory):
    with pytest.raises(HttpError) as caught:
        directory.chromeosdevices().list(customerId=CUSTOMER, maxResults=301).execute()
    assert caught.value.status_code == 400
    assert caught.value.error_details[0]["reason"] == "invalid"


def test_id_query_is_a_partial_serial_match_like_the_real_api(directory):
    pages = _all_devices(directory, query="id:CB000001", maxResults=300)
    serials = [d["serialNumber"] for p in pages for d in p.get("chromeosdevices", [])]
    assert len(serials) > 1 and all("CB000001" in s for s in serials)
    with pytest.raises(HttpError):
        directory.chromeosdevices().list(customerId=CUSTOMER, query="id:CB").execute()


def test_fields_selects_a_partial_response(directory):
    page = (
        directory.chromeosdevices()
        .list(customerId=CUSTOMER, maxResults=2, fields="nextPageToken,chromeosdevices(deviceId,status)")
        .execute()
    )
    assert set(page) == {"nextPageToken", "chromeosdevices"}
    assert all(set(d) == {"deviceId", "status"} for d in page["chromeosdevices"])


def test_org_unit_filter_with_children(emulator, directory):
    pages = _all_devices(directory, orgUnitPath="Students/High", includeChildOrgunits=True, maxResults=300)
    paths = {d["orgUnitPath"] for p in pages for d in p.get("chromeosdevices", [])}
    assert paths and all(p.startswith("/Students/High/") for p in paths)
    direct = _all_devices(directory, orgUnitPath="Students/High", maxResults=300)
    assert not direct[0].get("chromeosdevices")


def test_batch_change_status_reports_per_device_errors_inside_a_200(emulator, directory):
    ids = sorted(emulator.state.devices)[:2]
    chromeos = directory.customer().devices().chromeos()
    reply = chromeos.batchChangeStatus(
        customerId=CUSTOMER,
        body={
            "deviceIds": [ids[0], "no-such-device"],
            "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DISABLE",
        },
    ).execute()
    results = {r["deviceId"]: r for r in reply["changeChromeOsDeviceStatusResults"]}
    assert "response" in results[ids[0]] and results["no-such-device"]["error"]["code"] == 5
    again = chromeos.batchChangeStatus(
        customerId=CUSTOMER,
        body={
            "deviceIds": [ids[1]],
            "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_REENABLE",
        },
    ).execute()
    assert again["changeChromeOsDeviceStatusResults"][0]["error"]["code"] == 9  # already active
    with pytest.raises(HttpError) as caught:
        chromeos.batchChangeStatus(
            customerId=CUSTOMER,
            body={
                "deviceIds": [str(i) for i in range(51)],
                "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DISABLE",
            },
        ).execute()
    assert caught.value.status_code == 400


def test_command_state_advances_over_successive_gets(emulator, directory):
    device_id = next(i for i, d in emulator.state.devices.items() if d["status"] == "ACTIVE")
    chromeos = directory.customer().devices().chromeos()
    command_id = chromeos.issueCommand(
        customerId=CUSTOMER, deviceId=device_id, body={"commandType": "WIPE_USERS"}
    ).execute()["commandId"]
    states = [
        chromeos.commands().get(customerId=CUSTOMER, deviceId=device_id, commandId=command_id).execute()
        for _ in range(4)
    ]
    assert [s["state"] for s in states] == ["PENDING", "SENT_TO_CLIENT", "ACKED_BY_CLIENT", "EXECUTED_BY_CLIENT"]
    assert states[-1]["commandResult"]["result"] == "SUCCESS"


def test_resolve_reports_inheritance_with_source_key_and_pages(directory, policy):
    parent, child = _ou_id(directory, "/Students/Middle"), _ou_id(directory, "/Students/Middle/Roosevelt")
    policies = policy.customers().policies()
    policies.orgunits().batchModify(
        customer="customers/my_customer",
        body={
            "requests": [
                {
                    "policyTargetKey": {"targetResource": f"orgunits/{parent}"},
                    "policyValue": {"policySchema": "chrome.users.UrlBlocking", "value": {"urlBlocklist": ["x.com"]}},
                    "updateMask": "urlBlocklist",
                },
                {
                    "policyTargetKey": {"targetResource": f"orgunits/{parent}"},
                    "policyValue": {
                        "policySchema": "chrome.users.SafeSearchRestrictedMode",
                        "value": {"forceGoogleSafeSearch": True},
                    },
                    "updateMask": "forceGoogleSafeSearch",
                },
            ]
        },
    ).execute()
    body = {
        "policySchemaFilter": "chrome.users.*",
        "pageSize": 1,
        "policyTargetKey": {"targetResource": f"orgunits/{child}"},
    }
    first = policies.resolve(customer="customers/my_customer", body=body).execute()
    second = policies.resolve(
        customer="customers/my_customer", body={**body, "pageToken": first["nextPageToken"]}
    ).execute()
    resolved = first["resolvedPolicies"] + second["resolvedPolicies"]
    assert {r["value"]["policySchema"] for r in resolved} == {
        "chrome.users.UrlBlocking",
        "chrome.users.SafeSearchRestrictedMode",
    }
    assert all(r["sourceKey"]["targetResource"] == f"orgunits/{parent}" for r in resolved)
    with pytest.raises(HttpError):
        policies.resolve(customer="customers/my_customer", body={**body, "pageSize": 1001}).execute()


def test_apps_resolve_per_app_with_added_source_key(directory, policy):
    ou, child = _ou_id(directory, "/Testing"), _ou_id(directory, "/Students/Elementary/Lincoln")
    policies = policy.customers().policies()
    target = {"targetResource": f"orgunits/{ou}", "additionalTargetKeys": {"app_id": "chrome:aaaabbbbccccdddd"}}
    policies.orgunits().batchModify(
        customer="customers/my_customer",
        body={
            "requests": [
                {
                    "policyTargetKey": target,
                    "updateMask": "appInstallType",
                    "policyValue": {
                        "policySchema": "chrome.users.apps.InstallType",
                        "value": {"appInstallType": "FORCED"},
                    },
                }
            ]
        },
    ).execute()
    reply = policies.resolve(
        customer="customers/my_customer",
        body={"policySchemaFilter": "chrome.users.apps.*", "policyTargetKey": {"targetResource": f"orgunits/{ou}"}},
    ).execute()
    entry = reply["resolvedPolicies"][0]
    assert entry["targetKey"]["additionalTargetKeys"]["app_id"] == "chrome:aaaabbbbccccdddd"
    assert entry["addedSourceKey"]["targetResource"] == f"orgunits/{ou}"
    policies.orgunits().batchInherit(
        customer="customers/my_customer",
        body={"requests": [{"policyTargetKey": target, "policySchema": "chrome.users.apps.*"}]},
    ).execute()
    after = policies.resolve(
        customer="customers/my_customer",
        body={"policySchemaFilter": "chrome.users.apps.*", "policyTargetKey": {"targetResource": f"orgunits/{ou}"}},
    ).execute()
    assert not after.get("resolvedPolicies")
    assert child != ou


def test_batch_modify_rejects_mixed_org_units_and_namespaces(directory, policy):
    a, b = _ou_id(directory, "/Staff"), _ou_id(directory, "/Labs")
    orgunits = policy.customers().policies().orgunits()

    def request(ou: str, schema: str, value: dict) -> dict:
        return {
            "policyTargetKey": {"targetResource": f"orgunits/{ou}"},
            "updateMask": ",".join(value),
            "policyValue": {"policySchema": schema, "value": value},
        }

    block = {"urlBlocklist": ["a.com"]}
    for requests in (
        [request(a, "chrome.users.UrlBlocking", block), request(b, "chrome.users.UrlBlocking", block)],
        [
            request(a, "chrome.users.UrlBlocking", block),
            request(a, "chrome.devices.DisabledDeviceReturnInstructions", {"deviceDisabledMessage": "x"}),
        ],
    ):
        with pytest.raises(HttpError) as caught:
            orgunits.batchModify(customer="customers/my_customer", body={"requests": requests}).execute()
        assert caught.value.status_code == 400


def test_injected_429_carries_retry_after_and_a_google_error_body(emulator, directory):
    emulator.faults.queue.append(Fault(429, "rateLimitExceeded", retry_after=3, endpoint="orgunits.list"))
    with pytest.raises(HttpError) as caught:
        directory.orgunits().list(customerId=CUSTOMER, type="all").execute()
    assert caught.value.status_code == 429
    assert caught.value.resp["retry-after"] == "3"
    assert caught.value.error_details[0]["reason"] == "rateLimitExceeded"
    assert directory.orgunits().list(customerId=CUSTOMER, type="all").execute()["organizationUnits"]


def test_calls_are_counted_per_endpoint(emulator, directory):
    before = emulator.calls["orgunits.get"]
    _ou_id(directory, "/Staff")
    assert emulator.calls["orgunits.get"] == before + 1


def test_serve_without_blocking_answers_on_both_ports_with_one_tenant():
    server = serve("127.0.0.1", 0, devices=20, seed=1, latency=0.0, policy_port=0, block=False)
    try:
        directory_api = build(
            "admin",
            "directory_v1",
            static_discovery=True,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": server.url},
        )
        policy_api = build(
            "chromepolicy",
            "v1",
            static_discovery=True,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": server.companions[0].url},
        )
        assert directory_api.chromeosdevices().list(customerId=CUSTOMER).execute()["chromeosdevices"]
        root = _ou_id(directory_api, "/")
        policy_api.customers().policies().orgunits().batchModify(
            customer="customers/my_customer",
            body={
                "requests": [
                    {
                        "policyTargetKey": {"targetResource": f"orgunits/{root}"},
                        "updateMask": "urlBlocklist",
                        "policyValue": {
                            "policySchema": "chrome.users.UrlBlocking",
                            "value": {"urlBlocklist": ["a.com"]},
                        },
                    }
                ]
            },
        ).execute()
        assert server.state.policies[(root, "chrome.users.UrlBlocking", "")] == {"urlBlocklist": ["a.com"]}
        assert server.calls["policies.orgunits.batchModify"] == 1
    finally:
        server.stop()
