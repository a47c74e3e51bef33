"""Apply exactly a reviewed plan: staleness check, resume, safety gates, backend calls, journal.

Order of business for each change:
1. already succeeded in an earlier (interrupted) run of *this* plan (same plan id) → not repeated; the same
   change in another plan is a new request (a device lost a second time is locked again);
2. the console already shows the planned value (read again before sending, unless the plan's observation is
   `fresh`: made moments ago in the same run) → recorded as skipped, not re-sent;
3. destructive and sent before (by any plan) without a known outcome → asked of the console when the backend
   can tell (`settle`), else held as unknown until a person settles it (`orchestrator journal resolve`);
4. destructive → must pass the safety gates (window open, blast radius, acknowledgements) or is deferred;
5. otherwise sent through its backend, journaled before (sent) and after (succeeded/failed/unknown).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.core.backend import Backend, Catalog
from orchestrator.core.errors import OrchestratorError, StalePlanError
from orchestrator.core.resources import Change, ChangeResult, Resource, digest
from orchestrator.engine.caps import LockdownTypes, check_plan_caps
from orchestrator.engine.gates import build_window_schedules, gate_destructive, journal_usage
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import Plan, observed_digests, stale_resources
from orchestrator.engine.reconcile import observe
from orchestrator.policy.loader import PolicySet


@dataclass
class GateOptions:
    now: datetime | None = None
    max_destructive: int | None = None
    override_blast_radius: bool = False
    acknowledge_deprovision: bool = False


@dataclass
class ApplyReport:
    run_id: str
    states: dict[str, str] = field(default_factory=dict)  # change key → final state
    details: dict[str, str] = field(default_factory=dict)
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    changes: dict[str, Change] = field(default_factory=dict)
    windows: dict[str, dict[str, str]] = field(default_factory=dict)
    """change key → {"window", "window_start", "gate"} for destructive changes the gate let through; merged
    into the journaled response (the window interval counts toward the cap; `gate` records any override)."""

    def counts(self) -> Counter[str]:
        return Counter(self.states.values())

    @property
    def ok(self) -> bool:
        return not any(s in ("failed", "unknown") for s in self.states.values())

    def by_state(self, state: str) -> list[Change]:
        return [self.changes[k] for k, s in self.states.items() if s == state]

    def summary(self) -> dict[str, Any]:
        return dict(self.counts())


Progress = Callable[[Change, str], None]


class Executor:
    def __init__(
        self,
        *,
        catalog: Catalog,
        backends: Mapping[str, Backend],
        journal: Journal,
        policies: PolicySet | None,
        repo_root: Path,
        progress: Progress | None = None,
    ):
        self.catalog = catalog
        self.backends = backends
        self.journal = journal
        self.policies = policies
        self.repo_root = repo_root
        self.progress = progress or (lambda change, state: None)

    def apply(
        self,
        plan: Plan,
        *,
        kind: str = "apply",
        gates: GateOptions | None = None,
        check_stale: bool = True,
        fresh: bool = False,
    ) -> ApplyReport:
        """Apply `plan`. `fresh`: the plan was observed moments ago by this same session (the nightly lockdown
        plans and applies in one run), so its observation stands for the consoles' state and nothing is read a
        second time; a change this plan already applied is still skipped by the plan-scoped journal, and an
        earlier destructive send of unknown outcome is still settled before anything is re-sent."""
        gates = gates or GateOptions()
        missing = sorted({c.id.backend for c in plan.changes} - set(self.backends))
        if missing:
            raise OrchestratorError(f"the plan needs backends that are not available here: {', '.join(missing)}")
        check_plan_caps(plan, self.policies, LockdownTypes.of(self.catalog), override=gates.override_blast_radius)
        with self.journal.exclusive():
            run_id = self.journal.start_run(
                kind, plan_id=plan.plan_id, fingerprint=plan.fingerprint, policy_commit=plan.policy_commit
            )
            report = ApplyReport(run_id=run_id, changes={c.key: c for c in plan.changes})
            try:
                self._apply(plan, report, gates, check_stale, fresh)
            except BaseException:
                self.journal.finish_run(run_id, "aborted", report.summary())
                raise
            self.journal.finish_run(run_id, "succeeded" if report.ok else "failed", report.summary())
        return report

    # ------------------------------------------------------------------------------------------------
    def _apply(self, plan: Plan, report: ApplyReport, gates: GateOptions, check_stale: bool, fresh: bool) -> None:
        for change in plan.changes:
            self.catalog.type_of(change.id)  # an unregistered type fails the whole apply before anything is sent
        previous = self.journal.plan_states(plan.plan_id, [c.key for c in plan.changes])
        todo: list[Change] = []
        for change in plan.changes:
            if previous.get(change.key) in ("succeeded", "skipped"):
                self._final(report, change, "skipped", "done by an earlier run of this plan")
            else:
                todo.append(change)
        if not todo:
            return
        now_digests = dict(plan.observed) if fresh else self._observe_again(plan, todo)
        if check_stale and not fresh:
            stale = stale_resources(plan, now_digests, [str(c.id) for c in todo])
            if stale:
                shown = "\n  ".join(stale[:20]) + (f"\n  ... and {len(stale) - 20} more" if len(stale) > 20 else "")
                raise StalePlanError(
                    "the observed state changed since this plan was made; nothing was applied.\n"
                    f"  {shown}\nRun `orchestrator plan` again and review the new plan."
                )
        unsettled = self._settle([c for c in todo if c.destructive], report)
        ready: list[Change] = []
        destructive: list[Change] = []
        for change in todo:
            if change.key in report.states:
                continue  # settled just now from the console's own record
            now = now_digests.get(str(change.id))
            in_sync = now == digest(change.after) or (change.after is None and now is None)
            if in_sync:
                self._final(report, change, "skipped", "already in the desired state")
            elif str(change.id) in unsettled:
                self._final(
                    report,
                    change,
                    "unknown",
                    f"sent by run {unsettled[str(change.id)]} with no known outcome; not re-sent. Check the device,"
                    f" then `orchestrator journal resolve {change.id} --done|--resend --reason TEXT`",
                )
            elif change.destructive:
                destructive.append(change)
            else:
                ready.append(change)
        ready += self._gate(destructive, report, gates)
        self._send(ready, report)

    def _settle(self, destructive: list[Change], report: ApplyReport) -> dict[str, str]:
        """Unknown outcomes of earlier destructive sends: ask the backend's console, else keep them unknown.

        Returns resource id → run id for the ones still unsettled. A change the console proves ran is recorded
        succeeded (and remembered); one it proves did not run is sent again like any other.
        """
        if not destructive:
            return {}
        rows = {row.resource: row for row in self.journal.unsettled([str(c.id) for c in destructive])}
        waiting = []
        for change in destructive:
            if str(change.id) not in rows:
                continue
            # What the console needs to tell: when the earlier request left (the action row was written just
            # before it did) and what it answered (a Google command id), from the journal.
            earlier = self.journal.last_request(str(change.id)) or {}
            meta = {**change.meta, "sent_at": earlier.get("created_at"), "response": earlier.get("response") or {}}
            waiting.append(replace(change, meta=meta))
        by_backend: dict[str, list[Change]] = defaultdict(list)
        for change in waiting:
            by_backend[change.id.backend].append(change)
        for name, changes in by_backend.items():
            settle = getattr(self.backends[name], "settle", None)
            if settle is None:
                continue
            keyed = {c.key: c for c in changes}
            for result in settle(changes):
                change = keyed.get(result.change_key)
                if change is None or result.state not in ("succeeded", "failed"):
                    continue
                detail = f"settled from the console: {result.detail or result.state}"
                self.journal.settle(change, result.state, detail=detail, actor="console")
                rows.pop(str(change.id), None)
                if result.state == "succeeded":  # done by the earlier run: not counted as done by this one
                    self._final(report, change, "skipped", detail, response=result.response)
        return {resource: row.run_id for resource, row in rows.items()}

    def _observe_again(self, plan: Plan, todo: Sequence[Change]) -> dict[str, str]:
        desired = [
            Resource(id=c.id, value=c.after, sources=c.sources, policy=c.policy, window=c.window, meta=c.meta)
            for c in todo
            if c.after is not None
        ]
        touched = [
            Resource(id=c.id, value=c.after, sources=c.sources, policy=c.policy, window=c.window, meta=c.meta)
            for c in todo
        ]
        backends = {name: b for name, b in self.backends.items() if name in {c.id.backend for c in todo}}
        seen = observe(self.catalog, backends, desired, self.journal, touched=touched)
        observed = {rid: r for rid, r in seen.observed.items() if self.catalog.type_of(rid).scope in plan.scopes}
        return observed_digests(observed, seen.journal_state, desired)

    def _gate(self, changes: list[Change], report: ApplyReport, options: GateOptions) -> list[Change]:
        if not changes:
            return []
        if self.policies is None:
            raise OrchestratorError("destructive changes need the policies (maintenance windows) to be loaded")
        windows = build_window_schedules(self.policies, self.repo_root)
        now = options.now or datetime.now(UTC)
        decisions = gate_destructive(
            changes,
            now=now,
            windows=windows,
            used_in_window=journal_usage(self.journal),
            max_destructive=options.max_destructive,
            override_blast_radius=options.override_blast_radius,
            acknowledge_deprovision=options.acknowledge_deprovision,
        )
        allowed = {d.change_key for d in decisions if d.allowed}
        for decision in decisions:
            if decision.allowed and decision.interval_start is not None:
                facts = report.changes[decision.change_key].gate
                report.windows[decision.change_key] = {
                    "window": decision.window or "",
                    "window_start": decision.interval_start.astimezone(UTC).isoformat(),
                    "school": facts.school if facts else None,
                    "gate": decision.reason,
                }
            if not decision.allowed:
                change = report.changes[decision.change_key]
                self._final(report, change, "deferred", decision.reason)
        return [c for c in changes if c.key in allowed]

    def _send(self, changes: list[Change], report: ApplyReport) -> None:
        by_backend: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_backend[change.id.backend].append(change)
        for name, batch in by_backend.items():
            for change in batch:
                self.journal.record(report.run_id, change, "pending")
            self._send_to(name, batch, report)

    def _send_to(self, name: str, batch: list[Change], report: ApplyReport) -> None:
        keyed = {c.key: c for c in batch}
        reported: set[str] = set()

        def on_sent(change: Change) -> None:
            self.journal.record(report.run_id, change, "sent", response=report.windows.get(change.key))

        def on_result(result: ChangeResult) -> None:
            change = keyed.get(result.change_key)
            if change is None or result.change_key in reported:
                return
            reported.add(result.change_key)
            if result.state == "succeeded" and self.catalog.type_of(change.id).observed_by == "journal":
                self.journal.remember(change)
            self._final(report, change, result.state, result.detail, response=result.response)

        try:
            self.backends[name].apply(batch, on_sent, on_result)
        except OrchestratorError as exc:
            for change in batch:
                if change.key not in reported:
                    self._final(report, change, "failed", f"{name}: {exc}")
            return
        for change in batch:
            if change.key not in reported:
                self._final(report, change, "unknown", f"{name} backend reported no result for this change")

    def _final(
        self,
        report: ApplyReport,
        change: Change,
        state: str,
        detail: str,
        *,
        response: dict[str, Any] | None = None,
        journal: bool = True,
    ) -> None:
        report.states[change.key] = state
        report.details[change.key] = detail
        if change.key in report.windows and state in ("sent", "succeeded", "failed", "unknown"):
            response = {**(response or {}), **report.windows[change.key]}
        if response:
            report.responses[change.key] = response
        self.journal.record(report.run_id, change, state, detail=detail, response=response)
        self.progress(change, state)
