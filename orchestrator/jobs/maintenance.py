"""`maintenance run`: execute queued reimages in batches while their window is open (no click, no rich).

The queue holds every Reimage and every lost device a LostDevicePolicy escalates (`escalate:`, decided at the
time of the run: jobs/escalation.py). Each invocation re-plans from the current state (so a request committed
while a window was closed is picked up when it opens, and a device found since the last run is no longer
escalated) and works through every policy: a batch goes through the safety gates just before
it is sent, a policy whose batch is held back (its window closed, its cap reached) waits for its next window,
and the other policies carry on. The journal makes the next invocation continue where this one stopped,
without repeating a device. A device found while the run is under way is checked again before its batch is
sent: its escalation is reported `withdrawn` and nothing is sent for it.

The dry run (`rehearse`) and the real run (`drain`) consider the changes in the same order (`gate_order`:
policy, serial, key) through the same gates, so inside an open window "would run" equals "ran".
`run_maintenance` and `rehearse_maintenance` are the jobs (plan the queue in a session, then drain or
rehearse it); the command line and the tests call them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from orchestrator.core.resources import Change
from orchestrator.engine.apply import ApplyReport, GateOptions
from orchestrator.engine.gates import GateDecision, build_window_schedules, gate_destructive, gate_order, journal_usage
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import Plan
from orchestrator.engine.settle import resolve_command
from orchestrator.jobs.session import Session
from orchestrator.schooltime.windows import WindowSchedule

OBSERVING_QUEUE = "Observing the reimage queue..."


def batches(changes: Sequence[Change]) -> list[list[Change]]:
    """Per Reimage policy (by name), chunks of its batch_size, each policy's devices in gate order."""
    by_policy: dict[str, list[Change]] = {}
    for change in sorted(changes, key=gate_order):
        by_policy.setdefault(change.policy or "-", []).append(change)
    result: list[list[Change]] = []
    for group in by_policy.values():
        size = max(1, group[0].gate.batch_size if group[0].gate else 20)
        result += [group[i : i + size] for i in range(0, len(group), size)]
    return result


def sub_plan(plan: Plan, batch: Sequence[Change]) -> Plan:
    """The part of `plan` one batch applies (its changes and their observed digests)."""
    ids = {str(c.id) for c in batch}
    return replace(
        plan, changes=list(batch), observed={k: v for k, v in plan.observed.items() if k in ids}, held=[], notes=[]
    )


