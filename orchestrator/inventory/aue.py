"""Chromebooks by auto-update expiration (AUE), per school and year, so that replacements can be budgeted.

The date is the inventory's `autoUpdateExpiration` column (written by `inventory sync` from the Directory
API). A Chromebook without one is counted under year `unknown`, never dropped; retired devices are left out.
A device whose AUE is on or before `today` is expired (it no longer gets ChromeOS updates).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from orchestrator.inventory.devices import Device, Inventory

UNKNOWN = "unknown"


@dataclass
class AueGroup:
    school: str
    year: str  # "2027", or "unknown"
    devices: list[Device] = field(default_factory=list)
    expired: int = 0

    @property
    def count(self) -> int:
        return len(self.devices)


def aue_groups(inventory: Inventory, today: dt.date, school: str | None = None) -> list[AueGroup]:
    """One group per (school, AUE year), sorted by school then year (unknown last)."""
    groups: dict[tuple[str, str], AueGroup] = {}
    for device in inventory.devices:
        if device.platform != "chromeos" or device.inventoryStatus == "retired":
            continue
        if school is not None and device.school != school:
            continue
        aue = device.autoUpdateExpiration
        year = aue[:4] if aue else UNKNOWN
        name = device.school or "unassigned"
        group = groups.setdefault((name, year), AueGroup(name, year))
        group.devices.append(device)
        group.expired += bool(aue) and dt.date.fromisoformat(aue) <= today
    return sorted(groups.values(), key=lambda g: (g.school, g.year == UNKNOWN, g.year))
