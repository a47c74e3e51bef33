"""`maintenance run`: execute queued reimages in batches while their window is open.

Each invocation re-plans from the current state (so a request committed while the window was closed is
picked up when it opens), sends one batch at a time through the safety gates, and stops cleanly as soon
as a batch is held back because the window closed or a cap was reached. The journal makes the next
invocation continue where this one stopped, without repeating a device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import click
from rich.table import Table

from orchestrator.cli import _session, console, plan_in_session, run_apply
from orchestrator.engine.apply import ApplyReport, GateOptions
from orchestrator.engine.plan import Plan
from orchestrator.engine.resources import Change


def batches(changes: Sequence[Change]) -> list[list[Change]]:
    """Split per Reimage policy into chunks of its batch_size, keeping plan order."""
    by_policy: dict[str, list[Change]] = {}
    for change in changes:
        by_policy.setdefault(change.policy or "-", []).append(change)
    result: list[list[Change]] = []
    for group in by_policy.values():
        size = max(1, int(group[0].meta.get("batch_size", 20)))
        result += [group[i : i + size] for i in range(0, len(group), size)]
    return result


def sub_plan(plan: Plan, batch: Sequence[Change]) -> Plan:
    """The part of `plan` one batch applies (its changes and their observed digests)."""
    ids = {str(c.id) for c in batch}
    return Plan(
        changes=list(batch),
        observed={k: v for k, v in plan.observed.items() if k in ids},
        backends=plan.backends,
        scopes=plan.scopes,
        policy_commit=plan.policy_commit,
        created_at=plan.created_at,
    )


@dataclass
class Drained:
    """What one `maintenance run` did: one report per batch sent, and why it stopped early ("" = it did not)."""

    reports: list[ApplyReport] = field(default_factory=list)
    stopped: str = ""

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
    the second one back; the run then stops cleanly (the journal lets the next run continue without
    repeating a device). It also stops once `max_destructive` devices were acted on in this run.
    """
    done = Drained()
    remaining = max_destructive
    for batch in batches(plan.changes):
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
        counts = report.counts()
        if remaining is not None:
            remaining -= counts["succeeded"] + counts["failed"] + counts["unknown"]
        if counts["deferred"]:
            done.stopped = "the rest waits for the next open window or for capacity"
            break
    return done


def run_maintenance(
    ctx: click.Context,
    *,
    backends: tuple[str, ...],
    dry_run: bool,
    max_destructive: int | None,
    override_blast_radius: bool,
    acknowledge_deprovision: bool,
    show_pii: bool,
) -> int:
    with _session(ctx, backends) as (ws, connections, journal):
        plan = plan_in_session(ws, connections, journal, ("maintenance",), "Observing the reimage queue...")
        if dry_run:
            _explain(plan, ws, journal, max_destructive, override_blast_radius, acknowledge_deprovision)
            return 0
    for note in plan.notes:
        console.print(f"[dim]note:[/] {note}")
    if not plan.changes:
        console.print("No reimage requests are waiting.")
        return 0
    console.print(f"{len(plan.changes)} device(s) waiting for reimage.")
    done = drain(
        plan,
        lambda sub, gates: run_apply(
            ctx, sub, kind="maintenance", backends=backends, gates=gates, check_stale=False, show_pii=show_pii
        ),
        max_destructive=max_destructive,
        override_blast_radius=override_blast_radius,
        acknowledge_deprovision=acknowledge_deprovision,
    )
    if done.stopped:
        console.print(f"Stopping: {done.stopped} (see reasons above).")
    return 0 if done.ok else 1


def _explain(plan: Plan, ws, journal, max_destructive, override_blast_radius, acknowledge_deprovision) -> None:
    from orchestrator.engine.gates import build_window_schedules, gate_destructive

    if not plan.changes:
        console.print("No reimage requests are waiting.")
        return
    decisions = gate_destructive(
        plan.changes,
        now=datetime.now(UTC),
        windows=build_window_schedules(ws.policies, ws.repo_root),
        used_in_window=lambda policy, start: journal.destructive_in_window(policy, start.astimezone(UTC).isoformat()),
        max_destructive=max_destructive,
        override_blast_radius=override_blast_radius,
        acknowledge_deprovision=acknowledge_deprovision,
    )
    by_key = {c.key: c for c in plan.changes}
    table = Table(title="Reimage queue (dry run)", header_style="bold")
    for column in ("device", "policy", "window", "now", "reason / next window"):
        table.add_column(column, overflow="fold")
    for decision in decisions:
        change = by_key[decision.change_key]
        hint = decision.reason
        table.add_row(
            change.id.key,
            change.policy or "-",
            change.window or "-",
            "[green]would run[/]" if decision.allowed else "[yellow]waits[/]",
            hint,
        )
    console.print(table)
