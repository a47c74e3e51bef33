"""Diffing, plan files, staleness and privacy: the pure parts of the engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.backends.registry import CATALOG
from orchestrator.cli.render import render_json, render_markdown
from orchestrator.core.errors import OrchestratorError
from orchestrator.core.resources import Change, Resource, ResourceId, digest
from orchestrator.engine.diff import diff
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import Plan, observed_digests, stale_resources

OU = ResourceId("google", "ou_policy", "/Students/Elementary|chrome.users.UrlBlocking")
OTHER_OU = ResourceId("google", "ou_policy", "/Staff|chrome.users.UrlBlocking")
DEVICE = ResourceId("google", "device_status", "CB0000011")
REIMAGE = ResourceId("google", "reimage", "CB0000004|2026-thanksgiving")


def resource(rid: ResourceId, value, **kw) -> Resource:
    return Resource(id=rid, value=value, sources=("policies/a.yaml:3",), **kw)


def test_equal_values_make_no_change() -> None:
    wanted = resource(OU, {"urlBlocklist": ["a.com"]})
    assert diff(CATALOG, [wanted], {OU: resource(OU, {"urlBlocklist": ["a.com"]})}) == []


def test_missing_value_is_a_create_and_different_value_an_update() -> None:
    changes = diff(
        CATALOG,
        [resource(OU, {"urlBlocklist": ["a.com"]}), resource(DEVICE, "DISABLED")],
        {DEVICE: resource(DEVICE, "ACTIVE")},
    )
    assert [(c.id, c.op) for c in changes] == [(OU, "create"), (DEVICE, "update")]
    assert changes[0].sources == ("policies/a.yaml:3",)


def test_unwanted_setting_of_an_authoritative_type_is_deleted_but_devices_are_left_alone() -> None:
    observed = {OTHER_OU: resource(OTHER_OU, {"urlBlocklist": ["x.com"]}), DEVICE: resource(DEVICE, "DISABLED")}
    changes = diff(CATALOG, [], observed)
    assert [(c.id, c.op) for c in changes] == [(OTHER_OU, "delete")]
    assert "no policy wants it" in changes[0].summary


def test_journal_observed_types_become_actions_once() -> None:
    wanted = resource(REIMAGE, {"command": "WIPE_USERS"}, window="break-days", policy="lab")
    (change,) = diff(CATALOG, [wanted], {}, {})
    assert change.op == "action" and change.destructive and change.window == "break-days"
    assert diff(CATALOG, [wanted], {}, {REIMAGE: {"command": "WIPE_USERS"}}) == []


def test_change_key_is_stable_across_replans() -> None:
    first = diff(CATALOG, [resource(DEVICE, "DISABLED")], {DEVICE: resource(DEVICE, "ACTIVE")})[0]
    again = diff(CATALOG, [resource(DEVICE, "DISABLED")], {DEVICE: resource(DEVICE, "ACTIVE")})[0]
    assert first.key == again.key


def make_plan() -> Plan:
    observed = {DEVICE: resource(DEVICE, "ACTIVE"), OTHER_OU: resource(OTHER_OU, {"urlBlocklist": ["x.com"]})}
    desired = [resource(DEVICE, "DISABLED"), resource(OTHER_OU, {"urlBlocklist": ["x.com"]})]
    changes = diff(CATALOG, desired, observed)
    return Plan(
        changes=changes,
        observed=observed_digests(observed, {}, desired),
        backends=["google"],
        scopes=["policy", "lockdown"],
        policy_commit="abc123",
    )


def test_plan_round_trips_through_json(tmp_path: Path) -> None:
    plan = make_plan()
    plan.save(tmp_path / "plan.json")
    loaded = Plan.load(tmp_path / "plan.json")
    assert loaded.plan_id == plan.plan_id
    assert [c.key for c in loaded.changes] == [c.key for c in plan.changes]


def test_an_edited_plan_file_is_refused(tmp_path: Path) -> None:
    make_plan().save(tmp_path / "plan.json")
    raw = json.loads((tmp_path / "plan.json").read_text())
    raw["changes"][0]["after"] = "ACTIVE"
    (tmp_path / "plan.json").write_text(json.dumps(raw))
    with pytest.raises(OrchestratorError, match="edited"):
        Plan.load(tmp_path / "plan.json")


def test_staleness_accepts_our_own_half_applied_changes_but_not_outside_edits() -> None:
    plan = make_plan()
    asked = [str(c.id) for c in plan.changes]
    unchanged = dict(plan.observed)
    assert stale_resources(plan, unchanged, asked) == []
    half_applied = {**unchanged, str(DEVICE): digest("DISABLED")}
    assert stale_resources(plan, half_applied, asked) == []
    # A resumed apply asks again only for what is left; what it already did is still reported by the listing.
    assert stale_resources(plan, half_applied, []) == []
    edited = {**unchanged, str(OTHER_OU): digest({"urlBlocklist": ["y.com"]})}
    assert stale_resources(plan, edited, asked) == [str(OTHER_OU)]
    appeared = {**unchanged, str(OU): digest({"urlBlocklist": ["z.com"]})}
    assert stale_resources(plan, appeared, asked) == [str(OU)]


def test_rendered_plans_redact_student_emails_unless_asked() -> None:
    change = Change(
        id=DEVICE, op="update", before={"user": "ana@district.example"}, after={"note": "lost by ana@district.example"}
    )
    plan = Plan(changes=[change], observed={}, backends=["google"], scopes=["lockdown"])
    for text in (render_json(plan), render_markdown(plan)):
        assert "ana@district.example" not in text and "<redacted:" in text
    assert "ana@district.example" in render_json(plan, show_pii=True)


def test_markdown_summarises_changes_per_school() -> None:
    changes = [
        Change(
            id=ResourceId("google", "device_status", f"CB{i}"),
            op="update",
            before="ACTIVE",
            after="DISABLED",
            meta={"school": "lincoln-elementary" if i % 2 else "jefferson-high"},
        )
        for i in range(5)
    ]
    text = render_markdown(Plan(changes=changes, observed={}, backends=["google"], scopes=["lockdown"]))
    # school, backend, settings, apps, device actions, destructive
    assert "| jefferson-high | google | 0 | 0 | 3 | 0 |" in text
    assert "| lincoln-elementary | google | 0 | 0 | 2 | 0 |" in text


def test_journal_records_states_and_remembers_applied_values(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    run = journal.start_run("apply", plan_id="p", fingerprint="f", policy_commit="c", actor="tester")
    change = Change(
        id=REIMAGE, op="action", before=None, after={"command": "WIPE_USERS"}, destructive=True, policy="lab"
    )
    journal.record(run, change, "sent")
    assert journal.plan_states("p", [change.key]) == {change.key: "sent"}
    assert [row.resource for row in journal.unsettled()] == [str(REIMAGE)]
    journal.record(run, change, "succeeded", detail="EXECUTED_BY_CLIENT")
    journal.remember(change)
    journal.finish_run(run, "succeeded", {"succeeded": 1})
    assert journal.plan_states("p", [change.key]) == {change.key: "succeeded"}
    assert journal.plan_states("another-plan", [change.key]) == {}, "resume is scoped to the plan id"
    assert journal.unsettled() == []
    assert journal.resource_state([REIMAGE]) == {REIMAGE: {"command": "WIPE_USERS"}}
    assert journal.runs()[0]["actor"] == "tester"
    journal.close()
    reopened = Journal(tmp_path / "j.db")  # migrations are recorded, not re-run
    assert reopened.plan_states("p", [change.key]) == {change.key: "succeeded"}


def test_an_unknown_wipe_is_settled_by_a_person_done_or_resend(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    run = journal.start_run("maintenance", plan_id="p", fingerprint="f", policy_commit=None)
    change = Change(id=REIMAGE, op="action", before=None, after={"command": "WIPE_USERS"}, destructive=True)
    journal.record(run, change, "unknown", detail="timed out")
    assert [row.state for row in journal.unsettled([str(REIMAGE)])] == ["unknown"]
    journal.settle(change, "failed", detail="checked: never wiped; send again", actor="it-lead")
    assert journal.unsettled() == [] and journal.resource_state([REIMAGE]) == {}
    journal.record(run, change, "unknown", detail="timed out again")
    journal.settle(change, "succeeded", detail="checked: wiped", actor="it-lead")
    assert journal.unsettled() == [] and journal.resource_state([REIMAGE]) == {REIMAGE: {"command": "WIPE_USERS"}}
    assert journal.runs(1)[0]["kind"] == "resolve" and journal.runs(1)[0]["actor"] == "it-lead"


def test_one_run_at_a_time_and_killed_runs_are_marked_interrupted(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    killed = journal.start_run("apply", plan_id="p", fingerprint="f", policy_commit=None)
    other = Journal(tmp_path / "j.db")
    with journal.exclusive(), pytest.raises(OrchestratorError, match="another run holds"), other.exclusive():
        pass
    statuses = {run["id"]: run["status"] for run in journal.runs()}
    assert statuses[killed] == "interrupted"
