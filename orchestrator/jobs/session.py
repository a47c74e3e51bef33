"""A session: the workspace, the connected backends, the journal and the catalog, opened and closed together.

Every job runs in one (`plan`, `apply`, `lockdown`, `maintenance run`): it plans and applies through the same
connections and journal, and closing it (or leaving its `with` block) closes them all. No click, no rich: what
a person sees while it works comes in through two optional callbacks, `status` (a context manager shown while
the consoles are observed; rich's `console.status` fits) and `progress` (one `ApplyStep` per change applied).

    with Session.open("orchestrator.yaml") as session:
        plan = session.plan(("policy",))
        report = session.apply(plan, GateOptions())
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType

from orchestrator.backends.registry import CATALOG
from orchestrator.core.backend import Catalog
from orchestrator.core.errors import OrchestratorError, StalePlanError
from orchestrator.core.resources import Change
from orchestrator.engine.apply import ApplyReport, Executor, GateOptions
from orchestrator.engine.compile import compile_desired
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import Plan, policy_commit
from orchestrator.engine.prune import Pruning
from orchestrator.engine.reconcile import make_plan
from orchestrator.engine.settle import unsettled_lines
from orchestrator.inventory.escalation import Escalations
from orchestrator.jobs.config import environment_of, runner_backends
from orchestrator.jobs.connect import Connections, open_backends
from orchestrator.jobs.escalation import plan_escalations, withdrawn_escalations
from orchestrator.jobs.tenants import record_summary
from orchestrator.jobs.workspace import Workspace, open_workspace

SCOPES = ("policy", "lockdown", "maintenance")
OBSERVING = "Observing the consoles and network gear..."


@dataclass(frozen=True)
class ApplyStep:
    """One step of an apply, for a progress display: `change` reached `state` (`done` of `total`).

    Every apply begins with a step `state="started"` (`done=0`, so a display can show the total before the
    first, possibly slow, change finishes) and ends with one `state="finished"` (also when it raises); both
    have `change=None`.
    """

    change: Change | None
    state: str
    done: int
    total: int


StatusCallback = Callable[[str], AbstractContextManager[object]]
"""Shows `message` while the `with` block runs (the consoles are being observed)."""
ProgressCallback = Callable[[ApplyStep], None]


def _no_status(message: str) -> AbstractContextManager[object]:
    return nullcontext()


def unchecked_resources(
    catalog: Catalog,
    ws: Workspace,
    skipped: Sequence[str],
    scopes: Sequence[str],
    escalations: Escalations | None = None,
) -> dict[str, int]:
    """Desired resources per skipped backend in `scopes`: what a plan without that backend cannot see.

    compile_desired is pure (no I/O), so this costs no API call and works without credentials.
    """
    counts = dict.fromkeys(skipped, 0)
    due = escalations.due if escalations is not None else None
    for resource in compile_desired(catalog, ws.policies, ws.inventory, list(skipped), scopes, escalations=due):
        counts[resource.id.backend] += 1
    return counts


class Session:
    """Workspace + connected backends + journal + catalog; a context manager that closes all of them.

    `Session.open(config)` loads orchestrator.yaml and connects what it configures (what the command line
    does); the constructor takes the parts (a test's or a benchmark's own backends). Either way the session
    owns them: `close()` closes the journal and every backend.
    """

    def __init__(
        self,
        workspace: Workspace,
        connections: Connections,
        journal: Journal,
        *,
        catalog: Catalog = CATALOG,
        status: StatusCallback | None = None,
        progress: ProgressCallback | None = None,
    ):
        self.workspace = workspace
        self.connections = connections
        self.journal = journal
        self.catalog = catalog
        self.status = status or _no_status
        self.progress = progress
        self._closed = False

    @classmethod
    def open(
        cls,
        config: str | None = None,
        *,
        backends: Sequence[str] = (),
        journal: str | None = None,
        catalog: Catalog = CATALOG,
        status: StatusCallback | None = None,
        progress: ProgressCallback | None = None,
        runner: str | None = None,
    ) -> Session:
        """Load `config` (default: ./orchestrator.yaml or $ORCHESTRATOR_CONFIG) and connect its backends.

        Backends named in `backends` (a `--backend` choice, or a saved plan's list) must be configured and
        usable; with none named, every configured one is used and the unconfigured ones are skipped and
        listed in the plan's notes (never silently). `journal` overrides the config's journal path. `runner`
        (who runs this: `provider`, `district`) limits the run to the backends the config's `owners:` gives it.
        """
        ws = open_workspace(config, journal=journal)
        # The district's own environment_file (credential variables); what the environment already sets wins.
        for key, value in environment_of(ws.config).items():
            os.environ.setdefault(key, value)
        names, owner_notes = runner_backends(ws.config, backends, runner, catalog)
        connections = open_backends(ws.config, names or None, required=bool(backends), catalog=catalog)
        connections.notes += owner_notes
        try:
            opened = Journal(ws.journal_path)
        except BaseException:
            connections.close()
            raise
        return cls(ws, connections, opened, catalog=catalog, status=status, progress=progress)

    # ---- lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.journal.close()
        finally:
            self.connections.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- what the session knows --------------------------------------------------------------------
    @property
    def backends(self) -> list[str]:
        """The connected backends, in plan order."""
        return [name for name in self.catalog.names() if name in self.connections.backends]

    @property
    def unchecked(self) -> dict[str, int]:
        """Desired resources per skipped backend, as counted by the last `plan` (drift fails on them)."""
        return dict(self.connections.unchecked)

    def api_calls(self) -> dict[str, int]:
        """API calls made so far through this session's backends, by endpoint."""
        return self.connections.counter.as_dict()

    def unsettled(self) -> list[str]:
        """One line per destructive action of unknown outcome in the journal, with the command that settles it."""
        return unsettled_lines(self.journal)

    # ---- plan and apply ----------------------------------------------------------------------------
    def plan(
        self,
        scopes: Sequence[str] = ("policy",),
        *,
        message: str = OBSERVING,
        override_caps: bool = False,
        prune: bool = False,
        now: datetime | None = None,
    ) -> Plan:
        """Compile, observe and diff for `scopes`, showing `message` through the status callback while observing.

        Every skipped backend stays visible: the plan's notes say how many desired resources it was not
        checked for, and `unchecked` carries the counts. Settings no policy mentions are deleted only where
        the config's `manage:` sections declare pruning, where this tool applied them, or with `prune`
        (this run only); the others are listed in `plan.unmanaged`. Lost devices are escalated as of `now`
        (default: the wall clock) when the maintenance scope is planned.
        """
        ws = self.workspace
        escalations = None
        if "maintenance" in scopes:
            inventory_path = ws.config.path(ws.config.inventory)
            when = now or datetime.now(UTC)
            escalations = plan_escalations(ws.policies, ws.inventory, inventory_path, ws.repo_root, when)
        skipped = self.connections.skipped
        self.connections.unchecked = unchecked_resources(self.catalog, ws, skipped, scopes, escalations)
        notes = list(self.connections.notes)
        for name, count in self.connections.unchecked.items():
            if count:
                notes.append(
                    f"{name}: skipped, but the policies want {count} resource(s) there; they were NOT checked "
                    "(configure it, or limit the run with --backend)"
                )
        with self.status(message):
            made = make_plan(
                catalog=self.catalog,
                policies=ws.policies,
                inventory=ws.inventory,
                backends=self.connections.backends,
                journal=self.journal,
                scopes=tuple(scopes),
                notes=notes,
                policy_commit=policy_commit(ws.config.path(ws.config.policies)),
                override_caps=override_caps,
                pruning=Pruning(everything=prune, declared=self.catalog.declared_pruning(ws.config.sections)),
                escalations=escalations,
            )
        made.tenant = ws.config.tenant
        record_summary(
            changes=len(made.changes), drift=bool(made.changes), failures=0, calls=sum(self.api_calls().values())
        )
        return made

    def apply(
        self,
        plan: Plan,
        gates: GateOptions | None = None,
        progress: ProgressCallback | None = None,
        *,
        kind: str = "apply",
        check_stale: bool = True,
        fresh: bool = False,
    ) -> ApplyReport:
        """Apply exactly `plan` (see `engine.apply`): stale check, resume, safety gates, journal.

        `progress` (default: the session's) gets an `ApplyStep` when the apply starts, one per change, and one
        when it ends. An escalation the inventory no longer wants (the device was found since) refuses a reviewed
        plan (`check_stale`); a plan made moments ago and applied in batches (`maintenance run`) withdraws it:
        nothing is sent for it and the report lists it `withdrawn`.
        """
        tenant = self.workspace.config.tenant
        if plan.tenant != tenant:
            made_for = f"district {plan.tenant!r}" if plan.tenant else "a one-district repository"
            here = f"district {tenant!r}" if tenant else "a one-district repository"
            raise OrchestratorError(
                f"this plan was made for {made_for} and cannot be applied to {here}; make the plan again for it"
            )
        ws = self.workspace
        gone = withdrawn_escalations(
            plan, ws.policies, ws.config.path(ws.config.inventory), ws.repo_root, (gates or GateOptions()).now
        )
        if gone and check_stale:
            shown = "\n  ".join(gone.values())
            raise StalePlanError(
                f"escalations in this plan are no longer wanted; nothing was applied.\n  {shown}\n"
                "Run `orchestrator plan` again and review the new plan."
            )
        withdrawn = [c for c in plan.changes if c.key in gone]
        if withdrawn:
            plan = replace(plan, changes=[c for c in plan.changes if c.key not in gone])
        report_step = progress or self.progress or (lambda step: None)
        total = len(plan.changes)
        done = 0

        def on_change(change: Change, state: str) -> None:
            nonlocal done
            done += 1
            report_step(ApplyStep(change, state, done, total))

        report_step(ApplyStep(None, "started", 0, total))
        executor = Executor(
            catalog=self.catalog,
            backends=self.connections.backends,
            journal=self.journal,
            policies=self.workspace.policies,
            repo_root=self.workspace.repo_root,
            progress=on_change,
        )
        try:
            report = executor.apply(plan, kind=kind, gates=gates or GateOptions(), check_stale=check_stale, fresh=fresh)
            for change in withdrawn:
                report.changes[change.key] = change
                report.states[change.key] = "withdrawn"
                report.details[change.key] = f"not sent: {gone[change.key]}"
            counts = report.counts()
            failed = counts.get("failed", 0) + counts.get("unknown", 0)
            record_summary(changes=len(plan.changes), failures=failed, drift=bool(failed))
            return report
        finally:
            report_step(ApplyStep(None, "finished", done, total))
