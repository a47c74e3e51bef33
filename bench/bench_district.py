"""Benchmark: District-100k, the compass workload, through the same jobs as the command line.

Runs against the Google and Graph emulators (a forked process each; 50 ms on every reply), each run opening a
fresh session from a generated orchestrator.yaml whose pacers sit at the published quotas: the Chrome fleet listing
alone (one sequential listing, then concurrent OU subtrees, through GoogleBackend), `inventory sync`, the
policy `plan` + `apply` of 30 policies, the nightly `lockdown` with 500 lost, and a quiet night with 10 lost.
For each run it prints wall time, requests by endpoint next to the minimum the page and batch limits allow,
the quota floor (the minimum requests at the published rates) and the ratio of the wall time to it, CPU
seconds, and the peak RSS of the run's own process (each run is forked, as each command is a process of its
own); and writes them to bench/results/<name>.json, from which bench/readme_table.py generates the README's
table.

    .venv/bin/python bench/bench_district.py                     # District-100k (about 6 minutes)
    .venv/bin/python bench/bench_district.py --devices 12000 --ous 60 --lost 50 --name district-12k
    .venv/bin/python bench/bench_district.py --profile /tmp/prof  # a cProfile report per run
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib
import itertools
import json
import math
import os
import pstats
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from district import Emulators, Workload, use_inventory  # noqa: E402

from orchestrator import Session, run_lockdown  # noqa: E402
from orchestrator.backends.google.backend import GoogleBackend  # noqa: E402
from orchestrator.backends.google.config import GoogleConfig  # noqa: E402
from orchestrator.backends.google.policy import RESOLVE_FILTERS  # noqa: E402
from orchestrator.backends.pacing import CallCounter  # noqa: E402
from orchestrator.jobs.inventory import sync_inventory  # noqa: E402

SCHEMA = 1
# The published rates the floors are computed from (requests per second).
DIRECTORY_PER_S = 2400 / 60
POLICY_READS_PER_S = 5.0
POLICY_WRITES_PER_S = 30 / 60
POLICY_WRITES = ("policies.orgunits.batchModify", "policies.orgunits.batchInherit")


def floor_seconds(calls: Counter[str]) -> dict[str, float]:
    """Seconds each quota needs for `calls` at its published rate (the quotas are spent concurrently)."""
    google = calls
    reads = google["policies.resolve"] + google["policySchemas.get"]
    writes = sum(google[k] for k in POLICY_WRITES)
    directory = sum(v for k, v in google.items() if k.startswith(("chromeosdevices", "orgunits", "customer")))
    return {  # a plan's reads come before its writes: those two floors add up
        "directory": directory / DIRECTORY_PER_S,
        "chrome policy reads + writes": reads / POLICY_READS_PER_S + writes / POLICY_WRITES_PER_S,
    }


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 2) for name, value in seconds.items()}


def night_minimum(lost: Counter[str], list_pages: int, intune_pages: int) -> dict[str, int]:
    """The fewest requests a lockdown of `lost` (by platform) can make: each fleet read by id or listed, whichever
    is fewer; status changes 50 to a call; Intune reads, Entra ID reads (Windows) and writes 20 to a `$batch`."""
    n_intune, windows = lost["windows"] + lost["ios"], lost["windows"]
    minimum = {"google chromeosdevices.batchChangeStatus": math.ceil(lost["chromeos"] / 50)}
    if lost["chromeos"] <= list_pages:
        minimum["google chromeosdevices.get"] = lost["chromeos"]
    else:
        minimum |= {"google orgunits.list": 1, "google chromeosdevices.list": list_pages}
    batches = math.ceil(windows / 20) + math.ceil(n_intune / 20)
    if math.ceil(n_intune / 20) < intune_pages:
        batches += math.ceil(n_intune / 20)
    else:
        minimum["graph GET managedDevices"] = intune_pages
    minimum["graph POST $batch"] = batches
    return minimum


def measure(name: str, run: Callable[[], Any], emulators: Emulators, profile: Path | None) -> dict[str, Any]:
    """Run `run` in a forked child, as the command line runs each job in a process of its own: its peak RSS is
    that run's alone (the imports included), not the high-water mark of every run before it."""
    emulators.counts()  # reset
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report through the pipe, never return into the parent's code
        os.close(reader)
        code = 0
        try:
            answer = {"wall": 0.0, "result": None}
            profiler = cProfile.Profile() if profile else None
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            answer["result"] = run()
            if profiler:
                profiler.disable()
            answer["wall"] = time.perf_counter() - started
            if profiler and profile:
                profile.mkdir(parents=True, exist_ok=True)
                path = profile / f"{name.replace(' ', '-').replace(',', '')}.txt"
                with path.open("w") as out:
                    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
                answer["profile"] = str(path)
        except BaseException:
            answer = {"error": traceback.format_exc()}
            code = 1
        with os.fdopen(writer, "w") as out:
            json.dump(answer, out)
        os._exit(code)
    os.close(writer)
    with os.fdopen(reader) as answer_in:
        answer = json.load(answer_in)
    _, status, usage = os.wait4(pid, 0)
    if "error" in answer or status != 0:
        raise SystemExit(f"{name} failed:\n{answer.get('error', f'exit status {status}')}")
    counts = emulators.counts()
    row: dict[str, Any] = {
        "name": name,
        "wall_s": round(answer["wall"], 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),  # this run's process, from its start (imports included)
        "requests": {f"google {k}": v for k, v in sorted(counts["google"].items())}
        | {f"graph {k}": v for k, v in sorted(counts["graph"].items())},
        "result": answer["result"],
    }
    row["google"] = counts["google"]
    if "profile" in answer:
        row["profile"] = answer["profile"]
    return row


