"""Benchmark the Intune backend against the Graph emulator: 15,000 Windows + 5,000 iOS devices, 50 ms latency.

Observe everything, apply the repository's web filter profiles and app assignments, lock 500 lost
devices, then observe again (a second run must change nothing). Prints wall times, HTTP calls per endpoint
against the minimum the API limits allow, time spent pacing under Intune's write limits, and peak RSS.

    .venv/bin/python bench/bench_intune.py [--windows 15000] [--ios 5000] [--lost 500] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.backends.intune.backend import IntuneBackend  # noqa: E402
from orchestrator.backends.intune.compiler import compile_intune  # noqa: E402
from orchestrator.backends.intune.config import IntuneConfig  # noqa: E402
from orchestrator.backends.registry import CATALOG  # noqa: E402
from orchestrator.core.resources import Change, ChangeResult  # noqa: E402
from orchestrator.engine.diff import diff  # noqa: E402
from orchestrator.inventory.devices import Device, Inventory  # noqa: E402
from orchestrator.policy.loader import load_policies  # noqa: E402
from orchestrator.sandbox.district import GROUPS, INTUNE_APPS, SCHOOLS, SeedDevice  # noqa: E402
from orchestrator.sandbox.graph_emulator import GraphEmulator  # noqa: E402
from orchestrator.sandbox.graph_state import GraphState  # noqa: E402


def fleet(windows: int, ios: int, lost: int) -> tuple[list[SeedDevice], Inventory]:
    seeds: list[SeedDevice] = []
    rows: list[Device] = []
    step = max(1, (windows + ios) // max(1, lost))
    for n in range(windows + ios):
        platform = "windows" if n < windows else "ios"
        school, ou, _, level = SCHOOLS[n % len(SCHOOLS)]
        serial = f"{'PF' if platform == 'windows' else 'DM'}{n + 1:08d}"
        status = "lost" if n % step == 0 else "active"
        device = Device(
            serialNumber=serial,
            platform=platform,
            school=school,
            orgUnitPath=ou,
            macAddress=f"02:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}:01",
            annotatedUser=f"student{n + 1:06d}@district.example",
            line=n + 2,
        )
        groups = ["All Student Devices"]
        groups.append(
            "Elementary iPads"
            if platform == "ios" and level == "elementary"
            else "Secondary Windows Laptops"
            if platform == "windows" and level != "elementary"
            else ""
        )
        seeds.append(
            SeedDevice(
                device=device,
                groups=[g for g in groups if g],
                supervised=n % 4 != 1,
                intune_id=str(uuid.UUID(int=n + 1)),
            )
        )
        rows.append(Device(**{**device.__dict__, "inventoryStatus": status}))
    lost_rows = [r for r in rows if r.inventoryStatus == "lost"][:lost]
    keep = {r.serialNumber for r in lost_rows}
    for row in rows:
        if row.inventoryStatus == "lost" and row.serialNumber not in keep:
            row.inventoryStatus = "active"
    return seeds, Inventory("inventory/devices.csv", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=15000)
    parser.add_argument("--ios", type=int, default=5000)
    parser.add_argument("--lost", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--device-writes-per-20s", type=int, default=IntuneConfig().device_writes_per_20s)
    args = parser.parse_args()

    seeds, inventory = fleet(args.windows, args.ios, args.lost)
    emulator = GraphEmulator.start_local(state=GraphState.from_seed(seeds, GROUPS, INTUNE_APPS), latency=args.latency)
    config = IntuneConfig(graph_endpoint=emulator.url, device_writes_per_20s=args.device_writes_per_20s)
    backend = IntuneBackend(config)
    desired = compile_intune(load_policies(ROOT / "policies", display_root=ROOT), inventory)
    devices = args.windows + args.ios
    locks = sum(1 for r in desired if r.id.type == "device_lock")
    print(
        f"devices: {devices} ({args.windows} Windows, {args.ios} iOS); latency {args.latency * 1000:.0f} ms; "
        f"desired resources: {len(desired)} ({locks} device locks)"
    )
    try:
        started = time.perf_counter()
        observed = {r.id: r for r in backend.observe(desired)}
        observe_s = time.perf_counter() - started
        changes = diff(CATALOG, desired, observed)

        results: list[ChangeResult] = []
        sent: list[Change] = []
        started = time.perf_counter()
        backend.apply(changes, sent.append, results.append)
        apply_s = time.perf_counter() - started
        paced_s = backend.device_writes.waited_seconds + backend.config_writes.waited_seconds

        started = time.perf_counter()
        again = diff(CATALOG, desired, {r.id: r for r in backend.observe(desired)})
        reobserve_s = time.perf_counter() - started
    finally:
        backend.close()
        emulator.stop()

    states: dict[str, int] = {}
    for result in results:
        states[result.state] = states.get(result.state, 0) + 1
    lock_changes = sum(1 for c in changes if c.id.type == "device_lock")
    print(
        f"observe: {observe_s:.2f} s   apply {len(changes)} changes: {apply_s:.2f} s "
        f"(of which pacing under {args.device_writes_per_20s} device writes/20 s: {paced_s:.2f} s)   "
        f"re-observe: {reobserve_s:.2f} s"
    )
    print(f"results: {states}; changes on the second run: {len(again)}")
    print(f"devices per second observed: {devices / observe_s:,.0f}")
    print("\ncalls by endpoint (client counter; emulator counts inner $batch requests too):")
    for endpoint, count in sorted(emulator.calls.items()):
        client = backend.counter.counts.get(endpoint, "-")
        print(f"  {endpoint:<36} emulator {count:>6}   client {client!s:>6}")
    pages_min = math.ceil(devices / 1000)
    batches_min = math.ceil(lock_changes / 20)
    print(
        f"\ndevice list pages: {emulator.calls['GET managedDevices']} for two observes "
        f"(minimum {pages_min} per observe = {2 * pages_min})"
    )
    print(f"$batch requests: {emulator.calls['POST $batch']} (minimum ceil({lock_changes}/20) = {batches_min})")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
