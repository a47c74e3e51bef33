"""`inventory sync`: refresh inventory rows from what the consoles report, and list what does not line up.

Google: one bulk `chromeosdevices.list` (pages of 300, BASIC projection, `fields`); Intune: the raw
`managedDevices` list ($top=1000, $select). Rows are matched by **exact** serial equality, never by a partial
query; a serial held by several console records is reported as ambiguous and left alone.

Refreshed columns (all GAM names): `deviceId` (Google's deviceId, Intune's managedDevice id), `orgUnitPath`
and `status` (Chromebooks), `macAddress` (Intune `wiFiMacAddress`; Google only returns it outside the BASIC
projection, so Chromebook MACs come from `inventory import --from-gam`). Last-seen (`lastSync` for Chrome,
`lastSyncDateTime` for Intune) is shown in the sync report only and deliberately not stored: it changes on
every sync, would turn history.csv into noise, and the inventory's columns stay exactly GAM's + the district's.

Also reported: console devices missing from the inventory, and inventory rows missing from the console their
platform belongs to (chromeos → google, windows/ios → intune; retired rows are expected to be gone).
Nothing here prints or stores a user: console user fields are never requested.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from orchestrator.inventory.devices import Device, Inventory
from orchestrator.inventory.edits import HistoryEntry
from orchestrator.policy.grammar import check_mac, check_ou_path

CONSOLE_OF_PLATFORM = {"chromeos": "google", "windows": "intune", "ios": "intune"}
SYNCED = {"google": ("deviceId", "orgUnitPath", "status", "macAddress"), "intune": ("deviceId", "macAddress")}
NOT_EXPECTED_IN_CONSOLE = ("retired",)


@dataclass(frozen=True)
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
            "updates": [u.__dict__ for u in self.updates],
            "last_seen": {s: {"console": c, "at": t} for s, (c, t) in sorted(self.last_seen.items())},
            "not_in_inventory": self.not_in_inventory,
            "not_in_console": self.not_in_console,
            "ambiguous": self.ambiguous,
        }


def _mac(raw: str | None) -> str:
    """Console MAC (GAM/Google bare hex, Intune upper-case bare hex, or colon form) → inventory form, or ""."""
    text = (raw or "").strip().lower().replace("-", "").replace(":", "")
    if len(text) != 12:
        return ""
    try:
        return check_mac(":".join(text[i : i + 2] for i in range(0, 12, 2)))
    except ValueError:
        return ""


def _ou(raw: str | None) -> str:
    try:
        return check_ou_path(raw) if raw else ""
    except ValueError:
        return ""


def google_view(record: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """(synced fields, last seen) of one chromeosdevices record."""
    values = {
        "deviceId": str(record.get("deviceId") or ""),
        "orgUnitPath": _ou(record.get("orgUnitPath")),
        "status": str(record.get("status") or ""),
        "macAddress": _mac(record.get("macAddress")),
    }
    return values, str(record.get("lastSync") or "")


def intune_view(record: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    values = {"deviceId": str(record.get("id") or ""), "macAddress": _mac(record.get("wiFiMacAddress"))}
    return values, str(record.get("lastSyncDateTime") or "")


def _index(records: Iterable[Mapping[str, Any]], console: str) -> dict[str, list[Mapping[str, Any]]]:
    by_serial: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        serial = str(record.get("serialNumber") or "")
        if serial:
            by_serial[serial].append(record)
    if console == "google":  # a deprovisioned record next to a live one is history, not a second device
        for serial, same in list(by_serial.items()):
            live = [r for r in same if r.get("status") != "DEPROVISIONED"]
            by_serial[serial] = live or same
    return by_serial


def sync(inventory: Inventory, consoles: Mapping[str, Iterable[Mapping[str, Any]]]) -> SyncResult:
    """Compare the inventory with console records (`{"google": [...], "intune": [...]}`); pure, no I/O."""
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
        matches = indexes[console].get(device.serialNumber, [])
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
            if name in SYNCED[console] and value and value != getattr(device, name)
        }
        for name, value in changes.items():
            result.updates.append(FieldUpdate(device.serialNumber, name, getattr(device, name), value, console))
        devices.append(replace(device, **changes) if changes else device)
    for console, index in sorted(indexes.items()):
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
