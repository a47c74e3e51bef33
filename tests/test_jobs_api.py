"""The public API without the command line: `Session`, `run_lockdown` and the maintenance jobs, driven against
the Google and Graph emulators exactly as the CLI, the benchmark and a district's own scripts would call them.

No click and no rich here: what a person would see arrives through the `status` and `progress` callbacks.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lockdown_tenant import Tenant
from test_maintenance_e2e import BREAK_MORNING, CHROMEBOOKS, CLASS_DAY, LAB_PCS, Fleet, make_fleet

from orchestrator import (
    ApplyStep,
    ConfigError,
    GateOptions,
    LockdownOutcome,
    Session,
    rehearse_maintenance,
    run_lockdown,
    run_maintenance,
)
from orchestrator.jobs.connect import Connections
from orchestrator.jobs.workspace import open_workspace

REPO = Path(__file__).resolve().parent.parent


# ---- the package itself ------------------------------------------------------------------------------
def test_the_public_api_imports_cheaply_and_without_the_command_line() -> None:
    probe = (
        "import sys, json, orchestrator\n"
        "missing = [n for n in orchestrator.__all__ if not hasattr(orchestrator, n)]\n"
        "roots = sorted({m.split('.')[0] for m in sys.modules})\n"
        "ours = sorted(m for m in sys.modules if m.startswith('orchestrator.cli'))\n"
        "print(json.dumps({'missing': missing, 'roots': roots, 'cli': ours}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert out["missing"] == []
    assert out["cli"] == [], "importing the library must not load the command line"
    heavy = {"googleapiclient", "google_auth_httplib2", "msgraph", "kiota_abstractions", "azure", "ansible_runner"}
    assert heavy.isdisjoint(out["roots"]), "console SDKs load when a backend is opened, not at import"
    assert "rich" not in out["roots"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_jobs_use_neither_click_nor_rich_and_nothing_outside_the_cli_imports_it() -> None:
    for path in sorted((REPO / "orchestrator" / "jobs").glob("*.py")):
        bad = {n for n in _imports(path) if n.split(".")[0] in ("click", "rich") or n.startswith("orchestrator.cli")}
        assert not bad, f"{path.name} imports {sorted(bad)}"
    for path in sorted((REPO / "orchestrator").rglob("*.py")):
        if "cli" in path.relative_to(REPO / "orchestrator").parts or path.name == "__main__.py":
            continue
        assert not {n for n in _imports(path) if n.startswith("orchestrator.cli")}, f"{path} imports the CLI"


def test_a_named_backend_missing_from_the_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "orchestrator.yaml").write_text("journal: journal.db\n")
    with pytest.raises(ConfigError, match="network: not configured"):
        Session.open(str(tmp_path / "orchestrator.yaml"), backends=("network",))
    assert not (tmp_path / "journal.db").exists(), "a session that failed to open left a journal behind"


# ---- lockdown --------------------------------------------------------------------------------------------
class Recorder:
    """The callbacks a caller passes: every status message, every apply step."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.steps: list[ApplyStep] = []

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        self.messages.append(message)
        yield

    def progress(self, step: ApplyStep) -> None:
        self.steps.append(step)


def _lockdown(tenant: Tenant, recorder: Recorder, **options: object) -> LockdownOutcome:
    with Session.open(str(tenant.config), status=recorder.status, progress=recorder.progress) as session:
        return run_lockdown(session, **options)  # type: ignore[arg-type]


def test_run_lockdown_dry_run_then_real_run_through_the_public_api(tenant: Tenant) -> None:
    chromebooks = tenant.serials("chromeos", 2)
    [laptop] = tenant.serials("windows", 1)
    tenant.mark("lost", *chromebooks, laptop)
    recorder = Recorder()

    planned = _lockdown(tenant, recorder, dry_run=True)
    assert planned.ok and planned.report is None and planned.run_id is None
    assert planned.summary.totals == {"planned": 3}
    assert recorder.messages == ["Observing lost and found devices..."]
    assert recorder.steps == [], "a dry run applies nothing"
    assert tenant.state_changing_calls() == {}
    assert planned.markdown_path.name.endswith("-dry-run.md") and planned.markdown_path.is_file()
    # every change is traced to the inventory row that caused it
    lines = {d.serialNumber: d.line for d in open_workspace(str(tenant.config)).inventory.devices}
    sources = {s for change in planned.plan.changes for s in change.sources}
    assert {f"devices.csv:{lines[s]}" for s in [*chromebooks, laptop]} <= {s.rsplit("/", 1)[-1] for s in sources}

    done = _lockdown(tenant, recorder)
    assert done.ok and done.report is not None and done.report.ok
    assert done.summary.totals == {"locked": 3}
    assert [tenant.chrome_status(s) for s in chromebooks] == ["DISABLED"] * 2 and tenant.remote_locked(laptop)
    assert {(r["serial"], r["outcome"]) for r in done.summary.rows} == {(s, "locked") for s in [*chromebooks, laptop]}
    assert json.loads(done.json_path.read_text())["run"] == done.run_id
    assert set(done.seconds) == {"plan", "apply"}
    total = len(done.plan.changes)
    assert recorder.steps[0] == ApplyStep(None, "started", 0, total)
    assert recorder.steps[-1] == ApplyStep(None, "finished", total, total)
    assert [s.done for s in recorder.steps[1:-1]] == list(range(1, total + 1))

    tenant.reset_counts()
    again = _lockdown(tenant, Recorder())
    assert again.plan.changes == [] and again.report is None and tenant.state_changing_calls() == {}


