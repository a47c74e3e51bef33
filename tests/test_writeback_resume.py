"""A write-back apply killed part-way (kill -9) is resumed by applying the same plan again: every device is
patched exactly once, none is skipped."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.journal import Journal
from orchestrator.inventory.devices import write_inventory_csv
from orchestrator.sandbox import google_emulator
from orchestrator.sandbox.district import generate
from orchestrator.sandbox.google_emulator import GoogleEmulator


def orchestrator(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_killed_write_back_apply_resumes_without_repeating_or_skipping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = generate(devices=300, seed=7)
    emulator = GoogleEmulator(seeded, seed=7).start()
    chromebooks = [s.device for s in seeded.devices if s.device.platform == "chromeos"]
    for device in chromebooks:  # the district re-tagged its fleet
        device.annotatedAssetId = device.annotatedAssetId.replace("PV-", "AT-")
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "devices.csv").write_text(write_inventory_csv(s.device for s in seeded.devices))
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "labels.yaml").write_text(
        "kind: InventoryWriteBack\nname: labels\ngoogle:\n  asset_tag: always\n"
    )
    config = tmp_path / "orchestrator.yaml"
    config.write_text(
        f"journal: {tmp_path / 'journal.db'}\n"
        f"google:\n  directory_endpoint: {emulator.url}\n  policy_endpoint: {emulator.url}\n"
    )
    patches: collections.Counter[str] = collections.Counter()
    original = google_emulator.update_device

    def counting_update(state: Any, device_id: str, body: Any, *, replace: bool) -> dict[str, Any]:
        patches[device_id] += 1
        return original(state, device_id, body, replace=replace)

    monkeypatch.setattr(google_emulator, "update_device", counting_update)  # instrument the emulator only
    try:
        plan_file = tmp_path / "plan.json"
        planned = orchestrator(config, "plan", "--backend", "google", "--out", str(plan_file))
        assert planned.returncode == 0, planned.stdout + planned.stderr
        emulator.faults.latency = 0.3  # slow enough to kill part-way
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--config", str(config), "apply", str(plan_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while emulator.calls["chromeosdevices.patch"] < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        time.sleep(emulator.faults.latency + 0.5)  # requests in flight at the kill still land, as at Google
        written = sum(1 for d in emulator.state.devices.values() if d["annotatedAssetId"].startswith("AT-"))
        assert 0 < written < len(chromebooks), "the kill must land part-way through the apply"

        emulator.faults.latency = 0.0
        resumed = orchestrator(config, "apply", str(plan_file))
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert all(d["annotatedAssetId"].startswith("AT-") for d in emulator.state.devices.values())
        assert len(patches) == len(chromebooks) and set(patches.values()) == {1}, "a device was patched twice"
        journal = Journal(tmp_path / "journal.db")
        last = journal.runs(1)[0]
        states = collections.Counter(row.state for row in journal.actions(last["id"], limit=10_000))
        assert states["failed"] == 0 and states["unknown"] == 0
        assert states["succeeded"] + states["skipped"] == len(chromebooks)
        assert "No changes" in orchestrator(config, "plan", "--backend", "google").stdout
    finally:
        emulator.stop()
