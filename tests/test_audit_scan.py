"""Counting a school through the CLI: a barcode scanner's file (BOM, CRLF, blanks, repeats, asset tags, another
school's device, an unknown code) → present / missing / unexpected / unknown, last seen, and marking lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.inventory.audit import parse_scan
from orchestrator.inventory.devices import load_inventory, write_inventory_csv
from orchestrator.inventory.edits import history_path, read_history

SCHOOL = "lincoln-elementary"
SEEN = "2026-11-20T14:03:11.000Z"


@pytest.fixture
def district(sample_repo: Path) -> Path:
    """The sample district with last-seen times filled in (as `inventory sync --write` leaves them)."""
    path = sample_repo / "inventory" / "devices.csv"
    inventory = load_inventory(path)
    for device in inventory.devices:
        device.lastSync = SEEN
    path.write_text(write_inventory_csv(inventory.devices))
    return sample_repo / "orchestrator.yaml"


def run(config: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args], input=stdin)


def lincoln(config: Path) -> list[str]:
    inventory = load_inventory(config.parent / "inventory" / "devices.csv")
    return [d.serialNumber for d in inventory.devices if d.school == SCHOOL]


def scan_all_but(config: Path, missing: set[str], tmp_path: Path) -> Path:
    """A scanner's file: BOM, CRLF, blank lines, spaces, a repeat, one asset tag instead of a serial, a
    Washington device and an unknown code."""
    inventory = load_inventory(config.parent / "inventory" / "devices.csv").by_serial()
    codes = []
    for serial in lincoln(config):
        if serial in missing or inventory[serial].inventoryStatus in ("repair", "lost", "stolen", "retired"):
            continue
        codes.append(inventory[serial].annotatedAssetId if serial == "CB0000005" else f"  {serial}\t")
    codes += ["", "CB0000001", "CB0000002", "ZZ-NOT-OURS", ""]
    scan = tmp_path / "scans.txt"
    scan.write_bytes(("\ufeff" + "\r\n".join(codes) + "\r\n").encode())
    return scan


def test_audit_classifies_every_scanned_code_and_every_unscanned_device(district: Path, tmp_path: Path) -> None:
    scan = scan_all_but(district, {"CB0000013", "CB0000105"}, tmp_path)
    result = run(district, "inventory", "audit", "--school", SCHOOL, "--scan", str(scan), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    rows = {(r["result"], r["serial"] or r["code"]): r for r in data["rows"]}
    assert rows[("missing", "CB0000013")]["last_seen"] == SEEN
    assert ("missing", "CB0000105") in rows  # a pooled loaner not on the cart is missing too
    assert rows[("present", "CB0000005")]["code"] == "PV-000005"  # scanned by asset tag
    assert rows[("present", "CB0000001")]["scanned"] == 2
    assert rows[("unexpected", "CB0000002")]["belongs_to"] == "washington-elementary"
    assert ("unknown", "ZZ-NOT-OURS") in rows
    # In repair, lost or stolen: not expected on site, listed apart rather than missing.
    assert ("not expected (repair)", "CB0000033") in rows and ("not expected (stolen)", "PF0000009") in rows
    assert data["counts"] == {
        "present": len(lincoln(district)) - 4,
        "missing": 2,
        "unexpected": 1,
        "unknown": 1,
        "not_expected": 2,
        "repeated_scans": 1,
    }


def test_marking_missing_devices_lost_asks_first_and_keeps_history(district: Path, tmp_path: Path) -> None:
    scan = scan_all_but(district, {"CB0000013"}, tmp_path)
    args = ("inventory", "audit", "--school", SCHOOL, "--scan", str(scan), "--mark-missing-lost")
    declined = run(district, *args, stdin="n\n")
    assert declined.exit_code == 0 and "Nothing marked" in declined.output
    path = district.parent / "inventory" / "devices.csv"
    assert load_inventory(path).by_serial()["CB0000013"].inventoryStatus == "active"

    marked = run(district, *args, "--yes")
    assert marked.exit_code == 0, marked.output
    assert "Marked 1 device(s) lost" in marked.output
    assert load_inventory(path).by_serial()["CB0000013"].inventoryStatus == "lost"
    [entry] = read_history(history_path(path), "CB0000013")
    assert (entry.field, entry.old, entry.new, entry.source) == ("inventoryStatus", "active", "lost", "audit:scans.txt")


def test_a_csv_scan_with_an_asset_column_and_a_bad_header() -> None:
    codes = parse_scan("s.csv", "\ufeffAsset Tag,Room\r\nPV-000001,12\r\n\r\n PV-000005 ,12\r\nPV-000001,14\r\n")
    assert [(c.code, c.times) for c in codes] == [("PV-000001", 2), ("PV-000005", 1)]
    with pytest.raises(Exception, match="no serial or asset column"):
        parse_scan("s.csv", "room,teacher\n12,x\n")


def test_an_audit_of_an_unknown_school_is_an_error(district: Path, tmp_path: Path) -> None:
    scan = tmp_path / "scans.txt"
    scan.write_text("CB0000001\n")
    result = run(district, "inventory", "audit", "--school", "lincoln", "--scan", str(scan))
    assert result.exit_code == 1 and "no device of school 'lincoln'" in result.output


def test_a_scan_file_that_is_not_text_is_a_diagnostic(district: Path, tmp_path: Path) -> None:
    scan = tmp_path / "scans.txt"
    scan.write_bytes(b"CB0000001\nCB00\xff0002\n")
    result = run(district, "inventory", "audit", "--school", SCHOOL, "--scan", str(scan))
    assert result.exit_code == 1 and "scans.txt:2" in result.output and "not UTF-8" in result.output
