"""The morning tech check per school: what the site technician looks at before the first bell.

Sections (each row one device):
- `locked`: lost or stolen devices still locked (from the newest real lockdown report in the reports folder)
  that the inventory still marks lost or stolen; `when` says whether last night's run locked it or an earlier one;
- `released`: devices last night's lockdown released (found), with their status now;
- `repairs`: every device in repair, with its due date and school days overdue;
- `loaners`: every loaner on loan, with the device it stands in for, due date and school days overdue;
- `not_seen`: devices the consoles have not seen for more than N days (`lastSync`, written by `inventory
  sync`); lost, stolen, retired, in-repair and pooled loaners are expected to be quiet and are left out,
  devices with no last-seen time are counted per school, never listed as seen.

A section that cannot be computed (no lockdown report yet, no RepairPolicy) says so in `notes` and in
`unknown` (section → why), and is never shown as empty. Students are redacted unless `show_pii`; repair
reasons are free text and count as notes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from orchestrator.core.errors import OrchestratorError
from orchestrator.core.redact import redact_field
from orchestrator.inventory.devices import Device
from orchestrator.jobs.lifecycle import out_report, today
from orchestrator.jobs.workspace import Workspace
from orchestrator.policy.models import RepairPolicy

SECTIONS = {
    "locked": "Locked and still lost",
    "released": "Found and released last night",
    "repairs": "Repairs out",
    "loaners": "Loaners out",
    "not_seen": "Not seen",
}
QUIET = ("lost", "stolen", "retired", "repair")
LOCKED_OUTCOMES = ("locked", "quarantine")
DEFAULT_NOT_SEEN_DAYS: int = RepairPolicy.model_fields["not_seen_days"].default
"""Without a RepairPolicy (or --not-seen-days): the policy's own default."""
_NIGHT = ("locked", "released")
STALE_AFTER = dt.timedelta(hours=36)
"""A lockdown report older than this (before the check's date) is not "last night": the note says so."""


@dataclass
class TechCheck:
    on: dt.date
    not_seen_days: int
    schools: list[str]
    rows: dict[str, list[dict[str, Any]]]
    no_last_seen: Counter[str] = field(default_factory=Counter)
    lockdown_file: str = ""
    notes: list[str] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)
    """Sections not computed, with the note saying why: shown as that note, never as an empty list."""

    def cannot(self, note: str, *sections: str) -> None:
        self.notes.append(note)
        self.unknown.update(dict.fromkeys(sections, note))

    def of(self, section: str, school: str) -> list[dict[str, Any]]:
        return [r for r in self.rows[section] if r["school"] == school]

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.on.isoformat(),
            "not_seen_days": self.not_seen_days,
            "lockdown_report": self.lockdown_file,
            "notes": self.notes,
            "not_computed": self.unknown,
            "schools": {
                school: {
                    **{section: self.of(section, school) for section in SECTIONS},
                    "no_last_seen": self.no_last_seen[school],
                }
                for school in self.schools
            },
        }


def _row(device: Device, show_pii: bool, **extra: Any) -> dict[str, Any]:
    student = device.assignedStudent
    return {
        "school": device.school or "unassigned",
        "serial": device.serialNumber,
        "platform": device.platform,
        "asset": device.annotatedAssetId,
        "student": student if show_pii else redact_field("student", student),
        "status": device.inventoryStatus,
        **extra,
    }


def newest_lockdown(folder: Path) -> tuple[dict[str, Any] | None, str]:
    """The newest real (not dry-run) lockdown JSON report and its file name."""
    files = sorted(p for p in folder.glob("lockdown-*.json") if "-dry-run" not in p.name)
    if not files:
        return None, ""
    return json.loads(files[-1].read_text()), files[-1].name


