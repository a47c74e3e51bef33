"""MAC quarantine on a real nftables router in a network namespace, reached over SSH (`sshd -i`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from network_fixtures import NamespacedRouter, namespaced_router, namespaces_unavailable, write_inventory

from orchestrator.backends.network.backend import NetworkBackend
from orchestrator.backends.network.compiler import compile_network
from orchestrator.backends.network.config import NetworkConfig
from orchestrator.backends.registry import CATALOG
from orchestrator.core.errors import BackendError
from orchestrator.core.resources import Change, ChangeResult, ResourceId
from orchestrator.engine.diff import diff
from orchestrator.inventory.devices import parse_inventory
from orchestrator.policy.loader import load_policies

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.services

LOST_POLICY = """\
kind: LostDevicePolicy
name: lost-devices
message: Please return this device to any school office.
network:
  quarantine: true
  sites:
    - test-core
"""


@pytest.fixture
def router(tmp_path: Path) -> Iterator[NamespacedRouter]:
    reason = namespaces_unavailable()
    if reason:
        pytest.skip(reason)
    with namespaced_router(tmp_path) as rtr:
        yield rtr


def _devices(mac: str, status: str) -> str:
    return (
        "serialNumber,platform,macAddress,school,inventoryStatus\n"
        f"CB0000001,chromeos,{mac},lincoln-elementary,{status}\n"
        "CB0000002,chromeos,02:00:00:aa:bb:cc,lincoln-elementary,active\n"
    )


def _plan(backend: NetworkBackend, policies: Path, devices_csv: str) -> list[Change]:
    desired = compile_network(load_policies(policies), parse_inventory("devices.csv", devices_csv))
    return diff(CATALOG, desired, {r.id: r for r in backend.observe(desired)})


def _apply(backend: NetworkBackend, changes: list[Change]) -> list[ChangeResult]:
    results: list[ChangeResult] = []
    backend.apply(changes, lambda _change: None, results.append)
    return results


def test_quarantined_mac_cannot_reach_router_until_released(tmp_path, router):
    inventory = write_inventory(
        tmp_path / "inventory.yaml",
        {"test-core": {"core-router": router.host_vars}},
        {"k12_quarantine_routers": ["core-router"]},
    )
    backend = NetworkBackend(
        NetworkConfig(inventory=str(inventory), playbooks=str(REPO / "playbooks"), timeout_seconds=60),
        base_dir=tmp_path,
        artifacts_dir=tmp_path / "art",
    )
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "lost.yaml").write_text(LOST_POLICY)
    assert router.client_can_ping_router()

    changes = _plan(backend, policies, _devices(router.client_mac, "lost"))
    assert [str(c.id) for c in changes] == ["network/mac_quarantine/test-core"]
    assert changes[0].after == [router.client_mac]
    assert changes[0].meta["serials"] == {router.client_mac: "CB0000001"}
    assert router.client_can_ping_router()  # check mode touched nothing

    [result] = _apply(backend, changes)
    assert result.state == "succeeded", result.detail
    assert result.response["changed_hosts"] == ["core-router"]
    assert router.client_mac in router.nft_ruleset()
    assert not router.client_can_ping_router()
    assert _plan(backend, policies, _devices(router.client_mac, "lost")) == []

    router.flush_quarantine()  # e.g. the router restarted: the file is in place but the table is gone
    assert router.client_can_ping_router()
    changes = _plan(backend, policies, _devices(router.client_mac, "lost"))
    assert len(changes) == 1 and "live quarantine table differs" in changes[0].before["hosts"]["core-router"]
    assert [r.state for r in _apply(backend, changes)] == ["succeeded"]
    assert not router.client_can_ping_router()

    changes = _plan(backend, policies, _devices(router.client_mac, "found"))
    assert len(changes) == 1 and changes[0].after == []
    [result] = _apply(backend, changes)
    assert result.state == "succeeded", result.detail
    assert router.client_can_ping_router()
    assert "k12_quarantine" in router.nft_ruleset() and router.client_mac not in router.nft_ruleset()
    print("site job seconds:", [(("check" if r.check else "apply"), round(r.seconds, 1)) for r in backend.runs])


def test_unreachable_router_fails_the_change_and_shows_in_observe(tmp_path):
    host = {
        "ansible_connection": "ssh",
        "ansible_host": "127.0.0.1",
        "ansible_port": 1,
        "ansible_ssh_common_args": "-o ConnectTimeout=2 -o StrictHostKeyChecking=no",
        "k12_nft_file": "/x",
    }
    inventory = write_inventory(
        tmp_path / "inventory.yaml", {"test-core": {"gone-router": host}}, {"k12_quarantine_routers": ["gone-router"]}
    )
    backend = NetworkBackend(
        NetworkConfig(inventory=str(inventory), playbooks=str(REPO / "playbooks"), timeout_seconds=60),
        base_dir=tmp_path,
        artifacts_dir=tmp_path / "art",
    )
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "lost.yaml").write_text(LOST_POLICY)
    # a check run that cannot reach the router is an error for the site, never a pending change (issue 10)
    with pytest.raises(BackendError, match=r"(?s)test-core.*gone-router: unreachable"):
        _plan(backend, policies, _devices("02:00:00:00:00:01", "stolen"))
    change = Change(ResourceId("network", "mac_quarantine", "test-core"), "update", [], ["02:00:00:00:00:01"])
    [result] = _apply(backend, [change])
    assert result.state == "failed" and "unreachable" in result.detail
