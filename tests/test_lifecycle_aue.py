"""`inventory report --aue` through the CLI: Chromebooks per school and auto-update-expiration year, expired ones
flagged, unknown AUE counted (never dropped), other platforms and retired devices left out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.inventory.devices import load_inventory, write_inventory_csv

AUE = {
    "CB0000001": "2026-06-01",  # lincoln, expired
    "CB0000005": "2027-06-01",  # lincoln
    "CB0000013": "2027-06-01",  # lincoln
    "CB0000002": "2031-06-01",  # washington
    "CB0000017": "2026-11-24",  # lincoln, expires today: expired
}


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def test_aue_report_groups_by_school_and_year(sample_repo: Path) -> None:
    path = sample_repo / "inventory" / "devices.csv"
    devices = load_inventory(path).devices
    for device in devices:
        device.autoUpdateExpiration = AUE.get(device.serialNumber, "")
        if device.serialNumber == "CB0000021":
            device.inventoryStatus = "retired"
    path.write_text(write_inventory_csv(devices))
    lincoln = [d for d in devices if d.school == "lincoln-elementary" and d.platform == "chromeos"]
    config = sample_repo / "orchestrator.yaml"

    result = run(config, "inventory", "report", "--aue", "--format", "json", "--date", "2026-11-24")
    assert result.exit_code == 0, result.output
    rows = {(r["school"], r["aue_year"]): r for r in json.loads(result.output)["rows"]}
    assert (rows[("lincoln-elementary", "2026")]["chromebooks"], rows[("lincoln-elementary", "2026")]["expired"]) == (
        2,
        2,
    )
    assert rows[("lincoln-elementary", "2027")]["serials"] == "CB0000005 CB0000013"
    assert rows[("lincoln-elementary", "2027")]["expired"] == 0
    assert rows[("lincoln-elementary", "unknown")]["chromebooks"] == len(lincoln) - 5  # 4 known, 1 retired
    assert rows[("washington-elementary", "2031")]["chromebooks"] == 1
    counted = sum(r["chromebooks"] for r in rows.values())
    chromebooks = [d for d in devices if d.platform == "chromeos" and d.inventoryStatus != "retired"]
    assert counted == len(chromebooks)  # every Chromebook once; Windows, iPads and the retired one left out
    assert all("CB0000021" not in r["serials"] for r in rows.values())
    assert list(rows)[:3] == [
        ("jefferson-high", "unknown"),
        ("lincoln-elementary", "2026"),
        ("lincoln-elementary", "2027"),
    ]

    as_csv = run(config, "inventory", "report", "--aue", "--format", "csv", "--school", "washington-elementary")
    table = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert (table[0]["aue_year"], table[0]["chromebooks"]) == ("2031", "1")
    assert {r["school"] for r in table} == {"washington-elementary"}
    shown = run(config, "inventory", "report", "--aue", "--date", "2026-11-24")
    assert shown.exit_code == 0 and "lincoln-elementary" in shown.output and "unknown" in shown.output
