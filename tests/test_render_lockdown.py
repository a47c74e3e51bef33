"""Honest lockdown reports (issue 17 item 3): counted per device, every device listed with what each console and
the network did ("not locked: <reason>"), the still-locked devices every night, in Markdown, JSON and CSV."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import stat
import subprocess
import sys
from pathlib import Path

from lockdown_tenant import Tenant

from orchestrator.core.resources import Change, ResourceId
from orchestrator.engine.apply import ApplyReport
from orchestrator.engine.caps import LockdownTypes
from orchestrator.engine.plan import HeldChange, Plan
from orchestrator.inventory.devices import Device, Inventory
from orchestrator.jobs.lockdown import LockdownSelection
from orchestrator.jobs.lockdown_report import build_report, write_report

LOCKDOWN_TYPES = LockdownTypes(
    devices={("google", "device_status"), ("intune", "device_lock")}, quarantines={("network", "mac_quarantine")}
)
STUDENT = "ana.lopez@district.example"


def inventory() -> Inventory:
    return Inventory(
        file="inventory/devices.csv",
        devices=[
            Device("CB1", "chromeos", "lost", annotatedAssetId="PV-1", school="lincoln", macAddress="aa:01",
                   assignedStudent=STUDENT, line=2),
            Device("PF2", "windows", "stolen", annotatedAssetId="PV-2", school="jefferson", line=3),
            Device("CB3", "chromeos", "lost", annotatedAssetId="PV-3", school="lincoln", line=4),
            Device("CB4", "chromeos", "lost", annotatedAssetId="PV-4", school="lincoln", macAddress="aa:04", line=5),
            Device("CB5", "chromeos", "active", school="lincoln", line=6),
        ],
    )  # fmt: skip


def selection() -> tuple[LockdownSelection, ApplyReport]:
    lock = Change(ResourceId("google", "device_status", "CB1"), "update", "ACTIVE", "DISABLED")
    quarantine = Change(
        ResourceId("network", "mac_quarantine", "north"), "update", [], ["aa:01"], meta={"serials": {"aa:01": "CB1"}}
    )
    refused = Change(ResourceId("intune", "device_lock", "PF2"), "update", {"lost": False}, {"lost": True})
    missing = Change(ResourceId("google", "device_status", "CB4"), "update", None, "DISABLED")
    plan = Plan(
        changes=[lock, quarantine, refused],
        # CB3 was locked on an earlier night: observed on Google, no change needed tonight
        observed={f"google/device_status/{s}": s for s in ("CB1", "CB3")} | {"network/mac_quarantine/north": "z"},
        backends=["google", "intune", "network"],
        scopes=["lockdown"],
        held=[HeldChange(missing, "not found", "")],
    )
    report = ApplyReport(
        run_id="run-1",
        states={lock.key: "succeeded", quarantine.key: "succeeded", refused.key: "failed"},
        details={refused.key: "403 Forbidden"},
    )
    held = LockdownSelection(plan=plan, types=LOCKDOWN_TYPES, not_found=[missing], cap=50)
    return held, report


def test_counts_are_devices_and_every_device_says_what_each_console_did(tmp_path: Path) -> None:
    chosen, applied = selection()
    report = build_report(chosen, applied, inventory())
    # CB1 was locked on Google and quarantined on the network: one device, counted once
    assert dict(report.totals) == {"locked": 1, "failed": 1, "not found": 1}
    by_serial = {e["serial"]: e for e in report.devices}
    cb1 = by_serial["CB1"]
    assert (cb1["school"], cb1["platform"], cb1["asset"]) == ("lincoln", "chromeos", "PV-1")
    assert cb1["student"].startswith("<redacted:") and STUDENT not in json.dumps(report.devices)
    assert {a["backend"]: a["said"] for a in cb1["actions"]} == {"google": "locked", "network": "quarantine"}
    assert by_serial["PF2"]["actions"][0]["said"] == "not locked: failed: 403 Forbidden"
    assert by_serial["CB4"]["actions"][0]["said"] == "not locked: serial not found in google"
    # still locked: tonight's CB1 and CB3 from an earlier night; never the active CB5 or the failed PF2
    assert [(e["serial"], e["locked_on"]) for e in report.still_locked] == [
        ("CB1", ["google", "network"]),
        ("CB3", ["google"]),
    ]

    md, js, cs = write_report(report, tmp_path, "2026-11-24T020000Z", "run-1")
    markdown, data = md.read_text(), json.loads(js.read_text())
    assert "| lincoln | CB1 | chromeos | PV-1 | &lt;redacted:" in markdown
    assert "| locked | - | quarantine | locked |" in markdown
    assert "not locked: serial not found in google" in markdown and "## Needs attention" in markdown
    assert "## Still locked" in markdown and "| lincoln | CB3 | chromeos | PV-3 |" in markdown
    assert data["counted"] == "devices" and [e["serial"] for e in data["still_locked"]] == ["CB1", "CB3"]
    rows = list(csv.DictReader(io.StringIO(cs.read_text())))
    assert [(r["section"], r["serial"]) for r in rows] == [
        ("tonight", "PF2"),
        ("tonight", "CB1"),
        ("tonight", "CB4"),
        ("still locked", "CB1"),
        ("still locked", "CB3"),
    ]
    assert STUDENT not in markdown + js.read_text() + cs.read_text()


def test_a_quiet_night_still_lists_the_devices_that_stay_locked(tenant: Tenant) -> None:
    chromebooks = tenant.serials("chromeos", 2)
    tenant.mark("lost", *chromebooks)
    assert tenant.lockdown().returncode == 0
    quiet = tenant.lockdown()
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    markdown, report = tenant.latest_report()
    assert report["totals"] == {}
    assert sorted(e["serial"] for e in report["still_locked"]) == sorted(chromebooks)
    assert all(e["locked_on"] == ["google"] for e in report["still_locked"])
    for serial in chromebooks:
        assert f"| {serial} |" in markdown
    assert "2 lost or stolen device(s) still locked" in " ".join(quiet.stdout.split())


def test_plan_and_lockdown_key_redaction_with_the_districts_key_beside_the_journal(tenant: Tenant) -> None:
    [laptop] = tenant.serials("windows", 1)
    tenant.mark("lost", laptop)
    student = tenant.device(laptop).assignedStudent
    command = ["plan", "--scope", "lockdown", "--format", "json"]
    plan = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(tenant.config), *command],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tenant.root,
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr
    key = tenant.root / "redaction.key"  # beside the journal (tenant.root / journal.db)
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert tenant.lockdown().returncode == 0
    expected = hmac.new(bytes.fromhex(key.read_text()), student.encode(), hashlib.sha256).hexdigest()[:12]
    reported = tenant.latest_report()[1]
    tokens = {e["student"] for e in reported["devices"] + reported["still_locked"] if e["serial"] == laptop}
    assert tokens == {f"<redacted:{expected}>"}
