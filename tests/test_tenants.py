"""Many districts in one repository (issue 15): tenants/<name>/orchestrator.yaml, one command across them,
isolation of each district's credentials and plans."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core.errors import ConfigError, OrchestratorError
from orchestrator.engine.plan import Plan
from orchestrator.jobs.config import load_config
from orchestrator.jobs.session import Session
from orchestrator.jobs.tenants import (
    TenantRun,
    discover,
    run_tenants,
    select,
    shared_secrets,
    tenant_environment,
    worst_exit,
)
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator

REPO = Path(__file__).resolve().parent.parent


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _tenant_folder(root: Path, name: str, config: str) -> Path:
    folder = root / "tenants" / name
    folder.mkdir(parents=True)
    for sub in ("policies", "inventory"):
        shutil.copytree(REPO / sub, folder / sub)
    (folder / "orchestrator.yaml").write_text(config)
    return folder


@pytest.fixture
def districts(tmp_path: Path, monkeypatch):
    """A repository of two districts (north, south), each with its own Google and Graph emulators."""
    emulators = []
    for name, devices in (("north", 60), ("south", 90)):
        seeded = generate(devices=devices)
        google = GoogleEmulator(seeded).start()
        graph = GraphEmulator.start_local(seeded)
        emulators.append((google, graph))
        _tenant_folder(
            tmp_path,
            name,
            f"timezone: {'America/Chicago' if name == 'north' else 'America/Denver'}\n"
            f"google:\n  directory_endpoint: {google.url}\n  policy_endpoint: {google.url}\n"
            f"  credentials_file_env: {name.upper()}_GOOGLE_KEY\n"
            f"intune:\n  graph_endpoint: {graph.url}\n  client_secret_env: {name.upper()}_AZURE_SECRET\n",
        )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_ACTOR", "test-provider")
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    yield tmp_path, emulators
    for google, graph in emulators:
        google.stop()
        graph.stop()


# (1) tenants in one repository -----------------------------------------------------------------------
def test_a_tenant_config_is_found_under_tenants_and_its_paths_are_relative_to_its_folder(districts) -> None:
    root, _ = districts
    config = load_config(root / "tenants" / "south" / "orchestrator.yaml")
    assert config.tenant == "south"
    assert config.path(config.policies) == (root / "tenants" / "south" / "policies").resolve()
    assert config.path(config.journal) == (root / "tenants" / "south" / ".orchestrator" / "journal.db").resolve()
    assert config.path(config.reports).is_relative_to((root / "tenants" / "south").resolve())
    assert [t.name for t in discover(root)] == ["north", "south"]


def test_a_one_district_repository_has_no_tenant(tmp_path: Path) -> None:
    (tmp_path / "orchestrator.yaml").write_text("timezone: America/Chicago\n")
    assert load_config(tmp_path / "orchestrator.yaml").tenant is None
    assert discover(tmp_path) == []


def test_without_a_choice_a_tenants_repository_names_its_districts(districts) -> None:
    with pytest.raises(ConfigError, match=r"north, south.*--tenant NAME.*--all-tenants"):
        load_config()


def test_unknown_tenant_names_are_an_error_listing_the_known_ones(districts) -> None:
    root, _ = districts
    with pytest.raises(ConfigError, match=r"unknown tenant.*west.*known: north, south"):
        select(discover(root), ["west"], False)
    result = run("plan", "--tenant", "west")
    assert result.exit_code == 1 and "west" in result.output


def test_each_tenant_has_its_own_journal_and_run_lock(districts) -> None:
    root, _ = districts
    result = run("apply", "--all-tenants", "--yes", "--backend", "google", "--backend", "intune")
    assert result.exit_code == 0, result.output
    for name in ("north", "south"):
        journal = root / "tenants" / name / ".orchestrator" / "journal.db"
        assert journal.is_file(), name
    assert not (root / ".orchestrator" / "journal.db").exists()


# (3) one command across tenants ----------------------------------------------------------------------
def test_plan_across_all_tenants_ends_with_one_table_and_exits_with_the_worst_code(districts) -> None:
    result = run("plan", "--all-tenants", "--parallel", "2")
    assert result.exit_code == 0, result.output
    assert "district north" in result.output and "district south" in result.output
    assert "All districts" in result.output and "2 district(s): 2 ok" in result.output
    drift = run("--all-tenants", "drift", "--backend", "google", "--backend", "intune")
    assert drift.exit_code == 2, drift.output
    assert "drift" in drift.output


def test_a_broken_tenant_never_stops_or_hides_the_others(districts) -> None:
    root, _ = districts
    (root / "tenants" / "north" / "policies" / "typo.yaml").write_text("kind: WebFiltr\nname: x\n")
    (root / "tenants" / "broken").mkdir()
    (root / "tenants" / "broken" / "orchestrator.yaml").write_text("timezone: Mars/Olympus\n")
    result = run("plan", "--all-tenants", "--backend", "google", "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    by_name = {t["tenant"]: t for t in data["tenants"]}
    assert set(by_name) == {"broken", "north", "south"}
    assert by_name["south"]["status"] == "ok" and by_name["south"]["changes"] > 0
    assert by_name["south"]["output"]["changes"], "south's own plan is in the aggregate"
    assert by_name["north"]["status"] == "failed" and by_name["broken"]["status"] == "failed"
    assert "timezone" in by_name["broken"]["error"] and "problem(s)" in by_name["north"]["error"]
    assert data["exit_code"] == 1


def test_markdown_aggregates_every_tenant_into_one_comment(districts) -> None:
    result = run("plan", "--tenant", "south", "--tenant", "north", "--format", "markdown")
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.index("## District `south`") < text.index("## District `north`") < text.index("## All districts")
    assert "| tenant | status | changes | failures | drift |" in text
    assert "| north | ok |" in text and "| south | ok |" in text


def test_out_must_name_each_tenant(districts) -> None:
    root, _ = districts
    refused = run("plan", "--all-tenants", "--out", "plan.json")
    assert refused.exit_code == 1 and "{tenant}" in refused.output
    saved = run("plan", "--all-tenants", "--out", str(root / "plans-{tenant}.json"), "--backend", "google")
    assert saved.exit_code == 0, saved.output
    assert Plan.load(root / "plans-north.json").tenant == "north"
    assert Plan.load(root / "plans-south.json").tenant == "south"


def test_plans_go_to_a_folder_that_does_not_exist_yet(districts) -> None:
    root, _ = districts
    saved = run("plan", "--tenant", "north", "--out", "plans/{tenant}.json", "--backend", "google")
    assert saved.exit_code == 0, saved.output
    assert Plan.load(root / "plans" / "north.json").tenant == "north"


def test_tenant_options_are_refused_where_they_make_no_sense(districts) -> None:
    assert run("schema", "--all-tenants").exit_code != 0
    assert run("--config", "x.yaml", "plan", "--all-tenants").exit_code == 1
    assert run("plan", "--parallel", "2").exit_code != 0


def test_worst_exit_ranks_interrupted_over_error_over_drift() -> None:
    assert worst_exit([TenantRun("a", 0), TenantRun("b", 2)]) == 2
    assert worst_exit([TenantRun("a", 2), TenantRun("b", 1), TenantRun("c", 0)]) == 1
    assert worst_exit([TenantRun("a", 1), TenantRun("b", 130)]) == 130
    assert worst_exit([]) == 0
    listed = TenantRun("a", 1, stderr="error: 1 target(s) do not exist:\np/typo.yaml:4: google_ous[0]: no OU\n")
    assert listed.error == "1 target(s) do not exist: p/typo.yaml:4: google_ous[0]: no OU"
    usage = TenantRun("a", 2, stderr="Usage: orchestrator apply\nError: No such option: --formt")
    assert usage.status == "failed" and usage.error == "No such option: --formt" and worst_exit([usage]) == 1


def test_tenants_run_concurrently_up_to_the_bound(districts) -> None:
    root, _ = districts
    for name in ("east", "west"):
        _tenant_folder(root, name, "timezone: America/Chicago\n")
    tenants = discover(root)
    sleeper = [sys.executable, "-c", "import time; time.sleep(1)"]
    runs = run_tenants(tenants, [], parallel=4, command=sleeper)
    assert [r.tenant for r in runs] == ["east", "north", "south", "west"]
    assert all(r.exit_code == 0 for r in runs)
    assert max(r.seconds for r in runs) < 3.5


# (4) isolation -----------------------------------------------------------------------------------------
PROBE = [
    sys.executable,
    "-c",
    "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if 'SECRET' in v}))",
]


def test_each_tenant_process_sees_only_its_own_planted_secret(districts, monkeypatch) -> None:
    root, _ = districts
    monkeypatch.setenv("NORTH_AZURE_SECRET", "SECRET-north-azure")
    monkeypatch.setenv("NORTH_GOOGLE_KEY", "/keys/SECRET-north.json")
    monkeypatch.setenv("SOUTH_AZURE_SECRET", "SECRET-south-azure")
    monkeypatch.setenv("SOUTH_GOOGLE_KEY", "/keys/SECRET-south.json")
    # a third district keeps its secrets in an environment file beside its config
    east = _tenant_folder(
        root,
        "east",
        "environment_file: east.env\nintune:\n  graph_endpoint: http://127.0.0.1:9/\n"
        "  client_secret_env: EAST_AZURE_SECRET\n",
    )
    (east / "east.env").write_text("EAST_AZURE_SECRET=SECRET-east-azure\n")
    runs = {r.tenant: json.loads(r.stdout) for r in run_tenants(discover(root), [], command=PROBE)}
    assert set(runs["north"].values()) == {"SECRET-north-azure", "/keys/SECRET-north.json"}
    assert set(runs["south"].values()) == {"SECRET-south-azure", "/keys/SECRET-south.json"}
    assert set(runs["east"].values()) == {"SECRET-east-azure"}


def test_two_tenants_reading_one_set_variable_are_refused(tmp_path: Path) -> None:
    for name in ("a", "b"):
        folder = tmp_path / "tenants" / name
        folder.mkdir(parents=True)
        (folder / "orchestrator.yaml").write_text("intune:\n  tenant_id: x\n")  # both read AZURE_CLIENT_SECRET
    tenants = discover(tmp_path)
    assert shared_secrets(tenants, {}) == {}
    shared = shared_secrets(tenants, {"AZURE_CLIENT_SECRET": "one-secret"})
    assert set(shared) == {"a", "b"} and "AZURE_CLIENT_SECRET" in shared["a"][0]
    runs = run_tenants(tenants, [], command=PROBE, base_env={"AZURE_CLIENT_SECRET": "SECRET-x", "PATH": ""})
    assert all(r.exit_code == 1 and "AZURE_CLIENT_SECRET" in r.error for r in runs)
    assert all("SECRET-x" not in r.stdout + r.stderr for r in runs)


def test_tenant_environment_removes_every_other_tenants_variables(districts) -> None:
    root, _ = districts
    tenants = discover(root)
    base = {"NORTH_AZURE_SECRET": "n", "SOUTH_AZURE_SECRET": "s", "PATH": "/bin", "ORCHESTRATOR_CONFIG": "x"}
    north = tenant_environment(tenants[0], tenants, base)
    assert north["NORTH_AZURE_SECRET"] == "n" and "SOUTH_AZURE_SECRET" not in north
    assert "ORCHESTRATOR_CONFIG" not in north and north["ORCHESTRATOR_TENANT"] == "north"


def test_planted_secrets_appear_in_no_output_journal_or_report(districts, monkeypatch) -> None:
    root, _ = districts
    monkeypatch.setenv("NORTH_GOOGLE_KEY", "")
    monkeypatch.setenv("UNRELATED_SECRET", "SECRET-should-not-leak-anywhere")
    result = run("apply", "--all-tenants", "--yes", "--backend", "google")
    assert result.exit_code == 0, result.output
    assert "SECRET-should-not-leak" not in result.output
    for path in (root / "tenants").rglob("*"):
        if path.is_file() and ".orchestrator" in path.parts:
            assert b"SECRET-should-not-leak" not in path.read_bytes(), path


def test_a_plan_records_its_tenant_and_apply_refuses_another(districts) -> None:
    root, _ = districts
    north_plan = root / "north.json"
    assert run("plan", "--tenant", "north", "--out", str(north_plan), "--backend", "google").exit_code == 0
    plan = Plan.load(north_plan)
    assert plan.tenant == "north"
    refused = run("apply", str(north_plan), "--tenant", "south")
    assert refused.exit_code == 1
    assert "made for district 'north'" in refused.output and "'south'" in refused.output
    south = str(root / "tenants" / "south" / "orchestrator.yaml")
    with (
        Session.open(south, backends=("google",)) as session,
        pytest.raises(OrchestratorError, match="made for district 'north'"),
    ):
        session.apply(plan)


def test_editing_the_tenant_of_a_plan_file_is_refused(districts) -> None:
    root, _ = districts
    path = root / "north.json"
    assert run("plan", "--tenant", "north", "--out", str(path), "--backend", "google").exit_code == 0
    raw = json.loads(path.read_text())
    raw["tenant"] = "south"
    path.write_text(json.dumps(raw))
    with pytest.raises(OrchestratorError, match="edited"):
        Plan.load(path)


def test_a_one_district_plan_keeps_its_id_and_has_no_tenant_field() -> None:
    plan = Plan(changes=[], observed={}, backends=[], scopes=["policy"], created_at="2026-01-01T00:00:00", nonce="n")
    assert "tenant" not in plan.to_json()
    same = Plan.from_json(plan.to_json())
    assert same.plan_id == plan.plan_id and same.tenant is None
    tagged = Plan.from_json({**plan.to_json(), "plan_id": None, "tenant": "north"})
    assert tagged.tenant == "north" and tagged.plan_id != plan.plan_id


def test_global_options_reach_every_tenant_with_its_name(districts) -> None:
    root, _ = districts
    refused = run("--journal", str(root / "one.db"), "plan", "--all-tenants")
    assert refused.exit_code == 1 and "{tenant}" in refused.output
    result = run("--journal", str(root / "journal-{tenant}.db"), "plan", "--all-tenants", "--backend", "google")
    assert result.exit_code == 0, result.output
    assert (root / "journal-north.db").is_file() and (root / "journal-south.db").is_file()
