"""The nightly lockdown reads only what it needs (issue 14 item 1).

The real `run_lockdown` job against the Google and Graph emulators in a 4,000-device district (2,800
Chromebooks = 10 list pages, 1,200 Intune devices = 2 pages): a quiet night reads the lost devices one by one
(Chromebooks by the inventory's deviceId, Intune devices by serial in one `$batch`), a busy night lists each
fleet once, and no run reads a fleet twice (the plan's observation is passed to apply). An inventory whose
deviceId the console does not know sends the read to the listing, which still finds the device by serial.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from lockdown_tenant import Tenant

from orchestrator import Session, run_lockdown
from orchestrator.inventory.devices import Device
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.graph_state import GraphState


@pytest.fixture(scope="module")
def district():
    return generate(devices=4000, seed=11)


@pytest.fixture
def big(tmp_path: Path, district) -> Iterator[Tenant]:
    google = GoogleEmulator(district, seed=11).start()
    graph = GraphEmulator.start_local(state=GraphState.from_district(district))
    devices = [Device(**{**s.device.__dict__}) for s in district.devices]
    tenant = Tenant(root=tmp_path, district=district, google=google, graph=graph, devices=devices)
    tenant.write()
    try:
        yield tenant
    finally:
        google.stop()
        graph.stop()


def night(tenant: Tenant):
    tenant.reset_counts()
    with Session.open(str(tenant.config)) as session:
        return run_lockdown(session)


def list_pages(tenant: Tenant, platform: str, page: int) -> int:
    return math.ceil(sum(1 for s in tenant.district.devices if s.device.platform == platform) / page)


def test_a_quiet_night_reads_the_lost_devices_by_id_and_sends_at_most_15_requests(big: Tenant) -> None:
    chromebooks = big.serials("chromeos", 6)
    laptop, ipad = big.serials("windows", 1), big.serials("ios", 2, supervised=True)
    big.mark("lost", *chromebooks, *laptop, *ipad)

    outcome = night(big)

    assert outcome.summary.totals == {"locked": 9}
    assert [big.chrome_status(s) for s in chromebooks] == ["DISABLED"] * 6
    assert big.google.calls["chromeosdevices.list"] == 0
    assert big.google.calls["chromeosdevices.get"] == 6  # one per lost Chromebook, by the inventory's deviceId
    assert big.google.calls["chromeosdevices.batchChangeStatus"] == 1
    assert big.graph.calls["POST $batch"] == 3  # devices by serial (3), the laptop's Entra object, the writes
    assert big.graph.calls["GET managedDevices"] == 3  # the $batch's inner reads, never a page of the list
    assert not big.graph.calls["GET deviceConfigurations"]  # a lockdown reads no configuration
    outer = sum(big.google.calls.values()) + sum(
        v for k, v in big.graph.calls.items() if k in ("POST $batch", "GET devices", "GET groups")
    )
    assert outer <= 15

    second = night(big)
    assert second.plan.changes == [] and big.state_changing_calls() == {}
    assert big.google.calls["chromeosdevices.list"] == 0


def test_a_busy_night_lists_each_fleet_once(big: Tenant) -> None:
    pages = list_pages(big, "chromeos", 300)
    chromebooks = big.serials("chromeos", pages + 5)  # more lost than list pages: listing is cheaper
    intune = big.serials("windows", 30) + big.serials("ios", 15, supervised=True)  # 3 $batch reads > 2 pages
    big.mark("lost", *chromebooks, *intune)

    outcome = night(big)

    assert outcome.summary.totals == {"locked": len(chromebooks) + len(intune)}
    assert big.google.calls["chromeosdevices.list"] == pages  # the plan's pass only: apply reads no device
    assert big.google.calls["chromeosdevices.get"] == 0
    assert big.google.calls["chromeosdevices.batchChangeStatus"] == math.ceil(len(chromebooks) / 50)
    intune_pages = math.ceil(sum(1 for s in big.district.devices if s.device.platform != "chromeos") / 1000)
    assert big.graph.calls["GET managedDevices"] == intune_pages
    # the writes, and the 30 laptops' Entra ID objects read 20 to a $batch; no device read by serial
    assert big.graph.calls["POST $batch"] == math.ceil(len(intune) / 20) + math.ceil(30 / 20)


def test_an_inventory_deviceid_the_console_does_not_know_falls_back_to_the_listing(big: Tenant) -> None:
    chromebooks = big.serials("chromeos", 2)
    big.mark("lost", *chromebooks)
    big.device(chromebooks[0]).deviceId = "0000stale0000"  # re-enrolled since the last inventory sync
    big.mark("lost", *chromebooks)

    outcome = night(big)

    assert outcome.summary.totals == {"locked": 2}
    assert [big.chrome_status(s) for s in chromebooks] == ["DISABLED"] * 2
    assert big.google.calls["chromeosdevices.list"] == list_pages(big, "chromeos", 300)


def test_windows_none_is_reported_not_locked_and_the_night_does_not_fail(big: Tenant) -> None:
    """LostDevicePolicy intune.windows: none — nothing is sent to a lost Windows laptop (no remote lock there);
    the report says so per device, and the run is not a failure (issue 14 item 5)."""
    policy = big.root / "policies" / "lost-devices.yaml"
    policy.write_text(policy.read_text().replace("windows: disable_device", "windows: none"))
    [laptop] = big.serials("windows", 1)
    [chromebook] = big.serials("chromeos", 1)
    big.mark("lost", laptop, chromebook)

    outcome = night(big)

    assert outcome.ok and not outcome.summary.failed
    assert outcome.summary.totals == {"locked": 1, "not locked": 1}
    entry = next(e for e in outcome.summary.devices if e["serial"] == laptop)
    assert entry["outcome"] == "not locked"
    assert entry["actions"][0]["said"].startswith("not locked: not supported on Windows")
    assert big.graph.calls["PATCH devices"] == 0 and big.graph.calls["POST managedDevices/remoteLock"] == 0
