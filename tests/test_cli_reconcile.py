"""plan / apply / drift / journal through the command line against the Google and Graph emulators."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def district(tmp_path: Path, monkeypatch):
    seeded = generate(devices=120)
    google = GoogleEmulator(seeded).start()
    graph = GraphEmulator.start_local(seeded)
    for name in ("policies", "inventory"):
        shutil.copytree(REPO / name, tmp_path / name)
    (tmp_path / "orchestrator.yaml").write_text(
        "journal: .orchestrator/journal.db\n"
        f"google:\n  directory_endpoint: {google.url}\n  policy_endpoint: {google.url}\n"
        f"intune:\n  graph_endpoint: {graph.url}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_ACTOR", "test-it-lead")
    yield tmp_path, google, graph
    google.stop()
    graph.stop()


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_drift_then_apply_saved_plan_then_in_sync(district) -> None:
    drift = run("drift")
    assert drift.exit_code == 2, drift.output
    assert "network: not configured" in drift.output
    planned = run("plan", "--out", "plan.json", "--format", "markdown")
    assert planned.exit_code == 0
    assert "### Fleet plan" in planned.output and "policies/webfilter-elementary.yaml" in planned.output
    applied = run("apply", "plan.json")
    assert applied.exit_code == 0, applied.output
    assert "succeeded" in applied.output and "failed" not in applied.output
    assert run("drift").exit_code == 0
    journal = run("journal")
    assert "test-it-lead" in journal.output and "apply" in journal.output


def test_apply_refuses_a_saved_plan_when_the_console_changed_since_review(district) -> None:
    _, google, _ = district
    assert run("plan", "--out", "plan.json").exit_code == 0
    # someone edits the Staff filter in the Admin console after the plan was reviewed
    staff = google.state.ous["/Staff"]
    google.state.policies[(staff.id, "chrome.users.UrlBlocking", "")] = {"urlBlocklist": ["example.org"]}
    google.reset_counts()
    refused = run("apply", "plan.json")
    assert refused.exit_code == 1
    assert "observed state changed since this plan was made; nothing was applied" in refused.output
    assert "google/ou_policy//Staff|chrome.users.UrlBlocking" in refused.output
    assert google.calls["policies.orgunits.batchModify"] == 0
    assert google.calls["policies.resolve"] > 0  # it looked again before refusing


def test_apply_without_a_plan_file_needs_confirmation_when_not_interactive(district) -> None:
    result = run("apply")
    assert result.exit_code == 1
    assert "refusing to apply without confirmation" in result.output


def test_json_plan_is_machine_readable_and_redacts_student_emails(district) -> None:
    result = run("plan", "--scope", "all", "--format", "json")
    assert result.exit_code == 0
    plan = json.loads(result.output)
    assert plan["changes"] and plan["fingerprint"]
    assert "@district.example" not in result.output


def test_a_policy_error_stops_plan_with_file_and_line(district) -> None:
    folder = district[0]
    (folder / "policies" / "broken.yaml").write_text("kind: WebFilter\nname: broken\ntargets: {google_ous: [Staff]}\n")
    result = run("plan")
    assert result.exit_code == 1
    assert "policies/broken.yaml:3: targets.google_ous[0]:" in result.output
    assert "Traceback" not in result.output
