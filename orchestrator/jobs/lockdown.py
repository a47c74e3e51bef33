"""The nightly lost-device lockdown: lock what the inventory says is lost, release what was found.

It is the reconcile loop with scope `lockdown` (whose plan already obeys the LostDevicePolicy's per-run cap,
counts the journal's quarantine history and holds devices missing from a console: `engine.caps`), plus what a
2 a.m. job needs: every action traced to its inventory row, and a per-school report for the morning.
`run_lockdown` is the whole job; the command line, the benchmark and the tests all call it.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.core.redact import redact_text
from orchestrator.core.resources import Change
from orchestrator.engine.apply import ApplyReport, GateOptions
from orchestrator.engine.caps import NOT_FOUND, OVER_CAP, DeviceTypes, lockdown_cap, serials_of
from orchestrator.engine.plan import Plan
from orchestrator.inventory.devices import Device, Inventory
from orchestrator.jobs.session import Session

REPORT_OUTCOMES = ("planned", "locked", "released", "quarantine", "already in place", "not found", "held", "failed")


@dataclass
class LockdownSelection:
    """The (capped) lockdown plan, and what it holds back: devices no console has, devices over the cap."""

    plan: Plan
    device_types: DeviceTypes
    not_found: list[Change] = field(default_factory=list)
    over_cap: list[Change] = field(default_factory=list)
    cap: int = 0

    @classmethod
    def of(cls, plan: Plan, cap: int, device_types: DeviceTypes) -> LockdownSelection:
        return cls(
            plan=plan,
            device_types=device_types,
            not_found=[h.change for h in plan.held if h.reason == NOT_FOUND],
            over_cap=[h.change for h in plan.held if h.reason == OVER_CAP],
            cap=cap,
        )


def with_inventory_sources(selection: LockdownSelection, inventory: Inventory) -> None:
    """Trace every device change to the inventory row that caused it."""
    by_serial = inventory.by_serial()
    for change in selection.plan.changes:
        for serial in sorted(serials_of(change, selection.device_types)):
            device = by_serial.get(serial)
            if device is not None:
                where = f"{inventory.file}:{device.line}"
                if where not in change.sources:
                    change.sources = (*change.sources, where)


def _outcome(change: Change, state: str, serial: str) -> str:
    """The report's word for one device: only what this run did counts as locked, released or quarantined."""
    if state in ("failed", "unknown"):
        return "failed"
    if state == "deferred":
        return "held"
    if state == "skipped":
        return "already in place"  # someone (or an earlier run of this plan) did it: not counted as done now
    after = change.after
    if change.id.type == "mac_quarantine":
        macs = {m for m, s in change.meta.get("serials", {}).items() if s == serial} or {serial}
        return "quarantine" if macs & set(after or []) else "released"
    locked = after == "DISABLED" or (isinstance(after, dict) and after.get("lost"))
    return "locked" if locked else "released"


def school_of(serial: str, inventory: dict[str, Device]) -> str:
    device = inventory.get(serial)
    return device.school or "unassigned" if device else "unknown"


@dataclass
class LockdownReport:
    rows: list[dict[str, Any]]
    totals: Counter[str]
    per_school: dict[str, Counter[str]]

    @property
    def failed(self) -> bool:
        return self.totals["failed"] > 0


def build_report(selection: LockdownSelection, report: ApplyReport | None, inventory: Inventory) -> LockdownReport:
    by_serial = inventory.by_serial()
    rows: list[dict[str, Any]] = []
    per_school: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()

    def add(change: Change, outcome: str | None, detail: str, state: str = "") -> None:
        for serial in sorted(serials_of(change, selection.device_types)) or ["-"]:
            outcome_here = outcome or _outcome(change, state, serial)
            school = school_of(serial, by_serial)
            device = by_serial.get(serial)
            rows.append(
                {
                    "school": school,
                    "serial": serial,
                    "asset": device.annotatedAssetId if device else "",
                    "backend": change.id.backend,
                    "outcome": outcome_here,
                    "detail": redact_text(detail),
                    "inventory": f"{inventory.file}:{device.line}" if device else "",
                }
            )
            per_school[school][outcome_here] += 1
            totals[outcome_here] += 1

    for change in selection.plan.changes:
        state = report.states.get(change.key, "planned") if report else "planned"
        detail = report.details.get(change.key, "") if report else change.summary
        add(change, None if report else "planned", detail, state)
    for change in selection.not_found:
        add(change, "not found", f"serial not found in {change.id.backend}")
    for change in selection.over_cap:
        add(change, "held", f"over max_per_run ({selection.cap}); next run")
    return LockdownReport(rows=rows, totals=totals, per_school=dict(per_school))


