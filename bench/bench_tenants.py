"""Benchmark: one `plan` across many districts (issue 15, item 7), each against its own emulators.

Builds a repository of N districts (tenants/<name>/, sizes spread between half and all of --devices), each with
its own in-process Google and Graph emulators, then times `plan` for the largest district alone and for every
district at once through `jobs.tenants.run_tenants` (one process per district, --parallel at a time). Prints
wall time against the slowest single district, API calls in total, and peak RSS: this process (the emulators)
and the largest district process (memory is bounded by the parallelism: at most --parallel of those at once).

    .venv/bin/python bench/bench_tenants.py --tenants 60 --devices 2000 --parallel 8
    .venv/bin/python bench/bench_tenants.py --tenants 4 --devices 200 --parallel 2     # a quick check
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.jobs.tenants import discover, run_tenants  # noqa: E402
from orchestrator.sandbox.district import generate  # noqa: E402
from orchestrator.sandbox.google_emulator import GoogleEmulator  # noqa: E402
from orchestrator.sandbox.graph_emulator import GraphEmulator  # noqa: E402

ZONES = ("America/Chicago", "America/Denver", "America/New_York", "America/Los_Angeles")


def build(root: Path, tenants: int, devices: int) -> list:
    emulators = []
    for i in range(tenants):
        size = max(20, devices // 2 + (devices - devices // 2) * i // max(1, tenants - 1))
        seeded = generate(devices=size)
        google = GoogleEmulator(seeded).start()
        graph = GraphEmulator.start_local(seeded)
        emulators.append((google, graph))
        folder = root / "tenants" / f"district-{i:02d}"
        folder.mkdir(parents=True)
        for sub in ("policies", "inventory"):
            shutil.copytree(REPO / sub, folder / sub)
        (folder / "orchestrator.yaml").write_text(
            f"timezone: {ZONES[i % len(ZONES)]}\n"
            f"google:\n  directory_endpoint: {google.url}\n  policy_endpoint: {google.url}\n"
            f"  credentials_file_env: D{i:02d}_GOOGLE_KEY\n"
            f"intune:\n  graph_endpoint: {graph.url}\n  client_secret_env: D{i:02d}_AZURE_SECRET\n"
        )
    return emulators


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=60)
    parser.add_argument("--devices", type=int, default=2000, help="devices in the largest district")
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-tenants-"))
    os.chdir(root)
    started = time.perf_counter()
    emulators = build(root, args.tenants, args.devices)
    print(f"built {args.tenants} districts in {time.perf_counter() - started:.1f} s under {root}")
    plan = ["plan", "--backend", "google", "--backend", "intune"]
    try:
        tenants = discover(root)
        [alone] = run_tenants(tenants[-1:], plan, known=tenants, parallel=1)
        if alone.exit_code != 0:
            sys.exit(f"the largest district failed alone: {alone.error}")
        started = time.perf_counter()
        runs = run_tenants(tenants, plan, parallel=args.parallel)
        wall = time.perf_counter() - started
    finally:
        for google, graph in emulators:
            google.stop()
            graph.stop()
        shutil.rmtree(root, ignore_errors=True)
    failed = [r.tenant for r in runs if r.exit_code != 0]
    slowest = max(runs, key=lambda r: r.seconds)
    calls = sum(r.summary.get("calls", 0) for r in runs)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"largest district alone:      {alone.seconds:7.1f} s ({alone.summary.get('calls', 0)} API calls)")
    print(f"all {len(runs)} at --parallel {args.parallel}: {wall:7.1f} s wall")
    print(f"slowest district in the run: {slowest.seconds:7.1f} s ({slowest.tenant})")
    sequential = sum(r.seconds for r in runs)
    print(f"sum of district times:       {sequential:7.1f} s (the run was {sequential / wall:.1f}x concurrent)")
    print(f"wall / largest alone:        {wall / alone.seconds:7.2f} (goal: <= 1.5 at 60 x 2,000, --parallel 8)")
    print(f"API calls, all districts:    {calls}")
    print(f"peak RSS: emulators + runner {own:.0f} MiB; largest district process {children:.0f} MiB")
    print(f"failed: {', '.join(failed) or 'none'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
