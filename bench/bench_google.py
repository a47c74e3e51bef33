"""Benchmark: compile → observe → diff → apply against the in-process Google emulator.

Runs the sample policies plus a lockdown of N lost Chromebooks (and the sample lab reimage) through the real
GoogleBackend and googleapiclient over HTTP, then prints wall time per phase, HTTP calls by endpoint next to
the minimum the page and batch limits allow, and peak RSS (emulator and client share this process).

    .venv/bin/python bench/bench_google.py --devices 10000
    .venv/bin/python bench/bench_google.py --devices 120000 --ous 400 --latency 0.05   # 100,000 Chromebooks

--devices counts every device of the District-100k mix (bench/district.py: Chromebooks, Windows and iPads 20:3:1);
the emulator holds the Chromebooks.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import resource
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.backends.google.backend import GoogleBackend  # noqa: E402
from orchestrator.backends.google.compiler import compile_google  # noqa: E402
from orchestrator.backends.google.config import GoogleConfig  # noqa: E402
from orchestrator.backends.google.policy import RESOLVE_FILTERS  # noqa: E402
from orchestrator.backends.pacing import CallCounter  # noqa: E402
from orchestrator.backends.registry import CATALOG  # noqa: E402
from orchestrator.core.resources import ChangeResult  # noqa: E402
from orchestrator.engine.diff import diff  # noqa: E402
from orchestrator.inventory.devices import Inventory  # noqa: E402
from orchestrator.policy.loader import load_policies  # noqa: E402
from orchestrator.sandbox.district import generate  # noqa: E402
from orchestrator.sandbox.google_emulator import GoogleEmulator  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from district import MIX  # noqa: E402


def inventory_with_lost(district, lost: int) -> Inventory:
    """The district's devices as an inventory, with `lost` Chromebooks spread across schools marked lost."""
    chromebooks = [s.device for s in district.devices if s.device.platform == "chromeos"]
    step = max(1, len(chromebooks) // max(1, lost))
    lost_serials = {d.serialNumber for d in chromebooks[::step][:lost]}
    devices = []
    for line, seeded in enumerate(district.devices, start=2):
        status = "lost" if seeded.device.serialNumber in lost_serials else "active"
        devices.append(dataclasses.replace(seeded.device, inventoryStatus=status, line=line))
    return Inventory(file="generated-inventory.csv", devices=devices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10000)
    parser.add_argument("--ous", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every emulator reply")
    parser.add_argument("--lost", type=int, default=500)
    parser.add_argument("--workers", type=int, default=8, help="threads for per-OU policies:resolve")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--poll-interval", type=float, default=0.2, help="seconds between commands.get rounds")
    args = parser.parse_args()

    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    district = generate(devices=args.devices, seed=args.seed, ous=args.ous, mix=MIX)
    emulator = GoogleEmulator(district, seed=args.seed, latency=args.latency).start()
    phases["generate + start emulator"] = time.perf_counter() - t0
    config = GoogleConfig(
        directory_endpoint=emulator.url,
        policy_endpoint=emulator.url,
        credentials_file_env="K12_BENCH_NO_GOOGLE_CREDENTIALS",
    )
    backend = GoogleBackend(config, counter=CallCounter(), workers=args.workers, poll_interval=args.poll_interval)
    try:
        t = time.perf_counter()
        inventory = inventory_with_lost(district, args.lost)
        desired = compile_google(load_policies(REPO / "policies", display_root=REPO), inventory)
        phases["compile"] = time.perf_counter() - t

        t = time.perf_counter()
        observed = backend.observe(desired)
        phases["observe"] = time.perf_counter() - t

        t = time.perf_counter()
        changes = diff(CATALOG, desired, {r.id: r for r in observed})
        phases["diff"] = time.perf_counter() - t

        t = time.perf_counter()
        results: list[ChangeResult] = []
        backend.apply(changes, lambda change: None, results.append)
        phases["apply"] = time.perf_counter() - t
    finally:
        emulator.stop()
    wall = time.perf_counter() - t0

    chromebooks = len(emulator.state.devices)
    ous = len(emulator.state.ous)
    by_type = Counter(c.id.type for c in changes)
    groups = {(c.id.key.rsplit("|", 1)[0], c.id.type, c.op) for c in changes if c.id.type.startswith("ou_")}
    reimages = by_type["reimage"]
    minimum = {
        "orgunits.list": 1,
        "chromeosdevices.list": math.ceil(chromebooks / 300),
        "policies.resolve": ous * len(RESOLVE_FILTERS),
        "policies.orgunits.batchModify": len({g for g in groups if g[2] != "delete"}),
        "policies.orgunits.batchInherit": len({g for g in groups if g[2] == "delete"}),
        "chromeosdevices.batchChangeStatus": math.ceil(by_type["device_status"] / 50),
        "chromeosdevices.issueCommand": reimages,
        "commands.get": reimages,
    }
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    print(
        f"devices {args.devices} (chromebooks {chromebooks}), org units {ous}, latency {args.latency}s, "
        f"lost {args.lost}, workers {args.workers}"
    )
    print(
        f"desired resources {len(desired)}, observed {len(observed)}, changes {len(changes)}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(by_type.items()))
    )
    print("results: " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(r.state for r in results).items())))
    print("\nphase                          seconds")
    for name, seconds in phases.items():
        print(f"  {name:<28} {seconds:8.2f}")
    print(f"  {'wall':<28} {wall:8.2f}")
    print("\nHTTP calls by endpoint (emulator count; minimum the page/batch limits allow)")
    for endpoint in sorted(set(emulator.calls) | set(minimum)):
        print(f"  {endpoint:<36} {emulator.calls.get(endpoint, 0):7d}   min {minimum.get(endpoint, 0):6d}")
    total = sum(emulator.calls.values())
    print(f"  {'total':<36} {total:7d}   min {sum(minimum.values()):6d}   ({total / wall:.1f} calls/s overall)")
    pacing = {
        "directory": backend.api.directory_bucket,
        "policy reads": backend.api.policy_read_bucket,
        "policy writes": backend.api.policy_write_bucket,
    }
    reads_per_s = backend.api.policy_read_bucket.per_second
    print(
        f"\nquota floor for observe: {minimum['policies.resolve']} resolves at {reads_per_s:.0f}/s = "
        f"{minimum['policies.resolve'] / reads_per_s:.1f}s (Chrome Policy reads: 30 QPS per project)"
    )
    print("pacer waits summed over threads (s): " + ", ".join(f"{k} {b.waited_seconds:.1f}" for k, b in pacing.items()))
    print(f"peak RSS {peak_kb / 1024:.0f} MiB (emulator + client in one process)")


if __name__ == "__main__":
    main()
