"""Lost Windows devices (issue 12 item 2): never a remote lock; the Entra ID device object is disabled instead.

Intune's remote lock is not supported on Windows desktops (MicrosoftDocs/memdocs device-remote-lock.md).
`LostDevicePolicy.intune.windows: disable_device` PATCHes `/devices(deviceId='…')` `accountEnabled: false`
(re-enabled when found); `none` sends nothing and reports each device "not locked".
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_intune_backend import inventory_with, pick, policy_resources, run_once

from orchestrator.backends.intune.backend import IntuneBackend
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.registry import CATALOG
from orchestrator.engine.diff import diff
from orchestrator.sandbox.district import District, generate
from orchestrator.sandbox.graph_directory import entra_device
from orchestrator.sandbox.graph_emulator import GraphEmulator

POLICY = """\
    kind: LostDevicePolicy
    name: lost-devices
    message: "Please return this device to any school office."
    intune:
      action: remote_lock
      lost_mode: true
{windows}
    """


def lost_policy(windows: str | None) -> str:
    return POLICY.format(windows=f"      windows: {windows}" if windows else "")


@pytest.fixture()
def district() -> District:
    return generate(devices=200)


@pytest.fixture()
def emulator(district: District) -> Iterator[GraphEmulator]:
    server = GraphEmulator.start_local(district)
    yield server
    server.stop()


@pytest.fixture()
def backend(emulator: GraphEmulator) -> Iterator[IntuneBackend]:
    instance = IntuneBackend(IntuneConfig(graph_endpoint=emulator.url), sleep=lambda _: None)
    yield instance
    instance.close()


def entra(emulator: GraphEmulator, serial_id: str) -> dict:
    return entra_device(emulator.state.devices[serial_id], emulator.state)


def test_the_emulator_refuses_remote_lock_on_windows_and_serves_entra_devices(
    emulator: GraphEmulator, district: District
) -> None:
    laptop, ipad = pick(district, "windows"), pick(district, "ios", supervised=False)
    base = "/v1.0/deviceManagement/managedDevices"
    with httpx.Client(base_url=emulator.url) as http:
        refused = http.post(f"{base}/{laptop.intune_id}/remoteLock")
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "BadRequest"
        assert emulator.state.devices[laptop.intune_id]["deviceActionResults"] == []
        assert http.post(f"{base}/{ipad.intune_id}/remoteLock").status_code == 204
        device_id = emulator.state.devices[laptop.intune_id]["azureADDeviceId"]
        path = f"/v1.0/devices(deviceId='{device_id}')"
        assert http.get(path, params={"$select": "id,accountEnabled"}).json()["accountEnabled"] is True
        assert http.patch(path, json={"accountEnabled": False}).status_code == 204
        assert http.get(f"/v1.0/devices/{entra(emulator, laptop.intune_id)['id']}").json()["accountEnabled"] is False
        assert http.patch(path, json={"deviceId": "x"}).status_code == 400
        ipad_path = f"/v1.0/devices(deviceId='{emulator.state.devices[ipad.intune_id]['azureADDeviceId']}')"
        assert http.patch(ipad_path, json={"accountEnabled": False}).status_code == 403  # app-only: Windows only


def test_disable_device_disables_the_entra_object_then_found_re_enables_it(
    emulator: GraphEmulator, backend: IntuneBackend, district: District, tmp_path: Path
) -> None:
    laptop = pick(district, "windows")
    policy = {"lost.yaml": lost_policy("disable_device")}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    desired = policy_resources(tmp_path / "a", inventory_with((laptop, "lost")), **policy)
    changes, results = run_once(backend, desired)
    assert [(c.before, c.after) for c in changes] == [({"lost": False}, {"lost": True})]
    assert [r.state for r in results] == ["succeeded"]
    assert "Entra ID device disabled" in results[0].detail and "not supported on Windows" in results[0].detail
    assert entra(emulator, laptop.intune_id)["accountEnabled"] is False
    assert emulator.calls["POST managedDevices/remoteLock"] == 0
    assert emulator.state.devices[laptop.intune_id]["deviceActionResults"] == []
    again, _ = run_once(backend, desired)
    assert again == [], "a disabled Entra device is observed as locked"

    found = policy_resources(tmp_path / "b", inventory_with((laptop, "found")), **policy)
    changes, results = run_once(backend, found)
    assert [(c.before, c.after) for c in changes] == [({"lost": True}, {"lost": False})]
    assert [r.state for r in results] == ["succeeded"] and "re-enabled" in results[0].detail
    assert entra(emulator, laptop.intune_id)["accountEnabled"] is True


@pytest.mark.parametrize("windows", [None, "none"])
def test_none_sends_nothing_and_reports_each_windows_device_not_locked(
    emulator: GraphEmulator, backend: IntuneBackend, district: District, tmp_path: Path, windows: str | None
) -> None:
    laptops = [pick(district, "windows", skip=i) for i in range(2)]
    ipad = pick(district, "ios", supervised=True)
    inventory = inventory_with(*[(s, "lost") for s in laptops], (ipad, "lost"))
    desired = policy_resources(tmp_path, inventory, **{"lost.yaml": lost_policy(windows)})
    changes = diff(CATALOG, desired, {r.id: r for r in backend.observe(desired)})
    sent, results = [], []
    backend.apply(changes, sent.append, results.append)
    assert [c.id.key for c in sent] == [ipad.device.serialNumber], "nothing is sent for a Windows device"
    by_key = {r.change_key: r for r in results}
    states = {c.id.key: (by_key[c.key].state, by_key[c.key].detail) for c in changes}
    for laptop in laptops:
        state, detail = states[laptop.device.serialNumber]
        assert state == "skipped" and detail.startswith("not locked: not supported on Windows")
        assert entra(emulator, laptop.intune_id)["accountEnabled"] is True
    assert states[ipad.device.serialNumber][0] == "succeeded"
    assert emulator.calls["POST managedDevices/remoteLock"] == 0
    assert emulator.calls["PATCH devices"] == 0


def test_found_windows_with_none_is_left_alone(backend: IntuneBackend, district: District, tmp_path: Path) -> None:
    laptop = pick(district, "windows")
    desired = policy_resources(tmp_path, inventory_with((laptop, "found")), **{"lost.yaml": lost_policy("none")})
    assert [r for r in desired if r.id.type == "device_lock"] == []


def test_the_sample_policy_disables_windows_devices() -> None:
    text = (Path(__file__).resolve().parent.parent / "policies" / "lost-devices.yaml").read_text()
    assert "windows: disable_device" in textwrap.dedent(text)
