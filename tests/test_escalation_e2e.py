"""Lost-device escalation end to end: plan, gates and apply through the real googleapiclient and msgraph-sdk
against the Google and Graph emulators, through a Session (the path `plan`, `apply` and `maintenance run` take).

The sample district's lost devices: CB0000011 (Chromebook, lost), PF0000009 (Windows, stolen), DM0000010 (iPad,
lost), CB0000012 (Chromebook, stolen). The history says the first three were lost on Monday 2026-11-23; nothing
says when CB0000012 was. `after_school_days: 3` is reached on Tuesday 2026-12-01 (Tuesday 11-24, then
Thanksgiving break and a weekend, Monday 11-30, Tuesday 12-01). The `break-days` window (07:00-18:00 on days
without students) next opens on Saturday 2026-12-05.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from test_maintenance_e2e import TZ, Fleet, make_fleet

from orchestrator.cli.render import render_markdown, render_text
from orchestrator.core.errors import StalePlanError
from orchestrator.core.resources import Change
from orchestrator.engine.apply import GateOptions
from orchestrator.engine.plan import Plan
from orchestrator.inventory.edits import HistoryEntry, append_history
from orchestrator.jobs.connect import Connections
from orchestrator.jobs.inventory import set_device
from orchestrator.jobs.maintenance import MaintenanceRun, rehearse_maintenance, run_maintenance
from orchestrator.jobs.session import Session
from orchestrator.jobs.workspace import open_workspace

LOST_POLICY = """\
kind: LostDevicePolicy
name: lost-devices
message: "This device belongs to Prairie Valley School District. Please return it to any school office."
max_per_run: 50
google:
  action: {google}
intune:
  action: remote_lock
  windows: disable_device
escalate:
  after_school_days: 3
  action: {action}
  window: break-days
  max_devices_per_window: {cap}
"""
LOST_MONDAY = "2026-11-23T15:00:00+00:00"
DATED = ("CB0000011", "DM0000010", "PF0000009")
MON_NOV30 = dt.datetime(2026, 11, 30, 10, 0, tzinfo=TZ)  # two school days: not yet
TUE_DEC1 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=TZ)  # three: queued; a class day, so the window is closed
SAT_DEC5 = dt.datetime(2026, 12, 5, 9, 0, tzinfo=TZ)  # break-days open
SAT_DEC5_LATER = dt.datetime(2026, 12, 5, 11, 0, tzinfo=TZ)


class Escalation:
    """The sample district with an escalating LostDevicePolicy, a device history, and a Session on the emulators."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        (fleet.root / "policies" / "reimage.yaml").unlink()  # only escalations in the maintenance queue
        (fleet.root / "orchestrator.yaml").write_text(f"journal: {fleet.root.parent / 'journal.db'}\n")
        append_history(
            fleet.root / "inventory" / "history.csv",
            [
                HistoryEntry(LOST_MONDAY, serial, "inventoryStatus", "active", status, "cli", "tech")
                for serial, status in (("CB0000011", "lost"), ("DM0000010", "lost"), ("PF0000009", "stolen"))
            ],
        )
        self.policy()

    def policy(self, action: str = "powerwash", cap: int = 10, google: str = "none") -> None:
        """The escalation policy; Chromebooks are not disabled by the lockdown unless `google` says so."""
        text = LOST_POLICY.format(action=action, cap=cap, google=google)
        (self.fleet.root / "policies" / "lost-devices.yaml").write_text(text)

    def session(self) -> Session:
        """A fresh session (config, policies and inventory read now) on the fleet's backends and journal."""
        ws = open_workspace(str(self.fleet.root / "orchestrator.yaml"))
        connections = Connections(backends={"google": self.fleet.google, "intune": self.fleet.intune})
        return Session(ws, connections, self.fleet.journal)

    def plan(self, now: dt.datetime) -> Plan:
        return self.session().plan(("maintenance",), now=now)

    def found(self, serial: str) -> None:
        set_device(open_workspace(str(self.fleet.root / "orchestrator.yaml")), serial, {"inventoryStatus": "found"})


