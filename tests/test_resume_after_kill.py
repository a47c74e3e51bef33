"""An apply killed part-way (kill -9) is resumed by the next apply of the same plan: nothing repeated or skipped."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.engine.journal import Journal
from orchestrator.inventory.devices import write_inventory_csv
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator

REPO = Path(__file__).resolve().parent.parent
LOST = 240  # five batchChangeStatus calls of 50 ids (the last one 40)


def orchestrator(config: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


@pytest.fixture
def district(tmp_path: Path):
    seeded = generate(devices=600, seed=7)
    emulator = GoogleEmulator(seeded, seed=7).start()
    lost = [s.device for s in seeded.devices if s.device.platform == "chromeos"][:LOST]
    for device in lost:
        device.inventoryStatus = "lost"
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "devices.csv").write_text(write_inventory_csv(s.device for s in seeded.devices))
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    lost_policy = tmp_path / "policies" / "lost-devices.yaml"
    lost_policy.write_text(lost_policy.read_text().replace("max_per_run: 50", "max_per_run: 1000"))
    config = tmp_path / "orchestrator.yaml"
    config.write_text(
        f"journal: {tmp_path / 'journal.db'}\n"
        f"google:\n  directory_endpoint: {emulator.url}\n  policy_endpoint: {emulator.url}\n"
    )
    calls_per_device: collections.Counter[str] = collections.Counter()
    original = emulator.state.change_status

    def counting_change_status(device_id: str, action: str, reason: str):
        calls_per_device[device_id] += 1
        return original(device_id, action, reason)

    emulator.state.change_status = counting_change_status  # instrument the emulator, not the adapter
    yield config, emulator, lost, calls_per_device
    emulator.stop()


def test_killed_apply_resumes_without_repeating_or_skipping(district, tmp_path: Path) -> None:
    config, emulator, lost, calls_per_device = district
    plan_file = tmp_path / "plan.json"
    planned = orchestrator(config, "plan", "--scope", "lockdown", "--backend", "google", "--out", str(plan_file))
    assert planned.returncode == 0, planned.stderr
    emulator.faults.latency = 0.4  # slow enough to kill between batches
    emulator.reset_counts()
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--config", str(config), "apply", str(plan_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while emulator.calls["chromeosdevices.batchChangeStatus"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(emulator.faults.latency + 0.5)  # the request in flight at the kill still lands, as it would at Google
    disabled_after_kill = sum(1 for d in emulator.state.devices.values() if d["status"] == "DISABLED")
    assert 0 < disabled_after_kill < LOST, "the kill must land part-way through the apply"

    emulator.faults.latency = 0.0
    resumed = orchestrator(config, "apply", str(plan_file))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    by_serial = {d["serialNumber"]: d for d in emulator.state.devices.values()}
    assert all(by_serial[device.serialNumber]["status"] == "DISABLED" for device in lost)
    assert set(calls_per_device.values()) == {1}, "a device was sent the same change twice"
    assert len(calls_per_device) == LOST
    journal = Journal(tmp_path / "journal.db")
    last_run = journal.runs(1)[0]
    states = collections.Counter(row.state for row in journal.actions(last_run["id"], limit=10_000))
    assert states["failed"] == 0 and states["unknown"] == 0
    assert states["succeeded"] + states["skipped"] == LOST
    again = orchestrator(config, "plan", "--scope", "lockdown", "--backend", "google")
    assert "No changes" in again.stdout
