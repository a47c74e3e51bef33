"""Resume is scoped to the plan being applied (issue 10, items 1 and 2).

A change is skipped as "done" only when *this* plan already applied it: a later plan with an identical change
(a device lost, found and lost again; a setting reverted by hand in the console) sends it again. Re-running a
killed `apply plan.json` of the policy scope resumes instead of refusing its own work as staleness.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lockdown_tenant import Tenant, outcomes

from orchestrator.engine.journal import Journal
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator

REPO = Path(__file__).resolve().parent.parent
CONSOLES = ("--backend", "google", "--backend", "intune")  # no network gear in these tests


def test_a_device_lost_a_second_time_is_locked_again(tenant: Tenant) -> None:
    [chromebook] = tenant.serials("chromeos", 1)
    [ipad] = tenant.serials("ios", 1, supervised=True)
    tenant.mark("lost", chromebook, ipad)
    assert tenant.lockdown().returncode == 0
    assert tenant.chrome_status(chromebook) == "DISABLED"
    assert tenant.intune_record(ipad)["lostModeState"] == "enabled"

    tenant.mark("found", chromebook, ipad)
    assert tenant.lockdown().returncode == 0
    assert tenant.chrome_status(chromebook) == "ACTIVE"
    assert tenant.intune_record(ipad)["lostModeState"] == "disabled"

    tenant.mark("lost", chromebook, ipad)
    tenant.reset_counts()
    again = tenant.lockdown()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "done by an earlier run" not in again.stdout
    assert tenant.chrome_status(chromebook) == "DISABLED", "a device lost a second time was not disabled again"
    assert tenant.intune_record(ipad)["lostModeState"] == "enabled", "lost mode was not enabled again"
    assert tenant.status_calls, "no batchChangeStatus reached the console"
    assert outcomes(tenant.latest_report()[1])["locked"] == {(chromebook, "google"), (ipad, "intune")}


def test_the_lockdown_report_counts_only_what_this_run_did(tenant: Tenant) -> None:
    [chromebook] = tenant.serials("chromeos", 1)
    tenant.mark("lost", chromebook)
    assert tenant.lockdown().returncode == 0
    # Someone re-enables the device in the Admin console, then disables it again by hand before the next run:
    # the plan still has nothing to do, and a device locked by someone else is never counted as locked by us.
    by_serial = {d["serialNumber"]: d for d in tenant.google.state.devices.values()}
    by_serial[chromebook]["status"] = "ACTIVE"
    tenant.google.state.version += 1
    plan = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(tenant.config), "plan", "--scope", "lockdown"],
        capture_output=True,
        text=True,
        cwd=tenant.root,
        timeout=120,
    )
    assert "device_status" in plan.stdout, plan.stdout
    by_serial[chromebook]["status"] = "DISABLED"
    tenant.google.state.version += 1
    tenant.reset_counts()
    run = tenant.lockdown()
    assert run.returncode == 0
    assert tenant.state_changing_calls() == {}
    assert "locked" not in outcomes(tenant.latest_report()[1])


@pytest.fixture
def consoles(tmp_path: Path, monkeypatch) -> Iterator[tuple[Path, GoogleEmulator, GraphEmulator]]:
    seeded = generate(devices=120)
    google = GoogleEmulator(seeded).start()
    graph = GraphEmulator.start_local(seeded)
    for name in ("policies", "inventory"):
        shutil.copytree(REPO / name, tmp_path / name)
    (tmp_path / "orchestrator.yaml").write_text(
        f"journal: {tmp_path / 'journal.db'}\n"
        f"google:\n  directory_endpoint: {google.url}\n  policy_endpoint: {google.url}\n"
        f"intune:\n  graph_endpoint: {graph.url}\n"
    )
    yield tmp_path, google, graph
    google.stop()
    graph.stop()


def orchestrator(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(root / "orchestrator.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )


def test_a_setting_reverted_by_hand_in_the_console_is_applied_again(consoles) -> None:
    root, google, _ = consoles
    assert orchestrator(root, "apply", "--yes", *CONSOLES).returncode == 0
    assert orchestrator(root, "drift", *CONSOLES).returncode == 0
    ou = google.state.ou_by_ref("/Students/Elementary")
    wanted = google.state.policies[(ou.id, "chrome.users.UrlBlocking", "")]
    # an administrator deletes the URL blocklist by hand, then runs the same tool again
    del google.state.policies[(ou.id, "chrome.users.UrlBlocking", "")]
    google.state.version += 1
    assert orchestrator(root, "drift", *CONSOLES).returncode == 2
    again = orchestrator(root, "apply", "--yes", *CONSOLES)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "done by an earlier run" not in again.stdout
    assert google.state.policies.get((ou.id, "chrome.users.UrlBlocking", "")) == wanted
    assert orchestrator(root, "drift", *CONSOLES).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_writes", [1, 3])
def test_a_killed_policy_apply_resumes_from_its_saved_plan(consoles, kill_after_writes: int) -> None:
    root, google, _ = consoles
    plan_file = root / "plan.json"
    planned = orchestrator(root, "plan", "--backend", "google", "--out", str(plan_file))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    google.faults.latency = 0.5  # slow enough to kill between Chrome Policy writes
    google.reset_counts()
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--config", str(root / "orchestrator.yaml"), "apply", str(plan_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=root,
    )
    writes = ("policies.orgunits.batchModify", "policies.orgunits.batchInherit")
    assert sum(google.calls[w] for w in writes) == 0
    deadline = time.monotonic() + 120
    while sum(google.calls[w] for w in writes) < kill_after_writes and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the apply finished before the kill: the test must kill it part-way"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(google.faults.latency + 0.5)  # the write in flight still lands, as it would at Google
    google.faults.latency = 0.0
    resumed = orchestrator(root, "apply", str(plan_file))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "changed since this plan was made" not in resumed.stdout + resumed.stderr
    assert orchestrator(root, "drift", "--backend", "google").returncode == 0
    journal = Journal(root / "journal.db")
    runs = journal.runs(5)
    assert [r["status"] for r in runs[:2]] == ["succeeded", "interrupted"]
    states = collections.Counter(row.state for row in journal.actions(runs[0]["id"], limit=10_000))
    assert states["failed"] == 0 and states["unknown"] == 0


def test_a_saved_plan_is_still_refused_when_someone_else_changed_a_planned_resource(consoles) -> None:
    root, google, _ = consoles
    plan_file = root / "plan.json"
    assert orchestrator(root, "plan", "--backend", "google", "--out", str(plan_file)).returncode == 0
    ou = google.state.ou_by_ref("/Students/Elementary")
    google.state.policies[(ou.id, "chrome.users.UrlBlocking", "")] = {"urlBlocklist": ["someone-else.example"]}
    google.state.version += 1
    refused = orchestrator(root, "apply", str(plan_file))
    assert refused.returncode == 1
    assert "changed since this plan was made" in refused.stdout + refused.stderr


def test_a_change_found_already_in_place_at_apply_time_is_not_reported_as_done_by_this_run() -> None:
    from orchestrator.core.resources import Change, ResourceId
    from orchestrator.engine.apply import ApplyReport
    from orchestrator.engine.caps import LockdownTypes
    from orchestrator.engine.plan import Plan
    from orchestrator.inventory.devices import Device, Inventory
    from orchestrator.jobs.lockdown import LockdownSelection, build_report

    change = Change(id=ResourceId("google", "device_status", "CB1"), op="update", before="ACTIVE", after="DISABLED")
    plan = Plan(changes=[change], observed={}, backends=["google"], scopes=["lockdown"])
    applied = ApplyReport(run_id="r", states={change.key: "skipped"}, changes={change.key: change})
    inventory = Inventory(file="devices.csv", devices=[Device(serialNumber="CB1", platform="chromeos", school="x")])
    types = LockdownTypes(devices={("google", "device_status")})
    report = build_report(LockdownSelection.of(plan, 0, types), applied, inventory)
    assert report.totals == {"already in place": 1}