@pytest.fixture
def esc(tmp_path: Path) -> Iterator[Escalation]:
    for fleet in make_fleet(tmp_path):
        yield Escalation(fleet)


def changes_of(run: MaintenanceRun) -> dict[str, Change]:
    return {key: change for report in run.drained.reports for key, change in report.changes.items()}


def details_of(run: MaintenanceRun) -> dict[str, str]:
    return {key: detail for report in run.drained.reports for key, detail in report.details.items()}


def by_serial(keys: dict[str, str], changes: dict[str, Change]) -> dict[str, str]:
    return {changes[k].id.key.split("|", 1)[0]: v for k, v in keys.items()}


def test_a_device_lost_two_school_days_is_not_queued_and_at_three_it_is(esc: Escalation) -> None:
    assert esc.plan(MON_NOV30).changes == []  # eight calendar days, two school days
    plan = esc.plan(TUE_DEC1)
    queued = {str(c.id): c for c in plan.changes}
    assert sorted(queued) == [
        "google/reimage/CB0000011|lost@2026-11-23",
        "intune/reimage/DM0000010|lost@2026-11-23",
        "intune/reimage/PF0000009|lost@2026-11-23",
    ]
    change = queued["google/reimage/CB0000011|lost@2026-11-23"]
    assert change.destructive and change.op == "action" and change.window == "break-days"
    assert change.after == {"command": "REMOTE_POWERWASH"}
    assert change.gate is not None and change.gate.policy == "lost-devices.escalate" and not change.gate.deprovision
    assert change.meta["escalation"]["reason"] == "lost since 2026-11-23, 3 school days"
    assert change.sources[0].endswith("lost-devices.yaml:10")
    assert queued["intune/reimage/PF0000009|lost@2026-11-23"].after == {
        "action": "wipe",
        "keepEnrollmentData": False,
        "keepUserData": False,
    }
    # the plan says why, without student data; the undated device is named, not escalated
    notes = "\n".join(plan.notes)
    assert "CB0000011 (roosevelt-middle, chromeos) → powerwash in window break-days: lost since 2026-11-23" in notes
    assert "CB0000012" in notes and "no entry saying when" in notes
    assert "student" not in notes and "@district" not in notes


def test_outside_the_window_it_is_deferred_and_nothing_is_sent(esc: Escalation) -> None:
    session = esc.session()
    plan = session.plan(("maintenance",), now=TUE_DEC1)
    report = session.apply(plan, GateOptions(now=TUE_DEC1))

    assert set(report.states.values()) == {"deferred"}
    for detail in report.details.values():
        assert "window break-days closed" in detail and "next opens 2026-12-05 07:00 CST" in detail
    assert esc.fleet.google_emulator.calls["chromeosdevices.issueCommand"] == 0
    assert esc.fleet.wipes() == 0


def test_in_the_window_each_platform_gets_its_action_once(esc: Escalation) -> None:
    run = run_maintenance(esc.session(), clock=lambda: SAT_DEC5)

    assert run.ok
    assert by_serial(run.drained.states(), changes_of(run)) == dict.fromkeys(DATED, "succeeded")
    assert esc.fleet.command_types() == {"CB0000011": {"REMOTE_POWERWASH"}}
    assert esc.fleet.intune_record("PF0000009")["lastWipe"] == {"keepEnrollmentData": False, "keepUserData": False}
    assert esc.fleet.intune_record("DM0000010")["lastWipe"] == {"keepEnrollmentData": False, "keepUserData": False}
    assert esc.fleet.wipes() == 2
    # done once: the next run in the same window has nothing left to escalate
    again = run_maintenance(esc.session(), clock=lambda: SAT_DEC5_LATER)
    assert again.plan.changes == [] and esc.fleet.commands_per_serial() == {"CB0000011": 1}


