"""The inventory commands through the CLI: GAM import, export, history across reassignment, and console sync
against the Google and Graph emulators (in-process, dynamic ports)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.inventory.devices import COLUMNS, Device, load_inventory, write_inventory_csv
from orchestrator.inventory.edits import history_path, read_history
from orchestrator.sandbox.district import District, SeedDevice, generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.graph_state import GraphState

STUDENT = "student000001@district.example"


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def make_repo(root: Path, devices: list[Device], config_extra: str = "") -> Path:
    (root / "inventory").mkdir(parents=True, exist_ok=True)
    (root / "policies").mkdir(exist_ok=True)
    (root / "inventory" / "devices.csv").write_text(write_inventory_csv(devices))
    config = root / "orchestrator.yaml"
    config.write_text(f"journal: {root / 'journal.db'}\n{config_extra}")
    return config


def inventory_of(config: Path) -> dict[str, Device]:
    return load_inventory(config.parent / "inventory" / "devices.csv").by_serial()


# -- GAM import and export ------------------------------------------------------------------------------------

# What `gam print cros fields deviceid,serialnumber,status,lastsync,user,assetid,ou,macaddress,model,osversion`
# writes: camelCase columns, orgUnitId as "id:...", MACs as bare hex, and columns the inventory does not keep.
GAM_HEADER = (
    "deviceId,serialNumber,status,lastSync,annotatedUser,annotatedAssetId,orgUnitPath,orgUnitId,macAddress,"
    "model,osVersion,autoUpdateExpiration"
)
GAM_ROWS = [
    "3f2a9c1e-0b6d-4a55-9d11-7c2e1f0a9b01,CB0000001,ACTIVE,2026-11-20T14:03:11.000Z,student000001@district.example,"
    "PV-000001,/Students/Elementary/Lincoln/Grade-2,id:03ph8a2z1k9x2m7,02AB34CD56EF,Acer Chromebook 311,"
    "126.0.6478.132,2031-06-01",
    "7d0e5b2a-91c4-4c0e-8f3e-2b9a6d4c1e02,CB0000099,DISABLED,2026-11-19T08:12:40.000Z,student000099@district.example,"
    "PV-000099,/Students/High/Jefferson/Grade-9,id:03ph4q7w2e8r5t1,0a1b2c3d4e5f,Lenovo 100e Gen 4,126.0.6478.132,"
    "2032-06-01",
]
GAM_CSV = "\n".join([GAM_HEADER, *GAM_ROWS]) + "\n"


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    devices = [
        Device(
            serialNumber="CB0000001",
            platform="chromeos",
            inventoryStatus="lost",
            annotatedAssetId="PV-000001",
            annotatedUser=STUDENT,
            orgUnitPath="/Students/Elementary/Lincoln/Grade-1",
            school="lincoln-elementary",
            assignedStudent=STUDENT,
        ),
        Device(serialNumber="PF0000008", platform="windows", school="jefferson-high"),
    ]
    return make_repo(tmp_path, devices)


def test_gam_import_merges_by_exact_serial_keeps_district_fields_and_normalises_columns(
    small_repo: Path, tmp_path: Path
) -> None:
    gam = tmp_path / "cros.csv"
    gam.write_text(GAM_CSV)
    result = cli(small_repo, "inventory", "import", "--from-gam", str(gam))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 GAM rows: 1 added, 1 updated" in result.stdout

    devices = inventory_of(small_repo)
    merged = devices["CB0000001"]
    assert merged.deviceId == "3f2a9c1e-0b6d-4a55-9d11-7c2e1f0a9b01"
    assert merged.orgUnitPath == "/Students/Elementary/Lincoln/Grade-2"  # the console's OU wins
    assert merged.macAddress == "02:ab:34:cd:56:ef"  # bare hex → the inventory's colon form
    assert (merged.inventoryStatus, merged.school, merged.assignedStudent) == ("lost", "lincoln-elementary", STUDENT)
    added = devices["CB0000099"]
    assert (added.platform, added.status, added.macAddress) == ("chromeos", "DISABLED", "0a:1b:2c:3d:4e:5f")
    header = (small_repo.parent / "inventory" / "devices.csv").read_text().splitlines()[0]
    assert header.split(",") == list(COLUMNS)  # orgUnitId, lastSync, model... are not carried over
    assert "id:03ph" not in (small_repo.parent / "inventory" / "devices.csv").read_text()

    history = read_history(history_path(small_repo.parent / "inventory" / "devices.csv"))
    assert {(h.serialNumber, h.field) for h in history} == {
        ("CB0000001", "orgUnitPath"),
        ("CB0000001", "macAddress"),
        ("CB0000001", "status"),
        ("CB0000099", "created"),
    }
    assert all(h.source == "gam:cros.csv" for h in history)

    again = cli(small_repo, "inventory", "import", "--from-gam", str(gam))
    assert "0 added, 0 updated, 0 history entries" in again.stdout


def test_gam_import_rejects_a_bad_mac_and_writes_nothing(small_repo: Path, tmp_path: Path) -> None:
    before = (small_repo.parent / "inventory" / "devices.csv").read_text()
    gam = tmp_path / "cros.csv"
    gam.write_text(GAM_CSV.replace("02AB34CD56EF", "02AB34CD56"))
    result = cli(small_repo, "inventory", "import", "--from-gam", str(gam))
    assert result.returncode == 1
    assert "cros.csv:2" in result.stdout + result.stderr
    assert (small_repo.parent / "inventory" / "devices.csv").read_text() == before


def test_export_writes_the_inventory_as_csv_and_json(small_repo: Path, tmp_path: Path) -> None:
    as_csv = cli(small_repo, "inventory", "export")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["serialNumber"] for r in rows] == ["CB0000001", "PF0000008"]
    assert rows[0]["inventoryStatus"] == "lost" and list(rows[0]) == list(COLUMNS)

    out = tmp_path / "devices.json"
    as_json = cli(small_repo, "inventory", "export", "--format", "json", "--out", str(out))
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(out.read_text())
    assert [d["serialNumber"] for d in data] == ["CB0000001", "PF0000008"]
    assert set(data[1]) == set(COLUMNS) and data[1]["platform"] == "windows"


def test_history_survives_reassignment_repair_and_loaner(small_repo: Path) -> None:
    steps = [
        ("--status", "found"),
        ("--student", "student000777@district.example"),
        ("--status", "repair"),
        ("--status", "loaner"),
        ("--school", "roosevelt-middle"),
    ]
    for step in steps:
        result = cli(small_repo, "inventory", "set", "CB0000001", *step)
        assert result.returncode == 0, result.stdout + result.stderr
    history = read_history(history_path(small_repo.parent / "inventory" / "devices.csv"), "CB0000001")
    assert [(h.field, h.old, h.new) for h in history] == [
        ("inventoryStatus", "lost", "found"),
        ("assignedStudent", STUDENT, "student000777@district.example"),
        ("inventoryStatus", "found", "repair"),
        ("inventoryStatus", "repair", "loaner"),
        ("school", "lincoln-elementary", "roosevelt-middle"),
    ]
    device = inventory_of(small_repo)["CB0000001"]
    assert (device.inventoryStatus, device.assignedStudent) == ("loaner", "student000777@district.example")
    shown = cli(small_repo, "inventory", "history", "CB0000001")
    assert "repair" in shown.stdout and "loaner" in shown.stdout
    assert "@district.example" not in shown.stdout  # redacted unless --show-pii


def test_inventory_set_and_export_never_print_a_student_unless_asked(small_repo: Path) -> None:
    new = "student000777@district.example"
    reassigned = cli(small_repo, "inventory", "set", "CB0000001", "--student", new)
    assert reassigned.returncode == 0, reassigned.stdout + reassigned.stderr
    assert "@district.example" not in reassigned.stdout and "assignedStudent <redacted:" in reassigned.stdout
    back = cli(small_repo, "inventory", "set", "CB0000001", "--student", STUDENT, "--show-pii")
    assert f"assignedStudent {new} → {STUDENT}" in back.stdout
    exported = cli(small_repo, "inventory", "export")
    assert "@district.example" not in exported.stdout and "<redacted:" in exported.stdout
    assert STUDENT in cli(small_repo, "inventory", "export", "--show-pii").stdout
    shown = cli(small_repo, "inventory", "history", "CB0000001", "--show-pii")
    assert new in shown.stdout


def test_redaction_tokens_are_keyed_per_district_stable_and_not_a_plain_hash(small_repo: Path, tmp_path: Path) -> None:
    def token_of(config: Path) -> str:
        shown = cli(config, "inventory", "history", "CB0000001")
        assert shown.returncode == 0, shown.stderr
        return re.findall(r"<redacted:[0-9a-f]+>", shown.stdout)[-1]

    assert cli(small_repo, "inventory", "set", "CB0000001", "--student", "x@district.example").returncode == 0
    first, again = token_of(small_repo), token_of(small_repo)
    assert first == again  # stable within the district, run after run
    key = small_repo.parent / "redaction.key"  # beside the journal, outside git
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600 and len(bytes.fromhex(key.read_text())) == 32
    # a roster does not reverse it: the unkeyed hash of the email is not the token
    for email in (STUDENT, "x@district.example"):
        assert hashlib.sha256(email.encode()).hexdigest()[:8] not in first
        assert hashlib.sha256(email.encode()).hexdigest()[:12] not in first
    other = make_repo(tmp_path / "other-district", [Device(serialNumber="CB0000001", platform="chromeos")])
    assert cli(other, "inventory", "set", "CB0000001", "--student", "x@district.example").returncode == 0
    assert token_of(other) != first  # another district, another key


# -- sync with the consoles -----------------------------------------------------------------------------------


@dataclass
class Consoles:
    district: District
    google: GoogleEmulator
    graph: GraphEmulator
    config: Path

    def google_record(self, serial: str) -> dict:
        return next(d for d in self.google.state.devices.values() if d["serialNumber"] == serial)

    def intune_record(self, serial: str) -> dict:
        return next(d for d in self.graph.state.devices.values() if d["serialNumber"] == serial)

    def sync(self, *args: str) -> dict:
        result = cli(self.config, "inventory", "sync", "--format", "json", *args)
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)


def synced_before(seeded: SeedDevice) -> dict[str, str]:
    """The columns an earlier `inventory sync --write` filled in: ids and what the emulators report."""
    if seeded.device.platform == "chromeos":
        return {"lastSync": "2026-11-20T14:03:11Z", "autoUpdateExpiration": "2031-06-01"}
    return {"deviceId": seeded.intune_id, "lastSync": "2026-11-20T06:00:00Z"}


@pytest.fixture
def consoles(tmp_path: Path) -> Iterator[Consoles]:
    district = generate(devices=700, seed=5)
    google = GoogleEmulator(district, seed=5).start()
    graph = GraphEmulator.start_local(state=GraphState.from_district(district))
    config = make_repo(
        tmp_path,
        # an inventory synced before: Intune rows carry their managedDevice id, every row the readings
        [Device(**{**s.device.__dict__, **synced_before(s)}) for s in district.devices],
        f"google:\n  directory_endpoint: {google.url}\n  policy_endpoint: {google.url}\n"
        f"intune:\n  graph_endpoint: {graph.url}\n",
    )
    try:
        yield Consoles(district, google, graph, config)
    finally:
        google.stop()
        graph.stop()


def test_sync_of_an_inventory_that_matches_the_consoles_changes_nothing(consoles: Consoles) -> None:
    report = consoles.sync("--write")
    assert report["updates"] == [] and report["not_in_inventory"] == [] and report["not_in_console"] == []
    assert report["written"] is False
    chromebooks = sum(1 for s in consoles.district.devices if s.device.platform == "chromeos")
    intune = len(consoles.district.devices) - chromebooks
    assert len(report["last_seen"]) == len(consoles.district.devices)
    assert consoles.google.calls["chromeosdevices.list"] == math.ceil(chromebooks / 300)
    assert consoles.graph.calls["GET managedDevices"] == math.ceil(intune / 1000)
    assert not history_path(consoles.config.parent / "inventory" / "devices.csv").exists()


def test_sync_refreshes_console_fields_reports_mismatches_and_writes_only_with_write(consoles: Consoles) -> None:
    inventory_csv = consoles.config.parent / "inventory" / "devices.csv"
    moved = consoles.google_record("CB0000001")
    moved["orgUnitPath"], moved["status"] = "/Lost", "DISABLED"
    consoles.google.state.version += 1
    laptop = consoles.intune_record("PF0000008")
    laptop["wiFiMacAddress"] = "0A1B2C3D4E5F"
    old_mac = inventory_of(consoles.config)["PF0000008"].macAddress
    # A console device nobody recorded, and a serial that is only a prefix of real ones (CB000001 ⊂ CB0000011).
    stray = {**consoles.google_record("CB0000002"), "deviceId": "feedc0de00000001", "serialNumber": "CB7777777"}
    consoles.google.state.devices[stray["deviceId"]] = stray
    consoles.google.state.order.append(stray["deviceId"])
    devices = list(load_inventory(inventory_csv).devices)
    ipad = next(d for d in devices if d.serialNumber == "DM0000010")
    ipad.deviceId = ""  # never synced
    devices.append(Device(serialNumber="CB000001", platform="chromeos", school="jefferson-high"))
    devices.append(Device(serialNumber="DM9999999", platform="ios", inventoryStatus="retired"))
    inventory_csv.write_text(write_inventory_csv(devices))
    before = inventory_csv.read_text()

    report = consoles.sync()
    updates = {(u["serial"], u["field"], u["old"], u["new"], u["console"]) for u in report["updates"]}
    assert updates == {
        ("CB0000001", "orgUnitPath", "/Students/Elementary/Lincoln/Grade-K", "/Lost", "google"),
        ("CB0000001", "status", "ACTIVE", "DISABLED", "google"),
        ("PF0000008", "macAddress", old_mac, "0a:1b:2c:3d:4e:5f", "intune"),
        ("DM0000010", "deviceId", "", consoles.intune_record("DM0000010")["id"], "intune"),
    }
    assert [r["serial"] for r in report["not_in_inventory"]] == ["CB7777777"]
    assert report["not_in_console"] == [{"serial": "CB000001", "platform": "chromeos", "console": "google"}]
    assert report["last_seen"]["CB0000001"] == {"console": "google", "at": "2026-11-20T14:03:11.000Z"}
    assert report["last_seen"]["PF0000008"]["console"] == "intune"
    assert inventory_csv.read_text() == before, "sync without --write changed the inventory"
    assert "@" not in json.dumps(report)

    written = consoles.sync("--write")
    assert written["written"] is True
    after = inventory_of(consoles.config)
    assert (after["CB0000001"].orgUnitPath, after["CB0000001"].status) == ("/Lost", "DISABLED")
    assert after["PF0000008"].macAddress == "0a:1b:2c:3d:4e:5f"
    assert after["CB0000001"].assignedStudent.endswith("@district.example")  # district fields kept
    assert "CB7777777" not in after  # reported, never added by a sync
    history = read_history(history_path(inventory_csv))
    assert {(h.serialNumber, h.field, h.new, h.source) for h in history} == {
        ("CB0000001", "orgUnitPath", "/Lost", "sync:google"),
        ("CB0000001", "status", "DISABLED", "sync:google"),
        ("PF0000008", "macAddress", "0a:1b:2c:3d:4e:5f", "sync:intune"),
        ("DM0000010", "deviceId", consoles.intune_record("DM0000010")["id"], "sync:intune"),
    }
    assert after["DM0000010"].deviceId == consoles.intune_record("DM0000010")["id"]
    assert consoles.sync("--write")["updates"] == []  # idempotent
    assert len(read_history(history_path(inventory_csv))) == 4


def test_sync_leaves_a_serial_with_two_console_records_alone(consoles: Consoles) -> None:
    twin = {**consoles.intune_record("PF0000008"), "id": "aaaaaaaa-0000-0000-0000-000000000001"}
    twin["wiFiMacAddress"] = "0A0A0A0A0A0A"
    consoles.graph.state.devices[twin["id"]] = twin
    report = consoles.sync("--write")
    assert report["ambiguous"] == [{"serial": "PF0000008", "console": "intune", "records": "2"}]
    assert report["updates"] == []
    assert inventory_of(consoles.config)["PF0000008"].macAddress != "0a:0a:0a:0a:0a:0a"
