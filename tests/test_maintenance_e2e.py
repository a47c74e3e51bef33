"""Safe reimaging end to end: the sample district's Reimage policy against the Google and Graph emulators.

Library level with a fixed `now` (the executor and `maintenance.drain` take the time; the CLI always uses the
real clock). /Labs/Jefferson holds Chromebooks CB0000004 and CB0000104 and lab PCs PF0000008 and PF0000108;
`jefferson-lab-reset` waits for `break-days` (07:00-18:00 on days without students; Thanksgiving break is
2026-11-25..27 in America/Chicago).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestrator.backends.google.backend import GoogleBackend
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.backends.intune.backend import IntuneBackend
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.registry import CATALOG
from orchestrator.engine.apply import ApplyReport, Executor, GateOptions
from orchestrator.engine.gates import build_window_schedules
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import Plan
from orchestrator.engine.reconcile import make_plan
from orchestrator.inventory.devices import load_inventory
from orchestrator.jobs.maintenance import Drained, drain, rehearse
from orchestrator.policy.loader import load_policies
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.httpbase import Fault

REPO = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("America/Chicago")
CLASS_DAY = dt.datetime(2026, 11, 24, 10, 0, tzinfo=TZ)  # Tuesday before Thanksgiving: students in school
BREAK_MORNING = dt.datetime(2026, 11, 25, 9, 0, tzinfo=TZ)  # Thanksgiving break, window 07:00-18:00 open
BREAK_AFTERNOON = dt.datetime(2026, 11, 25, 15, 0, tzinfo=TZ)  # same window interval, later
BREAK_EVENING = dt.datetime(2026, 11, 25, 18, 30, tzinfo=TZ)  # window closed for the night
NEXT_BREAK_DAY = dt.datetime(2026, 11, 26, 8, 0, tzinfo=TZ)  # the next interval of the same window
CHROMEBOOKS = ("CB0000004", "CB0000104")
LAB_PCS = ("PF0000008", "PF0000108")
POLICY = "jefferson-lab-reset"


@dataclass
class Fleet:
    """The sample district copied to a temp repo, both emulators, and the real backends pointed at them."""

    root: Path
    google_emulator: GoogleEmulator
    graph_emulator: GraphEmulator
    google: GoogleBackend
    intune: IntuneBackend
    journal: Journal

    def edit_policy(self, file: str, old: str, new: str) -> None:
        path = self.root / "policies" / file
        text = path.read_text()
        assert old in text, f"{old!r} is not in {file}"
        path.write_text(text.replace(old, new))

    def add_policy(self, file: str, text: str) -> None:
        (self.root / "policies" / file).write_text(text)

    def plan(self) -> Plan:
        return make_plan(
            catalog=CATALOG,
            policies=load_policies(self.root / "policies"),
            inventory=load_inventory(self.root / "inventory" / "devices.csv"),
            backends={"google": self.google, "intune": self.intune},
            journal=self.journal,
            scopes=("maintenance",),
        )

    def executor(self) -> Executor:
        return Executor(
            catalog=CATALOG,
            backends={"google": self.google, "intune": self.intune},
            journal=self.journal,
            policies=load_policies(self.root / "policies"),
            repo_root=self.root,
        )

    def apply(self, plan: Plan, now: dt.datetime, **options: object) -> ApplyReport:
        return self.executor().apply(plan, kind="maintenance", gates=GateOptions(now=now, **options))  # type: ignore[arg-type]

    def drain(self, plan: Plan, clock: Callable[[], dt.datetime], **options: object) -> Drained:
        executor = self.executor()
        return drain(
            plan,
            lambda sub, gates: executor.apply(sub, kind="maintenance", gates=gates, check_stale=False),
            clock=clock,
            **options,  # type: ignore[arg-type]
        )

    # ---- what the emulated consoles saw -------------------------------------------------------------
    def serial_of(self, device_id: str) -> str:
        return self.google_emulator.state.devices[device_id]["serialNumber"]

    def commands_per_serial(self) -> collections.Counter[str]:
        return collections.Counter(self.serial_of(c.device_id) for c in self.google_emulator.state.commands.values())

    def command_types(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = collections.defaultdict(set)
        for command in self.google_emulator.state.commands.values():
            out[self.serial_of(command.device_id)].add(command.type)
        return dict(out)

    def intune_record(self, serial: str) -> dict:
        (record,) = [d for d in self.graph_emulator.state.devices.values() if d["serialNumber"] == serial]
        return record

    def wipes(self) -> int:
        return self.graph_emulator.calls["POST managedDevices/wipe"]

    def journal_responses(self, run_id: str) -> dict[str, dict]:
        rows = self.journal.db.execute(
            "SELECT resource, response FROM actions WHERE run_id=? AND response IS NOT NULL", (run_id,)
        )
        return {resource: json.loads(response) for resource, response in rows}


def make_fleet(tmp_path: Path, *, google_timeout: float = 10.0) -> Iterator[Fleet]:
    root = tmp_path / "district"
    root.mkdir()
    shutil.copytree(REPO / "policies", root / "policies")
    shutil.copytree(REPO / "inventory", root / "inventory")
    district = generate(devices=120, seed=2026)  # the district inventory/devices.csv was generated from
    google_emulator = GoogleEmulator(district, seed=2026).start()
    graph_emulator = GraphEmulator.start_local(district)
    google = GoogleBackend(
        GoogleConfig(
            directory_endpoint=google_emulator.url,
            policy_endpoint=google_emulator.url,
            credentials_file_env="K12_TEST_NO_GOOGLE_CREDENTIALS",
            requests_per_minute=60000,
        ),
        poll_interval=0.0,
        timeout=google_timeout,
        # A maintenance plan also reads the Chrome policies (observe with no policy resources); unpaced here.
        policy_reads_per_minute=60000,
    )
    intune = IntuneBackend(IntuneConfig(graph_endpoint=graph_emulator.url))
    journal = Journal(tmp_path / "journal.db")
    try:
        yield Fleet(root, google_emulator, graph_emulator, google, intune, journal)
    finally:
        journal.close()
        google.close()
        intune.close()
        google_emulator.stop()
        graph_emulator.stop()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path)


def serials(changes) -> list[str]:
    return sorted(c.id.key.split("|", 1)[0] for c in changes)


def by_serial(report: ApplyReport) -> dict[str, str]:
    return {c.id.key.split("|", 1)[0]: report.states[k] for k, c in report.changes.items()}


def test_sample_policy_queues_the_four_jefferson_lab_devices(fleet: Fleet) -> None:
    plan = fleet.plan()
    assert serials(plan.changes) == sorted(CHROMEBOOKS + LAB_PCS)
    assert all(c.destructive and c.window == "break-days" and c.policy == POLICY for c in plan.changes)


def test_on_a_class_day_reimages_are_deferred_until_the_break_and_nothing_is_sent(fleet: Fleet) -> None:
    plan = fleet.plan()
    report = fleet.apply(plan, CLASS_DAY)

    assert report.counts() == {"deferred": 4}
    for key in report.states:
        assert "window break-days closed" in report.details[key]
        assert "next opens 2026-11-25 07:00 CST" in report.details[key]
    assert fleet.google_emulator.calls["chromeosdevices.issueCommand"] == 0
    assert fleet.wipes() == 0
    assert fleet.graph_emulator.calls["POST $batch"] == 0
    assert serials(fleet.plan().changes) == sorted(CHROMEBOOKS + LAB_PCS), "deferred reimages stay queued"


def test_inside_the_window_each_device_is_reimaged_once_and_recorded(fleet: Fleet) -> None:
    report = fleet.apply(fleet.plan(), BREAK_MORNING)

    assert by_serial(report) == {s: "succeeded" for s in CHROMEBOOKS + LAB_PCS}
    # Google: one issueCommand WIPE_USERS per Chromebook, polled with commands.get until executed.
    assert fleet.commands_per_serial() == {s: 1 for s in CHROMEBOOKS}
    assert fleet.command_types() == {s: {"WIPE_USERS"} for s in CHROMEBOOKS}
    assert fleet.google_emulator.calls["commands.get"] >= 2 * 4  # PENDING → … → EXECUTED_BY_CLIENT each
    responses = fleet.journal_responses(report.run_id)
    for serial in CHROMEBOOKS:
        response = responses[f"google/reimage/{serial}|2026-thanksgiving"]
        assert response["state"] == "EXECUTED_BY_CLIENT" and response["result"] == "SUCCESS"
        assert response["commandId"] in fleet.google_emulator.state.commands
        assert response["window"] == "break-days"
    # Intune: an Autopilot reset is a wipe that keeps enrollment data, one per PC.
    assert fleet.wipes() == 2
    for serial in LAB_PCS:
        record = fleet.intune_record(serial)
        assert record["managementState"] == "wipePending"
        assert record["lastWipe"] == {"keepEnrollmentData": True, "keepUserData": False}


def test_a_second_run_in_the_same_window_repeats_no_device(fleet: Fleet) -> None:
    first = fleet.plan()
    fleet.apply(first, BREAK_MORNING)
    fleet.google_emulator.reset_counts()
    fleet.graph_emulator.reset_counts()

    assert fleet.plan().changes == [], "re-planning shows nothing left to reimage"
    again = fleet.apply(first, BREAK_AFTERNOON)  # the same reviewed plan applied a second time

    assert set(again.states.values()) == {"skipped"}
    assert fleet.google_emulator.calls["chromeosdevices.issueCommand"] == 0
    assert fleet.wipes() == 0
    assert fleet.commands_per_serial() == {s: 1 for s in CHROMEBOOKS}


def test_blast_radius_holds_across_runs_in_one_window_interval(fleet: Fleet) -> None:
    fleet.edit_policy("reimage.yaml", "max_devices_per_window: 40", "max_devices_per_window: 3")

    first = fleet.apply(fleet.plan(), BREAK_MORNING, max_destructive=2)
    assert first.counts() == {"succeeded": 2, "deferred": 2}
    assert all("--max-destructive 2" in first.details[c.key] for c in first.by_state("deferred"))

    second = fleet.apply(fleet.plan(), BREAK_AFTERNOON)  # a new run: --max-destructive is per run, the cap is not
    assert second.counts() == {"succeeded": 1, "deferred": 1}
    (held,) = second.by_state("deferred")
    assert f"policy {POLICY} already has 3 of max 3 devices" in second.details[held.key]
    assert "next opens" not in second.details[held.key]
    sent = sum(fleet.commands_per_serial().values()) + fleet.wipes()
    assert sent == 3, "nothing beyond the per-window cap reached a console"

    third = fleet.apply(fleet.plan(), BREAK_AFTERNOON, override_blast_radius=True)
    assert third.counts() == {"succeeded": 1}
    assert "blast radius overridden" in fleet.journal_responses(third.run_id)[str(held.id)]["gate"]
    assert sum(fleet.commands_per_serial().values()) + fleet.wipes() == 4


def test_the_per_window_cap_starts_again_in_the_next_window_interval(fleet: Fleet) -> None:
    fleet.edit_policy("reimage.yaml", "max_devices_per_window: 40", "max_devices_per_window: 2")

    first = fleet.apply(fleet.plan(), BREAK_MORNING)
    assert first.counts() == {"succeeded": 2, "deferred": 2}
    assert fleet.apply(fleet.plan(), BREAK_AFTERNOON).counts() == {"deferred": 2}

    next_day = fleet.apply(fleet.plan(), NEXT_BREAK_DAY)
    assert next_day.counts() == {"succeeded": 2}
    assert fleet.commands_per_serial() == {s: 1 for s in CHROMEBOOKS}
    assert fleet.wipes() == 2


def test_an_issue_command_that_times_out_is_unknown_and_never_resent(tmp_path: Path) -> None:
    for fleet in make_fleet(tmp_path, google_timeout=0.5):
        # The console accepts the command but the answer never arrives (the client gives up first).
        fleet.google_emulator.faults.queue.append(
            Fault(0, delay=1.5, endpoint="chromeosdevices.issueCommand", after_effect=True)
        )
        first = fleet.apply(fleet.plan(), BREAK_MORNING)
        timed_out = [s for s, state in by_serial(first).items() if state == "unknown"]
        assert len(timed_out) == 1 and timed_out[0] in CHROMEBOOKS
        assert first.counts() == {"succeeded": 3, "unknown": 1}

        replanned = fleet.plan()
        assert serials(replanned.changes) == timed_out, "an unknown outcome stays visible in the plan"
        second = fleet.apply(replanned, BREAK_AFTERNOON)

        assert by_serial(second) == {timed_out[0]: "unknown"}
        assert "not re-sent" in second.details[replanned.changes[0].key]
        assert fleet.google_emulator.calls["chromeosdevices.issueCommand"] == 2, "one call per Chromebook, ever"
        deadline = time.monotonic() + 30  # the timed-out request is still held by the emulator; let it land
        while timed_out[0] not in fleet.commands_per_serial() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fleet.commands_per_serial() == {s: 1 for s in CHROMEBOOKS}, "the wipe was issued exactly once"


def test_maintenance_run_stops_when_the_window_closes_between_batches_and_resumes_next_window(
    fleet: Fleet,
) -> None:
    fleet.edit_policy("reimage.yaml", "batch_size: 10", "batch_size: 2")
    times = iter([BREAK_AFTERNOON, BREAK_EVENING])  # the window closes after the first batch

    tonight = fleet.drain(fleet.plan(), lambda: next(times))

    assert [len(r.states) for r in tonight.reports] == [2, 2], "batches of batch_size"
    assert list(tonight.reports[0].states.values()) == ["succeeded", "succeeded"]
    assert list(tonight.reports[1].states.values()) == ["deferred", "deferred"]
    assert all("next opens 2026-11-26 07:00 CST" in d for d in tonight.reports[1].details.values())
    assert "next opens 2026-11-26 07:00 CST" in tonight.waiting[POLICY] and tonight.stopped == ""
    done_tonight = {s for s, st in by_serial(tonight.reports[0]).items() if st == "succeeded"}
    wiped_tonight = fleet.wipes() + sum(fleet.commands_per_serial().values())
    assert wiped_tonight == 2

    tomorrow = fleet.drain(fleet.plan(), lambda: NEXT_BREAK_DAY)

    assert tomorrow.stopped == "" and tomorrow.ok
    resumed = {s for report in tomorrow.reports for s, state in by_serial(report).items() if state == "succeeded"}
    assert resumed == set(CHROMEBOOKS + LAB_PCS) - done_tonight
    assert fleet.commands_per_serial() == {s: 1 for s in CHROMEBOOKS}
    assert fleet.wipes() == 2
    assert fleet.plan().changes == []


def test_max_destructive_stops_a_maintenance_run_between_batches(fleet: Fleet) -> None:
    fleet.edit_policy("reimage.yaml", "batch_size: 10", "batch_size: 1")

    run = fleet.drain(fleet.plan(), lambda: BREAK_MORNING, max_destructive=3)

    assert [r.counts() for r in run.reports] == [{"succeeded": 1}] * 3
    assert "--max-destructive 3" in run.stopped
    assert len(fleet.plan().changes) == 1


def test_maintenance_run_command_plans_the_queue_and_honours_max_destructive(fleet: Fleet) -> None:
    config = fleet.root / "orchestrator.yaml"
    config.write_text(
        f"journal: {fleet.journal.path}\n"
        f"google:\n  directory_endpoint: {fleet.google_emulator.url}\n  policy_endpoint: {fleet.google_emulator.url}\n"
        f"intune:\n  graph_endpoint: {fleet.graph_emulator.url}\n"
    )
    # --max-destructive 0 holds every device whatever the real clock says, so this is deterministic.
    run = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), "maintenance", "run", "--max-destructive", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 device(s) waiting for reimage." in run.stdout
    assert "Stopping: --max-destructive 0 reached for this run" in run.stdout
    assert fleet.google_emulator.calls["chromeosdevices.issueCommand"] == 0
    assert fleet.wipes() == 0


NIGHT_POLICY = """\
kind: Reimage
name: aaa-night-reset
window: overnight-no-students
request: 2026-night
devices:
  serials: [CB0000001, CB0000002, PF0000018]
