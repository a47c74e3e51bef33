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
    drift = run("drift", "--backend", "google", "--backend", "intune")
    assert drift.exit_code == 2, drift.output
    planned = run("plan", "--out", "plan.json", "--format", "markdown")
    assert planned.exit_code == 0
    assert "### Fleet plan" in planned.output and "policies/webfilter-elementary.yaml" in planned.output
    applied = run("apply", "plan.json")
    assert applied.exit_code == 0, applied.output
    assert "succeeded" in applied.output and "failed" not in applied.output
    assert run("drift", "--backend", "google", "--backend", "intune").exit_code == 0
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


# -- no silent success (issue 10, item 4) -----------------------------------------------------------------
@pytest.mark.parametrize("command", [("plan",), ("drift",), ("lockdown", "--dry-run"), ("validate",), ("journal",)])
def test_without_a_config_file_every_command_that_needs_one_fails_naming_the_path(
    tmp_path: Path, monkeypatch, command: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    result = (
        run(*command, "--backend", "google", "--backend", "intune")
        if command[0] in ("plan", "drift")
        else run(*command)
    )
    assert result.exit_code == 1, result.output
    assert "in sync" not in result.output
    assert "orchestrator.yaml" in result.output and "not found" in result.output


def test_commands_that_need_no_config_still_work_without_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    result = run("schema")
    assert result.exit_code == 0 and json.loads(result.output)
    assert run("sandbox", "--help").exit_code == 0


def test_a_real_tenant_config_without_credentials_is_an_error_for_plan_drift_and_lockdown(
    tmp_path: Path, monkeypatch
) -> None:
    for name in ("policies", "inventory"):
        shutil.copytree(REPO / name, tmp_path / name)
    (tmp_path / "orchestrator.yaml").write_text(
        "google:\n  admin_subject: it@district.example\nintune:\n  tenant_id: t\n  client_id: c\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    for command in (("plan",), ("drift",), ("lockdown", "--dry-run"), ("plan", "--backend", "google")):
        result = run(*command)
        assert result.exit_code == 1, (command, result.output)
        assert "in sync" not in result.output
        assert "GOOGLE_APPLICATION_CREDENTIALS" in result.output or "AZURE_CLIENT_SECRET" in result.output


def test_a_backend_named_with_backend_that_is_not_configured_is_an_error(district) -> None:
    result = run("plan", "--backend", "google", "--backend", "network")
    assert result.exit_code == 1, result.output
    assert "network: not configured" in result.output and "in sync" not in result.output


def test_skipped_backends_are_listed_in_every_output_and_drift_fails_when_they_have_desired_resources(
    district,
) -> None:
    assert run("apply", "--yes").exit_code == 0  # google and intune now match the policies
    text = run("plan")
    assert "network: not configured" in text.output and "skipped" in text.output
    assert "Not checked: network (4 desired resource(s))" in text.output
    markdown = run("plan", "--format", "markdown")
    assert "network: not configured" in markdown.output and "**Not checked: network" in markdown.output
    as_json = json.loads(run("plan", "--format", "json").output)
    assert as_json["skipped_backends"] == {"network": 4}  # one blocklist per elementary/secondary site
    drift = run("drift")
    assert drift.exit_code == 1, drift.output
    assert "network" in drift.output and "desired" in drift.output
    lockdown = run("lockdown", "--dry-run")
    assert "network: not configured" in lockdown.output
    # the backends that are checked are in sync: drift limited to them is 0
    assert run("drift", "--backend", "google", "--backend", "intune").exit_code == 0
