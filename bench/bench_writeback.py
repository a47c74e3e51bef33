"""Benchmark: write-back of a re-tagged fleet (InventoryWriteBack) through the public API on the Google emulator.

A generated district of N devices whose inventory gives every Chromebook a new asset tag; `Session.plan` then
`Session.apply` (as `orchestrator plan` / `apply`). Prints devices, HTTP calls by endpoint, wall time and
patches per second for each step. Reads must stay bulk (list pages, no per-device GET); writes are one
`chromeosdevices.patch` per device under the Directory pacer.

    .venv/bin/python bench/bench_writeback.py --devices 3000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator import Session  # noqa: E402
from orchestrator.inventory.devices import write_inventory_csv  # noqa: E402
from orchestrator.sandbox.district import generate  # noqa: E402
from orchestrator.sandbox.google_emulator import GoogleEmulator  # noqa: E402

POLICY = "kind: InventoryWriteBack\nname: labels\ngoogle:\n  asset_tag: always\n  user: if_set\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=0.0, help="emulator latency per request (seconds)")
    args = parser.parse_args()
    district = generate(devices=args.devices, seed=5)
    emulator = GoogleEmulator(district, seed=5, latency=args.latency).start()
    devices = [s.device for s in district.devices]
    chromebooks = [d for d in devices if d.platform == "chromeos"]
    for device in chromebooks:
        device.annotatedAssetId = device.annotatedAssetId.replace("PV-", "AT-")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "inventory").mkdir()
        (root / "policies").mkdir()
        (root / "inventory" / "devices.csv").write_text(write_inventory_csv(devices))
        (root / "policies" / "labels.yaml").write_text(POLICY)
        config = root / "orchestrator.yaml"
        config.write_text(
            f"journal: {root / 'journal.db'}\n"
            f"google:\n  directory_endpoint: {emulator.url}\n  policy_endpoint: {emulator.url}\n"
        )
        print(f"{args.devices} devices, {len(chromebooks)} Chromebooks re-tagged, latency {args.latency:g} s")
        with Session.open(str(config), backends=["google"]) as session:
            for step in ("plan", "apply"):
                emulator.reset_counts()
                started = time.perf_counter()
                if step == "plan":
                    plan = session.plan(["policy"])
                    done = f"{len(plan.changes)} changes"
                else:
                    report = session.apply(plan)
                    done = ", ".join(f"{n} {state}" for state, n in sorted(report.counts().items()))
                seconds = time.perf_counter() - started
                calls = dict(sorted(emulator.calls.items()))
                patches = calls.get("chromeosdevices.patch", 0)
                rate = f", {patches / seconds:.1f} patches/s" if patches else ""
                print(f"{step}: {done} in {seconds:.1f} s{rate}; calls {calls}")
    emulator.stop()


if __name__ == "__main__":
    main()
