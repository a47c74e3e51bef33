"""Pruning is declared, not assumed (issue 13 item 2): adopting a district never deletes what it already has.

Against the Google emulator through the real GoogleBackend and engine: a URL blocklist and an app install set
in the console at an OU no policy mentions are left alone and listed as unmanaged; they are deleted only where
`google.manage` declares the OU pruned; a setting this tool applied is removed when its policy goes away.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.backends.google.backend import GoogleBackend
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.backends.registry import CATALOG
from orchestrator.engine.apply import Executor
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import Plan
from orchestrator.engine.prune import Pruning
from orchestrator.engine.reconcile import make_plan
from orchestrator.inventory.devices import load_inventory
from orchestrator.policy.loader import load_policies
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator

REPO = Path(__file__).resolve().parent.parent
BLOCKLIST = "chrome.users.UrlBlocking"
INSTALL = "chrome.users.apps.InstallType"
EXISTING_APP = "aapocclcgogkmnckokdopfmhonfmgoek"  # an app the district force-installs by hand at /Labs


@dataclass
class District:
    root: Path
    emulator: GoogleEmulator
    journal: Journal

    def backend(self, **settings: object) -> GoogleBackend:
        config = GoogleConfig(
            directory_endpoint=self.emulator.url,
            policy_endpoint=self.emulator.url,
            credentials_file_env="K12_TEST_NO_GOOGLE_CREDENTIALS",
            requests_per_minute=60000,
            policy_reads_per_minute=60000,
            **settings,  # type: ignore[arg-type]
        )
        return GoogleBackend(config, policy_reads_per_minute=60000)

    def plan(self, pruning: Pruning | None = None) -> Plan:
        backend = self.backend()
        try:
            return make_plan(
                catalog=CATALOG,
                policies=load_policies(self.root / "policies"),
                inventory=load_inventory(self.root / "inventory" / "devices.csv"),
                backends={"google": backend},
                journal=self.journal,
                scopes=("policy",),
                pruning=pruning,
            )
        finally:
            backend.close()

    def apply(self, plan: Plan) -> None:
        backend = self.backend()
        try:
            report = Executor(
                catalog=CATALOG,
                backends={"google": backend},
                journal=self.journal,
                policies=load_policies(self.root / "policies"),
                repo_root=self.root,
            ).apply(plan)
        finally:
            backend.close()
        assert report.ok, report.details

    def setting(self, ou: str, schema: str, app: str = "") -> dict | None:
        return self.emulator.state.policies.get((self.emulator.state.ou_by_ref(ou).id, schema, app))


@pytest.fixture
def district(tmp_path: Path) -> Iterator[District]:
    for name in ("policies", "inventory"):
        shutil.copytree(REPO / name, tmp_path / name)
    emulator = GoogleEmulator(generate(devices=120)).start()
    labs = emulator.state.ou_by_ref("/Labs").id
    # What the district already had before adopting the tool: set by hand in the Admin console.
    emulator.state.policies[(labs, BLOCKLIST, "")] = {"urlBlocklist": ["games.example"]}
    emulator.state.policies[(labs, INSTALL, f"chrome:{EXISTING_APP}")] = {"appInstallType": "FORCED"}
    journal = Journal(tmp_path / "journal.db")
    try:
        yield District(tmp_path, emulator, journal)
    finally:
        journal.close()
        emulator.stop()


def test_existing_settings_no_policy_mentions_are_listed_as_unmanaged_and_survive_apply(district: District) -> None:
    plan = district.plan()
    assert not [c for c in plan.changes if c.op == "delete"], "the first plan of an adopting district deletes"
    assert f"google/ou_policy//Labs|{BLOCKLIST}" in plan.unmanaged
    assert f"google/ou_app//Labs|{EXISTING_APP}" in plan.unmanaged
    district.apply(plan)
    assert district.setting("/Labs", BLOCKLIST) == {"urlBlocklist": ["games.example"]}
    assert district.setting("/Labs", INSTALL, f"chrome:{EXISTING_APP}") == {"appInstallType": "FORCED"}
    assert district.plan().changes == []


def test_a_declared_managed_ou_is_pruned_and_only_there(district: District) -> None:
    declared = CATALOG.declared_pruning({"google": GoogleConfig(manage=[{"ou": "/Labs", "prune": True}])})
    plan = district.plan(Pruning(declared=declared))
    deletes = sorted(str(c.id) for c in plan.changes if c.op == "delete")
    assert deletes == [f"google/ou_app//Labs|{EXISTING_APP}", f"google/ou_policy//Labs|{BLOCKLIST}"]
    assert all("declared managed" in c.summary for c in plan.changes if c.op == "delete")
    nearer = CATALOG.declared_pruning(
        {"google": GoogleConfig(manage=[{"ou": "/", "prune": True}, {"ou": "/Labs", "prune": False}])}
    )
    assert not [c for c in district.plan(Pruning(declared=nearer)).changes if c.op == "delete"]


def test_prune_for_one_run_deletes_every_setting_no_policy_wants(district: District) -> None:
    plan = district.plan(Pruning(everything=True))
    assert {str(c.id) for c in plan.changes if c.op == "delete"} >= {f"google/ou_policy//Labs|{BLOCKLIST}"}
    assert plan.unmanaged == []


def test_a_setting_this_tool_applied_is_removed_when_its_policy_goes_away(district: District) -> None:
    district.apply(district.plan())
    assert district.setting("/Testing", INSTALL, "chrome:hblfbmjdaalalhifaajnlbfhfplojdhd") is not None
    apps = district.root / "policies" / "apps.yaml"
    docs = apps.read_text().split("---\n")
    apps.write_text("---\n".join(d for d in docs if "name: testing-day-extensions" not in d))
    plan = district.plan()
    removed = {str(c.id) for c in plan.changes if c.op == "delete"}
    assert "google/ou_app//Testing|hblfbmjdaalalhifaajnlbfhfplojdhd" in removed
    assert all("applied by this tool" in c.summary for c in plan.changes if c.op == "delete")
    assert f"google/ou_policy//Labs|{BLOCKLIST}" in plan.unmanaged  # still not ours
    district.apply(plan)
    assert district.setting("/Testing", INSTALL, "chrome:hblfbmjdaalalhifaajnlbfhfplojdhd") is None
    assert district.setting("/Labs", BLOCKLIST) == {"urlBlocklist": ["games.example"]}


def test_the_cli_lists_unmanaged_settings_and_prunes_only_with_prune(district: District, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orchestrator.cli import main

    config = district.root / "orchestrator.yaml"
    config.write_text(
        f"journal: {district.root / 'journal.db'}\n"
        f"google:\n  directory_endpoint: {district.emulator.url}\n  policy_endpoint: {district.emulator.url}\n"
        "  policy_reads_per_minute: 60000\n"
    )

    def cli(*args: str):
        return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)

    shown = cli("plan", "--backend", "google", "--format", "markdown")
    assert shown.exit_code == 0, shown.output
    assert "unmanaged (not in any policy, left alone): 2 setting(s)" in shown.output
    assert "google ou_policy at /Labs (1)" in shown.output and "0 to remove" in shown.output
    assert cli("apply", "--backend", "google", "--yes").exit_code == 0
    assert district.setting("/Labs", BLOCKLIST) == {"urlBlocklist": ["games.example"]}
    pruned = cli("apply", "--backend", "google", "--yes", "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert district.setting("/Labs", BLOCKLIST) is None
