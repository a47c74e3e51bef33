"""What the principals' site shows, gathered from the workspace, the journal and the reports folder (read only).

`gather_site` collects everything `orchestrator report --html DIR` renders (no click, no rich, no HTML here):
the district status per backend (from a saved plan when one is given, else from the journal's last apply),
the last apply and the last lockdown, one school-year calendar per school (class days, days without
students, blackouts, the maintenance windows that opened and what ran in them), the latest lockdown report
(devices acted on and the ones still locked) and the latest plan (the plan file, else the last run).

Nothing is written: the journal is opened read-only (a report never migrates or locks it) and calendar feeds
are read from their cache, never fetched. Students are never carried: the lockdown report's student column
is dropped and every other string goes through `redact`.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.core.redact import redact, redact_text
from orchestrator.core.resources import ResourceId
from orchestrator.engine.plan import Plan
from orchestrator.jobs.workspace import Workspace
from orchestrator.schooltime.calendar import SchoolDays
from orchestrator.schooltime.windows import WindowSchedule, build_school_days, build_window_schedules

MAX_CHANGES = 200
"""Plan changes listed on the site; the rest are counted ("… and N more")."""


@dataclass
class Day:
    """One date of one school's calendar: its kind, why, and what the maintenance windows did that night."""

    date: dt.date
    kind: str  # class_day | no_students | staff_only | unknown
    reason: str
    testing: str = ""
    blackouts: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    """Windows with an open interval starting this day (before `now`)."""
    ran: list[str] = field(default_factory=list)
    """What ran in those intervals: "break-days: CB0000004 succeeded"."""


@dataclass
class SchoolYear:
    calendar: str
    school: str
    description: str
    first: dt.date
    last: dt.date
    days: list[Day]

    @property
    def class_days(self) -> int:
        return sum(d.kind == "class_day" for d in self.days)

    def count(self, kind: str) -> int:
        return sum(d.kind == kind for d in self.days)

    @property
    def blackout_days(self) -> int:
        return sum(bool(d.blackouts) for d in self.days)

    @property
    def window_days(self) -> int:
        return sum(bool(d.opened) for d in self.days)


@dataclass
class BackendStatus:
    backend: str
    state: str  # in sync | drift | needs attention | unknown
    detail: str


@dataclass
class SiteData:
    district: str
    generated_at: dt.datetime
    status: list[BackendStatus]
    last_apply: dict[str, Any] | None
    last_lockdown: dict[str, Any] | None
    years: list[SchoolYear]
    maintenance: list[dict[str, Any]]
    lockdown: dict[str, Any] | None
    lockdown_file: str
    plan: dict[str, Any] | None


# --- the journal, read only ------------------------------------------------------------------------------


def _connect(path: Path) -> sqlite3.Connection | None:
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    return db


def _runs(db: sqlite3.Connection | None, kind: str | None = None, limit: int = 1) -> list[dict[str, Any]]:
    if db is None:
        return []
    query = "SELECT id, kind, status, actor, policy_commit, started_at, finished_at, summary FROM runs"
    args: tuple[Any, ...] = ()
    if kind:
        query += " WHERE kind = ?"
        args = (kind,)
    rows = db.execute(query + " ORDER BY started_at DESC, rowid DESC LIMIT ?", (*args, limit)).fetchall()
    out = []
    for row in rows:
        run = dict(row)
        run["summary"] = json.loads(run["summary"]) if run["summary"] else {}
        out.append(run)
    return out


def _actions(db: sqlite3.Connection | None, run_id: str) -> list[dict[str, Any]]:
    if db is None:
        return []
    rows = db.execute(
        "SELECT resource, op, state, destructive, detail, sources FROM actions WHERE run_id = ? ORDER BY seq",
        (run_id,),
    ).fetchall()
    return [dict(row) for row in rows]


def maintenance_actions(db: sqlite3.Connection | None) -> list[dict[str, Any]]:
    """Every maintenance action the gates let through, with the window interval it ran in (its response)."""
    if db is None:
        return []
    rows = db.execute(
        "SELECT a.run_id, a.resource, a.state, a.policy, a.response, a.updated_at FROM actions a"
        " JOIN runs r ON r.id = a.run_id WHERE r.kind = 'maintenance' AND a.response IS NOT NULL"
        " AND json_extract(a.response, '$.window_start') IS NOT NULL ORDER BY a.seq"
    ).fetchall()
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        response = json.loads(row["response"])
        latest[(row["run_id"], row["resource"])] = {
            "run": row["run_id"],
            "resource": redact_text(row["resource"]),
            "device": ResourceId.parse(row["resource"]).key.split("|", 1)[0],
            "state": row["state"],
            "policy": row["policy"] or "",
            "window": response.get("window", ""),
            "window_start": response["window_start"],
            "school": response.get("school") or "",
        }
    return sorted(latest.values(), key=lambda a: (a["window_start"], a["window"], a["device"]))


