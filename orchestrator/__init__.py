"""K-12 fleet orchestrator: declarative policies reconciled against Google Admin, Intune and network gear.

The public API (what the command line, the benchmarks and the tests use; everything else may move):

    from orchestrator import GateOptions, Session, run_lockdown

    with Session.open("orchestrator.yaml") as session:
        plan = session.plan(("policy",))                # compile, observe, diff
        report = session.apply(plan, GateOptions())       # gates, journal, backend calls
        outcome = run_lockdown(session, dry_run=True)     # the nightly job: plan, report per school

Importing this package connects nothing and loads no console SDK (Google's and Microsoft's clients are
imported when a session opens a backend that needs them).
"""

from orchestrator.core.errors import (
    AuthError,
    BackendError,
    ConfigError,
    Diagnostic,
    OrchestratorError,
    OutcomeUnknown,
    PlanError,
    PolicyError,
    QuotaError,
    StalePlanError,
    TransientError,
    UnknownResourceType,
)
from orchestrator.engine.apply import ApplyReport, GateOptions
from orchestrator.engine.plan import Plan
from orchestrator.jobs.inventory import InventorySync, sync_inventory
from orchestrator.jobs.lockdown import LockdownOutcome, run_lockdown
from orchestrator.jobs.maintenance import MaintenanceRehearsal, MaintenanceRun, rehearse_maintenance, run_maintenance
from orchestrator.jobs.session import ApplyStep, Session

__version__ = "0.1.0"

__all__ = [
    "ApplyReport",
    "ApplyStep",
    "AuthError",
    "BackendError",
    "ConfigError",
    "Diagnostic",
    "GateOptions",
    "InventorySync",
    "LockdownOutcome",
    "MaintenanceRehearsal",
    "MaintenanceRun",
    "OrchestratorError",
    "OutcomeUnknown",
    "Plan",
    "PlanError",
    "PolicyError",
    "QuotaError",
    "Session",
    "StalePlanError",
    "TransientError",
    "UnknownResourceType",
    "__version__",
    "rehearse_maintenance",
    "run_lockdown",
    "run_maintenance",
    "sync_inventory",
]