def _stamp_of(name: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(name.removeprefix("lockdown-").removesuffix(".json"), "%Y-%m-%dT%H%M%SZ").replace(
            tzinfo=dt.UTC
        )
    except ValueError:
        return None


def _lockdown_rows(check: TechCheck, ws: Workspace, show_pii: bool, tz: ZoneInfo) -> None:
    folder = ws.config.path(ws.config.reports)
    try:
        report, name = newest_lockdown(folder)
    except (OSError, ValueError) as exc:  # a report being written right now, or damaged: say so, list nothing
        check.cannot(f"cannot read the newest lockdown report in {folder}: {exc}; locked/released not known", *_NIGHT)
        return
    if report is None:
        note = f"no lockdown report in {folder}: locked/released not known (run `orchestrator lockdown`)"
        check.cannot(note, *_NIGHT)
        return
    check.lockdown_file = name
    stamp = _stamp_of(name)
    morning = dt.datetime.combine(check.on, dt.time(8), tzinfo=tz)
    if stamp is None or morning - stamp > STALE_AFTER:
        check.notes.append(f"the newest lockdown report {name} is not from last night")
    by_serial = ws.inventory.by_serial()
    tonight = {e["serial"]: e.get("outcome", "") for e in report.get("devices", [])}
    for entry in report.get("still_locked", []):
        device = by_serial.get(entry["serial"])
        if device is None or device.inventoryStatus not in ("lost", "stolen"):
            continue
        when = "last night" if tonight.get(entry["serial"]) in LOCKED_OUTCOMES else "earlier"
        check.rows["locked"].append(_row(device, show_pii, when=when, detail=", ".join(entry.get("locked_on", []))))
    for serial, outcome in tonight.items():
        device = by_serial.get(serial)
        if outcome == "released" and device is not None:
            check.rows["released"].append(_row(device, show_pii, detail="released"))


def _loan_rows(check: TechCheck, ws: Workspace, show_pii: bool) -> None:
    try:
        out = out_report(ws, on=check.on)
    except OrchestratorError as exc:
        check.cannot(f"repairs and loaners not computed: {exc}", "repairs", "loaners")
        return
    check.notes += out.notes
    for entry in out.entries:
        reason = entry.device.repairReason if entry.kind == "repair" else f"for {entry.device.loanFor}"
        if entry.kind == "repair" and not show_pii:
            reason = redact_field("notes", reason)
        row = _row(
            entry.device,
            show_pii,
            since=entry.since,
            due=entry.due,
            school_days_overdue="unknown" if entry.overdue is None else entry.overdue,
            detail=entry.problem or reason,
            problem=entry.problem,
        )
        check.rows["repairs" if entry.kind == "repair" else "loaners"].append(row)


def _seen(value: str, tz: ZoneInfo) -> dt.date | None:
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(tz).date()


def _not_seen_rows(check: TechCheck, ws: Workspace, show_pii: bool, tz: ZoneInfo) -> None:
    for device in ws.inventory.devices:
        pooled = device.inventoryStatus == "loaner" and not device.loanFor and not device.assignedStudent
        if device.inventoryStatus in QUIET or pooled or device.school not in check.schools:
            continue
        seen = _seen(device.lastSync, tz) if device.lastSync else None
        if seen is None:
            check.no_last_seen[device.school or "unassigned"] += 1
            continue
        days = (check.on - seen).days
        if days > check.not_seen_days:
            check.rows["not_seen"].append(_row(device, show_pii, last_seen=device.lastSync, days=days))
    check.rows["not_seen"].sort(key=lambda r: (r["school"], -r["days"], r["serial"]))


def tech_check(
    ws: Workspace,
    *,
    school: str | None = None,
    on: dt.date | None = None,
    not_seen_days: int | None = None,
    show_pii: bool = False,
) -> TechCheck:
    """Gather the morning tech check for every school (or `school`) as of `on` (default: today)."""
    schools = sorted({d.school for d in ws.inventory.devices if d.school})
    if school is not None:
        if school not in schools:
            raise OrchestratorError(f"no device of school {school!r} in the inventory (schools: {', '.join(schools)})")
        schools = [school]
    tz = ZoneInfo(ws.config.timezone)
    day = on or today(ws)
    if not_seen_days is None:
        from_policy = [m.not_seen_days for m, _ in ws.policies.of_kind(RepairPolicy)]
        not_seen_days = from_policy[0] if len(from_policy) == 1 else DEFAULT_NOT_SEEN_DAYS
    check = TechCheck(on=day, not_seen_days=not_seen_days, schools=schools, rows={s: [] for s in SECTIONS})
    _lockdown_rows(check, ws, show_pii, tz)
    _loan_rows(check, ws, show_pii)
    _not_seen_rows(check, ws, show_pii, tz)
    for section in ("locked", "released", "repairs", "loaners"):
        check.rows[section] = sorted(
            (r for r in check.rows[section] if r["school"] in schools), key=lambda r: (r["school"], r["serial"])
        )
    return check
