"""The morning tech check end to end: two real lockdown runs against the Google and Graph emulators (locked, then
one found and released, one more locked), a repair with a loaner through the CLI, last-seen times, then
`report techcheck` in Markdown, JSON and CSV, students and repair reasons redacted unless --show-pii."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from click.testing import CliRunner, Result
from lockdown_tenant import Tenant

from orchestrator.cli import main
from orchestrator.inventory.devices import load_inventory, write_inventory_csv

REPO = Path(__file__).resolve().parent.parent
ON = "2026-12-11"


def run(tenant: Tenant, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(tenant.config), *args])


def prepare(tenant: Tenant) -> None:
    """Lost CB0000001 and CB0000002 locked on the first night; the next night CB0000002 was found (released)
    and CB0000003 lost (locked). Then a repair with a loaner, and last-seen times as `inventory sync` writes."""
    for name in ("calendar.yaml", "repair.yaml"):
        shutil.copy(REPO / "policies" / name, tenant.root / "policies" / name)
    tenant.mark("lost", "CB0000001", "CB0000002")
    first = tenant.lockdown()
    assert first.returncode == 0, first.stdout + first.stderr
    tenant.mark("found", "CB0000002")
    tenant.mark("lost", "CB0000003")
    second = tenant.lockdown()
    assert second.returncode == 0, second.stdout + second.stderr
    path = tenant.root / "inventory" / "devices.csv"
    devices = load_inventory(path).devices
    for device in devices:
        device.lastSync = "2026-12-10T15:00:00.000Z"
    by_serial = {d.serialNumber: d for d in devices}
    by_serial["CB0000013"].lastSync = "2026-10-01T07:00:00.000Z"  # 71 days before ON
    by_serial["CB0000017"].lastSync = ""  # never synced: counted, not listed
    path.write_text(write_inventory_csv(devices))
    repaired = run(tenant, "inventory", "repair", "CB0000005", "--reason", "kid sat on it", "--date", "2026-11-20")
    assert repaired.exit_code == 0, repaired.output


def test_techcheck_in_three_formats_with_students_redacted(tenant: Tenant, tmp_path: Path) -> None:
    prepare(tenant)
    school = "lincoln-elementary"
    as_json = run(tenant, "report", "techcheck", "--format", "json", "--date", ON)
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["lockdown_report"].startswith("lockdown-") and data["not_seen_days"] == 30
    lincoln = data["schools"][school]
    assert [(r["serial"], r["when"]) for r in lincoln["locked"]] == [("CB0000001", "earlier")]
    roosevelt = data["schools"]["roosevelt-middle"]
    assert [(r["serial"], r["when"]) for r in roosevelt["locked"]] == [("CB0000003", "last night")]
    assert [r["serial"] for r in data["schools"]["washington-elementary"]["released"]] == ["CB0000002"]
    assert [(r["serial"], r["due"], r["school_days_overdue"]) for r in lincoln["repairs"]] == [
        ("CB0000005", "2026-11-24", 10)
    ]
    assert [(r["serial"], r["due"], r["school_days_overdue"]) for r in lincoln["loaners"]] == [
        ("CB0000025", "2026-12-09", 2)
    ]
    assert [(r["serial"], r["days"]) for r in lincoln["not_seen"]] == [("CB0000013", 71)]
    assert lincoln["no_last_seen"] == 1
    assert "@district.example" not in as_json.output and "kid sat" not in as_json.output

    out = tmp_path / "techcheck.md"
    as_md = run(tenant, "report", "techcheck", "--school", school, "--date", ON, "--out", str(out))
    assert as_md.exit_code == 0, as_md.output
    markdown = out.read_text()
    assert markdown.startswith(f"# Morning tech check {ON}")
    assert f"| {school} | 1 | 0 | 1 (1) | 1 (1) | 1 | 1 |" in markdown
    assert "### Repairs out" in markdown and "| CB0000005 | PV-000005 |" in markdown
    assert "roosevelt-middle" not in markdown  # --school keeps to one school
    assert "@district.example" not in markdown and "kid sat" not in markdown

    as_csv = run(tenant, "report", "techcheck", "--format", "csv", "--date", ON)
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    sections = {(r["section"], r["serial"]) for r in rows}
    assert {("locked", "CB0000001"), ("released", "CB0000002"), ("repairs", "CB0000005")} <= sections
    assert {("loaners", "CB0000025"), ("not_seen", "CB0000013"), ("locked", "CB0000003")} <= sections
    assert "@district.example" not in as_csv.output

    shown = run(tenant, "report", "techcheck", "--format", "csv", "--date", ON, "--show-pii")
    assert "student000005@district.example" in shown.output and "kid sat on it" in shown.output


def test_techcheck_says_what_it_could_not_compute(tenant: Tenant) -> None:
    result = run(tenant, "report", "techcheck", "--format", "json", "--date", ON, "--not-seen-days", "5")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    notes = " ".join(data["notes"])
    assert "no lockdown report" in notes and "no RepairPolicy" in notes
    assert data["not_seen_days"] == 5
    assert set(data["not_computed"]) == {"locked", "released", "repairs", "loaners"}
    markdown = run(tenant, "report", "techcheck", "--date", ON).output
    assert "| lincoln-elementary | not known | not known | not known | not known |" in markdown
    assert "Not known: no lockdown report in" in markdown and "Not known: repairs and loaners not computed" in markdown
    unknown = run(tenant, "report", "techcheck", "--school", "nowhere")
    assert unknown.exit_code == 1 and "no device of school 'nowhere'" in unknown.output


def test_a_damaged_lockdown_report_is_a_note_not_a_crash(tenant: Tenant) -> None:
    (tenant.root / "reports").mkdir(exist_ok=True)
    (tenant.root / "reports" / "lockdown-2026-12-11T080000Z.json").write_text('{"devices": [')  # being written
    result = run(tenant, "report", "techcheck", "--format", "json", "--date", ON)
    assert result.exit_code == 0, result.output
    assert "cannot read the newest lockdown report" in " ".join(json.loads(result.output)["notes"])
