"""Benchmark: which lost devices are due for escalation in a large district (what every maintenance plan pays).

A generated inventory of N devices (every 200th lost, on a day between 2026-11-02 and 2026-11-20) and a device
history with one unrelated row per device plus one "became lost" row per lost device, with the sample policies
(`escalate: after_school_days: 10`). Times `plan_escalations` (read the history, count school days on the
window's calendar for each lost device) and `withdrawn_escalations` (the apply-time re-check, which reads the
inventory file again) for a plan holding every due escalation. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_escalation.py --devices 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.core.resources import Change  # noqa: E402
from orchestrator.engine.plan import Plan  # noqa: E402
from orchestrator.inventory.devices import Device, load_inventory, write_inventory_csv  # noqa: E402
from orchestrator.inventory.edits import HistoryEntry, append_history  # noqa: E402
from orchestrator.inventory.escalation import escalation_resource  # noqa: E402
from orchestrator.jobs.escalation import plan_escalations, withdrawn_escalations  # noqa: E402
from orchestrator.policy.loader import load_policies  # noqa: E402

SCHOOLS = ("lincoln-elementary", "washington-elementary", "roosevelt-middle", "jefferson-high")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(16)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        shutil.copytree(REPO / "policies", root / "policies")
        (root / "inventory").mkdir()
        inventory_path = root / "inventory" / "devices.csv"
        devices = [
            Device(
                serialNumber=f"CB{n:08d}",
                platform=("chromeos", "windows", "ios")[n % 3],
                school=SCHOOLS[n % len(SCHOOLS)],
                inventoryStatus="lost" if n % 200 == 0 else "active",
            )
            for n in range(args.devices)
        ]
        inventory_path.write_text(write_inventory_csv(devices))
        history = [
            HistoryEntry("2026-10-01T12:00:00+00:00", d.serialNumber, "school", "", d.school, "gam", "bench")
            for d in devices
        ]
        history += [
            HistoryEntry(
                f"2026-11-{rng.randint(2, 20):02d}T15:00:00+00:00",
                d.serialNumber,
                "inventoryStatus",
                "active",
                "lost",
                "cli",
                "bench",
            )
            for d in devices
            if d.inventoryStatus == "lost"
        ]
        append_history(root / "inventory" / "history.csv", history)
        policies = load_policies(root / "policies")
        inventory = load_inventory(inventory_path)
        now = dt.datetime(2026, 12, 8, 10, tzinfo=ZoneInfo("America/Chicago"))

        started = time.perf_counter()
        found = plan_escalations(policies, inventory, inventory_path, root, now)
        planned = time.perf_counter() - started

        resources = [
            escalation_resource("google", due, {"command": "REMOTE_POWERWASH"}, inventory) for due in found.due.values()
        ]
        changes = [
            Change(r.id, "action", None, r.value, r.sources, r.policy, r.window, True, "", r.meta, r.gate)
            for r in resources
        ]
        for device in devices[::2000]:  # every tenth lost device is found before the apply
            device.inventoryStatus = "found"
        inventory_path.write_text(write_inventory_csv(devices))
        plan = Plan(changes=changes, observed={}, backends=["google"], scopes=["maintenance"])
        started = time.perf_counter()
        gone = withdrawn_escalations(plan, policies, inventory_path, root, now)
        rechecked = time.perf_counter() - started

    lost = sum(1 for line in history if line.field == "inventoryStatus")
    print(f"devices {len(devices)}, history rows {len(history)}, lost {lost}, due {len(found.due)}")
    print(
        f"plan_escalations: {planned:.2f} s; withdrawn_escalations (apply re-check): {rechecked:.2f} s, "
        f"{len(gone)} withdrawn"
    )


if __name__ == "__main__":
    main()