def test_over_the_blast_radius_the_rest_waits_for_the_next_window(esc: Escalation) -> None:
    esc.policy(cap=2)
    session = esc.session()
    report = session.apply(session.plan(("maintenance",), now=SAT_DEC5), GateOptions(now=SAT_DEC5))

    states = by_serial(report.states, report.changes)
    assert states == {"CB0000011": "succeeded", "DM0000010": "succeeded", "PF0000009": "deferred"}
    (refused,) = [d for k, d in report.details.items() if report.changes[k].id.key.startswith("PF0000009")]
    assert "blast radius: policy lost-devices.escalate already has 2 of max 2 devices" in refused
    assert "next window it fits in opens 2026-12-06 07:00 CST" in refused
    assert esc.fleet.wipes() == 1


def test_wipe_keeps_enrollment_on_windows_and_leaves_ipads_alone(esc: Escalation) -> None:
    esc.policy(action="wipe")
    session = esc.session()
    plan = session.plan(("maintenance",), now=SAT_DEC5)
    report = session.apply(plan, GateOptions(now=SAT_DEC5))

    assert by_serial(report.states, report.changes) == {"CB0000011": "succeeded", "PF0000009": "succeeded"}
    assert esc.fleet.command_types() == {"CB0000011": {"WIPE_USERS"}}
    assert esc.fleet.intune_record("PF0000009")["lastWipe"] == {"keepEnrollmentData": True, "keepUserData": False}
    assert "lastWipe" not in esc.fleet.intune_record("DM0000010")
    assert any("wipe does not exist for ios" in n and "DM0000010" in n for n in plan.notes)


@pytest.mark.parametrize("action", ["deprovision", "retire"])
def test_deprovision_and_retire_wait_for_the_acknowledgement(esc: Escalation, action: str) -> None:
    esc.policy(action=action)
    session = esc.session()
    plan = session.plan(("maintenance",), now=SAT_DEC5)
    assert {c.gate.deprovision for c in plan.changes if c.gate} == {True}

    refused = session.apply(plan, GateOptions(now=SAT_DEC5, override_blast_radius=True))
    assert set(refused.states.values()) == {"deferred"}
    assert all("deprovision needs an explicit acknowledgement" in d for d in refused.details.values())
    assert esc.fleet.google_emulator.calls["chromeosdevices.batchChangeStatus"] == 0
    assert esc.fleet.graph_emulator.calls["POST $batch"] == 0

    done = session.apply(plan, GateOptions(now=SAT_DEC5, acknowledge_deprovision=True))
    assert set(done.states.values()) == {"succeeded"}
    (chromebook,) = [d for d in esc.fleet.google_emulator.state.devices.values() if d["serialNumber"] == "CB0000011"]
    assert chromebook["status"] == "DEPROVISIONED"
    for serial in ("PF0000009", "DM0000010"):
        assert esc.fleet.intune_record(serial)["managementState"] == "retirePending"


def test_found_before_the_window_it_leaves_the_queue_and_a_saved_plan_is_refused(esc: Escalation) -> None:
    saved = Plan.from_json(esc.plan(TUE_DEC1).to_json())  # reviewed on Tuesday, applied on Saturday
    esc.found("CB0000011")  # returned to the office on Wednesday

    assert sorted(c.id.key for c in esc.plan(SAT_DEC5).changes) == [
        "DM0000010|lost@2026-11-23",
        "PF0000009|lost@2026-11-23",
    ]
    with pytest.raises(StalePlanError) as refused:
        esc.session().apply(saved, GateOptions(now=SAT_DEC5))
    assert "CB0000011 is no longer lost (inventoryStatus found)" in str(refused.value)
    assert esc.fleet.google_emulator.calls["chromeosdevices.issueCommand"] == 0
    assert esc.fleet.wipes() == 0