# --- status -----------------------------------------------------------------------------------------------


def _status(ws: Workspace, plan: Plan | None, last_apply: dict[str, Any] | None, db: Any) -> list[BackendStatus]:
    backends = list(ws.config.sections) or (plan.backends if plan else [])
    if plan is not None:
        per: dict[str, Counter[str]] = defaultdict(Counter)
        for change in plan.changes:
            per[change.id.backend][change.op] += 1
            per[change.id.backend]["destructive"] += change.destructive
        out = []
        for name in sorted(set(backends) | set(per)):
            if name not in plan.backends:
                out.append(BackendStatus(name, "unknown", "not checked by this plan"))
                continue
            counts = per.get(name)
            if not counts:
                out.append(BackendStatus(name, "in sync", f"no changes in the plan of {plan.created_at}"))
                continue
            ops = ", ".join(f"{counts[o]} to {o}" for o in ("create", "update", "delete", "action") if counts[o])
            destructive = f"; {counts['destructive']} destructive" if counts["destructive"] else ""
            out.append(BackendStatus(name, "drift", f"{ops}{destructive} (plan of {plan.created_at})"))
        return out
    if last_apply is None:
        return [BackendStatus(b, "unknown", "no plan given and no apply in the journal") for b in sorted(backends)]
    states: dict[str, Counter[str]] = defaultdict(Counter)
    for action in _actions(db, last_apply["id"]):
        states[action["resource"].split("/", 1)[0]][action["state"]] += 1
    out = []
    for name in sorted(set(backends) | set(states)):
        counts = states.get(name, Counter())
        when = last_apply["finished_at"] or last_apply["started_at"]
        bad = counts["failed"] + counts["unknown"] + counts["sent"]
        if bad:
            out.append(
                BackendStatus(name, "needs attention", f"{bad} change(s) failed or unknown in the apply of {when}")
            )
        elif counts["deferred"]:
            out.append(BackendStatus(name, "drift", f"{counts['deferred']} change(s) waiting (held by a safety gate)"))
        else:
            done = sum(counts.values())
            out.append(BackendStatus(name, "in sync", f"as of the apply of {when} ({done} change(s) applied)"))
    return out


# --- calendars --------------------------------------------------------------------------------------------


def _blackouts(day: dt.date, info: Any, days: SchoolDays, windows: list[WindowSchedule]) -> list[str]:
    found: list[str] = []
    for schedule in windows:
        rules = schedule.window.blackouts
        if rules.testing_days and info.testing:
            found.append(f"{schedule.window.name}: testing day ({info.testing_reason})")
        if rules.days_before_term_start:
            term = days.term_starting_within(day, rules.days_before_term_start)
            if term is not None:
                found.append(f"{schedule.window.name}: before {term.name} starts {term.first_day.isoformat()}")
        for entry in rules.dates:
            if entry.first <= day <= entry.last:
                found.append(f"{schedule.window.name}: {entry.reason or 'blackout date'}")
    return found


def school_year(
    name: str,
    days: SchoolDays,
    school: str | None,
    windows: list[WindowSchedule],
    ran: list[dict[str, Any]],
    now: dt.datetime,
) -> SchoolYear | None:
    """One school's year (`school` None: the district's own calendar), from the first to the last term day."""
    terms = days.terms
    if not terms:
        return None
    first = terms[0].first_day.replace(day=1)
    last_term = terms[-1].last_day
    last = (last_term.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    tz = days.tz
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz)
    span = (last - first).days + 1
    opened: dict[dt.date, list[str]] = defaultdict(list)
    for schedule in windows:
        for interval in schedule.open_windows(start, span, school):
            if interval.start.astimezone(dt.UTC) < now.astimezone(dt.UTC):
                opened[interval.start.astimezone(tz).date()].append(
                    f"{schedule.window.name} {interval.start:%H:%M}-{interval.end:%H:%M}"
                )
    ran_on: dict[dt.date, list[str]] = defaultdict(list)
    for action in ran:
        if school is not None and action["school"] and action["school"] != school:
            continue
        when = dt.datetime.fromisoformat(action["window_start"]).astimezone(tz).date()
        ran_on[when].append(f"{action['window']}: {action['device']} {action['state']}")
    out = []
    for offset in range(span):
        day = first + dt.timedelta(days=offset)
        info = days.day(day, school)
        out.append(
            Day(
                date=day,
                kind=info.kind,
                reason=info.reason,
                testing=info.testing_reason if info.testing else "",
                blackouts=_blackouts(day, info, days, windows),
                opened=opened.get(day, []),
                ran=ran_on.get(day, []),
            )
        )
    label = school or "whole district"
    return SchoolYear(name, label, days.calendar.description or name, first, last, out)


