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

from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.intune.exporter import export_intune
from orchestrator.backends.intune.spec import APP_ASSIGNMENT, CONFIG_PROFILE, SETTINGS_POLICY
from orchestrator.cli import main
from orchestrator.core.backend import ExportInput
from orchestrator.core.resources import Resource
from orchestrator.jobs.session import Session
from orchestrator.sandbox.district import LIVED_IN_GOOGLE, generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.graph_state import GraphState, set_by_hand

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


# ---- the exporter alone (pure): what a console shape exports to, and what it leaves out ---------------------


def _filter(platform: str, name: str, value: dict | None, **meta: object) -> Resource:
    rtype = SETTINGS_POLICY if platform == "windows" else CONFIG_PROFILE
    return Resource(rtype.id(platform, name), value, meta={"name": name, "ids": ["x"], "managed": True, **meta})


def _pair(policy: str, blocked: list[str], groups: list[str], **windows_extra: object) -> list[Resource]:
    name = f"K12 WebFilter {policy}"
    value = {"blocked": blocked, "allowed": [], "assignments": groups}
    return [_filter("windows", name, {**value, **windows_extra}), _filter("ios", name, dict(value))]


def _export(observed: list[Resource]) -> tuple[dict[str, object], list[str]]:
    files = export_intune(ExportInput(observed, IntuneConfig(graph_endpoint="http://127.0.0.1:1/"), None, "t"))
    docs = {d.model.name: d.model for f in files for d in f.documents}
    return docs, [item for f in files for item in f.left_out]


def test_two_web_filters_for_one_group_export_the_first_and_name_the_second() -> None:
    docs, left_out = _export([*_pair("a-filter", ["a.example"], ["G1"]), *_pair("b-filter", ["b.example"], ["G1"])])
    assert list(docs) == ["a-filter"]
    assert left_out == [
        "web filter 'K12 WebFilter b-filter': a web filter for G1 (a-filter) is already exported (one per group)"
    ]


def test_web_filters_the_compiler_cannot_give_back_are_left_out_with_the_reason() -> None:
    observed = [
        *_pair("wild", ["*.games.example"], ["G1"]),
        *_pair("path", ["games.example/path"], ["G2"]),
        *_pair("hand", ["a.example"], ["G3"], other_settings=["x_setting"]),
        *_pair("all", ["a.example"], ["<all devices>"]),
        *_pair("Upper Case", ["a.example"], ["G4"]),
        *_pair("filtered", ["a.example"], ["G5"]),
        _filter("windows", "K12 WebFilter differ", {"blocked": ["a.example"], "allowed": [], "assignments": ["G6"]}),
        _filter("ios", "K12 WebFilter differ", {"blocked": ["b.example"], "allowed": [], "assignments": ["G6"]}),
        _filter("windows", "K12 WebFilter twice", None, ids=["p1", "p2"]),
    ]
    observed[11].meta["filters"] = ["assignment filter f1 (include)"]
    docs, left_out = _export(observed)
    assert docs == {}
    text = "\n".join(left_out)
    for reason in (
        "'K12 WebFilter wild': entries that are not plain domains: *.games.example",
        "'K12 WebFilter path': entries that are not plain domains: games.example/path",
        "'K12 WebFilter hand': settings added by hand: x_setting",
        "'K12 WebFilter all': assigned to <all devices>",
        "'K12 WebFilter Upper Case': 'Upper Case' is not a policy name",
        "'K12 WebFilter filtered': assignment filters a policy cannot say: assignment filter f1 (include)",
        "'K12 WebFilter differ': the Windows and iOS lists or groups differ",
        "windows settings catalog policy 'K12 WebFilter twice' (): 2 objects share this name",
    ):
        assert reason in text, reason
    assert len(left_out) == 8


def test_apps_export_per_group_unless_the_app_cannot_be_said() -> None:
    def app(name: str, entries: list[tuple[str, str]], **meta: object) -> Resource:
        value = [{"group": g, "intent": i} for g, i in entries]
        return Resource(APP_ASSIGNMENT.id(name), value, meta={"name": name, "ids": ["x"], "settings": [], **meta})

    docs, left_out = _export(
        [
            app("Word", [("Grade 5", "required"), ("Staff", "available")]),
            app("Chess", [("Grade 5", "uninstall")]),
            app("Shared Name", [("Grade 5", "required")], ids=["a1", "a2"]),
            app("Kiosk", [("Grade 5", "availableWithoutEnrollment")]),
            app("Twice", [("Grade 5", "available"), ("Grade 5", "required")]),
        ]
    )
    assert {n: [(a.app, a.intent) for a in m.intune] for n, m in docs.items()} == {
        "intune-apps-grade-5": [("Chess", "uninstall"), ("Word", "required")],
        "intune-apps-staff": [("Word", "available")],
    }
    assert sorted(left_out) == [
        "app 'Kiosk': intent availableWithoutEnrollment (the policy language has required, available, uninstall)",
        "app 'Shared Name': 2 apps share this name",
        "app 'Twice': assigned to Grade 5 with several intents",
    ]


