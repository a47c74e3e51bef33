"""Every target a policy names resolves at plan time, and every selector selects or is rejected (issue 10: 3, 10).

Real backends against the Google and Graph emulators (real HTTP), the repository's Ansible inventory, and
the CLI end to end for the OU typo that used to remove elementary URL blocking.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.backends.google.backend import GoogleBackend
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.backends.intune import groups as intune_groups
from orchestrator.backends.intune.backend import IntuneBackend
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.network.backend import NetworkBackend
from orchestrator.backends.network.config import NetworkConfig
from orchestrator.backends.registry import CATALOG
from orchestrator.cli import main
from orchestrator.core.errors import PlanError
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import Plan
from orchestrator.engine.reconcile import make_plan
from orchestrator.inventory.devices import Inventory, load_inventory
from orchestrator.policy.loader import PolicySet, load_policies
from orchestrator.sandbox.district import District, generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_directory import add_nested_group
from orchestrator.sandbox.graph_emulator import GraphEmulator

REPO = Path(__file__).resolve().parent.parent
INVENTORY = REPO / "inventory" / "devices.csv"

WINDOW = """\
kind: MaintenanceWindow
name: break-days
calendar: cal
times: ["00:00-23:59"]
days: any_night
---
kind: SchoolCalendar
name: cal
timezone: America/Chicago
terms:
  - name: Fall
    first_day: 2026-08-13
    last_day: 2026-12-18
