"""`inventory sync`: refresh inventory rows from what the consoles report, and list what does not line up.

Google: one bulk `chromeosdevices.list` (pages of 300, `fields`); Intune: the raw `managedDevices` list
($top=1000, $select). Rows are matched by **exact** serial equality, never by a partial query; a serial held by
several console records is reported as ambiguous and left alone.

Console-owned columns (all GAM names), refreshed with a history row each: `deviceId` (Google's deviceId,
Intune's managedDevice id), `orgUnitPath` and `status` (Chromebooks), `macAddress` (Intune `wiFiMacAddress`,
Google `macAddress`). Readings, stored without history rows (they change on every sync and would turn
history.csv into noise): `lastSync` (Google `lastSync`, Intune `lastSyncDateTime`; UTC, `YYYY-MM-DDTHH:MM:SSZ`)
and `autoUpdateExpiration` (Chromebooks: the date of `autoUpdateThrough`, else of the deprecated
`autoUpdateExpiration`, int64 milliseconds since the epoch as a string; `YYYY-MM-DD`, UTC).

Never copied from a console: the write-back columns (asset tag, assignedStudent, annotatedLocation, notes).
The inventory is the district's record; where a console differs on a field an InventoryWriteBack policy
manages, the device is listed (field names only) and `plan`/`apply` fix it. Intune's primary user is
read-only for us: a managed device whose `userPrincipalName` differs from the row's `assignedStudent` is
listed (both redacted by the caller unless --show-pii).

Also reported: console devices missing from the inventory, and inventory rows missing from the console their
platform belongs to (chromeos → google, windows/ios → intune; retired rows are expected to be gone).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from orchestrator.inventory.devices import Device, Inventory
from orchestrator.inventory.edits import HistoryEntry
from orchestrator.policy.grammar import check_ou_path

CONSOLE_OF_PLATFORM = {"chromeos": "google", "windows": "intune", "ios": "intune"}
SYNCED = {"google": ("deviceId", "orgUnitPath", "status", "macAddress"), "intune": ("deviceId", "macAddress")}
READINGS = ("lastSync", "autoUpdateExpiration")
NOT_EXPECTED_IN_CONSOLE = ("retired",)


@dataclass(frozen=True, slots=True)
class FieldUpdate:
    serial: str
    field: str
    old: str
    new: str
    console: str


@dataclass
class SyncResult:
    consoles: list[str]
    updates: list[FieldUpdate] = field(default_factory=list)
    readings_changed: int = 0  # lastSync, autoUpdateExpiration: stored, counted, no history rows
    annotation_drift: list[dict[str, str]] = field(default_factory=list)  # serial, console, fields (names only)
    user_mismatches: list[dict[str, str]] = field(default_factory=list)  # serial, assignedStudent, userPrincipalName
    last_seen: dict[str, tuple[str, str]] = field(default_factory=dict)  # serial → (console, timestamp)
    not_in_inventory: list[dict[str, str]] = field(default_factory=list)
    not_in_console: list[dict[str, str]] = field(default_factory=list)
    ambiguous: list[dict[str, str]] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)

    def history(self, *, actor: str, at: str | None = None) -> list[HistoryEntry]:
        """One history row per changed field (deviceId included), source `sync:<console>`."""
        at = at or datetime.now(UTC).isoformat(timespec="seconds")
        return [HistoryEntry(at, u.serial, u.field, u.old, u.new, f"sync:{u.console}", actor) for u in self.updates]

    def to_json(self) -> dict[str, Any]:
        return {
            "consoles": self.consoles,
            "updates": [
                {"serial": u.serial, "field": u.field, "old": u.old, "new": u.new, "console": u.console}
                for u in self.updates
            ],
            "readings_changed": self.readings_changed,
            "annotation_drift": self.annotation_drift,
            "user_mismatches": self.user_mismatches,
            "last_seen": {s: {"console": c, "at": t} for s, (c, t) in sorted(self.last_seen.items())},
            "not_in_inventory": self.not_in_inventory,
            "not_in_console": self.not_in_console,
            "ambiguous": self.ambiguous,
        }


_BARE_MAC = re.compile(r"[0-9a-f]{12}")
_UTC_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")  # what both consoles send


def _mac(raw: str | None) -> str:
    """Console MAC (GAM/Google bare hex, Intune upper-case bare hex, or colon form) → inventory form, or ""."""
    text = (raw or "").strip().lower().replace("-", "").replace(":", "")
    if not _BARE_MAC.fullmatch(text):
        return ""
    return ":".join((text[0:2], text[2:4], text[4:6], text[6:8], text[8:10], text[10:12]))


@lru_cache(maxsize=4096)  # a fleet has a few hundred org units, and 100,000 records name them
def _ou(raw: str | None) -> str:
    try:
        return check_ou_path(raw) if raw else ""
    except ValueError:
        return ""


def _when(raw: Any) -> str:
    """A console timestamp (RFC 3339, any offset or fraction) → UTC `YYYY-MM-DDTHH:MM:SSZ`, or "" if unreadable."""
    text = str(raw or "").strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return ""
    if moment.tzinfo is None:
        return ""
    if _UTC_STAMP.fullmatch(text):  # already UTC: its first 19 characters are the answer (a third of the cost)
        return text[:19] + "Z"
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def aue_date(record: Mapping[str, Any]) -> str:
    """The auto-update expiration date (UTC, `YYYY-MM-DD`) of one chromeosdevices record, or "".

    `autoUpdateThrough` (a timestamp) first; else the deprecated `autoUpdateExpiration`, int64 milliseconds
    since the epoch as a string (directory_v1 discovery: `"format": "int64", "type": "string"`).
    """
    through = str(record.get("autoUpdateThrough") or "").strip()
    if through:
        if len(through) == 10:
            try:
                return date.fromisoformat(through).isoformat()
            except ValueError:
                return ""
        return _when(through)[:10]
    millis = str(record.get("autoUpdateExpiration") or "").strip()
    if not millis.isdigit():
        return ""
    try:
        return datetime.fromtimestamp(int(millis) / 1000, UTC).date().isoformat()
    except (OverflowError, ValueError, OSError):
        return ""


def google_view(record: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """(synced fields and readings, last seen as the console wrote it) of one chromeosdevices record."""
    values = {
        "deviceId": str(record.get("deviceId") or ""),
        "orgUnitPath": _ou(record.get("orgUnitPath")),
        "status": str(record.get("status") or ""),
        "macAddress": _mac(record.get("macAddress")),
        "lastSync": _when(record.get("lastSync")),
        "autoUpdateExpiration": aue_date(record),
    }
    return values, str(record.get("lastSync") or "")


def intune_view(record: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    values = {
        "deviceId": str(record.get("id") or ""),
        "macAddress": _mac(record.get("wiFiMacAddress")),
        "lastSync": _when(record.get("lastSyncDateTime")),
    }
    return values, str(record.get("lastSyncDateTime") or "")


def _index(records: list[Mapping[str, Any]], console: str) -> dict[str, list[Mapping[str, Any]]]:
    """The records by serial; `records` is emptied, so that each record is freed once its row is matched."""
    by_serial: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        serial = str(record.get("serialNumber") or "")
        if serial:
            by_serial[serial].append(record)
    records.clear()
    if console == "google":  # a deprovisioned record next to a live one is history, not a second device
        for serial in [serial for serial, same in by_serial.items() if len(same) > 1]:
            live = [r for r in by_serial[serial] if r.get("status") != "DEPROVISIONED"]
            by_serial[serial] = live or by_serial[serial]
    return by_serial


def sync(
    inventory: Inventory,
    consoles: Mapping[str, list[Mapping[str, Any]]],
    write_backs: Mapping[str, Mapping[str, str]] | None = None,
) -> SyncResult:
    """Compare the inventory with console records (`{"google": [...], "intune": [...]}`); no I/O.

    The record lists are consumed (emptied): a record is let go once its row is refreshed, so a 100,000-device
    fleet's records and its refreshed rows are never all held at once.

    `write_backs`: serial → the Google fields the inventory is desired state for (inventory/writeback.py);
    a console that differs on one of them is listed in `annotation_drift`, never copied.
    """
    write_backs = write_backs or {}
    views = {"google": google_view, "intune": intune_view}
    result = SyncResult(consoles=sorted(consoles))
    indexes = {name: _index(records, name) for name, records in consoles.items()}
    known = {d.serialNumber for d in inventory.devices}
    devices: list[Device] = []
    for device in inventory.devices:
        console = CONSOLE_OF_PLATFORM.get(device.platform)
        if console not in indexes:
            devices.append(device)
            continue
        matches = indexes[console].pop(device.serialNumber, [])
        if not matches:
            if device.inventoryStatus not in NOT_EXPECTED_IN_CONSOLE:
                result.not_in_console.append(
                    {"serial": device.serialNumber, "platform": device.platform, "console": console}
                )
            devices.append(device)
            continue
        if len(matches) > 1:
            result.ambiguous.append({"serial": device.serialNumber, "console": console, "records": str(len(matches))})
            devices.append(device)
            continue
        values, seen = views[console](matches[0])
        if seen:
            result.last_seen[device.serialNumber] = (console, seen)
        changes = {
            name: value
            for name, value in values.items()
            if (name in SYNCED[console] or name in READINGS) and value and value != getattr(device, name)
        }
        for name, value in changes.items():
            if name in READINGS:
                result.readings_changed += 1
            else:
                result.updates.append(FieldUpdate(device.serialNumber, name, getattr(device, name), value, console))
        _compare_people(result, device, console, matches[0], write_backs.get(device.serialNumber, {}))
        devices.append(device.updated(changes) if changes else device)
    for console, index in sorted(indexes.items()):  # what is left: serials no row of this console's platforms has
        for serial, records in sorted(index.items()):
            if serial not in known:
                values, seen = views[console](records[0])
                result.not_in_inventory.append(
                    {
                        "serial": serial,
                        "console": console,
                        "deviceId": values["deviceId"],
                        "orgUnitPath": values.get("orgUnitPath", ""),
                        "lastSeen": seen,
                    }
                )
    result.devices = devices
    return result


def _compare_people(
    result: SyncResult, device: Device, console: str, record: Mapping[str, Any], wanted: Mapping[str, str]
) -> None:
    """Write-back drift (Google: managed fields that differ) and Intune primary users that differ."""
    if console == "google":
        differ = sorted(name for name, value in wanted.items() if str(record.get(name) or "") != value)
        if differ:
            result.annotation_drift.append(
                {"serial": device.serialNumber, "console": console, "fields": ", ".join(differ)}
            )
    elif console == "intune" and device.assignedStudent:
        user = str(record.get("userPrincipalName") or "")
        if user.casefold() != device.assignedStudent.casefold():  # UPNs compare without case
            result.user_mismatches.append(
                {"serial": device.serialNumber, "assignedStudent": device.assignedStudent, "userPrincipalName": user}
            )