def test_one_name_from_two_consoles_refuses_the_export_before_anything_is_written(tmp_path: Path) -> None:
    google = GoogleEmulator(generate(devices=30)).start()
    google.state.set_by_hand(LIVED_IN_GOOGLE)  # exports the WebFilter students-web-filter (Google, /Students)
    graph = GraphEmulator.start_local(generate(devices=30))
    try:
        group = next(gid for gid, g in graph.state.groups.items() if g["displayName"] == "Elementary iPads")
        assign = [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group}}]
        made = graph.state.catalog.create(_edge_policy("K12 WebFilter students-web-filter", ["a.example"]), "t")
        graph.state.assign_policy(made["id"], assign)
        ios = graph.state.create_config(_ios_filter("K12 WebFilter students-web-filter", ["a.example"]))
        graph.state.assign_config(ios["id"], assign)
        shutil.copytree(REPO / "inventory", tmp_path / "inventory")
        (tmp_path / "policies").mkdir()
        config = tmp_path / "orchestrator.yaml"
        config.write_text(
            f"journal: {tmp_path / 'j.db'}\npolicies: policies/\ninventory: inventory/devices.csv\n"
            f"google:\n  directory_endpoint: {google.url}\n  policy_endpoint: {google.url}\n"
            "  policy_reads_per_minute: 60000\n"
            f"intune:\n  graph_endpoint: {graph.url}\n"
        )
        result = CliRunner().invoke(
            main,
            [
                "--config",
                str(config),
                "export",
                "--backend",
                "google",
                "--backend",
                "intune",
                "--out",
                str(tmp_path / "x"),
            ],
        )
        assert result.exit_code != 0
        assert "WebFilter 'students-web-filter' in google/students.yaml and intune/web-filters.yaml" in result.output
        assert not (tmp_path / "x").exists()
    finally:
        google.stop()
        graph.stop()


def test_the_lived_in_sandbox_exports_its_intune_settings_and_names_the_rest(tmp_path: Path) -> None:
    state = GraphState.from_district(generate(devices=60))
    assert set_by_hand(state) == 7
    graph = GraphEmulator.start_local(state=state)
    try:
        shutil.copytree(REPO / "inventory", tmp_path / "inventory")
        (tmp_path / "policies").mkdir()
        (tmp_path / "orchestrator.yaml").write_text(
            f"journal: {tmp_path / 'j.db'}\npolicies: policies/\ninventory: inventory/devices.csv\n"
            f"intune:\n  graph_endpoint: {graph.url}\n"
        )
        tenant = Tenant(tmp_path, graph)
        result = tenant.cli("export", "--backend", "intune", "--out", str(tmp_path / "policies"))
        assert result.exit_code == 0, result.output
        docs = {d["name"]: d for p in tmp_path.rglob("policies/**/*.yaml") for d in yaml.safe_load_all(p.read_text())}
        assert docs["ipad-filter"]["targets"] == {"intune_groups": ["Elementary iPads"]}
        assert docs["ipad-filter"]["blocked"] == ["roblox.com", "tiktok.com"]
        assert sorted(docs) == ["intune-apps-all-staff", "intune-apps-all-student-devices", "ipad-filter"]
        output = " ".join(result.output.split())
        assert "Left out (3;" in output and "'iPad web filter (set by hand)'" in output
        assert tenant.plan_changes() == []
    finally:
        graph.stop()


def test_intune_export_again_after_a_console_change_rewrites_only_the_file_that_changed(tenant: Tenant) -> None:
    out = tenant.root / "policies"
    assert tenant.cli("export", "--backend", "intune", "--out", str(out)).exit_code == 0
    before = {p: p.read_text() for p in out.rglob("*.yaml")}
    state = tenant.graph.state
    lab = next(gid for gid, g in state.groups.items() if g["displayName"] == "Jefferson Lab PCs")
    minecraft = next(aid for aid, a in state.apps.items() if a["displayName"] == "Minecraft Education")
    target = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": lab}
    state.assign_app(minecraft, [{"intent": "required", "target": target}])  # was: all devices (left out)
    refused = tenant.cli("export", "--backend", "intune", "--out", str(out))
    assert refused.exit_code != 0 and "--force" in refused.output
    forced = tenant.cli("export", "--backend", "intune", "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    changed = {p for p in out.rglob("*.yaml") if p.read_text() != before[p]}
    assert changed == {out / "intune" / "apps.yaml"}
    added = set((out / "intune" / "apps.yaml").read_text().splitlines()) - set(
        before[out / "intune" / "apps.yaml"].splitlines()
    )
    assert {line for line in added if not line.startswith("# Read at:")} == {
        "# Apps assigned to the group Jefferson Lab PCs.",
        "name: intune-apps-jefferson-lab-pcs",
        "description: Intune apps assigned to Jefferson Lab PCs",
        "    - Jefferson Lab PCs",
        "  - app: Minecraft Education",
    }
    assert tenant.plan_changes() == []
