"""The Intune backend through the real msgraph-sdk client against the Graph emulator (a real HTTP server)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.backends.intune.backend import IntuneBackend
from orchestrator.backends.intune.compiler import compile_intune
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.registry import CATALOG
from orchestrator.core.errors import PlanError
from orchestrator.core.resources import Change, ChangeResult, Resource, ResourceId
from orchestrator.engine.diff import diff
from orchestrator.inventory.devices import Device, Inventory
from orchestrator.policy.loader import load_policies
from orchestrator.sandbox.district import District, SeedDevice, generate
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.graph_state import GraphState
from orchestrator.sandbox.httpbase import Fault

REPO_POLICIES = Path(__file__).resolve().parent.parent / "policies"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture()
def district() -> District:
    return generate(devices=200)


@pytest.fixture()
def emulator(district: District) -> Iterator[GraphEmulator]:
    server = GraphEmulator.start_local(district)
    yield server
    server.stop()


@pytest.fixture()
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture()
def backend(emulator: GraphEmulator, sleeps: Sleeps) -> Iterator[IntuneBackend]:
    instance = IntuneBackend(IntuneConfig(graph_endpoint=emulator.url), sleep=sleeps)
    yield instance
    instance.close()


def write_policies(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "policies"
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def run_once(backend: IntuneBackend, desired: list[Resource]) -> tuple[list[Change], list[ChangeResult]]:
    observed = {r.id: r for r in backend.observe(desired)}
    changes = diff(CATALOG, desired, observed)
    sent: list[Change] = []
    results: list[ChangeResult] = []
    backend.apply(changes, sent.append, results.append)
    assert sorted(c.key for c in sent) == sorted(r.change_key for r in results)
    return changes, results


def policy_resources(tmp_path: Path, inventory: Inventory | None = None, **files: str) -> list[Resource]:
    policies = load_policies(write_policies(tmp_path, files), display_root=tmp_path)
    return compile_intune(policies, inventory or Inventory("inventory/devices.csv", []))


def pick(district: District, platform: str, supervised: bool | None = None, skip: int = 0) -> SeedDevice:
    found = [
        s
        for s in district.devices
        if s.device.platform == platform and (supervised is None or s.supervised == supervised)
    ]
    return found[skip]


def inventory_with(*rows: tuple[SeedDevice, str]) -> Inventory:
    devices = []
    for line, (seed, status) in enumerate(rows, start=2):
        d = seed.device
        devices.append(
            Device(
                serialNumber=d.serialNumber,
                platform=d.platform,
                inventoryStatus=status,
                school=d.school,
                orgUnitPath=d.orgUnitPath,
                line=line,
            )
        )
    return Inventory("inventory/devices.csv", devices)


LOST_POLICY = """\
    kind: LostDevicePolicy
    name: lost-devices
    message: "Please return this device to any school office."
    phone: "+1 555 0100 200"
    footer: "Asset of PVSD"
    intune:
      action: remote_lock
      lost_mode: true
    """


# ---------------------------------------------------------------------------------------------- devices


def autopilot_reset(serial: str, request: str) -> Change:
    """A planned Autopilot reset (wipe keeping enrollment) of one laptop."""
    return Change(
        id=ResourceId("intune", "reimage", f"{serial}|{request}"),
        op="action",
        before=None,
        after={"action": "wipe", "keepEnrollmentData": True, "keepUserData": False},
        destructive=True,
        meta={"batch_size": 10},
    )


def test_observe_reads_every_device_in_pages_of_1000(tmp_path: Path, sleeps: Sleeps) -> None:
    server = GraphEmulator.start_local(generate(devices=12000))
    intune_devices = len(server.state.devices)
    assert intune_devices > 3000
    backend = IntuneBackend(IntuneConfig(graph_endpoint=server.url), sleep=sleeps)
    try:
        lost = next(s for s in generate(devices=12000).devices if s.device.platform == "windows")
        desired = policy_resources(tmp_path, inventory_with((lost, "lost")), **{"lost.yaml": LOST_POLICY})
        observed = backend.observe(desired)
        assert [r.value for r in observed if r.id.type == "device_lock"] == [{"lost": False}]
        assert server.calls["GET managedDevices"] == math.ceil(intune_devices / 1000)
    finally:
        backend.close()
        server.stop()


def test_unsupported_filter_is_ignored_but_serials_match_exactly(
    emulator: GraphEmulator, backend: IntuneBackend, district: District, tmp_path: Path
) -> None:
    laptop = pick(district, "ios", supervised=False)  # remote-locked (no remote lock on Windows)
    lookalike = dict(emulator.state.devices[laptop.intune_id], id="lookalike", serialNumber=laptop.device.serial + "1")
    emulator.state.devices["lookalike"] = lookalike
    session = backend.session
    url = session.url(
        "v1.0",
        "deviceManagement/managedDevices",
        **{"$filter": f"startswith(serialNumber,'{laptop.device.serial}')", "$top": "1000"},
    )
    everything = session.run(session.get_all("GET managedDevices", url))
    assert len(everything) == len(emulator.state.devices)  # the service ignored the filter

    desired = policy_resources(tmp_path, inventory_with((laptop, "stolen")), **{"lost.yaml": LOST_POLICY})
    _, results = run_once(backend, desired)
    assert [r.state for r in results] == ["succeeded"]
    assert [a["actionName"] for a in emulator.state.devices[laptop.intune_id]["deviceActionResults"]] == ["remoteLock"]
    assert lookalike["deviceActionResults"] == []


def test_lost_mode_on_supervised_ipad_and_remote_lock_otherwise(
    emulator: GraphEmulator, backend: IntuneBackend, district: District, tmp_path: Path
) -> None:
    ipad, old_ipad, laptop = (  # "laptop": a second unsupervised iPad (Windows gets no remote lock)
        pick(district, "ios", supervised=True),
        pick(district, "ios", supervised=False),
        pick(district, "ios", supervised=False, skip=1),
    )
    inventory = inventory_with((ipad, "lost"), (old_ipad, "stolen"), (laptop, "lost"))
    desired = policy_resources(tmp_path, inventory, **{"lost.yaml": LOST_POLICY})
    changes, results = run_once(backend, desired)
    assert len(changes) == 3 and {r.state for r in results} == {"succeeded"}
    state = emulator.state.devices
    assert state[ipad.intune_id]["lostModeState"] == "enabled"
    assert [a["actionName"] for a in state[ipad.intune_id]["deviceActionResults"]] == ["enableLostMode"]
    assert emulator.state.lost_mode_bodies[ipad.intune_id] == {
        "message": "Please return this device to any school office.",
        "phoneNumber": "+1 555 0100 200",
        "footer": "Asset of PVSD",
    }
    for seed in (old_ipad, laptop):
        assert state[seed.intune_id]["lostModeState"] == "disabled"
        assert [a["actionName"] for a in state[seed.intune_id]["deviceActionResults"]] == ["remoteLock"]
    assert emulator.calls["POST $batch"] == 1

    again, _ = run_once(backend, desired)
    assert again == []
    assert emulator.calls["POST $batch"] == 1
    assert [a["actionName"] for a in state[laptop.intune_id]["deviceActionResults"]] == ["remoteLock"]


@pytest.mark.parametrize(("os", "device_type"), [("iPadOS", "iPad"), ("iOS", "iPhone"), ("iPadOS", None)])
def test_lost_mode_reaches_supervised_ipads_reporting_ipados_and_iphones(
    emulator: GraphEmulator,
    backend: IntuneBackend,
    district: District,
    tmp_path: Path,
    os: str,
    device_type: str | None,
) -> None:
    """iPads report operatingSystem "iPadOS" (iPhones "iOS"): both get Lost Mode, never a plain remote lock."""
    ipad = pick(district, "ios", supervised=True)
    record = emulator.state.devices[ipad.intune_id]
    record["operatingSystem"] = os
    if device_type is None:
        record.pop("deviceType", None)
    else:
        record["deviceType"] = device_type
    desired = policy_resources(tmp_path, inventory_with((ipad, "lost")), **{"lost.yaml": LOST_POLICY})
    _, results = run_once(backend, desired)
    assert [r.state for r in results] == ["succeeded"]
    assert [a["actionName"] for a in record["deviceActionResults"]] == ["enableLostMode"]
    assert emulator.state.lost_mode_bodies[ipad.intune_id]["footer"] == "Asset of PVSD"


def test_found_device_gets_lost_mode_disabled(
    emulator: GraphEmulator, backend: IntuneBackend, district: District, tmp_path: Path
) -> None:
    ipad = pick(district, "ios", supervised=True)
    emulator.state.devices[ipad.intune_id]["lostModeState"] = "enabled"
    desired = policy_resources(tmp_path, inventory_with((ipad, "found")), **{"lost.yaml": LOST_POLICY})
    changes, results = run_once(backend, desired)
    assert [(c.before, c.after) for c in changes] == [({"lost": True}, {"lost": False})]
    assert [r.state for r in results] == ["succeeded"]
    assert emulator.state.devices[ipad.intune_id]["lostModeState"] == "disabled"
    assert emulator.calls["POST managedDevices/disableLostMode"] == 1


def test_batch_inner_429_is_resent_only_for_that_item(
    emulator: GraphEmulator, backend: IntuneBackend, district: District, sleeps: Sleeps, tmp_path: Path
) -> None:
    laptops = [pick(district, "ios", supervised=False, skip=i) for i in range(3)]  # remote-locked iPads
    desired = policy_resources(tmp_path, inventory_with(*[(s, "lost") for s in laptops]), **{"lost.yaml": LOST_POLICY})
    emulator.faults.queue.append(Fault(429, retry_after=4, endpoint="POST managedDevices/remoteLock"))
    _, results = run_once(backend, desired)
    assert [r.state for r in results] == ["succeeded"] * 3
    assert sleeps == [4.0]
    assert emulator.calls["POST $batch"] == 2
    assert emulator.calls["POST managedDevices/remoteLock"] == 4  # 3 + the one throttled item again


def test_batch_inner_503_is_resent_for_a_lock_but_never_for_a_wipe(
    emulator: GraphEmulator, backend: IntuneBackend, district: District, sleeps: Sleeps, tmp_path: Path
) -> None:
    laptops = [pick(district, "ios", supervised=False, skip=i) for i in range(2)]  # remote-locked iPads
    desired = policy_resources(tmp_path, inventory_with(*[(s, "lost") for s in laptops]), **{"lost.yaml": LOST_POLICY})
    emulator.faults.queue.append(Fault(503, retry_after=2, endpoint="POST managedDevices/remoteLock"))
    _, results = run_once(backend, desired)
    assert [r.state for r in results] == ["succeeded"] * 2
    assert emulator.calls["POST managedDevices/remoteLock"] == 3  # 2 + the one that got a 503, once more


def test_429_with_retry_after_is_honoured_exactly_once(
    emulator: GraphEmulator, backend: IntuneBackend, district: District, sleeps: Sleeps, tmp_path: Path
) -> None:
    laptop = pick(district, "windows")
    desired = policy_resources(tmp_path, inventory_with((laptop, "lost")), **{"lost.yaml": LOST_POLICY})
    emulator.faults.queue.append(Fault(429, retry_after=7, endpoint="GET managedDevices"))
    observed = backend.observe(desired)
    assert [r.value for r in observed if r.id.type == "device_lock"] == [{"lost": False}]
    assert sleeps == [7.0]  # our policy waited Retry-After once; the SDK's RetryHandler did not retry too
    assert emulator.calls["GET managedDevices"] == 2


def test_throttling_without_retry_after_backs_off(
    emulator: GraphEmulator, backend: IntuneBackend, sleeps: Sleeps
) -> None:
    emulator.faults.queue.append(Fault(429, retry_after=None, endpoint="GET deviceConfigurations"))
    assert backend.observe([]) == []
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 60
    assert emulator.calls["GET deviceConfigurations"] == 2


def test_wipe_timeout_is_unknown_and_never_resent(emulator: GraphEmulator, district: District, sleeps: Sleeps) -> None:
    laptop = pick(district, "windows")
    backend = IntuneBackend(IntuneConfig(graph_endpoint=emulator.url), sleep=sleeps, timeout=0.3)
    try:
        change = autopilot_reset(laptop.device.serial, "2026-thanksgiving")
        backend.observe([])
        emulator.faults.queue.append(Fault(0, delay=1.0, endpoint="POST $batch"))
        sent: list[Change] = []
        results: list[ChangeResult] = []
        backend.apply([change], sent.append, results.append)
        assert [r.state for r in results] == ["unknown"]
        assert sent == [change]
        assert emulator.calls["POST $batch"] == 1
        assert sleeps == []
    finally:
        backend.close()


def test_wipe_with_an_inner_503_is_unknown_and_not_resent(
    emulator: GraphEmulator, backend: IntuneBackend, district: District
) -> None:
    """A 5xx proves nothing: the service may have wiped before answering (issue 18, item 1)."""
    laptop = pick(district, "windows")
    change = autopilot_reset(laptop.device.serial, "r503")
    backend.observe([])
    emulator.faults.queue.append(Fault(503, endpoint="POST managedDevices/wipe"))
    results: list[ChangeResult] = []
    backend.apply([change], lambda c: None, results.append)
    assert [r.state for r in results] == ["unknown"]
    assert "not re-sent" in results[0].detail
    assert emulator.calls["POST managedDevices/wipe"] == 1


def test_wipe_sends_autopilot_reset_body(emulator: GraphEmulator, backend: IntuneBackend, district: District) -> None:
    laptop = pick(district, "windows")
    change = autopilot_reset(laptop.device.serial, "r1")
    results: list[ChangeResult] = []
    backend.apply([change], lambda c: None, results.append)
    assert [r.state for r in results] == ["succeeded"]
    assert emulator.state.devices[laptop.intune_id]["lastWipe"] == {"keepEnrollmentData": True, "keepUserData": False}


# ---------------------------------------------------------------------------------------------- profiles


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


def test_profile_is_created_once_then_shows_no_drift(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path
) -> None:
    desired = policy_resources(tmp_path, **{"web.yaml": WEBFILTER})
    changes, results = run_once(backend, desired)
    assert sorted(str(c.id) for c in changes) == [
        "intune/config_profile/ios|K12 WebFilter elementary-filter",
        "intune/settings_policy/windows|K12 WebFilter elementary-filter",
    ]
    assert {r.state for r in results} == {"succeeded"}
    assert len(emulator.state.configs) == 1 and len(emulator.state.catalog.policies) == 1
    again, _ = run_once(backend, desired)
    assert again == []
    assert len(emulator.state.configs) == 1 and len(emulator.state.catalog.policies) == 1


def test_assignment_order_is_not_drift(emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path) -> None:
    desired = policy_resources(tmp_path, **{"web.yaml": WEBFILTER})
    run_once(backend, desired)
    for assignments in emulator.state.config_assignments.values():
        assignments.reverse()
    observed = {r.id: r for r in backend.observe(desired)}
    assert diff(CATALOG, desired, observed) == []


def test_changed_list_updates_the_profile_in_place(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path
) -> None:
    desired = policy_resources(tmp_path, **{"web.yaml": WEBFILTER})
    run_once(backend, desired)
    ios_id = next(c["id"] for c in emulator.state.configs.values() if "contentFilterSettings" in c)
    emulator.state.configs[ios_id]["contentFilterSettings"]["blockedUrls"].append("https://extra.example")
    changes, results = run_once(backend, desired)
    assert [(c.op, c.id.key) for c in changes] == [("update", "ios|K12 WebFilter elementary-filter")]
    assert "extra.example" in changes[0].before["blocked"]
    assert [r.state for r in results] == ["succeeded"] and len(emulator.state.configs) == 1
    assert emulator.calls["POST deviceConfigurations/assign"] == 1  # assignments unchanged: not re-sent


def test_unmanaged_duplicate_or_orphan_profiles(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path
) -> None:
    emulator.state.create_config(
        {"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "Contoso baseline"}
    )
    orphan = emulator.state.create_config(
        {"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "K12 WebFilter retired-filter"}
    )
    desired = policy_resources(tmp_path, **{"web.yaml": WEBFILTER})
    changes, results = run_once(backend, desired)
    assert {r.state for r in results} == {"succeeded"}
    deletes = [c for c in changes if c.op == "delete"]
    assert [c.id.key for c in deletes] == ["windows|K12 WebFilter retired-filter"]
    assert orphan["id"] not in emulator.state.configs
    assert any(c["displayName"] == "Contoso baseline" for c in emulator.state.configs.values())
    ios = next(
        c
        for c in emulator.state.configs.values()
        if c["displayName"] == "K12 WebFilter elementary-filter" and "contentFilterSettings" in c
    )
    emulator.state.create_config({**ios, "id": None})
    with pytest.raises(PlanError, match="2 ios profiles named 'K12 WebFilter elementary-filter'"):
        backend.observe(desired)


def test_unknown_group_is_an_error_naming_file_and_line(backend: IntuneBackend, tmp_path: Path) -> None:
    text = WEBFILTER.replace("All Student Devices", "All Studnet Devices")
    desired = policy_resources(tmp_path, **{"web.yaml": text})
    with pytest.raises(PlanError) as caught:
        backend.observe(desired)
    assert "policies/web.yaml:6: Intune group 'All Studnet Devices' not found" in str(caught.value)


def test_ambiguous_group_name_is_an_error(emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path) -> None:
    emulator.state.add_group("Elementary iPads")
    with pytest.raises(PlanError, match="'Elementary iPads' is ambiguous"):
        backend.observe(policy_resources(tmp_path, **{"web.yaml": WEBFILTER}))


# ---------------------------------------------------------------------------------------------- apps


def test_app_assignments_from_repository_policies_apply_and_settle(
    emulator: GraphEmulator, backend: IntuneBackend
) -> None:
    desired = [
        r for r in compile_intune(load_policies(REPO_POLICIES), Inventory("x", [])) if r.id.type == "app_assignment"
    ]
    changes, results = run_once(backend, desired)
    assert len(changes) == 4 and {r.state for r in results} == {"succeeded"}
    word = next(a for a in emulator.state.apps.values() if a["displayName"] == "Microsoft Word")
    assert [a["intent"] for a in emulator.state.app_assignments[word["id"]]] == ["required"]
    again, _ = run_once(backend, desired)
    assert again == []


def test_ambiguous_app_name_is_an_error(emulator: GraphEmulator, backend: IntuneBackend) -> None:
    emulator.state.add_app("Microsoft Word")
    desired = compile_intune(load_policies(REPO_POLICIES), Inventory("x", []))
    with pytest.raises(PlanError) as caught:
        backend.observe(desired)
    assert "Intune app name 'Microsoft Word' is ambiguous (2 apps" in str(caught.value)
    assert "apps.yaml:" in str(caught.value)


def test_unknown_app_is_an_error_naming_file_and_line(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path
) -> None:
    text = """\
        kind: AppPush
        name: lab-apps
        targets:
          intune_groups: [Jefferson Lab PCs]
        intune:
          - app: Minecraft Edu
        """
    with pytest.raises(PlanError, match=r"policies/apps.yaml:6: Intune app 'Minecraft Edu' not found"):
        backend.observe(policy_resources(tmp_path, **{"apps.yaml": text}))


def test_state_from_custom_seed_works_without_district(sleeps: Sleeps) -> None:
    state = GraphState.from_seed([], ["Only Group"], ["Only App"])
    server = GraphEmulator.start_local(state=state)
    backend = IntuneBackend(IntuneConfig(graph_endpoint=server.url), sleep=sleeps)
    try:
        resource = Resource(
            ResourceId("intune", "app_assignment", "Only App"),
            [{"group": "Only Group", "intent": "available"}],
            sources=("apps.yaml:3",),
        )
        _, results = run_once(backend, [resource])
        assert [r.state for r in results] == ["succeeded"]
    finally:
        backend.close()
        server.stop()
