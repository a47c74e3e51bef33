"""Benchmark: the technician's counter on a large inventory; print seconds per command and peak RSS.

A temporary district (the sample policies, the sandbox generator's devices with last-seen and AUE filled in)
is opened once per step, as the command line does: `inventory repair` (lend a loaner), `overdue`, `return`,
an `audit` of one school from a scan of all but 300 of its devices, `report --aue` and the morning tech check.

Usage: .venv/bin/python bench/bench_counter.py [--devices 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.inventory.audit import audit, parse_scan
from orchestrator.inventory.aue import aue_groups
from orchestrator.inventory.devices import write_inventory_csv
from orchestrator.jobs.lifecycle import out_report, repair_device, return_device
from orchestrator.jobs.techcheck import tech_check
from orchestrator.jobs.workspace import Workspace, open_workspace
from orchestrator.sandbox.district import generate

REPO = Path(__file__).resolve().parent.parent
ON = dt.date(2026, 12, 11)


def build(root: Path, devices: int) -> tuple[Path, str]:
    shutil.copytree(REPO / "policies", root / "policies")
    (root / "inventory").mkdir()
    seeded = [s.device for s in generate(devices=devices).devices]
    for n, device in enumerate(seeded):
        device.lastSync = "2026-12-10T14:03:11.000Z" if n % 50 else "2026-09-01T10:00:00.000Z"
        if device.platform == "chromeos":
            device.autoUpdateExpiration = f"{2025 + n % 8}-06-01"
    (root / "inventory" / "devices.csv").write_text(write_inventory_csv(seeded))
    (root / "orchestrator.yaml").write_text("timezone: America/Chicago\njournal: .orchestrator/journal.db\n")
    lincoln = [d.serialNumber for d in seeded if d.school == "lincoln-elementary"]
    return root / "orchestrator.yaml", "\n".join(lincoln[:-300]) + "\n"


def timed(label: str, config: Path, step: Callable[[Workspace], object]) -> None:
    started = time.perf_counter()
    ws = open_workspace(str(config))
    opened = time.perf_counter()
    step(ws)
    done = time.perf_counter()
    print(f"{label:<28} {done - started:6.2f} s  (open {opened - started:.2f} s + {done - opened:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config, scan = build(Path(folder), args.devices)
        codes = parse_scan("scan.txt", scan)
        print(f"{args.devices} devices; scan of {len(codes)} codes")
        timed("inventory repair (loaner)", config, lambda ws: repair_device(ws, "CB0000001", on=dt.date(2026, 11, 20)))
        timed("inventory overdue", config, lambda ws: out_report(ws, on=ON).overdue())
        timed("inventory return", config, lambda ws: return_device(ws, "CB0000001"))
        timed("inventory audit (1 school)", config, lambda ws: audit(ws.inventory, "lincoln-elementary", codes, "scan"))
        timed("inventory report --aue", config, lambda ws: aue_groups(ws.inventory, ON))
        timed("report techcheck", config, lambda ws: tech_check(ws, on=ON))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