def school_years(ws: Workspace, ran: list[dict[str, Any]], now: dt.datetime) -> list[SchoolYear]:
    """Per calendar a windowed one: the district's year, then one per school (inventory schools and overrides)."""
    calendars = build_school_days(ws.policies, ws.repo_root, refresh=False)
    schedules = build_window_schedules(ws.policies, ws.repo_root, refresh=False)
    used = {s.window.calendar for s in schedules.values()}
    schools = sorted({d.school for d in ws.inventory.devices if d.school})
    years = []
    for name, days in sorted(calendars.items()):
        if used and name not in used:
            continue  # a calendar no window uses (an alternative source kept for later) is not the district's
        windows = [s for s in schedules.values() if s.window.calendar == name]
        for school in [None, *sorted(set(schools) | set(days.schools))]:
            year = school_year(name, days, school, windows, ran, now)
            if year is not None:
                years.append(year)
    return years


# --- lockdown and plan --------------------------------------------------------------------------------------


def latest_lockdown(folder: Path) -> tuple[dict[str, Any] | None, str]:
    """The newest lockdown JSON report (a real run before a dry run of the same night), without students."""
    files = sorted(
        folder.glob("lockdown-*.json"), key=lambda p: (p.name.split("-dry-run")[0], "-dry-run" not in p.name)
    )
    if not files:
        return None, ""
    data = json.loads(files[-1].read_text())
    for section in ("devices", "still_locked"):
        for entry in data.get(section, []):
            entry.pop("student", None)
    return redact(data), files[-1].name


def plan_summary(plan: Plan) -> dict[str, Any]:
    changes = [
        {
            "id": redact_text(str(c.id)),
            "op": c.op,
            "backend": c.id.backend,
            "destructive": c.destructive,
            "summary": redact_text(c.summary),
            "sources": [redact_text(s) for s in c.sources],
        }
        for c in plan.changes
    ]
    return {
        "source": "plan file",
        "created_at": plan.created_at,
        "policy_commit": plan.policy_commit or "",
        "backends": plan.backends,
        "scopes": plan.scopes,
        "notes": [redact_text(n) for n in plan.notes],
        "held": [redact_text(f"{h.change.id}: {h.detail or h.reason}") for h in plan.held],
        "changes": changes[:MAX_CHANGES],
        "more": max(0, len(changes) - MAX_CHANGES),
        "total": len(changes),
    }


def run_summary(db: sqlite3.Connection | None, run: dict[str, Any]) -> dict[str, Any]:
    actions = _actions(db, run["id"])
    changes = [
        {
            "id": redact_text(a["resource"]),
            "op": a["op"],
            "backend": a["resource"].split("/", 1)[0],
            "destructive": bool(a["destructive"]),
            "summary": f"{a['state']}: {redact_text(a['detail'] or '')}".rstrip(": "),
            "sources": json.loads(a["sources"] or "[]"),
        }
        for a in actions
    ]
    return {
        "source": f"journal run {run['id']} ({run['kind']}, {run['status']})",
        "created_at": run["started_at"],
        "policy_commit": run["policy_commit"] or "",
        "backends": sorted({c["backend"] for c in changes}),
        "scopes": [run["kind"]],
        "notes": [],
        "held": [],
        "changes": changes[:MAX_CHANGES],
        "more": max(0, len(changes) - MAX_CHANGES),
        "total": len(changes),
    }


def gather_site(ws: Workspace, *, plan_path: str | Path | None = None, now: dt.datetime | None = None) -> SiteData:
    """Everything the site shows, read from `ws` (config, policies, inventory, journal, reports folder)."""
    now = now or dt.datetime.now(dt.UTC)
    plan = Plan.load(plan_path) if plan_path else None
    db = _connect(ws.journal_path)
    try:
        last_apply = next(iter(_runs(db, "apply")), None)
        last_lockdown = next(iter(_runs(db, "lockdown")), None)
        ran = maintenance_actions(db)
        latest = next(iter(_runs(db)), None)
        status = _status(ws, plan, last_apply, db)
        shown_plan = plan_summary(plan) if plan else (run_summary(db, latest) if latest else None)
    finally:
        if db is not None:
            db.close()
    lockdown, lockdown_file = latest_lockdown(ws.config.path(ws.config.reports))
    return SiteData(
        district=ws.config.tenant or ws.repo_root.resolve().name,
        generated_at=now,
        status=status,
        last_apply=last_apply,
        last_lockdown=last_lockdown,
        years=school_years(ws, ran, now),
        maintenance=ran,
        lockdown=lockdown,
        lockdown_file=lockdown_file,
        plan=shown_plan,
    )
