"""The counter's reports read what the console says: `inventory sync --write` against the Google emulator (real
googleapiclient) fills lastSync and the auto-update expiration, then `inventory report --aue`, `inventory
audit` and `report techcheck` show them (expired AUE, last seen, not seen for 71 days)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.inventory.devices import write_inventory_csv
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def district(tmp_path: Path) -> Iterator[Path]:
    seeded = generate(devices=40, seed=11)
    google = GoogleEmulator(seeded, seed=11).start()
    for record in google.state.devices.values():  # what the Admin console reports for three Chromebooks
        if record["serialNumber"] == "CB0000001":
            record["autoUpdateThrough"] = "2026-06-01T00:00:00.000Z"  # expired before the check
        if record["serialNumber"] == "CB0000005":
            record["autoUpdateThrough"] = "2028-06-01T00:00:00.000Z"
        if record["serialNumber"] == "CB0000013":
            record["lastSync"] = "2026-10-01T07:00:00.000Z"
    root = tmp_path / "district"
    (root / "inventory").mkdir(parents=True)
    (root / "inventory" / "devices.csv").write_text(write_inventory_csv([s.device for s in seeded.devices]))
    (root / "policies").mkdir()
    for name in ("calendar.yaml", "repair.yaml"):
        shutil.copy(REPO / "policies" / name, root / "policies" / name)
    config = root / "orchestrator.yaml"
    config.write_text(
        f"journal: {root / '.orchestrator' / 'journal.db'}\n"
        f"google:\n  directory_endpoint: {google.url}\n  policy_endpoint: {google.url}\n"
    )
    try:
        yield config
    finally:
        google.stop()


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def test_aue_audit_and_techcheck_read_what_sync_brought_from_the_console(district: Path, tmp_path: Path) -> None:
    before = run(district, "inventory", "report", "--aue", "--format", "json", "--date", "2026-12-11")
    assert {r["aue_year"] for r in json.loads(before.output)["rows"]} == {"unknown"}  # nothing synced yet

    synced = run(district, "inventory", "sync", "--write", "--backend", "google")
    assert synced.exit_code == 0, synced.output

    aue = run(district, "inventory", "report", "--aue", "--format", "json", "--date", "2026-12-11")
    rows = {(r["school"], r["aue_year"]): r for r in json.loads(aue.output)["rows"]}
    assert (rows[("lincoln-elementary", "2026")]["serials"], rows[("lincoln-elementary", "2026")]["expired"]) == (
        "CB0000001",
        1,
    )
    assert rows[("lincoln-elementary", "2028")]["serials"] == "CB0000005"
    assert ("lincoln-elementary", "unknown") not in rows  # every Chromebook's AUE came from the console

    scan = tmp_path / "scan.txt"
    scan.write_text("CB0000001\n")
    audit = run(
        district, "inventory", "audit", "--school", "lincoln-elementary", "--scan", str(scan), "--format", "json"
    )
    missing = {r["serial"]: r["last_seen"] for r in json.loads(audit.output)["rows"] if r["result"] == "missing"}
    assert missing["CB0000013"].startswith("2026-10-01T07:00:00")
    assert missing["CB0000005"].startswith("2026-11-20T14:03:11")

    check = run(district, "report", "techcheck", "--format", "json", "--date", "2026-12-11")
    lincoln = json.loads(check.output)["schools"]["lincoln-elementary"]
    assert [(r["serial"], r["days"]) for r in lincoln["not_seen"]] == [("CB0000013", 71)]
