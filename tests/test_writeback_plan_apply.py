"""Write-back end to end through the command line against the Google emulator (real googleapiclient): a loaner
swap made with `inventory repair` is planned (redacted), applied with chromeosdevices.patch, and read back by
`inventory sync`, which never copies the write-back fields from the console; a district that has not opted in
sees no write-back change."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.render import render_json
from orchestrator.core.errors import PolicyError
from orchestrator.core.resources import Change, ResourceId
from orchestrator.engine.plan import Plan
from orchestrator.inventory.devices import Device, load_inventory, write_inventory_csv
from orchestrator.policy.loader import load_policies
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator

REPO = Path(__file__).resolve().parent.parent
WRITE_BACK = """
kind: InventoryWriteBack
name: device-labels
google:
  asset_tag: if_set
  user: always
  location: if_set
  notes: if_set
"""
WEB_FILTER_ONLY = """
kind: WebFilter
name: students
targets: {google_ous: [/Students]}
blocked: [games.example]
"""
BROKEN, LOANER, HAND_NOTES = "CB0000005", "CB0000025", "CB0000013"  # lincoln-elementary; 25 is its pooled loaner


@dataclass
class District:
    root: Path
    config: Path
    google: GoogleEmulator

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=300,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def console(self, serial: str) -> dict[str, Any]:
        return next(d for d in self.google.state.devices.values() if d["serialNumber"] == serial)

    def inventory(self) -> dict[str, Device]:
        return load_inventory(self.root / "inventory" / "devices.csv").by_serial()

    def plan_json(self) -> list[dict[str, Any]]:
        return json.loads(self.ok("plan", "--backend", "google", "--format", "json", "--show-pii"))["changes"]


def make_district(tmp_path: Path, policies: str) -> District:
    seeded = generate(devices=40, seed=11)  # 28 Chromebooks, no staff devices
    google = GoogleEmulator(seeded, seed=11).start()
    devices = [s.device for s in seeded.devices]
    assert {d.serialNumber: d.inventoryStatus for d in devices}[LOANER] == "loaner"
    for record in google.state.devices.values():
        if record["serialNumber"] == HAND_NOTES:
            record["notes"] = "charger kept in the office"  # typed into the Admin console before adoption
    root = tmp_path / "district"
    (root / "inventory").mkdir(parents=True)
    (root / "inventory" / "devices.csv").write_text(write_inventory_csv(devices))
    (root / "policies").mkdir()
    (root / "policies" / "district.yaml").write_text(textwrap.dedent(policies).lstrip())
    for name in ("calendar.yaml", "repair.yaml"):  # the RepairPolicy `inventory repair` counts due dates with
        shutil.copy(REPO / "policies" / name, root / "policies" / name)
    config = root / "orchestrator.yaml"
    config.write_text(
        f"journal: {root / '.orchestrator' / 'journal.db'}\n"
        f"google:\n  directory_endpoint: {google.url}\n  policy_endpoint: {google.url}\n"
    )
    return District(root, config, google)


@pytest.fixture
def district(tmp_path: Path) -> Iterator[District]:
    made = make_district(tmp_path, WRITE_BACK)
    yield made
    made.google.stop()


def test_a_fresh_district_with_write_back_plans_no_change(district: District) -> None:
    """The console already carries the inventory's tags and students; notes typed by hand stay (if_set)."""
    assert district.plan_json() == []
    assert district.google.calls["chromeosdevices.list"] == 1  # one bulk listing, no per-device GET
    assert district.google.calls["chromeosdevices.get"] == 0


