"""The technician's counter as use cases: repair with a loaner, return, what is overdue, and the audit's marking.

Each write is one `commit_inventory` (both devices, or every missing device, or nothing) with their history
rows. School days come from the one RepairPolicy's calendar (`schooltime.counting`), per school. Without
a RepairPolicy the commands that need due dates fail closed and say what to add.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from orchestrator.engine.journal import default_actor
from orchestrator.inventory.audit import AuditResult, mark_lost
from orchestrator.inventory.devices import Device, Inventory
from orchestrator.inventory.edits import HistoryEntry, settled_history
from orchestrator.inventory.loans import Handover, Late, LoanError, Terms, give_back, out_now, repair
from orchestrator.jobs.inventory import InventoryChanged, commit_inventory
from orchestrator.jobs.workspace import Workspace
from orchestrator.policy.models import RepairPolicy, SchoolCalendar
from orchestrator.schooltime.calendar import SchoolDays
from orchestrator.schooltime.counting import add_school_days, school_days_after

EXAMPLE_POLICY = (
    "kind: RepairPolicy, name: repairs, calendar: <your SchoolCalendar's name>, turnaround_school_days: 2, "
    "loaner_due_school_days: 10"
)


@dataclass
class CalendarClock:
    """School days on one SchoolCalendar (per school); remembers when a due date had to be capped."""

    days: SchoolDays
    notes: list[str] = field(default_factory=list)

    def due(self, start: dt.date, school_days: int, school: str) -> dt.date:
        due = add_school_days(self.days, start, school_days, school or None)
        if due.capped:
            note = (
                f"{school or 'district'}: {school_days} school days after {start.isoformat()} run past the end of "
                f"calendar {self.days.calendar.name}; due on its last class day {due.date.isoformat()}"
            )
            if note not in self.notes:
                self.notes.append(note)
        return due.date

    def late(self, due: dt.date, today: dt.date, school: str) -> int:
        return school_days_after(self.days, due, today, school or None)


@dataclass
class Rules:
    """The RepairPolicy in force and the clock on its calendar."""

    policy: RepairPolicy
    terms: Terms
    clock: CalendarClock


def repair_rules(ws: Workspace) -> Rules:
    """The RepairPolicy and its calendar; an error saying what to add when there is none.

    Loading the policies already refused a second RepairPolicy and a calendar name that names no SchoolCalendar
    (`policy.references`), with file:line.
    """
    found = ws.policies.of_kind(RepairPolicy)
    if not found:
        raise LoanError(
            f"no RepairPolicy in {ws.config.policies}: add one, e.g. policies/repair.yaml with {EXAMPLE_POLICY}"
        )
    policy = found[0][0]
    calendar = ws.policies.by_name(SchoolCalendar, policy.calendar)
    if calendar is None:  # only for a PolicySet built without the reference checks
        raise LoanError(f"RepairPolicy {policy.name}: no SchoolCalendar named {policy.calendar!r}")
    days = SchoolDays(calendar[0], ws.repo_root)
    terms = Terms(turnaround=policy.turnaround_school_days, loaner_due=policy.loaner_due_school_days)
    return Rules(policy=policy, terms=terms, clock=CalendarClock(days))


def today(ws: Workspace) -> dt.date:
    """Today in the district's time zone (a repair logged at 7 p.m. in Chicago is today's, not tomorrow's)."""
    return dt.datetime.now(ZoneInfo(ws.config.timezone)).date()


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _write(ws: Workspace, devices: list[Device], history: list[HistoryEntry]) -> None:
    """Save `devices` with `history` (jobs.inventory.commit_inventory: locked, never over another's change)."""
    try:
        commit_inventory(ws, devices, history)
    except InventoryChanged as exc:
        raise LoanError(str(exc)) from None


def _save(ws: Workspace, done: Handover) -> Handover:
    _write(ws, done.devices, done.history)
    return done


def checked_in(ws: Workspace) -> dict[str, str]:
    """Loaner serial → when it last came back to its pool (from the history), for picking the longest rested."""
    back: dict[str, str] = {}
    for entry in settled_history(ws.config.path(ws.config.inventory), ws.inventory.devices):
        if entry.field == "loanFor" and entry.old and not entry.new:
            back[entry.serialNumber] = max(back.get(entry.serialNumber, ""), entry.at)
    return back


@dataclass
class Repaired:
    """A repair done: what changed, when the device is due back from repair, and calendar notes."""

    done: Handover
    due: dt.date
    notes: list[str]


def repair_device(
    ws: Workspace,
    serial: str,
    *,
    reason: str = "",
    loaner: str | None = None,
    pool: str | None = None,
    lend: bool = True,
    on: dt.date | None = None,
    actor: str | None = None,
) -> Repaired:
    """Send `serial` to repair and lend a loaner (see inventory.loans.repair), in one write."""
    rules = repair_rules(ws)
    day = on or today(ws)
    done = repair(
        ws.inventory,
        serial,
        today=day,
        terms=rules.terms,
        clock=rules.clock,
        reason=reason,
        loaner=loaner,
        pool=pool,
        lend=lend,
        checked_in=checked_in(ws),
        actor=actor or default_actor(),
        at=_stamp(),
    )
    due = rules.clock.due(day, rules.terms.turnaround, done.device.school)
    return Repaired(_save(ws, done), due, rules.clock.notes)


def return_device(ws: Workspace, serial: str, *, actor: str | None = None) -> Handover:
    """`serial` is back from repair: active again, its loaner(s) back in the pool, in one write."""
    return _save(ws, give_back(ws.inventory, serial, actor=actor or default_actor(), at=_stamp()))


@dataclass
class OutReport:
    """Repairs and loans out as of `on`, per the RepairPolicy; `notes` from the calendar (capped due dates)."""

    on: dt.date
    policy: RepairPolicy
    entries: list[Late]
    notes: list[str]

    def overdue(self, school: str | None = None) -> list[Late]:
        """Past due (school days overdue > 0) or impossible to tell (overdue None)."""
        return [e for e in self.entries if (school is None or e.device.school == school) and e.overdue != 0]


def out_report(ws: Workspace, *, on: dt.date | None = None) -> OutReport:
    rules = repair_rules(ws)
    day = on or today(ws)
    entries = out_now(ws.inventory, today=day, terms=rules.terms, clock=rules.clock)
    return OutReport(on=day, policy=rules.policy, entries=entries, notes=rules.clock.notes)


def mark_missing_lost(ws: Workspace, result: AuditResult, *, actor: str | None = None) -> list[HistoryEntry]:
    """Mark every missing device of an audit lost (the path `inventory set --status lost` takes), in one write."""
    devices, history = mark_lost(
        Inventory(ws.inventory.file, ws.inventory.devices), result, actor=actor or default_actor()
    )
    if history:
        _write(ws, devices, history)
    return history
