"""Edge URL lists on Windows as a Settings Catalog policy (issue 12 item 1), through msgraph-sdk's session
against the Graph emulator, and the emulator's configurationPolicies as strict as Graph."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.backends.intune.backend import IntuneBackend
from orchestrator.backends.intune.compiler import compile_intune
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.registry import CATALOG
from orchestrator.core.resources import Change, ChangeResult, Resource
from orchestrator.engine.diff import diff
from orchestrator.engine.prune import Pruning
from orchestrator.inventory.devices import Inventory
from orchestrator.policy.loader import load_policies
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.graph_emulator import GraphEmulator

EDGE = "device_vendor_msft_policy_config_microsoft_edge~policy~microsoft_edge_"
BLOCK, ALLOW = EDGE + "urlblocklist", EDGE + "urlallowlist"
G = "#microsoft.graph.deviceManagementConfiguration"
NAME = "K12 WebFilter elementary-filter"
WINDOWS_KEY = f"windows|{NAME}"

WEBFILTER = """\
    kind: WebFilter
    name: elementary-filter
    targets:
      intune_groups:
        - Elementary iPads
        - All Student Devices
    blocked:
      - tiktok.com
      - "*.tiktok.com"
      - roblox.com
    allowed:
      - khanacademy.org
    """

# What earlier versions wrote for Windows: an OMA-URI custom profile devices ignore without the Edge ADMX.
OLD_URI = "./Device/Vendor/MSFT/Policy/Config/microsoft_edge~Policy~microsoft_edge/{}"
OLD_PROFILE = {
    "@odata.type": "#microsoft.graph.windows10CustomConfiguration",
    "displayName": NAME,
    "omaSettings": [
        {
            "@odata.type": "#microsoft.graph.omaSettingString",
            "displayName": f"Edge {name}",
            "omaUri": OLD_URI.format(name),
            "value": f'<enabled/><data id="{name}Desc" value="1&#xF000;tiktok.com"/>',
        }
        for name in ("URLBlocklist", "URLAllowlist")
    ],
}


@pytest.fixture()
def emulator() -> Iterator[GraphEmulator]:
    server = GraphEmulator.start_local(generate(devices=50))
    yield server
    server.stop()


@pytest.fixture()
def backend(emulator: GraphEmulator) -> Iterator[IntuneBackend]:
    instance = IntuneBackend(IntuneConfig(graph_endpoint=emulator.url), sleep=lambda _s: None)
    yield instance
    instance.close()


@pytest.fixture()
def http(emulator: GraphEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=10) as client:
        yield client


def desired_from(tmp_path: Path, text: str = WEBFILTER) -> list[Resource]:
    root = tmp_path / "policies"
    root.mkdir(exist_ok=True)
    (root / "web.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    policies = load_policies(root, display_root=tmp_path)
    return compile_intune(policies, Inventory("inventory/devices.csv", []))


def plan(backend: IntuneBackend, desired: list[Resource], pruning: Pruning | None = None) -> list[Change]:
    observed = {r.id: r for r in backend.observe(desired)}
    return diff(CATALOG, desired, observed, pruning=pruning or Pruning())


def apply(backend: IntuneBackend, changes: list[Change]) -> list[ChangeResult]:
    results: list[ChangeResult] = []
    backend.apply(changes, lambda _c: None, results.append)
    return results


def only_policy(emulator: GraphEmulator) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    catalog = emulator.state.catalog
    (pid,) = catalog.policies
    return catalog.policies[pid], catalog.settings[pid], catalog.assignments[pid]


def instance(settings: list[dict[str, Any]], definition: str) -> dict[str, Any]:
    return next(s["settingInstance"] for s in settings if s["settingInstance"]["settingDefinitionId"] == definition)


def test_edge_lists_become_a_settings_catalog_policy_with_its_assignments(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path
) -> None:
    desired = desired_from(tmp_path)
    changes = plan(backend, desired)
    assert [(str(c.id), c.op) for c in changes] == [
        (f"intune/settings_policy/{WINDOWS_KEY}", "create"),
        (f"intune/config_profile/ios|{NAME}", "create"),
    ]
    assert {r.state for r in apply(backend, changes)} == {"succeeded"}
    record, settings, assignments = only_policy(emulator)
    assert (record["name"], record["platforms"], record["technologies"]) == (NAME, "windows10", "mdm")
    block = instance(settings, BLOCK)
    assert block["@odata.type"] == G + "ChoiceSettingInstance"
    assert block["choiceSettingValue"]["value"] == BLOCK + "_1"
    (child,) = block["choiceSettingValue"]["children"]
    assert child["@odata.type"] == G + "SimpleSettingCollectionInstance"
    assert child["settingDefinitionId"] == BLOCK + "_urlblocklistdesc"
    assert [v["value"] for v in child["simpleSettingCollectionValue"]] == ["roblox.com", "tiktok.com"]
    allow = instance(settings, ALLOW)["choiceSettingValue"]["children"][0]
    assert allow["settingDefinitionId"] == ALLOW + "_urlallowlistdesc"
    assert [v["value"] for v in allow["simpleSettingCollectionValue"]] == ["khanacademy.org"]
    groups = {g["id"]: g["displayName"] for g in emulator.state.groups.values()}
    assert sorted(groups[a["target"]["groupId"]] for a in assignments) == ["All Student Devices", "Elementary iPads"]
    assert {a["target"]["@odata.type"] for a in assignments} == {"#microsoft.graph.groupAssignmentTarget"}
    # no Windows custom profile is written any more; iOS keeps its web content filter profile, unchanged
    (ios,) = emulator.state.configs.values()
    assert ios["@odata.type"] == "#microsoft.graph.iosDeviceFeaturesConfiguration"
    assert ios["contentFilterSettings"] == {
        "@odata.type": "#microsoft.graph.iosWebContentFilterAutoFilter",
        "blockedUrls": ["https://roblox.com", "https://tiktok.com"],
        "allowedUrls": ["https://khanacademy.org"],
    }
    assert plan(backend, desired) == []  # a second plan shows no changes


def test_changed_blocklist_replaces_the_policy_settings(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path
) -> None:
    apply(backend, plan(backend, desired_from(tmp_path)))
    changed = desired_from(tmp_path, WEBFILTER.replace("  - roblox.com\n", "  - roblox.com\n      - discord.com\n"))
    changes = plan(backend, changed)
    assert [(c.id.type, c.op) for c in changes] == [("settings_policy", "update"), ("config_profile", "update")]
    assert changes[0].after["blocked"] == ["discord.com", "roblox.com", "tiktok.com"]
    assigns = emulator.calls["POST configurationPolicies/assign"]
    assert {r.state for r in apply(backend, changes)} == {"succeeded"}
    assert emulator.calls["PUT configurationPolicy"] == 1
    assert emulator.calls["POST configurationPolicies/assign"] == assigns  # groups unchanged: not re-sent
    _, settings, _ = only_policy(emulator)
    child = instance(settings, BLOCK)["choiceSettingValue"]["children"][0]
    assert [v["value"] for v in child["simpleSettingCollectionValue"]] == ["discord.com", "roblox.com", "tiktok.com"]
    assert plan(backend, changed) == []


def test_emptied_list_is_disabled_and_manual_settings_are_drift(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path
) -> None:
    text = WEBFILTER.replace("    allowed:\n      - khanacademy.org\n", "")
    apply(backend, plan(backend, desired_from(tmp_path, text)))
    _, settings, _ = only_policy(emulator)
    assert instance(settings, ALLOW)["choiceSettingValue"] == {
        "@odata.type": G + "ChoiceSettingValue",
        "value": ALLOW + "_0",
        "children": [],
    }
    assert plan(backend, desired_from(tmp_path, text)) == []
    settings[1]["settingInstance"]["choiceSettingValue"]["value"] = ALLOW + "_1"  # enabled by hand, no list
    settings.pop(0)  # blocklist removed by hand
    (change,) = plan(backend, desired_from(tmp_path, text))
    assert change.op == "update" and change.before["blocked"] == []


def test_existing_custom_edge_profile_is_migrated_create_assign_then_delete(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path
) -> None:
    old = emulator.state.create_config(dict(OLD_PROFILE))
    desired = desired_from(tmp_path)
    # the journal says this tool made the old profile (as `apply` recorded it then)
    pruning = Pruning(applied=frozenset({f"intune/config_profile/{WINDOWS_KEY}"}))
    changes = plan(backend, desired, pruning)
    assert [(str(c.id), c.op) for c in changes] == [
        (f"intune/settings_policy/{WINDOWS_KEY}", "create"),
        (f"intune/config_profile/ios|{NAME}", "create"),
        (f"intune/config_profile/{WINDOWS_KEY}", "delete"),
    ]
    delete = changes[-1]
    assert delete.before["blocked"] == ["tiktok.com"] and "applied by this tool" in delete.summary
    assert changes[0].after["assignments"] == ["All Student Devices", "Elementary iPads"]
    emulator.calls.clear()
    order: list[str] = []
    real = emulator.api.handle

    def spy(method: str, version: str, parts: list[str], *args: Any, **kwargs: Any) -> Any:
        if method != "GET":
            order.append(f"{method} {'/'.join(parts[1:2] + parts[3:])}")
        return real(method, version, parts, *args, **kwargs)

    emulator.api.handle = spy  # type: ignore[method-assign]
    assert {r.state for r in apply(backend, changes)} == {"succeeded"}
    assert order == [
        "POST configurationPolicies",
        "POST configurationPolicies/assign",
        "POST deviceConfigurations",
        "POST deviceConfigurations/assign",
        "DELETE deviceConfigurations",
    ]
    assert old["id"] not in emulator.state.configs
    assert plan(backend, desired, pruning) == []


def test_custom_profile_is_kept_when_its_replacement_fails(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path
) -> None:
    old = emulator.state.create_config(dict(OLD_PROFILE))
    changes = plan(backend, desired_from(tmp_path), Pruning(everything=True))
    emulator.inject("POST configurationPolicies", 403, on_calls={1}, after_effect=False)
    results = {r.change_key: r for r in apply(backend, changes)}
    by_op = {(c.id.type, c.op): results[c.key] for c in changes}
    assert by_op[("settings_policy", "create")].state == "failed"
    assert by_op[("config_profile", "delete")].state == "failed"
    assert "replaces it was not applied" in by_op[("config_profile", "delete")].detail
    assert old["id"] in emulator.state.configs


def test_unmanaged_or_duplicate_settings_policies(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path, http: httpx.Client
) -> None:
    desired = desired_from(tmp_path)
    apply(backend, plan(backend, desired))
    body = {"name": "Contoso Edge", "platforms": "windows10", "technologies": "mdm", "settings": []}
    assert http.post("/beta/deviceManagement/configurationPolicies", json=body).status_code == 201
    assert plan(backend, desired) == []  # not ours: never touched
    body["name"] = NAME
    assert http.post("/beta/deviceManagement/configurationPolicies", json=body).status_code == 201
    with pytest.raises(Exception, match="2 windows settings catalog policies named"):
        backend.observe(desired)


# ---------------------------------------------------------------------------------------------- emulator


def _choice(definition: str, value: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@odata.type": G + "Setting",
        "settingInstance": {
            "@odata.type": G + "ChoiceSettingInstance",
            "settingDefinitionId": definition,
            "choiceSettingValue": {"@odata.type": G + "ChoiceSettingValue", "value": value, "children": children},
        },
    }


def _list_child(definition: str, values: list[Any]) -> dict[str, Any]:
    return {
        "@odata.type": G + "SimpleSettingCollectionInstance",
        "settingDefinitionId": definition,
        "simpleSettingCollectionValue": [{"@odata.type": G + "StringSettingValue", "value": v} for v in values],
    }


def _policy(*settings: dict[str, Any]) -> dict[str, Any]:
    return {"name": "K12 x", "platforms": "windows10", "technologies": "mdm", "settings": list(settings)}


GOOD = _choice(BLOCK, BLOCK + "_1", [_list_child(BLOCK + "_urlblocklistdesc", ["a.example"])])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (_choice(EDGE + "urlblacklist", EDGE + "urlblacklist_1", []), "was not found"),
        (_choice(BLOCK, BLOCK + "_2", []), "Invalid choiceSettingValue"),
        (_choice(BLOCK, BLOCK + "_1", [_list_child(ALLOW + "_urlallowlistdesc", ["a"])]), "not allowed here"),
        (_choice(BLOCK, BLOCK + "_0", [_list_child(BLOCK + "_urlblocklistdesc", ["a"])]), "not allowed here"),
        (_choice(BLOCK, BLOCK + "_1", [_list_child(BLOCK + "_urlblocklistdesc", [3])]), "StringSettingValue"),
        (
            {**GOOD, "settingInstance": {**GOOD["settingInstance"], "@odata.type": G + "SimpleSettingInstance"}},
            "choice",
        ),
        ({"settingInstance": _list_child(BLOCK + "_urlblocklistdesc", ["a"])}, "not allowed here"),
    ],
)
def test_emulator_refuses_unknown_definitions_and_wrong_shapes(
    http: httpx.Client, setting: dict[str, Any], message: str
) -> None:
    reply = http.post("/beta/deviceManagement/configurationPolicies", json=_policy(setting))
    assert reply.status_code == 400
    assert message in reply.json()["error"]["message"]


def test_emulator_policy_lifecycle_is_beta_only_and_settings_change_only_with_put(
    emulator: GraphEmulator, http: httpx.Client
) -> None:
    base = "/beta/deviceManagement/configurationPolicies"
    assert http.post("/v1.0/deviceManagement/configurationPolicies", json=_policy(GOOD)).status_code == 400
    assert http.post(base, json={**_policy(GOOD), "platforms": "windows"}).status_code == 400
    pid = http.post(base, json=_policy(GOOD)).json()["id"]
    expanded = http.get(f"{base}?$expand=settings").json()["value"][0]
    assert expanded["settings"][0]["settingInstance"]["settingDefinitionId"] == BLOCK
    patched = http.patch(f"{base}/{pid}", json={"settings": []})
    assert patched.status_code == 400 and "PUT" in patched.json()["error"]["message"]
    assert http.put(f"{base}/{pid}", json=_policy()).status_code == 204
    assert http.get(f"{base}/{pid}/settings").json()["value"] == []
    gid = next(iter(emulator.state.groups))
    target = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid}
    assigned = http.post(f"{base}/{pid}/assign", json={"assignments": [{"target": target}]})
    assert assigned.status_code == 200
    assert http.get(f"{base}/{pid}/assignments").json()["value"][0]["target"]["groupId"] == gid
    missing = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "nope"}
    assert http.post(f"{base}/{pid}/assign", json={"assignments": [{"target": missing}]}).status_code == 400
    assert http.delete(f"{base}/{pid}").status_code == 204
    assert http.get(f"{base}/{pid}").status_code == 404
