"""compile_intune: policies + inventory → intune resources, pure, every one traced to file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from orchestrator.backends.intune.compiler import compile_intune
from orchestrator.core.resources import Resource
from orchestrator.inventory.devices import Inventory, parse_inventory
from orchestrator.policy.loader import load_policies

HEADER = "serialNumber,platform,inventoryStatus,school,orgUnitPath,annotatedAssetId\n"
INVENTORY = HEADER + textwrap.dedent("""\
    PF0000001,windows,lost,lincoln-elementary,/Students/Elementary/Lincoln/Grade-K,PV-000001
    DM0000002,ios,stolen,jefferson-high,/Students/High/Jefferson/Grade-9,PV-000002
    CB0000003,chromeos,lost,lincoln-elementary,/Students/Elementary/Lincoln/Grade-K,PV-000003
    DM0000004,ios,found,jefferson-high,/Students/High/Jefferson/Grade-9,PV-000004
    PF0000005,windows,active,jefferson-high,/Labs/Jefferson,PV-000005
    PF00000051,windows,active,jefferson-high,/Students/High/Jefferson/Grade-9,PV-000051
    PF0000006,windows,active,roosevelt-middle,/Labs/Jefferson/Row-2,PV-000006
    CB0000007,chromeos,active,jefferson-high,/Labs/Jefferson,PV-000007
    """)


def compile_from(tmp_path: Path, files: dict[str, str], inventory: str = INVENTORY) -> list[Resource]:
    root = tmp_path / "policies"
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    policies = load_policies(root, display_root=tmp_path)
    return compile_intune(policies, parse_inventory("inventory/devices.csv", inventory))


def of_type(resources: list[Resource], type_: str) -> dict[str, Resource]:
    return {r.id.key: r for r in resources if r.id.type == type_}


def test_webfilter_becomes_one_profile_per_platform_with_sources(tmp_path: Path) -> None:
    resources = compile_from(
        tmp_path,
        {
            "web.yaml": """\
        kind: WebFilter
        name: elementary-filter
        targets:
          google_ous: [/Students/Elementary]
          intune_groups: [Elementary iPads, All Student Devices]
        blocked: [tiktok.com, "*.tiktok.com", roblox.com]
        allowed: [khanacademy.org]
        """
        },
    )
    profiles = of_type(resources, "config_profile")
    assert sorted(profiles) == ["ios|K12 WebFilter elementary-filter"]
    settings = of_type(resources, "settings_policy")  # Windows: Edge lists as a Settings Catalog policy
    assert sorted(settings) == ["windows|K12 WebFilter elementary-filter"]
    assert (
        settings["windows|K12 WebFilter elementary-filter"].value
        == profiles["ios|K12 WebFilter elementary-filter"].value
    )
    profile = settings["windows|K12 WebFilter elementary-filter"]
    assert profile.value == {
        "blocked": ["roblox.com", "tiktok.com"],
        "allowed": ["khanacademy.org"],
        "assignments": ["All Student Devices", "Elementary iPads"],
    }
    assert profile.policy == "elementary-filter"
    assert profile.sources == ("policies/web.yaml:1", "policies/web.yaml:5")
    assert profile.meta["group_sources"]["Elementary iPads"] == "policies/web.yaml:5"


def test_webfilter_without_intune_groups_makes_no_profile(tmp_path: Path) -> None:
    resources = compile_from(
        tmp_path,
        {
            "web.yaml": """\
        kind: WebFilter
        name: staff-filter
        targets:
          google_ous: [/Staff]
        blocked: [omegle.com]
        """
        },
    )
    assert resources == []


def test_app_push_documents_for_one_app_merge(tmp_path: Path) -> None:
    resources = compile_from(
        tmp_path,
        {
            "apps.yaml": """\
        kind: AppPush
        name: student-apps
        targets:
          intune_groups: [All Student Devices]
        intune:
          - app: Microsoft Word
        ---
        kind: AppPush
        name: staff-apps
        targets:
          intune_groups: [Staff Devices]
        intune:
          - app: Microsoft Word
            intent: available
          - app: Zoom Workplace
            intent: available
        """
        },
    )
    apps = of_type(resources, "app_assignment")
    word = apps["Microsoft Word"]
    assert word.value == [
        {"group": "All Student Devices", "intent": "required"},
        {"group": "Staff Devices", "intent": "available"},
    ]
    assert word.sources == ("policies/apps.yaml:6", "policies/apps.yaml:13")
    assert word.policy == "student-apps, staff-apps"
    assert apps["Zoom Workplace"].value == [{"group": "Staff Devices", "intent": "available"}]


LOST = """\
    kind: LostDevicePolicy
    name: lost-devices
    message: "Return to any school office."
    phone: "+1 555 0100 200"
    footer: "PVSD"
    intune:
      action: remote_lock
      lost_mode: true
    """


def test_lost_stolen_and_found_intune_devices_get_device_lock(tmp_path: Path) -> None:
    locks = of_type(compile_from(tmp_path, {"lost.yaml": LOST}), "device_lock")
    assert {k: r.value for k, r in locks.items()} == {
        "PF0000001": {"lost": True},
        "DM0000002": {"lost": True},
        "DM0000004": {"lost": False},
    }
    lock = locks["DM0000002"]
    assert lock.sources == ("policies/lost.yaml:6", "inventory/devices.csv:3")
    assert lock.meta["school"] == "jefferson-high" and lock.meta["inventory_line"] == 3
    assert lock.meta["lost_mode"] is True and lock.meta["message"] == "Return to any school office."
    assert locks["DM0000004"].sources[0] == "policies/lost.yaml:1"  # on_found defaults: the document


def test_school_specific_lost_policy_restricts_devices(tmp_path: Path) -> None:
    text = LOST + "schools: [jefferson-high]\n"
    locks = of_type(compile_from(tmp_path, {"lost.yaml": text}), "device_lock")
    assert sorted(locks) == ["DM0000002", "DM0000004"]


def test_reimage_selects_windows_devices_by_ou_subtree_and_exact_serial(tmp_path: Path) -> None:
    reimage = """\
        kind: Reimage
        name: lab-reset
        window: break-days
        request: 2026-thanksgiving
        devices:
          google_ous: [/Labs/Jefferson]
          serials: [PF0000001]
          intune_groups: [Jefferson Lab PCs]
        intune:
          method: autopilot_reset
        batch_size: 10
        max_devices_per_window: 40
        """
    window = """\
        kind: MaintenanceWindow
        name: break-days
        calendar: cal
        times: ["07:00-18:00"]
        days: non_class_days
        ---
        kind: SchoolCalendar
        name: cal
        timezone: America/Chicago
        terms:
          - name: Fall
            first_day: 2026-08-13
            last_day: 2026-12-18
        """
    wipes = of_type(compile_from(tmp_path, {"reimage.yaml": reimage, "windows.yaml": window}), "reimage")
    assert sorted(wipes) == [
        "PF0000005|2026-thanksgiving",
        "PF0000006|2026-thanksgiving",
    ]  # never PF00000051 (a serial prefix match); PF0000001 is lost: it is locked, never wiped
    wipe = wipes["PF0000005|2026-thanksgiving"]
    assert wipe.value == {"action": "wipe", "keepEnrollmentData": True, "keepUserData": False}
    assert wipe.window == "break-days" and wipe.policy == "lab-reset"
    assert wipe.meta == {
        "school": "jefferson-high",
        "serial": "PF0000005",
        "batch_size": 10,
        "max_devices_per_window": 40,
        "method": "autopilot_reset",
        "inventory_line": 6,
    }
    assert wipe.sources == ("policies/reimage.yaml:5", "inventory/devices.csv:6")


def test_repository_policies_compile(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    resources = compile_intune(load_policies(root / "policies"), Inventory("inventory/devices.csv", []))
    assert {r.id.type for r in resources} == {"settings_policy", "config_profile", "app_assignment"}
    assert all(r.sources for r in resources)


def test_reimage_by_intune_group_selects_members_given_by_the_plan(tmp_path: Path) -> None:
    """Group membership is data read before compiling: members select (exact serials), schools narrow, and
    a lost member is never wiped. Without membership data a group selects nothing (never a guess)."""
    reimage = """\
        kind: Reimage
        name: lab-reset
        window: break-days
        request: 2026-thanksgiving
        devices:
          intune_groups: [Jefferson Lab PCs]
          schools: [jefferson-high]
        intune:
          method: autopilot_reset
        """
    window = """\
        kind: MaintenanceWindow
        name: break-days
        calendar: cal
        times: ["07:00-18:00"]
        days: non_class_days
        ---
        kind: SchoolCalendar
        name: cal
        timezone: America/Chicago
        terms:
          - name: Fall
            first_day: 2026-08-13
            last_day: 2026-12-18
        """
    root = tmp_path / "policies"
    root.mkdir()
    (root / "reimage.yaml").write_text(textwrap.dedent(reimage))
    (root / "windows.yaml").write_text(textwrap.dedent(window))
    policies = load_policies(root, display_root=tmp_path)
    inventory = parse_inventory("inventory/devices.csv", INVENTORY)
    members = {"Jefferson Lab PCs": {"PF0000001", "PF0000005", "PF0000006", "PF000000"}}
    wipes = of_type(compile_intune(policies, inventory, group_serials=members), "reimage")
    # PF0000001 is lost (locked, never wiped); PF0000006 is in roosevelt-middle (narrowed out by schools)
    assert sorted(wipes) == ["PF0000005|2026-thanksgiving"]
    assert wipes["PF0000005|2026-thanksgiving"].sources == ("policies/reimage.yaml:5", "inventory/devices.csv:6")
    assert of_type(compile_intune(policies, inventory), "reimage") == {}
