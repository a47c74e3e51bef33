"""The nightly lockdown end to end: `orchestrator lockdown` in a subprocess against the Google and Graph emulators
(in-process, dynamic ports) and, for the services test, a real nftables router in a network namespace.

Every assertion reads the emulators' state or per-endpoint call counts, the exit code and the written report.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lockdown_tenant import Tenant, outcomes

from orchestrator.inventory.devices import Device
from orchestrator.sandbox.httpbase import Fault


def test_lost_devices_are_locked_on_every_console_and_a_second_run_changes_nothing(tenant: Tenant) -> None:
    chromebooks = tenant.serials("chromeos", 3)
    [laptop] = tenant.serials("windows", 1)
    [ipad] = tenant.serials("ios", 1, supervised=True)
    tenant.mark("lost", *chromebooks, laptop)
    tenant.mark("stolen", ipad)

    first = tenant.lockdown()
    assert first.returncode == 0, first.stdout + first.stderr
    assert [tenant.chrome_status(s) for s in chromebooks] == ["DISABLED"] * 3
    assert tenant.remote_locked(laptop)
    assert tenant.intune_record(ipad)["lostModeState"] == "enabled"
    shown = tenant.graph.state.lost_mode_bodies[tenant.intune_record(ipad)["id"]]
    assert "Prairie Valley" in shown["message"] and shown["phoneNumber"] == "+1 555 0100 200"
    assert tenant.google.calls["chromeosdevices.batchChangeStatus"] == 1  # three ids, one call
    # the laptop's Entra ID object read in one $batch; its disable and the iPad's enableLostMode in one more
    assert tenant.graph.calls["POST $batch"] == 2
    assert tenant.graph.calls["POST managedDevices/remoteLock"] == 0  # never on Windows
    markdown, report = tenant.latest_report()
    assert outcomes(report)["locked"] == {
        *((s, "google") for s in chromebooks),
        (laptop, "intune"),
        (ipad, "intune"),
    }
    assert report["totals"] == {"locked": 5}
    school = tenant.device(laptop).school
    assert f"| {school} |" in markdown
    everything = markdown + json.dumps(report) + first.stdout + first.stderr
    assert "@district.example" not in everything, "a student email leaked into the report or the output"
    assert tenant.device(laptop).assignedStudent.endswith("@district.example")  # there was one to leak

    tenant.reset_counts()
    second = tenant.lockdown()
    assert second.returncode == 0, second.stdout + second.stderr
    assert tenant.state_changing_calls() == {}
    assert tenant.google.calls["chromeosdevices.list"] >= 1 and tenant.graph.calls["GET managedDevices"] >= 1
    assert tenant.latest_report()[1]["totals"] == {}


def test_found_devices_are_reenabled_and_lost_mode_is_turned_off(tenant: Tenant) -> None:
    [chromebook] = tenant.serials("chromeos", 1)
    [ipad] = tenant.serials("ios", 1, supervised=True)
    [laptop] = tenant.serials("windows", 1)
    tenant.mark("lost", chromebook, ipad, laptop)
    assert tenant.lockdown().returncode == 0
    assert tenant.chrome_status(chromebook) == "DISABLED"
    assert tenant.intune_record(ipad)["lostModeState"] == "enabled"

    tenant.mark("found", chromebook, ipad, laptop)
    tenant.reset_counts()
    found = tenant.lockdown()
    assert found.returncode == 0, found.stdout + found.stderr
    assert tenant.chrome_status(chromebook) == "ACTIVE"
    assert tenant.intune_record(ipad)["lostModeState"] == "disabled"
    assert tenant.graph.calls["POST managedDevices/disableLostMode"] == 1
    # The laptop's Entra ID device object, disabled while lost, is enabled again (no remote lock on Windows).
    assert tenant.graph.calls["POST managedDevices/remoteLock"] == 0
    assert tenant.graph.calls["PATCH devices"] == 1 and not tenant.remote_locked(laptop)
    report = tenant.latest_report()[1]
    assert outcomes(report)["released"] == {(chromebook, "google"), (ipad, "intune"), (laptop, "intune")}

    tenant.reset_counts()
    assert tenant.lockdown().returncode == 0
    assert tenant.state_changing_calls() == {}


def test_serial_that_prefix_matches_other_devices_locks_exactly_one(tenant: Tenant) -> None:
    # CB000001 is a substring of CB0000010..CB0000019: the Directory `id:` query is a partial match.
    template = next(d for d in tenant.google.state.devices.values() if d["serialNumber"] == "CB0000011")
    tenant.google.state.devices["f00dfeed00000001"] = {
        **template,
        "deviceId": "f00dfeed00000001",
        "serialNumber": "CB000001",
        "annotatedAssetId": "PV-OLD-1",
    }
    tenant.google.state.order.append("f00dfeed00000001")
    tenant.google.state.version += 1
    partial = tenant.google.state.list_devices(None, False, "id:CB000001")
    assert len(partial) > 1, "the trap must be real: a partial query returns several devices"
    tenant.devices.append(
        Device(serialNumber="CB000001", platform="chromeos", inventoryStatus="lost", school="jefferson-high")
    )
    tenant.write()

    run = tenant.lockdown()
    assert run.returncode == 0, run.stdout + run.stderr
    disabled = sorted(d["serialNumber"] for d in tenant.google.state.devices.values() if d["status"] == "DISABLED")
    assert disabled == ["CB000001"]
    assert sum(tenant.status_calls.values()) == 1 and tenant.status_calls["f00dfeed00000001"] == 1


def test_failure_part_way_is_reported_and_the_next_run_finishes_only_the_rest(tenant: Tenant) -> None:
    chromebooks = tenant.serials("chromeos", 120)  # three batchChangeStatus calls: 50, 50, 20
    laptops = tenant.serials("windows", 3)
    tenant.mark("lost", *chromebooks, *laptops)
    # The first batchChangeStatus call fails every attempt (HTTP 500, Retry-After keeps it quick) ...
    for _ in range(6):
        tenant.google.faults.queue.append(Fault(500, retry_after=0.01, endpoint="chromeosdevices.batchChangeStatus"))
    # ... one device in a later batch is refused on its own, and one Windows Entra disable is refused inside
    # $batch (a 403 is final; an inner 5xx on a lock would be re-sent).
    by_serial = {d["serialNumber"]: d["deviceId"] for d in tenant.google.state.devices.values()}
    refused = chromebooks[75]
    tenant.google.state.device_faults[by_serial[refused]] = [{"code": 3, "message": "Invalid device state."}]
    tenant.graph.faults.queue.append(Fault(403, endpoint="PATCH devices"))

    first = tenant.lockdown()
    assert first.returncode != 0
    failed_batch = set(chromebooks[:50])
    _, report = tenant.latest_report()
    failed = {serial for serial, _ in outcomes(report)["failed"]}
    locked_laptops = {s for s in laptops if tenant.remote_locked(s)}
    assert failed == failed_batch | {refused} | (set(laptops) - locked_laptops)
    assert len(locked_laptops) == 2, "exactly one Entra disable inside the $batch failed"
    assert all(tenant.chrome_status(s) == "ACTIVE" for s in failed_batch | {refused})
    done = [s for s in chromebooks if s not in failed_batch | {refused}]
    assert all(tenant.chrome_status(s) == "DISABLED" for s in done)
    markdown = tenant.latest_report()[0]
    assert "## Needs attention" in markdown and refused in markdown

    tenant.reset_counts()
    second = tenant.lockdown()
    assert second.returncode == 0, second.stdout + second.stderr
    assert all(tenant.chrome_status(s) == "DISABLED" for s in chromebooks)
    assert all(tenant.remote_locked(s) for s in laptops)
    retried = {d for d, n in tenant.status_calls.items() if n}
    assert retried == {by_serial[s] for s in failed_batch | {refused}}, "a device that succeeded was sent again"
    assert tenant.google.calls["chromeosdevices.batchChangeStatus"] == 2  # 51 ids: 50 + 1
    assert tenant.graph.calls["PATCH devices"] == 1
    assert {serial for serial, _ in outcomes(tenant.latest_report()[1])["locked"]} == (
        failed_batch | {refused} | (set(laptops) - locked_laptops)
    )


def test_cap_holds_dry_run_changes_nothing_and_missing_devices_are_not_found(tenant: Tenant) -> None:
    tenant.write(cap=4)
    chromebooks = tenant.serials("chromeos", 4)
    laptops = tenant.serials("windows", 2)
    ghost = Device(serialNumber="CB9999999", platform="chromeos", inventoryStatus="lost", school="roosevelt-middle")
    ghost_pc = Device(serialNumber="PF9999999", platform="windows", inventoryStatus="stolen", school="jefferson-high")
    tenant.devices += [ghost, ghost_pc]
    tenant.mark("lost", *chromebooks, *laptops)
    inventory_order = [d.serialNumber for d in tenant.devices if d.serialNumber in {*chromebooks, *laptops}]

    dry = tenant.lockdown("--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert tenant.state_changing_calls() == {}
    assert all(tenant.chrome_status(s) == "ACTIVE" for s in chromebooks)
    assert not any(tenant.remote_locked(s) for s in laptops)
    _, report = tenant.latest_report()
    assert {s for s, _ in outcomes(report)["planned"]} == set(inventory_order[:4])
    assert {s for s, _ in outcomes(report)["held"]} == set(inventory_order[4:])
    assert outcomes(report)["not found"] == {("CB9999999", "google"), ("PF9999999", "intune")}

    run = tenant.lockdown()
    assert run.returncode == 0, run.stdout + run.stderr
    changed = {s for s in chromebooks if tenant.chrome_status(s) == "DISABLED"} | {
        s for s in laptops if tenant.remote_locked(s)
    }
    assert changed == set(inventory_order[:4])
    _, report = tenant.latest_report()
    assert {s for s, _ in outcomes(report)["held"]} == set(inventory_order[4:])
    assert outcomes(report)["not found"] == {("CB9999999", "google"), ("PF9999999", "intune")}
    assert not any(d["serialNumber"] == "CB9999999" for d in tenant.google.state.devices.values())

    tenant.reset_counts()
    assert tenant.lockdown().returncode == 0  # the next night takes the held ones
    assert all(tenant.chrome_status(s) == "DISABLED" for s in chromebooks)
    assert all(tenant.remote_locked(s) for s in laptops)
    assert len({d for d, n in tenant.status_calls.items() if n}) == len(set(chromebooks) - set(inventory_order[:4]))


# -- services: a real nftables router in a network namespace -----------------------------------------------


@pytest.fixture
def router_tenant(tenant: Tenant) -> Iterator[tuple[Tenant, object]]:
    sys.path.insert(0, str(Path(__file__).parent))
    from network_fixtures import namespaced_router, namespaces_unavailable, write_inventory

    reason = namespaces_unavailable()
    if reason:
        pytest.skip(reason)
    with namespaced_router(tenant.root) as router:
        tenant.network_inventory = write_inventory(
            tenant.root / "network.yaml",
            {"test-core": {"core-router": router.host_vars}},
            {"k12_quarantine_routers": ["core-router"]},
        )
        tenant.write()
        yield tenant, router


@pytest.mark.services
def test_device_lost_on_a_console_and_the_network_is_locked_quarantined_and_released(router_tenant) -> None:
    tenant, router = router_tenant
    [chromebook] = tenant.serials("chromeos", 1)
    [laptop] = tenant.serials("windows", 1)
    tenant.device(chromebook).macAddress = router.client_mac  # the same device, known to Google and the LAN
    tenant.mark("lost", chromebook, laptop)
    assert router.client_can_ping_router()

    first = tenant.lockdown()
    assert first.returncode == 0, first.stdout + first.stderr
    assert tenant.chrome_status(chromebook) == "DISABLED"
    assert tenant.remote_locked(laptop)
    assert not router.client_can_ping_router()
    ruleset = router.nft_ruleset()
    assert router.client_mac in ruleset and tenant.device(laptop).macAddress in ruleset
    report = tenant.latest_report()[1]
    assert (chromebook, "network") in outcomes(report)["quarantine"]
    assert (laptop, "network") in outcomes(report)["quarantine"]

    tenant.reset_counts()
    second = tenant.lockdown()
    assert second.returncode == 0, second.stdout + second.stderr
    assert tenant.state_changing_calls() == {}
    assert tenant.latest_report()[1]["totals"] == {}  # the router's check run found nothing to change
    assert router.nft_ruleset() == ruleset

    tenant.mark("found", chromebook)
    found = tenant.lockdown()
    assert found.returncode == 0, found.stdout + found.stderr
    assert tenant.chrome_status(chromebook) == "ACTIVE"
    assert router.client_can_ping_router()
    assert router.client_mac not in router.nft_ruleset()
    assert tenant.device(laptop).macAddress in router.nft_ruleset()
    released = outcomes(tenant.latest_report()[1])["released"]
    assert released == {(chromebook, "google"), (chromebook, "network")}

    # Lost a second time (issue 10 item 1): locked and quarantined again, never "done by an earlier run".
    tenant.mark("lost", chromebook)
    again = tenant.lockdown()
    assert again.returncode == 0, again.stdout + again.stderr
    assert tenant.chrome_status(chromebook) == "DISABLED"
    assert router.client_mac in router.nft_ruleset() and not router.client_can_ping_router()
    assert outcomes(tenant.latest_report()[1])["quarantine"] == {(chromebook, "network")}


@pytest.mark.services
def test_cap_with_quarantine_progresses_night_by_night_without_releasing_earlier_devices(router_tenant) -> None:
    tenant, router = router_tenant
    tenant.write(cap=1)
    first_lost, second_lost = tenant.serials("chromeos", 2)
    tenant.device(first_lost).macAddress = router.client_mac
    tenant.mark("lost", first_lost, second_lost)
    second_mac = tenant.device(second_lost).macAddress

    night1 = tenant.lockdown()
    assert night1.returncode == 0, night1.stdout + night1.stderr
    assert [tenant.chrome_status(first_lost), tenant.chrome_status(second_lost)] == ["DISABLED", "ACTIVE"]
    assert not router.client_can_ping_router() and second_mac not in router.nft_ruleset()
    assert {s for s, _ in outcomes(tenant.latest_report()[1])["held"]} == {second_lost}

    night2 = tenant.lockdown()
    assert night2.returncode == 0, night2.stdout + night2.stderr
    assert tenant.chrome_status(second_lost) == "DISABLED"
    assert second_mac in router.nft_ruleset()
    assert not router.client_can_ping_router(), "the cap released a device quarantined the night before"
    assert outcomes(tenant.latest_report()[1])["locked"] == {(second_lost, "google")}
    assert "held" not in outcomes(tenant.latest_report()[1])
