"""`inventory sync` reads lastSync and the auto-update expiration in the same bulk pages (stored without history
rows), and reports Intune primary users that differ from the inventory (redacted) instead of writing them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.inventory.devices import load_inventory, write_inventory_csv
from orchestrator.inventory.edits import history_path
from orchestrator.inventory.sync import aue_date, google_view, intune_view
from orchestrator.sandbox.district import District, generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.graph_state import GraphState


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"autoUpdateExpiration": "1938038400000"}, "2031-06-01"),  # int64 ms since the epoch, as a string
        ({"autoUpdateExpiration": "1938124799999"}, "2031-06-01"),  # the last millisecond of that UTC day
        ({"autoUpdateExpiration": "1938124800000"}, "2031-06-02"),
        ({"autoUpdateThrough": "2031-06-01T00:00:00.000Z", "autoUpdateExpiration": "1"}, "2031-06-01"),
        ({"autoUpdateThrough": "2030-12-31T23:30:00-02:00"}, "2031-01-01"),  # the UTC date
        ({"autoUpdateThrough": "2029-06-01"}, "2029-06-01"),
        ({"autoUpdateExpiration": "soon"}, ""),
        ({"autoUpdateExpiration": "-5"}, ""),
        ({"autoUpdateExpiration": "9" * 30}, ""),
        ({"autoUpdateThrough": "not a time"}, ""),
        ({}, ""),
    ],
)
def test_auto_update_expiration_is_read_as_a_utc_date(record: dict[str, str], expected: str) -> None:
    assert aue_date(record) == expected


def test_last_sync_times_are_stored_in_utc_seconds() -> None:
    google, seen = google_view({"deviceId": "d", "lastSync": "2026-11-20T08:03:11.512-06:00"})
    assert (google["lastSync"], seen) == ("2026-11-20T14:03:11Z", "2026-11-20T08:03:11.512-06:00")
    assert intune_view({"id": "i", "lastSyncDateTime": "2026-11-20T06:00:00Z"})[0]["lastSync"] == "2026-11-20T06:00:00Z"
    assert intune_view({"id": "i", "lastSyncDateTime": "0001-01-01T00:00:00"})[0]["lastSync"] == ""  # no zone


@dataclass
class Consoles:
    district: District
    google: GoogleEmulator
    graph: GraphEmulator
    config: Path

    def sync(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "--config", str(self.config), "inventory", "sync", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout) if "--format" in args else {"text": done.stdout}

    def inventory_csv(self) -> Path:
        return self.config.parent / "inventory" / "devices.csv"


@pytest.fixture
def consoles(tmp_path: Path) -> Iterator[Consoles]:
    district = generate(devices=400, seed=9)
    google = GoogleEmulator(district, seed=9).start()
    graph = GraphEmulator.start_local(state=GraphState.from_district(district))
    (tmp_path / "inventory").mkdir()
    (tmp_path / "policies").mkdir()
    (tmp_path / "inventory" / "devices.csv").write_text(write_inventory_csv(s.device for s in district.devices))
    config = tmp_path / "orchestrator.yaml"
    config.write_text(
        f"journal: {tmp_path / 'journal.db'}\n"
        f"google:\n  directory_endpoint: {google.url}\n  policy_endpoint: {google.url}\n"
        f"intune:\n  graph_endpoint: {graph.url}\n"
    )
    try:
        yield Consoles(district, google, graph, config)
    finally:
        google.stop()
        graph.stop()


def test_sync_stores_last_sync_and_aue_from_the_same_pages_without_history(consoles: Consoles) -> None:
    chromebooks = sum(1 for s in consoles.district.devices if s.device.platform == "chromeos")
    report = consoles.sync("--write", "--format", "json")
    assert consoles.google.calls["chromeosdevices.list"] == math.ceil(chromebooks / 300)  # no per-device GET
    assert consoles.google.calls["chromeosdevices.get"] == 0
    assert report["written"] is True and report["readings_changed"] > len(consoles.district.devices)
    rows = load_inventory(consoles.inventory_csv()).by_serial()
    assert (rows["CB0000001"].lastSync, rows["CB0000001"].autoUpdateExpiration) == (
        "2026-11-20T14:03:11Z",
        "2031-06-01",
    )
    assert (rows["PF0000008"].lastSync, rows["PF0000008"].autoUpdateExpiration) == ("2026-11-20T06:00:00Z", "")
    history = history_path(consoles.inventory_csv())
    assert not history.exists() or "lastSync" not in history.read_text(), "readings must not fill the history"

    # A newer sync time and an extended support date arrive with the next pages.
    record = next(d for d in consoles.google.state.devices.values() if d["serialNumber"] == "CB0000001")
    record["lastSync"], record["autoUpdateThrough"] = "2026-11-24T07:00:00.000Z", "2033-06-01T00:00:00.000Z"
    consoles.google.state.version += 1
    again = consoles.sync("--write", "--format", "json")
    assert (again["readings_changed"], again["updates"]) == (2, [])
    rows = load_inventory(consoles.inventory_csv()).by_serial()
    assert (rows["CB0000001"].lastSync, rows["CB0000001"].autoUpdateExpiration) == (
        "2026-11-24T07:00:00Z",
        "2033-06-01",
    )
    assert consoles.sync("--write", "--format", "json")["readings_changed"] == 0


def test_intune_primary_user_mismatch_is_reported_redacted_and_never_written(consoles: Consoles) -> None:
    laptop = next(d for d in consoles.graph.state.devices.values() if d["serialNumber"] == "PF0000008")
    student = laptop["userPrincipalName"]
    laptop["userPrincipalName"] = "someone.else@district.example"
    report = consoles.sync("--write", "--format", "json")
    assert [m["serial"] for m in report["user_mismatches"]] == ["PF0000008"]
    assert "@" not in json.dumps(report)
    shown = consoles.sync("--format", "json", "--show-pii")["user_mismatches"]
    assert shown == [
        {"serial": "PF0000008", "assignedStudent": student, "userPrincipalName": "someone.else@district.example"}
    ]
    text = consoles.sync()["text"]
    assert "primary user" in text and "PF0000008" in text and "@" not in text
    assert load_inventory(consoles.inventory_csv()).by_serial()["PF0000008"].assignedStudent == student
    assert laptop["userPrincipalName"] == "someone.else@district.example"  # read-only for us: nothing sent
    assert not [name for name in consoles.graph.calls if not name.startswith("GET")]
