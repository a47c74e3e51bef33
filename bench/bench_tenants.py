"""Benchmark: `plan --all-tenants` across a provider's districts (issue 15, item 7), each against its own consoles.

Builds the `orchestrator sandbox --tenants N` repository (sandbox/tenants.py: N districts, each with its own
in-process Google and Graph emulators with --latency on every reply, its own zone, calendar and schools; every
district at --devices, or the sandbox's spread of sizes with --spread), then times:

1. the largest district alone, the way a one-district user runs it (`orchestrator --config ... plan`, one process);
2. every district through `jobs.tenants.run_tenants` at --parallel, as `plan --all-tenants` runs them: forked from
   the warm worker (`--modes cold`: a new interpreter per district, the way before the warm worker; `both`).

Prints wall time against the largest district alone and against the floors that bound it (N x alone / parallel;
all CPU time spent / the cores), API calls (counted by the emulators), per-district seconds, and memory: the peak
summed PSS of all district processes at once (the warm worker and the districts it forked) beside one district's
peak RSS, which shows that memory follows --parallel, not N. Writes bench/results/<--name>.json (schema 1, as
bench_district.py: workload, machine, runs).

    .venv/bin/python bench/bench_tenants.py --tenants 60 --devices 2000 --parallel 8 --modes both
    .venv/bin/python bench/bench_tenants.py --tenants 4 --devices 200 --parallel 2 --no-json   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.jobs.tenants import TenantRun, discover, run_tenants  # noqa: E402
from orchestrator.sandbox.tenants import SandboxDistrict, build_provider, stop_all  # noqa: E402

PLAN = ["plan", "--backend", "google", "--backend", "intune"]


def calls(districts: list[SandboxDistrict]) -> int:
    return sum(sum(d.google.calls.values()) + sum(d.graph.calls.values()) for d in districts)


class MemorySampler:
    """Every 0.2 s, the summed PSS (shared pages split among the processes sharing them) of this process's
    descendants: the district processes alive at that moment. PSS, not RSS: forked districts share the warm
    worker's imported modules, and RSS would count those once per district."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.2):
            parents: dict[int, int] = {}
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    parents[int(entry.name)] = int(fields[1])
            family = {pid for pid in parents if _descends(pid, me, parents)}
            total = sum(_pss_kib(pid) for pid in family)
            if total > self.peak_kib:
                self.peak_kib, self.peak_processes = total, len(family)


