"""Repairs and loaners at the counter: send a device to repair with a loaner, take it back, and what is late.

A school's loaner pool is its devices with inventoryStatus `loaner`; a free loaner has no `assignedStudent`
and no `loanFor`. `repair` marks the device `repair` (the student keeps it on record) and checks a loaner out
to the same student (`loanFor` = the device, `loanedOn`, `loanDue`); `give_back` reverses both. Each returns
the whole new device list and the history rows for every field that changed on either device, so the caller
writes the inventory once (all or nothing). Dates are counted by a `SchoolClock` the caller builds from the
RepairPolicy's calendar (this layer does not know calendars).

Which pool is nearest when a school's pool is empty: pools of the same level first (elementary, middle,
high: the level most of the school's devices have in their org unit path, `/Students/<Level>/...`), then
the pool with the most free loaners, then by name.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from orchestrator.core.errors import OrchestratorError
from orchestrator.inventory.devices import Device, Inventory
from orchestrator.inventory.edits import TRACKED, HistoryEntry

LOAN_FIELDS = ("assignedStudent", "loanFor", "loanedOn", "loanDue")
REPAIR_FIELDS = ("inventoryStatus", "repairSince", "repairReason")
HISTORY_FIELDS = tuple(dict.fromkeys((*TRACKED, *REPAIR_FIELDS, *LOAN_FIELDS)))
"""Every field a repair or a return may change; each change is a history row."""
NOT_REPAIRABLE = {"lost": "mark it found first", "stolen": "mark it found first", "retired": "it is retired"}


class LoanError(OrchestratorError):
    """A repair or return that cannot be done as asked (the message says what to do instead)."""


class SchoolClock(Protocol):
    """School days on the calendar of the RepairPolicy, per school."""

    def due(self, start: dt.date, school_days: int, school: str) -> dt.date: ...

    def late(self, due: dt.date, today: dt.date, school: str) -> int: ...


@dataclass(frozen=True)
class Terms:
    """RepairPolicy's targets, in school days."""

    turnaround: int
    loaner_due: int


@dataclass
class Handover:
    """What a repair or return changed: the new device list and the history rows, plus notes for the person."""

    devices: list[Device]
    history: list[HistoryEntry]
    device: Device
    loaners: list[Device] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def is_free(device: Device) -> bool:
    return device.inventoryStatus == "loaner" and not device.assignedStudent and not device.loanFor


def free_loaners(inventory: Inventory) -> dict[str, list[Device]]:
    """School → its free loaners (sorted by serial)."""
    pools: dict[str, list[Device]] = {}
    for device in sorted(inventory.devices, key=lambda d: d.serialNumber):
        if is_free(device):
            pools.setdefault(device.school, []).append(device)
    return pools


def school_levels(inventory: Inventory) -> dict[str, str]:
    """School → elementary / middle / high: the commonest `/Students/<Level>/` of its devices (absent if none)."""
    counts: dict[str, Counter[str]] = {}
    for device in inventory.devices:
        if device.school and device.orgUnitPath.startswith("/Students/") and device.orgUnitPath.count("/") >= 3:
            counts.setdefault(device.school, Counter())[device.orgUnitPath.split("/")[2].lower()] += 1
    return {school: levels.most_common(1)[0][0] for school, levels in counts.items()}


def nearest_pools(inventory: Inventory, school: str, limit: int = 3) -> list[tuple[str, int]]:
    """Other schools with free loaners, nearest first (same level, then most free, then name)."""
    levels = school_levels(inventory)
    level = levels.get(school, "")
    pools = [(s, len(d)) for s, d in free_loaners(inventory).items() if s and s != school]
    pools.sort(key=lambda p: (levels.get(p[0], "") != level, -p[1], p[0]))
    return pools[:limit]


def _history(old: Device, new: Device, *, source: str, actor: str, at: str) -> list[HistoryEntry]:
    return [
        HistoryEntry(at, old.serialNumber, f, getattr(old, f), getattr(new, f), source, actor)
        for f in HISTORY_FIELDS
        if getattr(old, f) != getattr(new, f)
    ]


def _device(inventory: Inventory, serial: str) -> Device:
    device = inventory.by_serial().get(serial)
    if device is None:
        raise LoanError(f"no device with serial {serial!r} in {inventory.file} (serials match exactly)")
    return device