def warm_up(config: Path, root: Path) -> tuple[int, float]:
    """Import in this process what a run imports (about 1,900 modules, most of them msgraph's, imported lazily
    on first use), as the multi-district worker does, so each forked run times the job and not Python's
    imports: a dry-run lockdown of the quiet night (reads only) runs in a child that names its modules.
    The price of a cold command is measured on its own (`cold_command`). Returns (modules, seconds)."""
    inventory = root / "inventory" / "devices.csv"
    kept = inventory.read_text()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        use_inventory(root, "quiet")
        with Session.open(config) as session:
            run_lockdown(session, dry_run=True)
        with os.fdopen(writer, "w") as out:
            json.dump(sorted(name for name in sys.modules if name != "__main__"), out)
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as names_in:
        names = json.load(names_in)
    os.waitpid(pid, 0)
    inventory.write_text(kept)
    started, before = time.perf_counter(), len(sys.modules)
    for name in names:
        if name not in sys.modules:
            with contextlib.suppress(Exception):  # a module that does not import here is imported by the run
                importlib.import_module(name)
    return len(sys.modules) - before, time.perf_counter() - started


def cold_command(name: str, config: Path, emulators: Emulators) -> dict[str, Any]:
    """The nightly command as cron starts it: a new interpreter, its imports, then the lockdown."""
    emulators.counts()  # reset
    command = [sys.executable, "-m", "orchestrator", "--config", str(config), "lockdown"]
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, cwd=config.parent)
        _, status, usage = os.wait4(process.pid, 0)  # not process.wait(): wait4 also gives its resource use
        wall = time.perf_counter() - started
        errors.seek(0)
        if status != 0:
            raise SystemExit(f"{name} failed (exit status {status}): {errors.read().decode()[-2000:]}")
    counts = emulators.counts()
    requests = {f"google {k}": v for k, v in sorted(counts["google"].items())}
    requests |= {f"graph {k}": v for k, v in sorted(counts["graph"].items())}
    return {
        "name": name,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "requests": requests,
        "requests_total": sum(requests.values()),
        "minimum": {},
        "result": {"command": f"orchestrator --config {config.name} lockdown"},
    }