def _descends(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    seen = 0
    while pid in parents and seen < 64:
        pid = parents[pid]
        if pid == ancestor:
            return True
        seen += 1
    return False


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_all(args: argparse.Namespace, districts: list[SandboxDistrict], tenants: list, cold: bool) -> dict:
    """Every district at --parallel through run_tenants; the measured row."""
    before, cpu_before, self_before = calls(districts), cpu_children(), cpu_self()
    finished: dict[str, float] = {}
    with MemorySampler() as memory:
        started = time.perf_counter()
        runs: list[TenantRun] = run_tenants(
            tenants,
            PLAN,
            parallel=args.parallel,
            warm=not cold,
            on_done=lambda run: finished.setdefault(run.tenant, time.perf_counter() - started),
        )
        wall = time.perf_counter() - started
    rss = [r.peak_rss_mib for r in runs if r.peak_rss_mib]
    seconds = [r.seconds for r in runs]
    return {
        "name": f"{len(runs)} districts, --parallel {args.parallel}, "
        + ("a new interpreter each (--cold)" if cold else "forked from the warm worker"),
        "mode": "cold" if cold else "warm",
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu_children() - cpu_before + cpu_self() - self_before, 1),
        "cpu_districts_s": round(cpu_children() - cpu_before, 1),
        "requests_total": calls(districts) - before,
        "tenant_seconds_median": round(statistics.median(seconds), 2),
        "tenant_seconds_max": round(max(seconds), 2),
        "peak_pss_all_district_processes_mib": round(memory.peak_kib / 1024),
        "district_processes_at_peak": memory.peak_processes,
        "peak_rss_one_district_mib": round(max(rss)) if rss else None,
        "failed": [r.tenant for r in runs if r.exit_code != 0],
        "tenants": [
            {"tenant": r.tenant, "started_s": round(finished[r.tenant] - r.seconds, 2), "seconds": round(r.seconds, 2)}
            for r in runs
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=60)
    parser.add_argument("--devices", type=int, default=2000, help="devices per district (the largest with --spread)")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every emulator reply")
    parser.add_argument("--spread", action="store_true", help="the sandbox's spread of sizes instead of equal ones")
    parser.add_argument(
        "--modes", default="warm", help="warm (forked from the warm worker), cold (a new interpreter each) or both"
    )
    parser.add_argument("--alone-runs", type=int, default=3, help="runs of the largest district alone (median)")
    parser.add_argument("--name", default="tenants", help="the JSON file's name in bench/results/")
    parser.add_argument("--no-json", action="store_true", help="print only")
    args = parser.parse_args()
    modes = ["warm", "cold"] if args.modes == "both" else [args.modes]
    root = Path(tempfile.mkdtemp(prefix="bench-tenants-"))
    os.chdir(root)
    districts = build_provider(
        root, args.tenants, args.devices, latency=args.latency, same_size=not args.spread, seed=2026
    )
    total = sum(d.devices for d in districts)
    print(f"{args.tenants} districts, {total:,} devices, each with its own emulators ({args.latency * 1000:.0f} ms)")
    try:
        tenants = discover(root)
        largest = max(districts, key=lambda d: (d.devices, d.org_units))
        before, cpu_before = calls(districts), cpu_children()
        solo = [t for t in tenants if t.name == largest.name]
        tries = [run_tenants(solo, PLAN, known=tenants, parallel=1)[0] for _ in range(args.alone_runs)]
        if any(t.exit_code != 0 for t in tries):
            sys.exit(f"the largest district failed alone: {tries[0].error}")
        alone = sorted(t.seconds for t in tries)[len(tries) // 2]  # the median run
        alone_row = {
            "name": f"largest district alone ({largest.devices} devices, {largest.org_units} OUs, one process)",
            "wall_s": round(alone, 2),
            "runs_s": [round(t.seconds, 2) for t in tries],
            "requests_total": (calls(districts) - before) // len(tries),
            "cpu_s": round((cpu_children() - cpu_before) / len(tries), 1),
        }
        rows = [run_all(args, districts, tenants, cold=mode == "cold") for mode in modes]
    finally:
        stop_all(districts)
        shutil.rmtree(root, ignore_errors=True)
    cores = os.cpu_count() or 1
    for row in rows:
        # Floors: each district needs about `alone` (its own quota pacing), and --parallel run at once; and the CPU
        # all processes spent, spread over the cores. The goal (1.5x the slowest alone) is below the
        # first floor whenever there are more than 1.5 x --parallel districts. The fields bench/readme_table.py
        # reads: quota_floor_s/_bound (the highest floor), and as the minimum of requests each district's own
        # plan alone (running together must not add calls).
        floors = {"one district alone": alone, "CPU / cores": row["cpu_s"] / cores}
        if not args.spread:
            floors["districts x alone / parallel"] = len(tenants) * alone / args.parallel
        bound = max(floors, key=lambda name: floors[name])
        row["floor_work_s"] = round(floors.get("districts x alone / parallel", 0), 2) or None
        row["floor_cpu_s"] = round(floors["CPU / cores"], 2)
        row["quota_floor_s"], row["quota_floor_bound"] = round(floors[bound], 2), bound
        row["floor_ratio"] = round(row["wall_s"] / floors[bound], 2)
        row["wall_over_largest_alone"] = round(row["wall_s"] / alone, 2)
        row["minimum_total"] = alone_row["requests_total"] * len(tenants) if not args.spread else row["requests_total"]
        row["calls_ratio"] = round(row["requests_total"] / max(1, row["minimum_total"]), 3)
    show(alone_row, rows, args)
    result = {
        "schema": 1,
        "benchmark": args.name,
        "command": "bench/bench_tenants.py " + " ".join(sys.argv[1:]),
        "workload": {
            "tenants": args.tenants,
            "devices_per_tenant": None if args.spread else args.devices,
            "devices_total": total,
            "parallel": args.parallel,
            "latency_s": args.latency,
            "command": " ".join(PLAN),
            "largest_alone_s": alone_row["wall_s"],
        },
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": cores,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
        },
        # the client's memory: all district processes at once (PSS), in the first run (warm unless --modes cold)
        "peak_rss_mib": rows[0]["peak_pss_all_district_processes_mib"],
        "emulators_runner_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "reference": alone_row,
        "runs": rows,
    }
    if not args.no_json:
        out = REPO / "bench" / "results" / f"{args.name}.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out.relative_to(REPO)}")
    sys.exit(1 if any(row.get("failed") for row in rows) else 0)


def show(alone: dict, rows: list[dict], args: argparse.Namespace) -> None:
    print(f"{alone['name']}: {alone['wall_s']:.1f} s (median of {', '.join(map(str, alone['runs_s']))}),")
    print(f"  {alone['requests_total']} API calls, {alone['cpu_s']} s CPU")
    for row in rows:
        slow = sorted(row["tenants"], key=lambda t: -t["seconds"])[:3]
        print(f"{row['name']}:")
        print(
            f"  wall {row['wall_s']:.1f} s = {row['wall_over_largest_alone']:.2f} x the largest alone (issue goal 1.5)"
        )
        print(f"  floor {row['quota_floor_s']:.1f} s ({row['quota_floor_bound']}; N x alone / parallel")
        print(
            f"    {row['floor_work_s']} s, CPU / cores {row['floor_cpu_s']} s): wall / floor {row['floor_ratio']:.2f}"
        )
        print(f"  calls {row['requests_total']} = {row['calls_ratio']:.2f} x the districts' own plans alone")
        print(f"  CPU {row['cpu_s']:.0f} s ({row['cpu_districts_s']:.0f} s in district processes, the rest emulators)")
        print(f"  per district: median {row['tenant_seconds_median']:.1f} s, max {row['tenant_seconds_max']:.1f} s;")
        print("    slowest " + ", ".join(f"{t['tenant']} {t['seconds']} s from {t['started_s']} s" for t in slow))
        print(f"  API calls {row['requests_total']} ({row['requests_total'] / args.tenants:.0f} per district)")
        print(
            f"  memory: peak PSS of all district processes {row['peak_pss_all_district_processes_mib']} MiB "
            f"({row['district_processes_at_peak']} at once); one district's RSS "
            f"{row['peak_rss_one_district_mib'] or '-'} MiB"
        )
        print(f"  failed: {', '.join(row['failed']) or 'none'}")


if __name__ == "__main__":
    main()