def _pick_loaner(
    inventory: Inventory, device: Device, loaner: str | None, pool: str, checked_in: Mapping[str, str]
) -> Device:
    """The loaner named (free, in `pool`), or the pool's free loaner checked in longest ago (then lowest serial)."""
    if loaner is not None:
        chosen = _device(inventory, loaner)
        if chosen.serialNumber == device.serialNumber:
            raise LoanError(f"{loaner} cannot be its own loaner")
        if chosen.inventoryStatus != "loaner":
            raise LoanError(f"{loaner} is not a loaner (inventoryStatus {chosen.inventoryStatus})")
        if not is_free(chosen):
            raise LoanError(
                f"{loaner} is not free: on loan for {chosen.loanFor or 'another device'} since "
                f"{chosen.loanedOn or 'an unknown date'}"
            )
        if chosen.school != pool:
            raise LoanError(
                f"{loaner} belongs to the pool of {chosen.school or 'no school'}, not {pool}: to lend it to a "
                f"student of {device.school or 'no school'}, say so with --from-pool {chosen.school}"
            )
        return chosen
    schools = sorted({d.school for d in inventory.devices if d.school})
    if pool not in schools:
        raise LoanError(f"no school named {pool!r} in {inventory.file} (schools: {', '.join(schools)})")
    free = free_loaners(inventory).get(pool, [])
    if not free:
        total = sum(1 for d in inventory.devices if d.inventoryStatus == "loaner" and d.school == pool)
        nearest = nearest_pools(inventory, pool)
        where = ", ".join(f"{s} ({n} free)" for s, n in nearest) or "none: no school has a free loaner"
        raise LoanError(
            f"no free loaner at {pool} ({total} loaner(s), none free). Nearest pools with free loaners: {where}. "
            f"Use --from-pool SCHOOL, or --no-loaner"
        )
    return min(free, key=lambda d: (checked_in.get(d.serialNumber, ""), d.serialNumber))


def repair(
    inventory: Inventory,
    serial: str,
    *,
    today: dt.date,
    terms: Terms,
    clock: SchoolClock,
    reason: str = "",
    loaner: str | None = None,
    pool: str | None = None,
    lend: bool = True,
    checked_in: Mapping[str, str] | None = None,
    actor: str,
    at: str,
) -> Handover:
    """Mark `serial` in repair and (with `lend`) check a loaner out to its student, due in loaner_due days.

    `pool` is the school whose loaner is used (default: the device's school); a `loaner` named without `pool`
    must be in the device's own school. `checked_in` maps loaner serial → when it last came back (for the
    pick).
    """
    device = _device(inventory, serial)
    status = device.inventoryStatus
    if status in NOT_REPAIRABLE:
        raise LoanError(f"{serial} is {status}: {NOT_REPAIRABLE[status]} before sending it to repair")
    if status == "repair":
        raise LoanError(f"{serial} is already in repair (since {device.repairSince or 'an unknown date'})")
    if status == "loaner":
        raise LoanError(
            f"{serial} is a loaner: to repair it, take it out of the pool with `inventory set {serial} --status repair`"
        )
    notes: list[str] = []
    changed = replace(device, inventoryStatus="repair", repairSince=today.isoformat(), repairReason=reason)
    replaced = {device.serialNumber: changed}
    history = _history(device, changed, source="repair", actor=actor, at=at)
    lent: list[Device] = []
    if lend and not device.assignedStudent:
        if loaner is not None or pool is not None:
            raise LoanError(f"{serial} has no assigned student: there is nobody to lend a loaner to")
        notes.append(f"{serial} has no assigned student: no loaner checked out")
    elif lend:
        chosen = _pick_loaner(inventory, device, loaner, pool or device.school, checked_in or {})
        due = clock.due(today, terms.loaner_due, device.school)
        out = replace(
            chosen,
            assignedStudent=device.assignedStudent,
            loanFor=serial,
            loanedOn=today.isoformat(),
            loanDue=due.isoformat(),
        )
        replaced[chosen.serialNumber] = out
        history += _history(chosen, out, source=f"loan for {serial}", actor=actor, at=at)
        lent.append(out)
        if chosen.school != device.school:
            notes.append(f"loaner {chosen.serialNumber} comes from the pool of {chosen.school}")
    devices = [replaced.get(d.serialNumber, d) for d in inventory.devices]
    return Handover(devices=devices, history=history, device=changed, loaners=lent, notes=notes)