def test_loaner_swap_is_planned_redacted_applied_and_read_back(district: District) -> None:
    student = district.inventory()[BROKEN].assignedStudent
    assert student.endswith("@district.example")
    # The morning swap at the counter: the broken device to repair, the school's loaner to its student.
    lent = district.ok("inventory", "repair", BROKEN, "--from-pool", "lincoln-elementary", "--date", "2026-11-20")
    assert LOANER in lent and student not in lent
    assert (district.inventory()[LOANER].assignedStudent, district.inventory()[LOANER].loanFor) == (student, BROKEN)

    shown = district.ok("plan", "--backend", "google")
    assert f"google/device_annotations/{LOANER}" in shown
    assert student not in shown and "<redacted:" in shown
    assert student in district.ok("plan", "--backend", "google", "--show-pii")
    markdown = district.ok("plan", "--backend", "google", "--format", "markdown")
    assert LOANER in markdown and student not in markdown
    changes = district.plan_json()
    tag = {"annotatedAssetId": "PV-000025"}  # managed too, and already right: shown in neither diff line
    assert [(c["id"], c["op"], c["before"], c["after"]) for c in changes] == [
        (
            f"google/device_annotations/{LOANER}",
            "update",
            {**tag, "annotatedUser": ""},
            {**tag, "annotatedUser": student},
        )
    ]
    assert "annotatedAssetId" not in shown

    plan_file = district.root / "plan.json"
    district.ok("plan", "--backend", "google", "--out", str(plan_file))
    district.google.reset_counts()
    applied = district.run("apply", str(plan_file))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert student not in applied.stdout + applied.stderr
    assert district.google.calls["chromeosdevices.patch"] == 1
    assert district.google.calls["chromeosdevices.update"] == 0  # never a PUT: it would clear unmanaged fields
    assert district.console(LOANER)["annotatedUser"] == student
    assert district.console(BROKEN)["annotatedUser"] == student  # still the student's device, in repair
    assert district.console(HAND_NOTES)["notes"] == "charger kept in the office"
    with sqlite3.connect(district.root / ".orchestrator" / "journal.db") as db:
        journaled = " ".join(str(row) for row in db.execute("SELECT * FROM actions"))
    assert LOANER in journaled and student not in journaled

    synced = json.loads(district.ok("inventory", "sync", "--write", "--format", "json"))
    assert synced["annotation_drift"] == []
    after = district.inventory()
    assert after[LOANER].assignedStudent == student  # the record is the district's: never copied back
    assert after[HAND_NOTES].notes == ""  # console notes are not pulled into the inventory either
    assert after[LOANER].lastSync == "2026-11-20T14:03:11Z" and after[LOANER].autoUpdateExpiration == "2031-06-01"
    assert district.plan_json() == []

    # Someone retypes an asset tag in the Admin console: sync names the drift and keeps the inventory's value,
    # the next plan puts it back.
    district.console(LOANER)["annotatedAssetId"] = "TYPO-1"
    district.google.state.version += 1
    drift = json.loads(district.ok("inventory", "sync", "--write", "--format", "json"))["annotation_drift"]
    assert drift == [{"serial": LOANER, "console": "google", "fields": "annotatedAssetId"}]
    assert district.inventory()[LOANER].annotatedAssetId == "PV-000025"
    assert [(c["before"], c["after"]) for c in district.plan_json()] == [
        (
            {"annotatedAssetId": "TYPO-1", "annotatedUser": student},
            {"annotatedAssetId": "PV-000025", "annotatedUser": student},
        )
    ]

    # The repaired device comes back and the loaner returns to the pool: user is `always`, so the loaner's
    # empty student cell clears the console.
    district.ok("inventory", "return", BROKEN)
    assert district.inventory()[LOANER].assignedStudent == ""
    assert district.run("apply", "--yes", "--backend", "google").returncode == 0
    assert "annotatedUser" not in district.console(LOANER)
    assert district.console(LOANER)["annotatedAssetId"] == "PV-000025"
    assert district.plan_json() == []


def test_a_district_without_write_back_sees_no_annotation_change(tmp_path: Path) -> None:
    district = make_district(tmp_path, WEB_FILTER_ONLY)
    try:
        student = district.inventory()[BROKEN].assignedStudent
        district.ok("inventory", "set", LOANER, "--student", student)
        rows = (district.root / "inventory" / "devices.csv").read_text().replace(",PV-000013,", ",PV-999913,")
        (district.root / "inventory" / "devices.csv").write_text(rows)
        changes = district.plan_json()
        assert not [c for c in changes if "device_annotations" in c["id"]]
        assert district.inventory()[HAND_NOTES].annotatedAssetId == "PV-999913"
    finally:
        district.google.stop()