@dataclass
class Drained:
    """What one `maintenance run` did: one report per batch sent; which policies wait and why."""

    reports: list[ApplyReport] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)
    """policy → why its remaining batches wait (window closed, cap reached)."""
    stopped: str = ""
    """Why the whole run stopped early ("" = it went through every policy)."""

    @property
    def ok(self) -> bool:
        return all(report.ok for report in self.reports)

    def states(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for report in self.reports:
            out.update(report.states)
        return out


def drain(
    plan: Plan,
    apply_batch: Callable[[Plan, GateOptions], ApplyReport],
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_destructive: int | None = None,
    override_blast_radius: bool = False,
    acknowledge_deprovision: bool = False,
) -> Drained:
    """Send `plan`'s reimages batch by batch (per policy, `batch_size` each) through the safety gates.

    The gates are evaluated at `clock()` for every batch, so a window that closes between two batches holds
    the rest of that policy back; other policies still run. The run stops once `max_destructive` devices
    were acted on.
    """
    done = Drained()
    remaining = max_destructive
    for batch in batches(plan.changes):
        policy = batch[0].policy or "-"
        if policy in done.waiting:
            continue
        if remaining is not None and remaining <= 0:
            done.stopped = f"--max-destructive {max_destructive} reached for this run"
            break
        gates = GateOptions(
            now=clock(),
            max_destructive=remaining,
            override_blast_radius=override_blast_radius,
            acknowledge_deprovision=acknowledge_deprovision,
        )
        report = apply_batch(sub_plan(plan, batch), gates)
        done.reports.append(report)
        if remaining is not None:
            remaining -= len(report.windows)  # the ones the gates let through (sent), not those held as unknown
        deferred = [report.details[k] for k, s in report.states.items() if s == "deferred"]
        if deferred:
            done.waiting[policy] = deferred[0]
    return done


@dataclass
class Rehearsal:
    """The dry run's answer for every queued device: would run, waits (and why), or unknown outcome."""

    decisions: list[GateDecision]
    unsettled: dict[str, str]
    """change key → the command that settles an earlier send of unknown outcome (never re-sent until then)."""

    def would_run(self) -> set[str]:
        return {d.change_key for d in self.decisions if d.allowed and d.change_key not in self.unsettled}


def rehearse(
    plan: Plan,
    *,
    now: datetime,
    windows: Mapping[str, WindowSchedule],
    journal: Journal,
    max_destructive: int | None = None,
    override_blast_radius: bool = False,
    acknowledge_deprovision: bool = False,
) -> Rehearsal:
    """What `drain` would do at `now`, without sending anything (any `now`: rehearse a night ahead)."""
    unsettled_rows = {row.resource: row for row in journal.unsettled([str(c.id) for c in plan.changes])}
    unsettled = {c.key: resolve_command(str(c.id)) for c in plan.changes if str(c.id) in unsettled_rows}
    decisions = gate_destructive(
        [c for c in plan.changes if c.key not in unsettled],
        now=now,
        windows=windows,
        used_in_window=journal_usage(journal),
        max_destructive=max_destructive,
        override_blast_radius=override_blast_radius,
        acknowledge_deprovision=acknowledge_deprovision,
    )
    unsettled_decisions = [
        GateDecision(key, False, f"unknown outcome of an earlier send: check the device, then `{command}`")
        for key, command in unsettled.items()
    ]
    return Rehearsal(decisions=decisions + unsettled_decisions, unsettled=unsettled)


@dataclass
class MaintenanceRun:
    """What one `maintenance run` did: the queue it planned and what draining it did."""

    plan: Plan
    drained: Drained

    @property
    def ok(self) -> bool:
        return self.drained.ok


def run_maintenance(
    session: Session,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_destructive: int | None = None,
    override_blast_radius: bool = False,
    acknowledge_deprovision: bool = False,
    on_plan: Callable[[Plan], None] | None = None,
    on_report: Callable[[ApplyReport], None] | None = None,
) -> MaintenanceRun:
    """Plan the reimage queue from the current state and `drain` it through `session` (gates at `clock()`).

    `on_plan` sees the queue before anything is sent; `on_report` each batch's report as soon as it is done.
    Escalations no longer wanted when their batch comes up (the device was found meanwhile) are not sent: the
    batch's report lists them as `withdrawn`, with the reason (Session.apply).
    """
    plan = session.plan(("maintenance",), message=OBSERVING_QUEUE, now=clock())
    if on_plan is not None:
        on_plan(plan)

    def apply_batch(sub: Plan, gates: GateOptions) -> ApplyReport:
        report = session.apply(sub, gates, kind="maintenance", check_stale=False)
        if on_report is not None:
            on_report(report)
        return report

    done = Drained()
    if plan.changes:
        done = drain(
            plan,
            apply_batch,
            clock=clock,
            max_destructive=max_destructive,
            override_blast_radius=override_blast_radius,
            acknowledge_deprovision=acknowledge_deprovision,
        )
    return MaintenanceRun(plan=plan, drained=done)


@dataclass
class MaintenanceRehearsal:
    """The dry run at `now`: the queue it planned and the gates' answer for every device."""

    plan: Plan
    rehearsal: Rehearsal
    now: datetime

    def would_run(self) -> set[str]:
        return self.rehearsal.would_run()


def rehearse_maintenance(
    session: Session,
    *,
    now: datetime | None = None,
    max_destructive: int | None = None,
    override_blast_radius: bool = False,
    acknowledge_deprovision: bool = False,
) -> MaintenanceRehearsal:
    """Plan the reimage queue and `rehearse` it at `now` (any time: rehearse a night ahead, lost devices escalated
    as of then; default: the wall clock); sends nothing."""
    now = now or datetime.now(UTC)
    plan = session.plan(("maintenance",), message=OBSERVING_QUEUE, now=now)
    ws = session.workspace
    rehearsal = rehearse(
        plan,
        now=now,
        windows=build_window_schedules(ws.policies, ws.repo_root),
        journal=session.journal,
        max_destructive=max_destructive,
        override_blast_radius=override_blast_radius,
        acknowledge_deprovision=acknowledge_deprovision,
    )
    return MaintenanceRehearsal(plan=plan, rehearsal=rehearsal, now=now)