def write_report(lockdown: LockdownReport, folder: Path, stamp: str, run_id: str | None) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / f"lockdown-{stamp}.md"
    js = folder / f"lockdown-{stamp}.json"
    outcomes = list(REPORT_OUTCOMES[1:])
    if lockdown.totals["planned"]:
        outcomes.insert(0, "planned")
    lines = [
        f"# Lost-device lockdown {stamp}",
        "",
        f"Journal run: `{run_id or 'dry run'}`",
        "",
        "| school | " + " | ".join(outcomes) + " |",
        "|---|" + "---:|" * len(outcomes),
    ]
    for school, counts in sorted(lockdown.per_school.items()):
        lines.append(f"| {school} | " + " | ".join(str(counts[o]) for o in outcomes) + " |")
    lines.append("| **total** | " + " | ".join(str(lockdown.totals[o]) for o in outcomes) + " |")
    problems = [r for r in lockdown.rows if r["outcome"] in ("failed", "not found", "held")]
    if problems:
        lines += [
            "",
            "## Needs attention",
            "",
            "| school | serial | asset | backend | outcome | detail |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['school']} | {r['serial']} | {r['asset']} | {r['backend']} | {r['outcome']} | {r['detail']} |"
            for r in problems
        ]
    md.write_text("\n".join(lines) + "\n")
    js.write_text(
        json.dumps(
            {
                "run": run_id,
                "totals": dict(lockdown.totals),
                "per_school": {k: dict(v) for k, v in lockdown.per_school.items()},
                "devices": lockdown.rows,
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    return md, js


@dataclass
class LockdownOutcome:
    """What one lockdown did: the (capped) plan and what it held back, the apply report (None on a dry run or
    when nothing was due), the per-school report, the report files, and seconds spent planning and applying."""

    selection: LockdownSelection
    report: ApplyReport | None
    summary: LockdownReport
    markdown_path: Path
    json_path: Path
    dry_run: bool
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def plan(self) -> Plan:
        return self.selection.plan

    @property
    def run_id(self) -> str | None:
        return self.report.run_id if self.report else None

    @property
    def ok(self) -> bool:
        """False when a device failed or an action's outcome is unknown (a dry run is always ok)."""
        return self.dry_run or not (self.summary.failed or (self.report is not None and not self.report.ok))


def run_lockdown(
    session: Session,
    *,
    dry_run: bool = False,
    override_blast_radius: bool = False,
    now: datetime | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    on_report: Callable[[ApplyReport], None] | None = None,
) -> LockdownOutcome:
    """Plan the lockdown scope (capped by max_per_run unless `override_blast_radius`), trace every change to its
    inventory row, apply it unless `dry_run`, and write the per-school report to the config's reports folder.

    `now` stamps the report (default: the time the run ends) and is the gates' clock when given. `on_plan` sees
    the capped plan before anything is sent, `on_report` the apply report as soon as it exists.
    """
    ws = session.workspace
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    plan = session.plan(
        ("lockdown",), message="Observing lost and found devices...", override_caps=override_blast_radius
    )
    selection = LockdownSelection.of(plan, lockdown_cap(ws.policies), session.catalog.device_types())
    with_inventory_sources(selection, ws.inventory)
    seconds["plan"] = time.perf_counter() - started
    if on_plan is not None:
        on_plan(selection.plan)
    report = None
    if not dry_run and selection.plan.changes:
        started = time.perf_counter()
        report = session.apply(
            selection.plan,
            GateOptions(now=now, override_blast_radius=override_blast_radius),
            kind="lockdown",
            # Planned seconds ago, and the cap may have trimmed a site's quarantine list, which makes the
            # network's check-mode observation differ from the plan's; every change is still re-observed
            # before it is sent and skipped when already in place.
            check_stale=False,
        )
        seconds["apply"] = time.perf_counter() - started
        if on_report is not None:
            on_report(report)
    summary = build_report(selection, report, ws.inventory)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    md, js = write_report(
        summary,
        ws.config.path(ws.config.reports),
        stamp + ("-dry-run" if dry_run else ""),
        report.run_id if report else None,
    )
    return LockdownOutcome(
        selection=selection,
        report=report,
        summary=summary,
        markdown_path=md,
        json_path=js,
        dry_run=dry_run,
        seconds=seconds,
    )