def test_over_long_notes_and_two_policies_for_one_school_are_plan_errors(district: District) -> None:
    rows = load_inventory(district.root / "inventory" / "devices.csv").devices
    rows[2].notes = "n" * 501
    (district.root / "inventory" / "devices.csv").write_text(write_inventory_csv(rows))
    failed = district.run("plan", "--backend", "google")
    assert failed.returncode == 1
    assert "devices.csv:4: notes has 501 characters; Google's notes holds at most 500" in failed.stdout + failed.stderr

    synced = json.loads(district.ok("inventory", "sync", "--format", "json"))  # the refresh still runs
    assert [n for n in synced["notes"] if "write-back fields not compared" in n and "devices.csv:4" in n]

    rows[2].notes = ""
    (district.root / "inventory" / "devices.csv").write_text(write_inventory_csv(rows))
    (district.root / "policies" / "second.yaml").write_text(
        "kind: InventoryWriteBack\nname: lincoln\nschools: [lincoln-elementary]\ngoogle:\n  notes: always\n"
        "---\nkind: InventoryWriteBack\nname: lincoln-too\nschools: [lincoln-elementary]\ngoogle:\n  user: always\n"
    )
    failed = district.run("plan", "--backend", "google")
    assert failed.returncode == 1
    assert "lincoln-too covers school 'lincoln-elementary', already covered by lincoln" in failed.stdout + failed.stderr


def test_a_school_specific_policy_beats_the_catch_all(district: District) -> None:
    (district.root / "policies" / "lincoln.yaml").write_text(
        "kind: InventoryWriteBack\nname: lincoln\nschools: [lincoln-elementary]\ngoogle:\n  notes: always\n"
    )
    changes = district.plan_json()
    assert [c["id"] for c in changes] == [f"google/device_annotations/{HAND_NOTES}"]
    assert (changes[0]["before"], changes[0]["after"]) == ({"notes": "charger kept in the office"}, {"notes": ""})


def test_json_plans_token_a_devices_notes_but_keep_their_own_notes_readable() -> None:
    """`notes` is a PII key (a device's notes); a plan's own `notes` (the tool's messages) is a list and stays."""
    change = Change(ResourceId("google", "device_annotations", LOANER), "update", {"notes": ""}, {"notes": "Jane R."})
    plan = Plan(changes=[change], observed={}, backends=["google"], scopes=["policy"], notes=["intune: skipped"])
    data = json.loads(render_json(plan))
    assert data["notes"] == ["intune: skipped"]
    assert data["changes"][0]["after"]["notes"].startswith("<redacted:")
    assert json.loads(render_json(plan, show_pii=True))["changes"][0]["after"]["notes"] == "Jane R."


def test_a_lost_device_read_by_id_is_still_compared_on_its_annotations(district: District) -> None:
    """The lockdown part reads one lost device by its deviceId (fewer requests than a listing); the write-back
    compares the listing's annotations, never that short record (which carries none)."""
    (district.root / "policies" / "lost.yaml").write_text(
        "kind: LostDevicePolicy\nname: lost\nmessage: Please return this Chromebook to the school office.\n"
    )
    district.ok("inventory", "set", "CB0000001", "--status", "lost")
    changes = json.loads(
        district.ok("plan", "--backend", "google", "--scope", "all", "--format", "json", "--show-pii")
    )["changes"]
    assert [c["id"] for c in changes if "/device_" in c["id"]] == ["google/device_status/CB0000001"]
    assert district.google.calls["chromeosdevices.get"] == 1  # the lost device, by id


def test_write_back_policy_mistakes_name_the_line_and_what_is_allowed(policy_dir) -> None:
    folder = policy_dir(
        {
            "a.yaml": "kind: InventoryWriteBack\nname: x\ngoogle:\n  notes: sometimes\n  colour: always\n",
            "b.yaml": "kind: InventoryWriteBack\nname: y\ngoogle: {}\n",
        }
    )
    with pytest.raises(PolicyError) as failed:
        load_policies(folder)
    text = str(failed.value)
    assert "a.yaml:4: google.notes: Input should be 'if_set' or 'always', got 'sometimes'" in text
    assert "a.yaml:5: google.colour: unknown key 'colour' (allowed: asset_tag, location, notes, user)" in text
    assert "b.yaml:3: google: manages no field" in text
