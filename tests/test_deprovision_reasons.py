"""Deprovision reasons (issue 12 item 4): the Directory API's full enum names, from the bundled discovery document.

`batchChangeStatus` takes `deprovisionReason: DEPROVISION_REASON_*` (admin.directory_v1.json,
BatchChangeChromeOsDeviceStatusRequest). There is no UPGRADE_REPLACEMENT or REPAIR_REPLACEMENT; the policy
language offers the reasons an administrator may choose and lists them when another is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError

from orchestrator.backends.google.compiler import compile_google
from orchestrator.backends.google.names import DEPROVISION_REASON_NAMES, DEPROVISION_REASONS
from orchestrator.core.errors import PolicyError
from orchestrator.inventory.devices import load_inventory
from orchestrator.policy.loader import load_policies
from orchestrator.policy.models import DEPROVISION_REASONS as POLICY_REASONS
from orchestrator.sandbox.google_emulator import start_emulator

ROOT = Path(__file__).parent.parent
RETIRE = """\
kind: Reimage
name: retire-broken
window: break-days
request: 2026-audit-retire
devices:
  serials: [CB0000001]
google:
  method: deprovision
{reason}intune: null
"""


def _discovery_reasons() -> tuple[list[str], set[str]]:
    doc = json.loads(get_static_doc("admin", "directory_v1"))
    field = doc["schemas"]["BatchChangeChromeOsDeviceStatusRequest"]["properties"]["deprovisionReason"]
    return field["enum"], {n for n, old in zip(field["enum"], field["enumDeprecated"], strict=True) if old}


def _policies(tmp_path: Path, reason: str):
    (tmp_path / "retire.yaml").write_text(RETIRE.format(reason=f"  reason: {reason}\n" if reason else ""))
    (tmp_path / "windows.yaml").write_text((ROOT / "policies" / "windows.yaml").read_text())
    (tmp_path / "calendar.yaml").write_text((ROOT / "policies" / "calendar.yaml").read_text())
    return load_policies(tmp_path)


def test_every_reason_sent_is_a_current_enum_name_of_the_discovery_document():
    names, deprecated = _discovery_reasons()
    assert set(DEPROVISION_REASONS) <= set(names) - deprecated
    assert all(r.startswith("DEPROVISION_REASON_") for r in DEPROVISION_REASONS)
    assert tuple(DEPROVISION_REASON_NAMES) == POLICY_REASONS
    assert {f"DEPROVISION_REASON_{r.upper()}" for r in POLICY_REASONS} == set(DEPROVISION_REASONS)


@pytest.mark.parametrize(
    ("reason", "sent"),
    [
        ("", "DEPROVISION_REASON_RETIRING_DEVICE"),
        ("different_model_replacement", "DEPROVISION_REASON_DIFFERENT_MODEL_REPLACEMENT"),
        ("same_model_replacement", "DEPROVISION_REASON_SAME_MODEL_REPLACEMENT"),
    ],
)
def test_the_policy_reason_compiles_to_the_full_enum_name(tmp_path, reason, sent):
    inventory = load_inventory(ROOT / "inventory" / "devices.csv")
    (google,) = [r for r in compile_google(_policies(tmp_path, reason), inventory) if r.id.type == "reimage"]
    assert google.value == {"command": "DEPROVISION", "deprovisionReason": sent}


@pytest.mark.parametrize("reason", ["upgrade_replacement", "repair_replacement", "repair_center", "RETIRING_DEVICE"])
def test_a_reason_the_api_does_not_offer_is_a_validation_error_listing_the_allowed_ones(tmp_path, reason):
    with pytest.raises(PolicyError) as raised:
        _policies(tmp_path, reason)
    message = str(raised.value)
    assert "google.reason" in message and reason in message
    assert all(allowed in message for allowed in POLICY_REASONS)


@pytest.fixture(scope="module")
def emulator():
    server = start_emulator(50, seed=3)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromeos(emulator):
    directory = build(
        "admin",
        "directory_v1",
        static_discovery=True,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.url},
    )
    return directory.customer().devices().chromeos()


def _deprovision(chromeos, device_id: str, reason: str):
    return chromeos.batchChangeStatus(
        customerId="my_customer",
        body={
            "deviceIds": [device_id],
            "changeChromeOsDeviceStatusAction": "CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_DEPROVISION",
            "deprovisionReason": reason,
        },
    ).execute()


@pytest.mark.parametrize(
    "reason",
    ["RETIRING_DEVICE", "UPGRADE_REPLACEMENT", "DEPROVISION_REASON_REPAIR_REPLACEMENT", "DEPROVISION_REASON_OTHER"],
)
def test_the_emulator_rejects_a_reason_that_is_not_a_current_enum_name_and_touches_no_device(
    emulator, chromeos, reason
):
    device_id = sorted(emulator.state.devices)[0]
    with pytest.raises(HttpError) as caught:
        _deprovision(chromeos, device_id, reason)
    assert caught.value.status_code == 400
    assert emulator.state.devices[device_id]["status"] == "ACTIVE"


def test_the_emulator_deprovisions_with_a_full_enum_name(emulator, chromeos):
    device_id = sorted(emulator.state.devices)[1]
    reply = _deprovision(chromeos, device_id, "DEPROVISION_REASON_RETIRING_DEVICE")
    assert "response" in reply["changeChromeOsDeviceStatusResults"][0]
    assert emulator.state.devices[device_id]["status"] == "DEPROVISIONED"
    assert emulator.state.devices[device_id]["deprovisionReason"] == "DEPROVISION_REASON_RETIRING_DEVICE"


def test_a_reason_without_deprovision_is_an_error(tmp_path):
    text = RETIRE.format(reason="  reason: same_model_replacement\n").replace(
        "method: deprovision", "method: powerwash"
    )
    (tmp_path / "retire.yaml").write_text(text)
    (tmp_path / "windows.yaml").write_text((ROOT / "policies" / "windows.yaml").read_text())
    with pytest.raises(PolicyError, match="reason applies only to method: deprovision"):
        load_policies(tmp_path)