"""


def reimage(devices: str, name: str = "lab-reset") -> str:
    return (
        f"kind: Reimage\nname: {name}\nwindow: break-days\nrequest: 2026-thanksgiving\n"
        f"devices:\n{textwrap.indent(textwrap.dedent(devices), '  ')}"
        "google:\n  method: wipe_users\nintune:\n  method: autopilot_reset\n"
    )


@pytest.fixture(scope="module")
def district() -> District:
    return generate(devices=120)


@pytest.fixture()
def graph(district: District) -> Iterator[GraphEmulator]:
    server = GraphEmulator.start_local(district)
    yield server
    server.stop()


@pytest.fixture()
def intune(graph: GraphEmulator) -> Iterator[IntuneBackend]:
    backend = IntuneBackend(IntuneConfig(graph_endpoint=graph.url), sleep=lambda _s: None)
    yield backend
    backend.close()


@pytest.fixture()
def google(district: District) -> Iterator[GoogleBackend]:
    server = GoogleEmulator(district).start()
    config = GoogleConfig(
        directory_endpoint=server.url, policy_endpoint=server.url, credentials_file_env="K12_TEST_NO_CREDENTIALS"
    )
    backend = GoogleBackend(config, sleep=lambda _s: None, poll_interval=0.0, timeout=5.0)
    yield backend
    backend.close()
    server.stop()


def policies_from(tmp_path: Path, **files: str) -> PolicySet:
    root = tmp_path / "policies"
    root.mkdir(exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return load_policies(root, display_root=tmp_path)


def plan(tmp_path: Path, policies: PolicySet, backends: dict, scopes: tuple[str, ...], inventory=None) -> Plan:
    return make_plan(
        catalog=CATALOG,
        policies=policies,
        inventory=inventory or load_inventory(INVENTORY, "inventory/devices.csv"),
        backends=backends,
        journal=Journal(tmp_path / "journal.db"),
        scopes=scopes,
    )


# ---- item 3: targets -----------------------------------------------------------------------------------


def test_google_ou_typo_is_a_plan_error_with_file_line_and_did_you_mean(tmp_path: Path, google) -> None:
    policies = policies_from(
        tmp_path,
        **{
            "web.yaml": """\
            kind: WebFilter
            name: elementary-filter
            targets:
              google_ous:
                - /Students/Elementry
            blocked: [tiktok.com]
            """
        },
    )
    with pytest.raises(PlanError) as caught:
        plan(tmp_path, policies, {"google": google}, ("policy",))
    message = str(caught.value)
    assert "policies/web.yaml:5: targets.google_ous[0]: Google org unit '/Students/Elementry' does not exist" in message
    assert "did you mean '/Students/Elementary'?" in message and "elementary-filter" in message


def test_intune_group_and_app_typos_are_plan_errors_with_did_you_mean(tmp_path: Path, intune) -> None:
    policies = policies_from(
        tmp_path,
        **{
            "apps.yaml": """\
            kind: AppPush
            name: student-apps
            targets:
              intune_groups: [Elementary iPad]
            intune:
              - app: Microsoft Wrd
            """
        },
    )
    with pytest.raises(PlanError) as caught:
        plan(tmp_path, policies, {"intune": intune}, ("policy",))
    message = str(caught.value)
    assert "policies/apps.yaml:4: targets.intune_groups[0]: Intune group 'Elementary iPad'" in message
    assert "did you mean 'Elementary iPads'?" in message
    assert "policies/apps.yaml:6: intune[0].app: Intune app 'Microsoft Wrd'" in message
    assert "did you mean 'Microsoft Word'?" in message


def test_network_site_typo_is_a_plan_error_before_any_playbook_runs(tmp_path: Path) -> None:
    network = NetworkBackend(NetworkConfig(), base_dir=REPO, artifacts_dir=tmp_path / "artifacts")
    policies = policies_from(
        tmp_path,
        **{
            "web.yaml": """\
            kind: WebFilter
            name: elementary-filter
            targets:
              network_sites: [lincoln-elementary, washingtn-elementary]
            blocked: [tiktok.com]
            """
        },
    )
    with pytest.raises(PlanError, match=r"web.yaml:4: targets.network_sites\[1\]: network site 'washingtn-elementary'"):
        plan(tmp_path, policies, {"network": network}, ("policy",))
    assert network.runs == []


def test_school_typo_stops_lockdown_but_a_webfilter_typo_does_not(tmp_path: Path, google) -> None:
    lost = """\
    kind: LostDevicePolicy
    name: lost
    message: Return to the office.
    schools: [lincon-elementary]
    """
    web = """\
    kind: WebFilter
    name: typo
    targets:
      google_ous: [/Students/Elementry]
    blocked: [tiktok.com]
    """
    policies = policies_from(tmp_path, **{"lost.yaml": lost, "web.yaml": web})
    with pytest.raises(PlanError) as caught:
        plan(tmp_path, policies, {"google": google}, ("lockdown",))
    assert "lost.yaml:4: schools[0]: school 'lincon-elementary'" in str(caught.value)
    assert "did you mean 'lincoln-elementary'?" in str(caught.value)
    assert "Elementry" not in str(caught.value)  # the policy scope's typo does not block a lockdown
    fixed = policies_from(tmp_path, **{"lost.yaml": lost.replace("lincon", "lincoln"), "web.yaml": web})
    assert isinstance(plan(tmp_path, fixed, {"google": google}, ("lockdown",)), Plan)


def test_reimage_naming_an_unknown_serial_or_group_is_a_plan_error(tmp_path: Path, intune) -> None:
    policies = policies_from(
        tmp_path,
        **{
            "windows.yaml": WINDOW,
            "reimage.yaml": reimage("serials: [PF0000008, PF9999999]\nintune_groups: [Jefferson Lab PC]\n"),
        },
    )
    with pytest.raises(PlanError) as caught:
        plan(tmp_path, policies, {"intune": intune}, ("maintenance",))
    message = str(caught.value)
    assert "reimage.yaml:6: devices.serials[1]: serial 'PF9999999' does not exist in the device inventory" in message
    assert "devices.intune_groups[0]: Intune group 'Jefferson Lab PC'" in message
    assert "did you mean 'Jefferson Lab PCs'?" in message


@pytest.fixture()
def cli_district(tmp_path: Path, district: District, monkeypatch) -> Iterator[tuple[Path, GoogleEmulator]]:
    server = GoogleEmulator(district).start()
    for name in ("policies", "inventory"):
        shutil.copytree(REPO / name, tmp_path / name)
    (tmp_path / "orchestrator.yaml").write_text(
        f"journal: .orchestrator/journal.db\ngoogle:\n  directory_endpoint: {server.url}\n"
        f"  policy_endpoint: {server.url}\n"
    )
    monkeypatch.chdir(tmp_path)
    yield tmp_path, server
    server.stop()


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_ou_typo_writes_no_plan_and_never_removes_filtering_from_the_real_ou(cli_district) -> None:
    root, server = cli_district
    assert run("plan", "--backend", "google", "--out", "first.json").exit_code == 0
    assert server.calls["orgunits.list"] == 1, "the target check and the observation share one orgunits.list"
    assert run("apply", "first.json", "--yes").exit_code == 0
    assert run("drift", "--backend", "google").exit_code == 0
    web = root / "policies" / "webfilter-elementary.yaml"
    web.write_text(web.read_text().replace("- /Students/Elementary\n", "- /Students/Elementry\n"))
    planned = run("plan", "--backend", "google", "--out", "typo.json")
    assert planned.exit_code == 1, planned.output
    assert "policies/webfilter-elementary.yaml:8: targets.google_ous[0]" in planned.output
    assert "did you mean '/Students/Elementary'?" in planned.output
    assert not (root / "typo.json").exists()
    assert run("drift", "--backend", "google").exit_code == 1
    ou_id = server.state.ou_by_ref("/Students/Elementary").id
    assert any(key[0] == ou_id and key[1] == "chrome.users.UrlBlocking" for key in server.state.policies), (
        "URL blocking at the real OU must survive the typo"
    )


# ---- item 10: selectors --------------------------------------------------------------------------------


def group_member_serials(graph: GraphEmulator, name: str) -> set[str]:
    state = graph.state
    (group_id,) = [gid for gid, g in state.groups.items() if g["displayName"] == name]
    return {state.devices[m]["serialNumber"] for m in state.group_members[group_id] if m in state.devices}


def test_reimage_by_intune_group_reimages_the_groups_members(tmp_path: Path, graph, intune) -> None:
    policies = policies_from(
        tmp_path, **{"windows.yaml": WINDOW, "reimage.yaml": reimage("intune_groups: [Jefferson Lab PCs]\n")}
    )
    inventory = load_inventory(INVENTORY, "inventory/devices.csv")
    members = group_member_serials(graph, "Jefferson Lab PCs")
    active = {d.serialNumber for d in inventory.devices if d.inventoryStatus not in ("lost", "stolen", "retired")}
    expected = members & active
    assert expected, "the sample district has lab PCs in the group"
    result = plan(tmp_path, policies, {"intune": intune}, ("maintenance",), inventory)
    wiped = {c.id.key.split("|")[0] for c in result.changes if c.id.type == "reimage"}
    assert wiped == expected
    assert all(c.sources[0] == "policies/reimage.yaml:5" for c in result.changes)
    assert intune.counter.as_dict().get("GET groups/transitiveMembers") == 1


def test_group_members_are_read_transitively_across_pages(graph, intune, monkeypatch) -> None:
    state = graph.state
    (lab,) = [gid for gid, g in state.groups.items() if g["displayName"] == "Jefferson Lab PCs"]
    (laptops,) = [gid for gid, g in state.groups.items() if g["displayName"] == "Secondary Windows Laptops"]
    nested = sorted(state.group_members[laptops])
    add_nested_group(state, lab, "Jefferson Lab Spares", nested)
    monkeypatch.setattr(intune_groups, "MEMBER_PAGE", 3)
    expected = group_member_serials(graph, "Jefferson Lab PCs") | group_member_serials(
        graph, "Secondary Windows Laptops"
    )
    assert len(expected) > 6
    serials = intune.group_device_serials(["Jefferson Lab PCs"])
    assert serials == {"Jefferson Lab PCs": expected}
    assert intune.counter.as_dict()["GET groups/transitiveMembers"] >= 3  # paged by @odata.nextLink


def test_transitive_members_cast_is_refused_without_count(graph) -> None:
    import httpx

    group = next(iter(graph.state.groups))
    url = f"{graph.url}/v1.0/groups/{group}/transitiveMembers/microsoft.graph.device"
    refused = httpx.get(url)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    page = httpx.get(url, params={"$count": "true", "$top": "2"}, headers={"ConsistencyLevel": "eventual"}).json()
    assert page["@odata.count"] >= len(page["value"]) and all(
        m["@odata.type"] == "#microsoft.graph.device" and m["deviceId"] for m in page["value"]
    )


def test_selector_that_selects_nothing_is_a_plan_note(tmp_path: Path, google) -> None:
    lost = next(d for d in load_inventory(INVENTORY).devices if d.inventoryStatus == "lost")
    policies = policies_from(
        tmp_path, **{"windows.yaml": WINDOW, "reimage.yaml": reimage(f"serials: [{lost.serialNumber}]\n")}
    )
    result = plan(tmp_path, policies, {"google": google}, ("maintenance",))
    assert result.changes == []
    assert any("reimage.yaml:5: Reimage 'lab-reset' selects no device" in note for note in result.notes)


def test_empty_inventory_makes_every_reimage_selector_a_note_not_a_crash(tmp_path: Path, google) -> None:
    policies = policies_from(
        tmp_path, **{"windows.yaml": WINDOW, "reimage.yaml": reimage("google_ous: [/Labs/Jefferson]\n")}
    )
    result = plan(tmp_path, policies, {"google": google}, ("maintenance",), Inventory("inventory/devices.csv", []))
    assert any("org unit /Labs/Jefferson holds no inventory device" in note for note in result.notes)