def finish(row: dict[str, Any], minimum: dict[str, int]) -> dict[str, Any]:
    google: Counter[str] = row.pop("google")
    floors = floor_seconds(
        Counter({k.removeprefix("google "): v for k, v in minimum.items() if k.startswith("google")})
    )
    bound = max(floors, key=lambda k: floors[k])
    row["minimum"] = minimum
    counted = sum(v for k, v in row["requests"].items() if k in minimum)
    row["requests_total"] = counted
    row["minimum_total"] = sum(minimum.values())
    row["calls_ratio"] = round(counted / max(1, row["minimum_total"]), 3)
    row["quota_floor_s"] = round(floors[bound], 2)
    row["quota_floor_bound"] = bound
    row["floor_ratio"] = round(row["wall_s"] / floors[bound], 2) if floors[bound] >= 1 else None
    row["observed_quota_s"] = {k: round(v, 2) for k, v in floor_seconds(google).items()}
    return row


def show(row: dict[str, Any]) -> None:
    if "calls_ratio" not in row:  # a cold command: no floor or minimum of its own
        print(
            f"\n{row['name']}: {row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU; "
            f"requests {row['requests_total']}; peak RSS {row['peak_rss_mib']} MiB"
        )
        return
    ratio = f"{row['floor_ratio']:.2f}x" if row["floor_ratio"] is not None else "n/a (floor < 1 s)"
    print(
        f"\n{row['name']}: {row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU; "
        f"quota floor {row['quota_floor_s']:.1f} s "
        f"({row['quota_floor_bound']}), wall/floor {ratio}; requests {row['requests_total']} vs minimum "
        f"{row['minimum_total']} ({row['calls_ratio']:.2f}x); peak RSS {row['peak_rss_mib']} MiB"
    )
    for endpoint in sorted(set(row["requests"]) | set(row["minimum"])):
        minimum = row["minimum"].get(endpoint)
        print(f"  {endpoint:52} {row['requests'].get(endpoint, 0):6d}   min {'' if minimum is None else minimum:>6}")
    if "profile" in row:
        print(f"  profile: {row['profile']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=120_000, help="all devices (Chromebooks:Windows:iPads 20:3:1)")
    parser.add_argument("--ous", type=int, default=400)
    parser.add_argument("--lost", type=int, default=500)
    parser.add_argument("--quiet", type=int, default=10, help="devices lost on the quiet night")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--name", default="district-100k", help="the JSON file's name in bench/results/")
    parser.add_argument("--profile", type=Path, help="write a cProfile report per run to this folder")
    parser.add_argument("--no-json", action="store_true", help="print only")
    parser.add_argument("--skip-policies", action="store_true", help="leave out the policy plan + apply (4+ min)")
    args = parser.parse_args()
    workload = Workload(args.devices, args.ous, args.lost, args.quiet, args.latency)

    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        emulators = Emulators(workload, root)
        try:
            setup = emulators.setup
            config, fleet, ous = setup["config"], setup["fleet"], setup["ous"]
            print(
                f"District: {fleet['chromeos']} Chromebooks in {ous} OUs, {fleet['windows']} Windows, "
                f"{fleet['ios']} iPads; {workload.lost} lost; {workload.latency * 1000:.0f} ms latency; "
                f"setup {time.perf_counter() - t0:.1f} s (in the emulators' process)"
            )
            modules, seconds = warm_up(Path(config), root)
            print(f"Warm-up: {modules} modules imported in {seconds:.1f} s; each run is forked from this process")
            intune_fleet = fleet["windows"] + fleet["ios"]
            list_pages = math.ceil(fleet["chromeos"] / 300)
            intune_pages = math.ceil(intune_fleet / 1000)

            for workers, label in (
                (1, "Chrome fleet listing, one sequential listing"),
                (8, "Chrome fleet listing, concurrent OU subtrees"),
            ):

                def listing(workers: int = workers) -> dict[str, Any]:
                    url = setup["urls"]["google"]
                    google = GoogleConfig(
                        directory_endpoint=url, policy_endpoint=url, credentials_file_env="K12_BENCH_NONE"
                    )
                    backend = GoogleBackend(google, counter=CallCounter(), workers=workers)
                    return {"devices": len(backend.inventory_records(fleet["chromeos"]))}

                row = measure(label, listing, emulators, args.profile)
                cut = {"google orgunits.list": 1} if workers > 1 else {}  # the OU list the cut is made from
                rows.append(finish(row, {"google chromeosdevices.list": list_pages, **cut}))

            def sync() -> dict[str, Any]:
                started = time.perf_counter()
                with Session.open(config) as session:
                    opened = time.perf_counter() - started
                    done = sync_inventory(session.workspace)
                phases = {"open session": opened, "sync": time.perf_counter() - started - opened}
                return {"matched": len(done.result.devices), "phases_s": _rounded(phases)}

            row = measure("inventory sync", sync, emulators, args.profile)
            rows.append(
                finish(
                    row,
                    {
                        "google chromeosdevices.list": list_pages,
                        "google orgunits.list": 1,
                        "graph GET managedDevices": intune_pages,
                    },
                )
            )

            def policies() -> dict[str, Any]:
                marks = [time.perf_counter()]
                with Session.open(config) as session:
                    marks.append(time.perf_counter())
                    plan = session.plan(("policy",))
                    marks.append(time.perf_counter())
                    report = session.apply(plan)
                    marks.append(time.perf_counter())
                spans = [after - before for before, after in itertools.pairwise(marks)]
                phases = dict(zip(("open session", "plan", "apply"), spans, strict=True))
                touched = {c.id.key.split("|")[0] for c in plan.changes if c.id.type.startswith("ou_")}
                return {
                    "changes": len(plan.changes),
                    "outcomes": dict(report.counts()),
                    "ous_changed": len(touched),
                    "phases_s": _rounded(phases),
                }

            if not args.skip_policies:
                row = measure("plan + apply, 30 policies", policies, emulators, args.profile)
                writes = {k: row["google"][k] for k in POLICY_WRITES if row["google"][k]}
                rows.append(
                    finish(
                        row,
                        {
                            "google orgunits.list": 1,
                            # the plan reads every OU; the apply of the reviewed plan re-reads the OUs it changes
                            "google policies.resolve": (ous + row["result"]["ous_changed"]) * len(RESOLVE_FILTERS),
                            **{f"google {k}": v for k, v in writes.items()},  # one per OU and namespace changed
                        },
                    )
                )

            def night(which: str) -> Callable[[], dict[str, Any]]:
                def run() -> dict[str, Any]:
                    use_inventory(root, which)
                    started = time.perf_counter()
                    with Session.open(config) as session:
                        opened = time.perf_counter() - started
                        outcome = run_lockdown(session)
                    phases = {"open session": opened, **outcome.seconds}
                    return {"outcomes": dict(outcome.summary.totals), "phases_s": _rounded(phases)}

                return run

            for which, label in (
                ("lost", f"lockdown, {workload.lost} lost"),
                ("quiet", f"quiet night, {workload.quiet} lost"),
            ):
                by = setup[which]
                row = measure(label, night(which), emulators, args.profile)
                minimum = night_minimum(by, list_pages, intune_pages)
                rows.append(finish(row, minimum))
            label = "quiet night again, as a new command (Python start-up and imports included)"
            rows.append(cold_command(label, Path(config), emulators))
        finally:
            emulators.stop()
    peak = max(row["peak_rss_mib"] for row in rows)
    for row in rows:
        show(row)
    print(f"\npeak RSS of the runs (each a process of its own; the emulators run in another): {peak} MiB")
    result = {
        "schema": SCHEMA,
        "benchmark": args.name,
        "command": "bench/bench_district.py " + " ".join(sys.argv[1:]),
        "workload": workload.as_dict()
        | {
            "chromebooks": fleet["chromeos"],
            "windows": fleet["windows"],
            "ipads": fleet["ios"],
            "org_units": ous,
            "policies": 30,
        },
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "peak_rss_mib": peak,
        "runs": rows,
    }
    if not args.no_json:
        out = REPO / "bench" / "results" / f"{args.name}.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
        print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