def test_run_lockdown_holds_devices_over_the_cap_unless_overridden(tenant: Tenant) -> None:
    tenant.write(cap=2)
    chromebooks = tenant.serials("chromeos", 4)
    tenant.mark("lost", *chromebooks)

    capped = _lockdown(tenant, Recorder())
    assert capped.summary.totals == {"locked": 2, "held": 2}
    assert len(capped.selection.over_cap) == 2
    assert sorted(tenant.chrome_status(s) for s in chromebooks) == ["ACTIVE", "ACTIVE", "DISABLED", "DISABLED"]

    overridden = _lockdown(tenant, Recorder(), override_blast_radius=True)
    assert overridden.summary.totals == {"locked": 2} and overridden.ok
    assert [tenant.chrome_status(s) for s in chromebooks] == ["DISABLED"] * 4


def test_session_plan_and_apply_are_the_reconcile_loop(tenant: Tenant) -> None:
    [chromebook] = tenant.serials("chromeos", 1)
    tenant.mark("lost", chromebook)
    steps: list[ApplyStep] = []
    with Session.open(str(tenant.config), backends=("google",)) as session:
        assert session.backends == ["google"]
        plan = session.plan(("lockdown",))
        assert [c.id.backend for c in plan.changes] == ["google"]
        report = session.apply(plan, GateOptions(), steps.append, kind="lockdown")
        assert sum(session.api_calls().values()) > 0
    assert report.ok and report.counts() == {"succeeded": 1}
    assert [s.state for s in steps] == ["started", "succeeded", "finished"]
    assert tenant.chrome_status(chromebook) == "DISABLED"


# ---- maintenance -----------------------------------------------------------------------------------------
@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path)


def _session(fleet: Fleet) -> Session:
    """A session from parts: the fixture's own backends (tuned for tests) and journal, which the fixture closes."""
    config = fleet.root / "orchestrator.yaml"
    config.write_text(f"journal: {fleet.journal.path}\n")
    connections = Connections(backends={"google": fleet.google, "intune": fleet.intune})
    return Session(open_workspace(str(config)), connections, fleet.journal)


def test_maintenance_rehearsal_and_run_through_the_public_api(fleet: Fleet) -> None:
    session = _session(fleet)

    class_day = rehearse_maintenance(session, now=CLASS_DAY)
    assert class_day.now == CLASS_DAY and len(class_day.plan.changes) == 4
    assert class_day.would_run() == set()
    assert all("class day" in d.reason for d in class_day.rehearsal.decisions)

    on_break = rehearse_maintenance(session, now=BREAK_MORNING)
    assert len(on_break.would_run()) == 4
    assert fleet.commands_per_serial() == {} and fleet.wipes() == 0, "a rehearsal sends nothing"

    planned, reports = [], []
    run = run_maintenance(session, clock=lambda: BREAK_MORNING, on_plan=planned.append, on_report=reports.append)
    assert run.ok and planned == [run.plan] and reports == run.drained.reports
    ran = {k for report in reports for k, state in report.states.items() if state == "succeeded"}
    assert ran == on_break.would_run(), "inside an open window the rehearsal's 'would run' is what ran"
    assert fleet.commands_per_serial() == {s: 1 for s in CHROMEBOOKS}
    assert fleet.wipes() == len(LAB_PCS)

    second = run_maintenance(session, clock=lambda: BREAK_MORNING)
    assert second.plan.changes == [] and second.drained.reports == [] and second.ok
    assert fleet.commands_per_serial() == {s: 1 for s in CHROMEBOOKS}


def test_maintenance_run_on_a_class_day_defers_everything_and_says_why(fleet: Fleet) -> None:
    run = run_maintenance(_session(fleet), clock=lambda: CLASS_DAY)
    assert run.ok and run.drained.states() and set(run.drained.states().values()) == {"deferred"}
    assert list(run.drained.waiting) == ["jefferson-lab-reset"]
    assert fleet.commands_per_serial() == {} and fleet.wipes() == 0
