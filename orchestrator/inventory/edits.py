"""Changing the inventory: GAM imports, status changes, and the append-only device history.

Every change to a tracked field (student, user, status, OU, MAC, asset tag) is appended to
`inventory/history.csv`, so who had a device and when it was lost, repaired or swapped survives any
later reassignment.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.core.errors import Diagnostic, PolicyError
from orchestrator.inventory.devices import INVENTORY_STATUSES, Device, Inventory
from orchestrator.policy.grammar import check_mac, check_ou_path, check_serial

TRACKED = (
    "assignedStudent",
    "annotatedUser",
    "inventoryStatus",
    "orgUnitPath",
    "macAddress",
    "annotatedAssetId",
    "school",
    "status",
)
HISTORY_COLUMNS = ("at", "serialNumber", "field", "old", "new", "source", "actor")
GAM_COLUMNS = ("deviceId", "serialNumber", "annotatedAssetId", "annotatedUser", "orgUnitPath", "status", "macAddress")


@dataclass(frozen=True)
class HistoryEntry:
    at: str
    serialNumber: str
    field: str
    old: str
    new: str
    source: str
    actor: str


def history_path(inventory_path: Path) -> Path:
    return inventory_path.with_name("history.csv")


def append_history(path: Path, entries: list[HistoryEntry]) -> None:
    if not entries:
        return
    new_file = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        if new_file:
            writer.writeheader()
        for entry in entries:
            writer.writerow(entry.__dict__)


def pending_history_path(inventory_path: Path) -> Path:
    """History rows of a write in progress: staged before the inventory is replaced, appended after."""
    return inventory_path.with_name("history.csv.pending")


def stage_history(inventory_path: Path, entries: list[HistoryEntry]) -> None:
    """Write `entries` to the pending file (flushed to disk) before the inventory they describe is replaced."""
    staged = pending_history_path(inventory_path)
    staged.unlink(missing_ok=True)
    if entries:
        append_history(staged, entries)
        with staged.open("rb+") as handle:
            os.fsync(handle.fileno())


def settle_history(inventory_path: Path, devices: list[Device]) -> int:
    """Finish a write a crash interrupted: staged rows go to the history when the inventory `devices` hold what
    they say (the inventory was replaced), and are dropped when it does not (it never was). Returns rows kept."""
    staged = pending_history_path(inventory_path)
    if not staged.exists():
        return 0
    entries = read_history(staged)
    written = _held_by(entries, devices)
    if written:
        append_history(history_path(inventory_path), entries)
    staged.unlink()
    return len(entries) if written else 0


def settled_history(inventory_path: Path, devices: list[Device]) -> list[HistoryEntry]:
    """The history as the next write will leave it: with a crashed write's staged rows when the inventory holds
    what they say (so a loss dated by a pending row is seen before that write happens), read-only."""
    entries = read_history(history_path(inventory_path))
    staged = read_history(pending_history_path(inventory_path))
    return entries + staged if staged and _held_by(staged, devices) else entries


def _held_by(entries: list[HistoryEntry], devices: list[Device]) -> bool:
    """Whether `devices` hold every field's last value in `entries` (the inventory they describe was written)."""
    by_serial = {d.serialNumber: d for d in devices}
    final: dict[tuple[str, str], str] = {(e.serialNumber, e.field): e.new for e in entries}
    return all(getattr(by_serial.get(serial), name, None) == value for (serial, name), value in final.items())


def read_history(path: Path, serial: str | None = None) -> list[HistoryEntry]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [HistoryEntry(**{c: row.get(c, "") for c in HISTORY_COLUMNS}) for row in csv.DictReader(handle)]
    return [r for r in rows if serial is None or r.serialNumber == serial]


def _diff_fields(old: Device, new: Device, source: str, actor: str, at: str) -> list[HistoryEntry]:
    return [
        HistoryEntry(at, old.serialNumber, f, getattr(old, f), getattr(new, f), source, actor)
        for f in TRACKED
        if getattr(old, f) != getattr(new, f)
    ]


def parse_gam_csv(file: str, text: str) -> list[dict[str, str]]:
    """Rows of a `gam print cros` CSV (camelCase columns; extra columns ignored; orgUnitId as id:...)."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "serialNumber" not in header:
        raise PolicyError(
            [
                Diagnostic(
                    file,
                    1,
                    "serialNumber",
                    "column missing from the GAM export",
                    "`gam print cros fields serialnumber,...`",
                )
            ]
        )
    problems: list[Diagnostic] = []
    rows: list[dict[str, str]] = []
    for index, row in enumerate(reader):
        line = index + 2
        values = {c: (row.get(c) or "").strip() for c in GAM_COLUMNS}
        try:
            values["serialNumber"] = check_serial(values["serialNumber"])
            if values["orgUnitPath"]:
                values["orgUnitPath"] = check_ou_path(values["orgUnitPath"])
            if values["macAddress"]:
                mac = values["macAddress"].lower()
                if ":" not in mac and "-" not in mac and len(mac) == 12:  # GAM prints bare hex
                    mac = ":".join(mac[i : i + 2] for i in range(0, 12, 2))
                values["macAddress"] = check_mac(mac)
        except ValueError as exc:
            problems.append(Diagnostic(file, line, "row", str(exc)))
            continue
        rows.append(values)
    if problems:
        raise PolicyError(problems)
    return rows


def merge_gam(
    inventory: Inventory, rows: list[dict[str, str]], *, source: str, actor: str
) -> tuple[list[Device], list[HistoryEntry], int, int]:
    """Update matching serials (exactly) and append new Chromebooks; keep district-only fields."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    by_serial = {d.serialNumber: d for d in inventory.devices}
    devices = list(inventory.devices)
    history: list[HistoryEntry] = []
    added = updated = 0
    for row in rows:
        current = by_serial.get(row["serialNumber"])
        if current is None:
            device = Device(platform="chromeos", **{k: v for k, v in row.items() if v})
            devices.append(device)
            history.append(HistoryEntry(at, device.serialNumber, "created", "", "from GAM", source, actor))
            added += 1
            continue
        changed = replace(current, **{k: v for k, v in row.items() if v})
        entries = _diff_fields(current, changed, source, actor, at)
        if entries:
            devices[devices.index(current)] = changed
            history += entries
            updated += 1
    return devices, history, added, updated


def set_fields(
    inventory: Inventory, serial: str, changes: dict[str, str], *, source: str, actor: str
) -> tuple[list[Device], list[HistoryEntry]]:
    """Change one device (exact serial), e.g. mark it lost or assign it to another student."""
    if "inventoryStatus" in changes and changes["inventoryStatus"] not in INVENTORY_STATUSES:
        raise PolicyError(
            [
                Diagnostic(
                    inventory.file,
                    0,
                    "inventoryStatus",
                    f"unknown status {changes['inventoryStatus']!r}",
                    "one of " + ", ".join(INVENTORY_STATUSES),
                )
            ]
        )
    by_serial = inventory.by_serial()
    if serial not in by_serial:
        raise PolicyError(
            [
                Diagnostic(
                    inventory.file, 0, "serialNumber", f"no device with serial {serial!r}", "serials match exactly"
                )
            ]
        )
    current = by_serial[serial]
    changed = replace(current, **changes)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    devices = [changed if d is current else d for d in inventory.devices]
    return devices, _diff_fields(current, changed, source, actor, at)
