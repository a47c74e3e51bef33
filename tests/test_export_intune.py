"""`orchestrator export --backend intune` (issue 13 item 1): an Intune console → WebFilter/AppPush YAML.

Against the Graph emulator through msgraph-sdk: the sample district's Intune policies are applied by the tool
(real request bodies), then objects made by hand are added (a K12-named web filter with one platform only, an
iOS filter and an Edge policy not made by this tool, an app assigned to all devices, one with non-default
assignment settings, one behind an assignment filter). Exported into an empty folder with a fresh journal (a
district adopting the tool), the policies validate and plan back to no change; everything left out is named;
an edit to one exported file is exactly one change; export reads no more than the plan of its output.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.jobs.session import Session
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.graph_emulator import GraphEmulator

REPO = Path(__file__).resolve().parent.parent
EDGE = "device_vendor_msft_policy_config_microsoft_edge~policy~microsoft_edge_urlblocklist"
G = "#microsoft.graph.deviceManagementConfiguration"


def _edge_policy(name: str, domains: list[str]) -> dict:
    child = {
        "@odata.type": G + "SimpleSettingCollectionInstance",
        "settingDefinitionId": f"{EDGE}_urlblocklistdesc",
        "simpleSettingCollectionValue": [{"@odata.type": G + "StringSettingValue", "value": d} for d in domains],
    }
    instance = {
        "@odata.type": G + "ChoiceSettingInstance",
        "settingDefinitionId": EDGE,
        "choiceSettingValue": {"@odata.type": G + "ChoiceSettingValue", "value": f"{EDGE}_1", "children": [child]},
    }
    return {
        "name": name,
        "platforms": "windows10",
        "technologies": "mdm",
        "settings": [{"@odata.type": G + "Setting", "settingInstance": instance}],
    }


def _ios_filter(name: str, blocked: list[str]) -> dict:
    return {
        "@odata.type": "#microsoft.graph.iosDeviceFeaturesConfiguration",
        "displayName": name,
        "contentFilterSettings": {
            "@odata.type": "#microsoft.graph.iosWebContentFilterAutoFilter",
            "blockedUrls": [f"https://{d}" for d in blocked],
            "allowedUrls": [],
        },
    }


@dataclass
class Tenant:
    root: Path
    graph: GraphEmulator

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.root / "orchestrator.yaml"), *args])

    def plan_changes(self) -> list[str]:
        with Session.open(str(self.root / "orchestrator.yaml"), backends=("intune",)) as session:
            plan = session.plan(("policy",))
        return sorted(f"{c.op} {c.id}" for c in plan.changes)


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[Tenant]:
    graph = GraphEmulator.start_local(generate(devices=60))
    shutil.copytree(REPO / "inventory", tmp_path / "inventory")
    shutil.copytree(REPO / "policies", tmp_path / "sample")
    base = f"inventory: inventory/devices.csv\nintune:\n  graph_endpoint: {graph.url}\n"
    (tmp_path / "sample.yaml").write_text(f"journal: {tmp_path / 'sample.db'}\npolicies: sample/\n{base}")
    (tmp_path / "orchestrator.yaml").write_text(f"journal: {tmp_path / 'adopt.db'}\npolicies: policies/\n{base}")
    (tmp_path / "policies").mkdir()
    try:
        with Session.open(str(tmp_path / "sample.yaml"), backends=("intune",)) as session:
            report = session.apply(session.plan(("policy",)))
        assert report.ok and report.counts()["succeeded"] >= 5, report.details
        state = graph.state
        groups = {g["displayName"]: gid for gid, g in state.groups.items()}
        apps = {a["displayName"]: aid for aid, a in state.apps.items()}
        state.catalog.create(_edge_policy("K12 WebFilter staff-filter", ["poker.example"]), "2026-01-01T00:00:00Z")
        state.catalog.create(_edge_policy("Edge blocklist (IT)", ["games.example"]), "2026-01-01T00:00:00Z")
        state.create_config(_ios_filter("iPad web filter", ["games.example"]))
        state.assign_app(
            apps["Minecraft Education"],
            [{"intent": "required", "target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}],
        )
        lab = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": groups["Jefferson Lab PCs"]}
        settings = {"@odata.type": "#microsoft.graph.win32LobAppAssignmentSettings", "notifications": "hideAll"}
        state.assign_app(apps["Microsoft Teams"], [{"intent": "required", "target": lab, "settings": settings}])
        filtered = {
            **lab,
            "deviceAndAppManagementAssignmentFilterId": "f1",
            "deviceAndAppManagementAssignmentFilterType": "include",
        }
        state.assign_app(state.add_app("Adobe Acrobat Reader"), [{"intent": "required", "target": filtered}])
        yield Tenant(tmp_path, graph)
    finally:
        graph.stop()


def test_intune_export_validates_and_plans_back_to_no_change_then_one_edit_is_one_change(tenant: Tenant) -> None:
    policies = tenant.root / "policies"
    result = tenant.cli("export", "--backend", "intune", "--out", str(policies))
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(policies).as_posix() for p in policies.rglob("*.yaml")) == [
        "intune/apps.yaml",
        "intune/web-filters.yaml",
    ]
    output = " ".join(result.output.split())
    for left_out in (
        "'K12 WebFilter staff-filter': has no ios object of the same name",
        "ios profile 'iPad web filter' (iosDeviceFeaturesConfiguration): not made by this tool; to adopt a web "
        "filter, rename it K12 WebFilter <name>",
        "windows settings catalog policy 'Edge blocklist (IT)'",
        "app 'Minecraft Education': assigned to <all devices>",
        "app 'Microsoft Teams': assignment settings a policy cannot say: notifications='hideAll'",
        "app 'Adobe Acrobat Reader': assignment settings a policy cannot say: assignment filter f1 (include)",
    ):
        assert left_out in output
    assert "Left out (6;" in output, result.output  # named and counted
    validated = tenant.cli("validate")
    assert validated.exit_code == 0, validated.output
    assert tenant.plan_changes() == []

    apps = policies / "intune" / "apps.yaml"
    text = apps.read_text()
    assert text.startswith("# Exported by `orchestrator export` from Microsoft Intune")
    assert "#   - app 'Microsoft Teams': assignment settings a policy cannot say" in text.split("---")[0]
    apps.write_text(text.replace("  - app: Zoom Workplace\n    intent: available\n", "  - app: Zoom Workplace\n"))
    assert tenant.plan_changes() == ["update intune/app_assignment/Zoom Workplace"]


def test_exported_intune_documents_are_the_inverse_of_the_compiler(tenant: Tenant) -> None:
    out = tenant.root / "policies"
    assert tenant.cli("export", "--backend", "intune", "--out", str(out)).exit_code == 0
    docs = {d["name"]: d for p in out.rglob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d}
    assert docs["elementary-filter"] == {
        "kind": "WebFilter",
        "name": "elementary-filter",
        "description": "Intune web filter K12 WebFilter elementary-filter",
        "targets": {"intune_groups": ["Elementary iPads"]},
        "blocked": ["coolmathgames.com", "discord.com", "reddit.com", "roblox.com", "tiktok.com", "twitch.tv"],
        "allowed": ["khanacademy.org", "pbskids.org", "scratch.mit.edu"],
    }
    assert docs["intune-apps-all-student-devices"]["intune"] == [
        {"app": "Google Chrome", "intent": "required"},
        {"app": "Microsoft Word", "intent": "required"},
    ]
    assert docs["intune-apps-all-staff"]["intune"] == [{"app": "Zoom Workplace", "intent": "available"}]
    assert "intune-apps-staff-devices" not in docs  # Teams also went to a lab with hand-set settings: left out
    assert "staff-filter" not in docs


def test_intune_export_reads_no_more_than_a_plan_of_what_it_wrote(tenant: Tenant) -> None:
    out = tenant.root / "policies"
    before = sum(tenant.graph.calls.values())
    assert tenant.cli("export", "--backend", "intune", "--out", str(out)).exit_code == 0
    exported = sum(tenant.graph.calls.values()) - before
    tenant.plan_changes()
    planned = sum(tenant.graph.calls.values()) - before - exported
    assert exported <= planned, (exported, planned)


def test_ou_limits_the_export_to_google_and_says_so(tenant: Tenant) -> None:
    out = tenant.root / "policies"
    result = tenant.cli("export", "--backend", "intune", "--ou", "/Students", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Intune was not exported" in " ".join(result.output.split())
    assert not list(out.rglob("*.yaml"))
