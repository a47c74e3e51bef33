"""The lockdown test tenant: a temporary district repository wired to the Google and Graph emulators.

Shared by the lockdown, resume and caps tests (the `tenant` fixture is registered in conftest.py).
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orchestrator.inventory.devices import Device, write_inventory_csv
from orchestrator.sandbox.district import District, generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.graph_state import GraphState
from orchestrator.sandbox.lost_policy import lost_device_policy

REPO = Path(__file__).resolve().parent.parent
GOOGLE_WRITES = ("chromeosdevices.batchChangeStatus", "chromeosdevices.moveDevicesToOu", "chromeosdevices.issueCommand")
GRAPH_WRITES = (  # the inner requests that change a device ($batch itself also carries reads)
    "POST managedDevices/remoteLock",
    "POST managedDevices/enableLostMode",
    "POST managedDevices/disableLostMode",
    "PATCH devices",
)


@dataclass
class Tenant:
    """A temporary district repository wired to running emulators."""

    root: Path
    district: District
    google: GoogleEmulator
    graph: GraphEmulator
    devices: list[Device]
    network_inventory: Path | None = None
    status_calls: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def config(self) -> Path:
        return self.root / "orchestrator.yaml"

    def write(self, cap: int = 1000) -> None:
        (self.root / "inventory").mkdir(exist_ok=True)
        (self.root / "policies").mkdir(exist_ok=True)
        (self.root / "inventory" / "devices.csv").write_text(write_inventory_csv(self.devices))
        policy = lost_device_policy(
            cap,
            owner="Prairie Valley School District",
            network_site="test-core",
            quarantine=self.network_inventory is not None,
            undo_when_found=True,
        )
        (self.root / "policies" / "lost-devices.yaml").write_text(policy)
        config = (
            f"journal: {self.root / 'journal.db'}\n"
            "reports: reports\n"
            f"google:\n  directory_endpoint: {self.google.url}\n  policy_endpoint: {self.google.url}\n"
            f"intune:\n  graph_endpoint: {self.graph.url}\n"
        )
        if self.network_inventory:
            config += (
                f"network:\n  inventory: {self.network_inventory}\n  playbooks: {REPO / 'playbooks'}\n"
                "  timeout_seconds: 120\n"
            )
        self.config.write_text(config)

    def device(self, serial: str) -> Device:
        return next(d for d in self.devices if d.serialNumber == serial)

    def mark(self, status: str, *serials: str) -> None:
        for serial in serials:
            self.device(serial).inventoryStatus = status
        (self.root / "inventory" / "devices.csv").write_text(write_inventory_csv(self.devices))

    def serials(self, platform: str, count: int, *, supervised: bool | None = None, skip: int = 0) -> list[str]:
        chosen = [
            s.device.serialNumber
            for s in self.district.devices
            if s.device.platform == platform and (supervised is None or s.supervised == supervised)
        ]
        return chosen[skip : skip + count]

    def lockdown(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", "--config", str(self.config), "lockdown", *args],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=self.root,
        )

    def chrome_status(self, serial: str) -> str:
        return next(d["status"] for d in self.google.state.devices.values() if d["serialNumber"] == serial)

    def intune_record(self, serial: str) -> dict:
        return next(d for d in self.graph.state.devices.values() if d["serialNumber"] == serial)

    def remote_locked(self, serial: str) -> bool:
        """Locked the way Intune can: a remote lock on iOS/iPadOS; on Windows, where remote lock is not supported,
        the Entra ID device object disabled (LostDevicePolicy intune.windows: disable_device)."""
        record = self.intune_record(serial)
        if record["operatingSystem"] == "Windows":
            return record["azureADDeviceId"] in self.graph.state.entra_disabled
        return any(r["actionName"] == "remoteLock" for r in record["deviceActionResults"])

    def state_changing_calls(self) -> dict[str, int]:
        calls = {k: self.google.calls[k] for k in GOOGLE_WRITES} | {k: self.graph.calls[k] for k in GRAPH_WRITES}
        return {k: v for k, v in calls.items() if v}

    def reset_counts(self) -> None:
        self.google.reset_counts()
        self.graph.reset_counts()
        self.status_calls.clear()

    def latest_report(self) -> tuple[str, dict]:
        folder = self.root / "reports"
        md = sorted(folder.glob("lockdown-*.md"), key=lambda p: p.stat().st_mtime_ns)[-1]
        return md.read_text(), json.loads(md.with_suffix(".json").read_text())


def outcomes(report: dict) -> dict[str, set[tuple[str, str]]]:
    """outcome → {(serial, backend)} from a lockdown JSON report."""
    out: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)
    for device in report["devices"]:
        for action in device["actions"]:
            out[action["outcome"]].add((device["serial"], action["backend"]))
    return out


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[Tenant]:
    district = generate(devices=200, seed=11)
    google = GoogleEmulator(district, seed=11).start()
    graph = GraphEmulator.start_local(state=GraphState.from_district(district))
    devices = [Device(**{**s.device.__dict__}) for s in district.devices]
    result = Tenant(root=tmp_path, district=district, google=google, graph=graph, devices=devices)
    original = google.state.change_status

    def counting_change_status(device_id: str, action: str, reason: str):
        result.status_calls[device_id] += 1
        return original(device_id, action, reason)

    google.state.change_status = counting_change_status  # instrument the emulator, not the adapter
    result.write()
    try:
        yield result
    finally:
        google.stop()
        graph.stop()
