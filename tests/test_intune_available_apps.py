"""`available` app assignments target users (issue 12 item 8).

Intune offers `available` apps to users in the Company Portal; assigned to a device group the intent does
nothing. The sample assigns Zoom as available to a user group, and the plan warns when an `available`
assignment's group holds devices (`GET /groups/{id}/members/microsoft.graph.device/$count`,
`ConsistencyLevel: eventual`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_intune_backend import policy_resources

from orchestrator.backends.intune.backend import IntuneBackend
from orchestrator.backends.intune.compiler import compile_intune
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.inventory.devices import load_inventory
from orchestrator.policy.loader import load_policies
from orchestrator.sandbox.district import District, generate
from orchestrator.sandbox.graph_emulator import GraphEmulator

ROOT = Path(__file__).resolve().parent.parent

ZOOM_TO = """\
    kind: AppPush
    name: staff-apps
    targets: {{intune_groups: [{group}]}}
    intune:
      - {{app: Zoom Workplace, intent: available}}
      - {{app: Microsoft Teams, intent: required}}
    """


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


def _group_id(emulator: GraphEmulator, name: str) -> str:
    return next(gid for gid, g in emulator.state.groups.items() if g["displayName"] == name)


def test_the_emulator_counts_device_members_only_with_consistency_level_eventual(emulator: GraphEmulator) -> None:
    devices, users = _group_id(emulator, "Staff Devices"), _group_id(emulator, "All Staff")
    with httpx.Client(base_url=emulator.url) as http:
        url = f"/v1.0/groups/{devices}/members/microsoft.graph.device/$count"
        refused = http.get(url)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "Request_UnsupportedQuery"
        counted = http.get(url, headers={"ConsistencyLevel": "eventual"})
        assert counted.headers["content-type"].startswith("text/plain")
        assert int(counted.text) == len(emulator.state.group_members[devices]) > 0
        user_url = f"/v1.0/groups/{users}/members/microsoft.graph.device/$count"
        assert http.get(user_url, headers={"ConsistencyLevel": "eventual"}).text == "0"
        users_url = f"/v1.0/groups/{users}/members/microsoft.graph.user/$count"
        assert int(http.get(users_url, headers={"ConsistencyLevel": "eventual"}).text) > 0


def test_available_to_a_device_group_is_warned_at_plan_time(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    desired = policy_resources(tmp_path, **{"apps.yaml": ZOOM_TO.format(group="Staff Devices")})
    with caplog.at_level(logging.WARNING):
        backend.observe(desired)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "'Zoom Workplace'" in warnings[0] and "'Staff Devices'" in warnings[0]
    assert "user groups only" in warnings[0] and "apps.yaml:" in warnings[0]
    assert emulator.calls["GET groups/members/$count"] == 1  # Teams is required: not counted


def test_available_to_a_user_group_is_not_warned(
    emulator: GraphEmulator, backend: IntuneBackend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    desired = policy_resources(tmp_path, **{"apps.yaml": ZOOM_TO.format(group="All Staff")})
    with caplog.at_level(logging.WARNING):
        backend.observe(desired)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_the_sample_district_offers_zoom_to_staff_users_not_devices(
    backend: IntuneBackend, caplog: pytest.LogCaptureFixture
) -> None:
    policies = load_policies(ROOT / "policies", display_root=ROOT)
    inventory = load_inventory(ROOT / "inventory" / "devices.csv", display="inventory/devices.csv")
    desired = [r for r in compile_intune(policies, inventory) if r.id.type == "app_assignment"]
    (zoom,) = [r for r in desired if r.id.key == "Zoom Workplace"]
    assert zoom.value == [{"group": "All Staff", "intent": "available"}]
    with caplog.at_level(logging.WARNING):
        backend.observe(desired)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