def test_found_while_a_maintenance_run_is_under_way_is_withdrawn_not_sent(esc: Escalation) -> None:
    esc.policy(cap=10)
    session = esc.session()
    calls = 0

    def clock() -> dt.datetime:
        nonlocal calls
        calls += 1
        if calls == 2:  # after the queue was planned, before the first batch is gated
            esc.found("DM0000010")
        return SAT_DEC5

    run = run_maintenance(session, clock=clock)

    states = by_serial(run.drained.states(), changes_of(run))
    assert states == {"CB0000011": "succeeded", "DM0000010": "withdrawn", "PF0000009": "succeeded"}
    assert "lastWipe" not in esc.fleet.intune_record("DM0000010")


def test_the_dry_run_rehearses_a_night_ahead_with_the_escalations_due_then(esc: Escalation) -> None:
    rehearsal = rehearse_maintenance(esc.session(), now=SAT_DEC5)
    assert len(rehearsal.plan.changes) == 3 and len(rehearsal.would_run()) == 3
    assert rehearse_maintenance(esc.session(), now=MON_NOV30).plan.changes == []
    assert esc.fleet.google_emulator.calls["chromeosdevices.issueCommand"] == 0


def test_escalations_of_a_skipped_console_are_counted_as_not_checked(esc: Escalation) -> None:
    ws = open_workspace(str(esc.fleet.root / "orchestrator.yaml"))
    google_only = Connections(backends={"google": esc.fleet.google}, skipped=["intune"])
    plan = Session(ws, google_only, esc.fleet.journal).plan(("maintenance",), now=TUE_DEC1)

    assert [c.id.key for c in plan.changes] == ["CB0000011|lost@2026-11-23"]
    assert "intune: skipped, but the policies want 2 resource(s) there; they were NOT checked" in "\n".join(plan.notes)


def test_a_chromebook_the_lockdown_disabled_is_not_sent_a_command_and_deprovision_still_works(
    esc: Escalation,
) -> None:
    esc.policy(google="disable")
    session = esc.session()
    locked = session.apply(session.plan(("lockdown",)), GateOptions(now=TUE_DEC1))
    assert locked.ok and esc.fleet.google_emulator.state.devices
    (chromebook,) = [d for d in esc.fleet.google_emulator.state.devices.values() if d["serialNumber"] == "CB0000011"]
    assert chromebook["status"] == "DISABLED"

    plan = esc.plan(SAT_DEC5)
    assert any("stay disabled, not escalated" in n and "CB0000011" in n for n in plan.notes)
    assert not any(c.id.key.startswith("CB0000011") for c in plan.changes)
    run = run_maintenance(esc.session(), clock=lambda: SAT_DEC5)
    states = by_serial(run.drained.states(), changes_of(run))
    assert states == {"DM0000010": "succeeded", "PF0000009": "succeeded"}, "nothing sent that a console refuses"
    assert chromebook["status"] == "DISABLED"

    esc.policy(action="deprovision", google="disable")
    session = esc.session()
    done = session.apply(
        session.plan(("maintenance",), now=SAT_DEC5), GateOptions(now=SAT_DEC5, acknowledge_deprovision=True)
    )
    assert by_serial(done.states, done.changes)["CB0000011"] == "succeeded"
    assert chromebook["status"] == "DEPROVISIONED"


def test_the_plan_as_text_and_markdown_says_why_without_student_data(esc: Escalation) -> None:
    plan = esc.plan(TUE_DEC1)
    out = io.StringIO()
    render_text(plan, Console(file=out, width=200))
    for shown in (out.getvalue(), render_markdown(plan)):
        assert "CB0000011 (roosevelt-middle, chromeos) → powerwash in window break-days" in shown
        assert "lost since 2026-11-23, 3 school days" in shown
        assert "CB0000011" in shown and "lost@2026-11-23" in shown
        assert "student000011" not in shown