def give_back(inventory: Inventory, serial: str, *, actor: str, at: str) -> Handover:
    """`serial` is back from repair: active again; every loaner lent for it goes back to its pool.

    `serial` may also be a loaner on loan whose device is no longer in repair (set active by hand, or lent by
    hand without `loanFor`): that loaner alone goes back to its pool, so none stays out forever.
    """
    device = _device(inventory, serial)
    if device.inventoryStatus == "loaner" and (device.loanFor or device.assignedStudent):
        return _loaner_back(inventory, device, actor=actor, at=at)
    if device.inventoryStatus != "repair":
        raise LoanError(f"{serial} is not in repair (inventoryStatus {device.inventoryStatus})")
    changed = replace(device, inventoryStatus="active", repairSince="", repairReason="")
    replaced = {serial: changed}
    history = _history(device, changed, source="return", actor=actor, at=at)
    returned: list[Device] = []
    notes: list[str] = []
    for loaner in inventory.devices:
        if loaner.loanFor != serial:
            continue
        if loaner.inventoryStatus != "loaner":
            notes.append(f"loaner {loaner.serialNumber} is {loaner.inventoryStatus}: not returned to the pool")
            continue
        back = replace(loaner, **dict.fromkeys(LOAN_FIELDS, ""))
        replaced[loaner.serialNumber] = back
        history += _history(loaner, back, source=f"returned to pool (for {serial})", actor=actor, at=at)
        returned.append(back)
    devices = [replaced.get(d.serialNumber, d) for d in inventory.devices]
    return Handover(devices=devices, history=history, device=changed, loaners=returned, notes=notes)


def _loaner_back(inventory: Inventory, loaner: Device, *, actor: str, at: str) -> Handover:
    """A loaner back in its pool on its own, unless the device it stands in for is still in repair."""
    standing_for = inventory.by_serial().get(loaner.loanFor)
    if standing_for is not None and standing_for.inventoryStatus == "repair":
        raise LoanError(
            f"{loaner.serialNumber} is a loaner on loan for {loaner.loanFor}, which is still in repair: run "
            f"`inventory return {loaner.loanFor}` when it is back"
        )
    back = replace(loaner, **dict.fromkeys(LOAN_FIELDS, ""))
    why = f"{loaner.loanFor} is {standing_for.inventoryStatus}" if standing_for else "it stood in for no device"
    history = _history(loaner, back, source="returned to pool", actor=actor, at=at)
    devices = [back if d.serialNumber == loaner.serialNumber else d for d in inventory.devices]
    note = f"loaner {loaner.serialNumber} returned on its own ({why})"
    return Handover(devices=devices, history=history, device=back, loaners=[back], notes=[note])


@dataclass(frozen=True)
class Late:
    """One repair or loan out: when it started, when it is due, school days overdue (None: cannot tell why in
    `problem`)."""

    kind: str  # repair | loaner
    device: Device
    since: str
    due: str
    overdue: int | None
    problem: str = ""


def out_now(inventory: Inventory, *, today: dt.date, terms: Terms, clock: SchoolClock) -> list[Late]:
    """Every device in repair and every loaner on loan, with school days overdue (0 when not yet due).

    A repair without `repairSince`, a loaner lent without `loanDue` (set by hand), or one whose school days
    cannot be counted (a stale calendar feed, a date the calendar does not reach) is listed with overdue None
    and the reason, never dropped.
    """
    out: list[Late] = []
    by_serial = inventory.by_serial()
    for device in inventory.devices:
        if device.inventoryStatus == "repair":
            out.append(_repair_late(device, today, terms, clock))
        elif device.inventoryStatus == "loaner" and (device.loanFor or device.assignedStudent):
            if not device.loanDue:
                out.append(Late("loaner", device, device.loanedOn, "", None, "no loanDue: lent by hand?"))
                continue
            borrower_school = by_serial[device.loanFor].school if device.loanFor in by_serial else device.school
            try:
                late: int | None = clock.late(dt.date.fromisoformat(device.loanDue), today, borrower_school)
                problem = ""
            except OrchestratorError as exc:
                late, problem = None, str(exc)
            out.append(Late("loaner", device, device.loanedOn, device.loanDue, late, problem))
    return sorted(out, key=lambda e: (e.device.school, e.kind, e.device.serialNumber))


def _repair_late(device: Device, today: dt.date, terms: Terms, clock: SchoolClock) -> Late:
    if not device.repairSince:
        return Late("repair", device, "", "", None, "no repairSince: set by hand?")
    try:
        due = clock.due(dt.date.fromisoformat(device.repairSince), terms.turnaround, device.school)
        return Late("repair", device, device.repairSince, due.isoformat(), clock.late(due, today, device.school))
    except OrchestratorError as exc:
        return Late("repair", device, device.repairSince, "", None, str(exc))
