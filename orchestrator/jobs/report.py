"""What the principals' site shows, gathered from the workspace, the journal and the reports folder (read only).

`gather_site` collects everything `orchestrator report --html DIR` renders (no click, no rich, no HTML here):
the district status per backend (from a saved plan when one is given, else from the journal's last apply),
the last apply and the last lockdown, one school-year calendar per school (`report_calendar`: the school
year of the report's day, the next one during the summer), the latest lockdown report (devices acted on and
the ones still locked), the latest plan (the plan file, else the last run) and the morning tech check of the
report's day (`report_techcheck`: no student, no repair reason).

Nothing is written: the journal is opened read-only (a report never migrates or locks it) and calendar feeds
are read from their cache, never fetched. Students are never carried: the lockdown report's student column
is dropped and every other string goes through `redact`.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from orchestrator.core.redact import redact, redact_text
from orchestrator.core.resources import ResourceId
from orchestrator.engine.plan import Plan
from orchestrator.jobs.report_calendar import SchoolYear, school_years
from orchestrator.jobs.report_techcheck import SiteTechCheck, site_techcheck
from orchestrator.jobs.techcheck import tech_check
from orchestrator.jobs.workspace import Workspace

MAX_CHANGES = 200
"""Plan changes listed on the site; the rest are counted ("… and N more")."""


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
    techcheck: SiteTechCheck


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
        techcheck=site_techcheck(tech_check(ws, on=now.astimezone(ZoneInfo(ws.config.timezone)).date())),
    )
