"""compile_google on the sample policies and on small hand-written trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.backends.google.compiler import compile_google
from orchestrator.inventory.devices import load_inventory, parse_inventory
from orchestrator.policy.loader import load_policies

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sample():
    policies = load_policies(REPO / "policies", display_root=REPO)
    inventory = load_inventory(REPO / "inventory" / "devices.csv", display="inventory/devices.csv")
    return {str(r.id): r for r in compile_google(policies, inventory)}


def test_web_filter_compiles_url_blocking_per_target_ou_with_wildcards_folded(sample):
    r = sample["google/ou_policy//Students/Elementary|chrome.users.UrlBlocking"]
    assert r.value["urlBlocklist"] == sorted(r.value["urlBlocklist"])
    assert "tiktok.com" in r.value["urlBlocklist"] and "*.tiktok.com" not in r.value["urlBlocklist"]
    assert r.value["urlAllowlist"] == ["khanacademy.org", "pbskids.org", "scratch.mit.edu"]
    assert r.policy == "elementary-filter"
    assert any(s.startswith("policies/webfilter-elementary.yaml:") for s in r.sources)


def test_safe_search_and_youtube_map_to_the_published_schema_fields(sample):
    elementary = sample["google/ou_policy//Students/Elementary|chrome.users.SafeSearchRestrictedMode"]
    staff = sample["google/ou_policy//Staff|chrome.users.SafeSearchRestrictedMode"]
    assert elementary.value == {"forceGoogleSafeSearch": True, "forceYoutubeRestrictedMode": "STRICT"}
    assert staff.value == {"forceGoogleSafeSearch": False, "forceYoutubeRestrictedMode": "OFF"}


def test_app_push_maps_install_and_pin_to_install_type(sample):
    assert sample["google/ou_app//Students|ghbmnnjooekpmoecnnnilnnbdlolhkhi"].value == {"appInstallType": "FORCED"}
    pinned = sample["google/ou_app//Students|mkaakpdehdafacodkgkpghoibnmamcme"]
    assert pinned.value == {"appInstallType": "NORMAL_AND_PIN_TO_TOOLBAR"}
    assert sample["google/ou_app//Testing|nlipoenfbbikpbjkfpfillcgkoblgpmj"].value == {"appInstallType": "BLOCKED"}
    assert "policies/apps.yaml:12" in pinned.sources


def test_lost_policy_disables_lost_and_stolen_chromebooks_and_reenables_found(sample):
    statuses = {k.rsplit("/", 1)[1]: r.value for k, r in sample.items() if "/device_status/" in k}
    assert statuses == {"CB0000011": "DISABLED", "CB0000012": "DISABLED", "CB0000022": "ACTIVE"}
    lost = sample["google/device_status/CB0000011"]
    assert lost.meta["school"] == "roosevelt-middle" and lost.meta["inventory_line"] == 12
    assert "inventory/devices.csv:12" in lost.sources and lost.policy == "lost-devices"


def test_disabled_device_message_is_set_at_the_root_ou(sample):
    r = sample["google/ou_policy//|chrome.devices.DisabledDeviceReturnInstructions"]
    assert r.value["deviceDisabledMessage"].startswith("This device belongs to Prairie Valley")
    assert r.sources == ("policies/lost-devices.yaml:5",)


def test_reimage_selects_inventory_chromebooks_in_the_ou_with_window_and_meta(sample):
    reimages = [r for k, r in sample.items() if "/reimage/" in k]
    assert reimages and all(r.window == "break-days" and r.policy == "jefferson-lab-reset" for r in reimages)
    assert all(r.id.key.endswith("|2026-thanksgiving") for r in reimages)
    assert all(r.value == {"command": "WIPE_USERS"} for r in reimages)
    assert reimages[0].meta == {
        "school": "jefferson-high",
        "serial": "CB0000004",
        "inventory_line": 5,
        "batch_size": 10,
        "max_devices_per_window": 40,
        "method": "wipe_users",
    }


POLICY = """\
kind: Reimage
name: lab
window: w
request: r1
devices:
  serials: [CB001]
google:
  method: powerwash
---
kind: MaintenanceWindow
name: w
calendar: c
times: ["22:00-05:00"]
days: any_night
---
kind: SchoolCalendar
name: c
timezone: America/Chicago
terms:
  - name: t
    first_day: 2026-08-13
    last_day: 2026-12-18
---
kind: LostDevicePolicy
name: lost
message: Return me
schools: [north]
"""
CSV = """\
serialNumber,platform,school,inventoryStatus,orgUnitPath
CB001,chromeos,north,active,/A
CB0011,chromeos,north,active,/A
CB002,chromeos,south,lost,/A
CB003,chromeos,north,stolen,/A
PF001,windows,north,lost,/A
"""


def test_serial_selector_matches_exactly_and_lost_policy_respects_schools(tmp_path):
    (tmp_path / "p.yaml").write_text(POLICY)
    resources = compile_google(load_policies(tmp_path), parse_inventory("inv.csv", CSV))
    ids = {str(r.id): r for r in resources}
    assert [k for k in ids if "/reimage/" in k] == ["google/reimage/CB001|r1"]
    assert ids["google/reimage/CB001|r1"].value == {"command": "REMOTE_POWERWASH"}
    assert [k for k in ids if "/device_status/" in k] == ["google/device_status/CB003"]
