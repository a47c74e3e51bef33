"""The Google emulator's chromeosdevices.patch/update, through the real googleapiclient: as strict as the API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from orchestrator.sandbox.google_emulator import GoogleEmulator, start_emulator


@pytest.fixture
def emulator() -> Iterator[GoogleEmulator]:
    server = start_emulator(30)
    yield server
    server.stop()


def devices_api(emulator: GoogleEmulator) -> Any:
    api = build(
        "admin",
        "directory_v1",
        static_discovery=True,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.url},
    )
    return api.chromeosdevices()


def first_device(emulator: GoogleEmulator) -> dict[str, Any]:
    return emulator.state.devices[emulator.state.order[0]]


def test_patch_writes_only_the_fields_it_names_and_listings_return_them(emulator: GoogleEmulator) -> None:
    api = devices_api(emulator)
    device = first_device(emulator)
    user = device["annotatedUser"]
    reply = api.patch(
        customerId="my_customer",
        deviceId=device["deviceId"],
        body={"annotatedLocation": "Room 12", "notes": "cracked screen"},
        fields="deviceId,annotatedLocation,notes",
    ).execute()
    assert reply == {"deviceId": device["deviceId"], "annotatedLocation": "Room 12", "notes": "cracked screen"}
    assert device["annotatedUser"] == user, "patch changed a field it did not name"
    page = api.list(
        customerId="my_customer",
        projection="BASIC",
        maxResults=1,
        fields="chromeosdevices(serialNumber,annotatedLocation,notes,lastSync,autoUpdateExpiration)",
    ).execute()
    assert page["chromeosdevices"][0] == {
        "serialNumber": device["serialNumber"],
        "annotatedLocation": "Room 12",
        "notes": "cracked screen",
        "lastSync": device["lastSync"],
    }
    full = api.list(
        customerId="my_customer", projection="FULL", maxResults=1, fields="chromeosdevices(autoUpdateExpiration)"
    ).execute()
    assert full["chromeosdevices"][0] == {"autoUpdateExpiration": "1938038400000"}  # 2031-06-01 in ms


def test_update_replaces_the_annotations_a_put_body_leaves_out(emulator: GoogleEmulator) -> None:
    api = devices_api(emulator)
    device = first_device(emulator)
    api.patch(customerId="my_customer", deviceId=device["deviceId"], body={"notes": "keep me?"}).execute()
    api.update(customerId="my_customer", deviceId=device["deviceId"], body={"annotatedLocation": "Lab"}).execute()
    assert device.get("annotatedLocation") == "Lab"
    assert "notes" not in device and "annotatedUser" not in device, "a PUT keeps what it does not carry"


def test_unknown_field_is_refused_with_400_and_nothing_changes(emulator: GoogleEmulator) -> None:
    api = devices_api(emulator)
    device = first_device(emulator)
    before = dict(device)
    with pytest.raises(HttpError) as refused:
        api.patch(
            customerId="my_customer", deviceId=device["deviceId"], body={"notes": "x", "annotatedNotes": "y"}
        ).execute()
    assert refused.value.status_code == 400
    assert 'Unknown name "annotatedNotes"' in str(refused.value.reason)
    assert device == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"notes": "n" * 501}, "notes must be at most 500"),
        ({"annotatedUser": "u" * 101}, "annotatedUser must be at most 100"),
        ({"annotatedLocation": "l" * 201}, "annotatedLocation must be at most 200"),
        ({"notes": 5}, "TYPE_STRING"),
        ({"orgUnitPath": "/Staff", "orgUnitId": "id:nothere"}, "Org unit not found"),
    ],
)
def test_invalid_values_are_refused_with_a_4xx(emulator: GoogleEmulator, body: dict, message: str) -> None:
    api = devices_api(emulator)
    device = first_device(emulator)
    before = dict(device)
    with pytest.raises(HttpError) as refused:
        api.patch(customerId="my_customer", deviceId=device["deviceId"], body=body).execute()
    assert refused.value.status_code in (400, 404) and message in str(refused.value.reason)
    assert device == before


def test_read_only_fields_are_ignored_and_an_ou_move_is_checked(emulator: GoogleEmulator) -> None:
    api = devices_api(emulator)
    device = first_device(emulator)
    serial = device["serialNumber"]
    api.patch(
        customerId="my_customer", deviceId=device["deviceId"], body={"serialNumber": "CB9999999", "status": "X"}
    ).execute()
    assert (device["serialNumber"], device["status"]) == (serial, "ACTIVE")
    staff = emulator.state.ous["/Staff"].id
    labs = emulator.state.ous["/Labs"].id
    with pytest.raises(HttpError) as refused:
        api.patch(
            customerId="my_customer",
            deviceId=device["deviceId"],
            body={"orgUnitPath": "/Staff", "orgUnitId": f"id:{labs}"},
        ).execute()
    assert "Inconsistent Orgunit id and path" in str(refused.value.reason)
    api.patch(
        customerId="my_customer", deviceId=device["deviceId"], body={"orgUnitPath": "/Staff", "orgUnitId": staff}
    ).execute()
    assert device["orgUnitPath"] == "/Staff"


def test_patch_of_an_unknown_device_is_404(emulator: GoogleEmulator) -> None:
    with pytest.raises(HttpError) as refused:
        devices_api(emulator).patch(customerId="my_customer", deviceId="nosuchdevice", body={"notes": "x"}).execute()
    assert refused.value.status_code == 404
