"""The nightly lost-device lockdown: lock what the inventory says is lost, release what was found.

It is the reconcile loop with scope `lockdown` (whose plan already obeys the LostDevicePolicy's per-run cap,
counts the journal's quarantine history and holds devices missing from a console: `engine.caps`), plus what a
2 a.m. job needs: every action traced to its inventory row, and a per-school report for the morning.
`run_lockdown` is the whole job; the command line, the benchmark and the tests all call it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.core.resources import Change
from orchestrator.engine.apply import ApplyReport, GateOptions
from orchestrator.engine.caps import NOT_FOUND, OVER_CAP, LockdownTypes, lockdown_cap, serials_of
from orchestrator.engine.plan import Plan
from orchestrator.inventory.devices import Inventory
from orchestrator.jobs.lockdown_report import REPORT_OUTCOMES, LockdownReport, build_report, write_report
from orchestrator.jobs.session import Session

__all__ = ["REPORT_OUTCOMES", "LockdownOutcome", "LockdownReport", "LockdownSelection", "build_report", "run_lockdown"]


@dataclass
class LockdownSelection:
    """The (capped) lockdown plan, and what it holds back: devices no console has, devices over the cap."""

    plan: Plan
    types: LockdownTypes
    not_found: list[Change] = field(default_factory=list)
    over_cap: list[Change] = field(default_factory=list)
    cap: int = 0

    @classmethod
    def of(cls, plan: Plan, cap: int, types: LockdownTypes) -> LockdownSelection:
        return cls(
            plan=plan,
            types=types,
            not_found=[h.change for h in plan.held if h.reason == NOT_FOUND],
            over_cap=[h.change for h in plan.held if h.reason == OVER_CAP],
            cap=cap,
        )


def with_inventory_sources(selection: LockdownSelection, inventory: Inventory) -> None:
    """Trace every device change to the inventory row that caused it."""
    by_serial = inventory.by_serial()
    for change in selection.plan.changes:
        for serial in sorted(serials_of(change, selection.types)):
            device = by_serial.get(serial)
            if device is not None:
                where = f"{inventory.file}:{device.line}"
                if where not in change.sources:
                    change.sources = (*change.sources, where)


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
    csv_path: Path | None = None
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
    inventory row, apply it unless `dry_run`, and write the report (Markdown, JSON and CSV; per device, with
    the still-locked ones) to the config's reports folder.

    `now` stamps the report (default: the time the run ends) and is the gates' clock when given. `on_plan` sees
    the capped plan before anything is sent, `on_report` the apply report as soon as it exists.
    """
    ws = session.workspace
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    plan = session.plan(
        ("lockdown",), message="Observing lost and found devices...", override_caps=override_blast_radius
    )
    selection = LockdownSelection.of(plan, lockdown_cap(ws.policies), LockdownTypes.of(session.catalog))
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
            # Planned moments ago in this run: the plan's observation is passed on, never a second read of the
            # fleet. A re-run of this plan after a crash skips what the journal says it already did (resume is
            # scoped to the plan id), and destructive sends of unknown outcome are settled before any re-send.
            fresh=True,
        )
        seconds["apply"] = time.perf_counter() - started
        if on_report is not None:
            on_report(report)
    summary = build_report(selection, report, ws.inventory, session.journal)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    md, js, cs = write_report(
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
        csv_path=cs,
        dry_run=dry_run,
        seconds=seconds,
    )