google:
  method: powerwash
intune:
  method: wipe
batch_size: 2
"""


def test_a_closed_window_of_one_policy_holds_only_that_policy_and_the_dry_run_matches_the_run(
    fleet: Fleet,
) -> None:
    """Issue 10 item 6: one Reimage policy whose window is closed no longer stops the whole run."""
    fleet.add_policy("reimage-night.yaml", NIGHT_POLICY)  # sorts first; its window is closed in the morning
    plan = fleet.plan()
    assert {c.policy for c in plan.changes} == {"aaa-night-reset", POLICY}
    rehearsal = rehearse(
        plan,
        now=BREAK_MORNING,
        windows=build_window_schedules(load_policies(fleet.root / "policies"), fleet.root),
        journal=fleet.journal,
    )
    would_run = {c.id.key for c in plan.changes if c.key in rehearsal.would_run()}
    assert {k.split("|")[0] for k in would_run} == set(CHROMEBOOKS + LAB_PCS)

    run = fleet.drain(plan, lambda: BREAK_MORNING)

    ran = {
        change.id.key
        for report in run.reports
        for key, state in report.states.items()
        if state == "succeeded"
        for change in [report.changes[key]]
    }
    assert ran == would_run, "inside an open window the dry run's 'would run' must equal what ran"
    assert "aaa-night-reset" in run.waiting and "closed" in run.waiting["aaa-night-reset"]
    assert fleet.commands_per_serial() == {s: 1 for s in CHROMEBOOKS}


def test_maintenance_run_dry_run_rehearses_any_time_and_at_needs_dry_run(fleet: Fleet) -> None:
    config = fleet.root / "orchestrator.yaml"
    config.write_text(
        f"journal: {fleet.journal.path}\n"
        f"google:\n  directory_endpoint: {fleet.google_emulator.url}\n  policy_endpoint: {fleet.google_emulator.url}\n"
        f"intune:\n  graph_endpoint: {fleet.graph_emulator.url}\n"
    )

    def maintenance(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", "--config", str(config), "maintenance", "run", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=fleet.root,
        )

    on_break = maintenance("--dry-run", "--at", "2026-11-25T09:00")
    assert on_break.returncode == 0, on_break.stdout + on_break.stderr
    assert "4 would run, 0 wait" in on_break.stdout and "CST" in on_break.stdout
    class_day = maintenance("--dry-run", "--at", "2026-11-24T10:00")
    assert "0 would run, 4 wait" in class_day.stdout and "class day" in class_day.stdout
    refused = maintenance("--at", "2026-11-25T09:00")
    assert refused.returncode == 1 and "--dry-run" in refused.stderr
    assert fleet.google_emulator.calls["chromeosdevices.issueCommand"] == 0 and fleet.wipes() == 0
