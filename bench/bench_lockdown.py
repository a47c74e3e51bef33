"""Benchmark: the nightly lockdown of N lost devices (Chromebooks + Windows + iPads) in a large district.

The district is District-100k's mix (bench/district.py: Chromebooks, Windows and iPads 20:3:1, so the default
120,000 devices hold 100,000 Chromebooks); bench/bench_district.py runs it with the other District-100k runs.

The job `orchestrator lockdown` runs — `Session.open(orchestrator.yaml)` + `run_lockdown` (plan capped by the
policy and the journal's quarantine history, changes traced to the inventory rows, apply, per-school report)
— through the real GoogleBackend (googleapiclient) and IntuneBackend (msgraph-sdk), opened by their specs from
a generated orchestrator.yaml, over HTTP to the in-process emulators with a fixed latency on every reply.
Prints wall time per phase, HTTP calls by endpoint next to the minimum the page and batch limits allow, the
second run's state-changing calls (must be 0), and peak RSS (emulators included).

    .venv/bin/python bench/bench_lockdown.py                       # 100,000 Chromebooks + 20,000, 500 lost, 50 ms
    .venv/bin/python bench/bench_lockdown.py --devices 10000 --lost 200 --latency 0
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator import LockdownOutcome, Session, run_lockdown  # noqa: E402
from orchestrator.inventory.devices import Device, write_inventory_csv  # noqa: E402
from orchestrator.sandbox.district import generate  # noqa: E402
from orchestrator.sandbox.google_emulator import GoogleEmulator  # noqa: E402
from orchestrator.sandbox.graph_emulator import GraphEmulator  # noqa: E402
from orchestrator.sandbox.graph_state import GraphState  # noqa: E402
from orchestrator.sandbox.lost_policy import lost_device_policy  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from district import MIX  # noqa: E402

GOOGLE_WRITES = ("chromeosdevices.batchChangeStatus",)
GRAPH_WRITES = (
    "POST $batch",
    "POST managedDevices/remoteLock",
    "POST managedDevices/enableLostMode",
    "POST managedDevices/disableLostMode",
)


def inventory_with_lost(district, lost: int) -> tuple[list[Device], Counter[str]]:
    """The district's devices with `lost` of them marked lost: each platform in proportion to its share of the
    fleet, spread evenly across it (so across schools and OUs)."""
    by_platform: dict[str, list[str]] = {}
    for seeded in district.devices:
        by_platform.setdefault(seeded.device.platform, []).append(seeded.device.serialNumber)
    total = len(district.devices)
    lost_serials: set[str] = set()
    platforms = sorted(by_platform, key=lambda p: -len(by_platform[p]))
    for index, platform in enumerate(platforms):
        serials = by_platform[platform]
        want = lost - len(lost_serials) if index == len(platforms) - 1 else round(lost * len(serials) / total)
        step = max(1, len(serials) // max(1, want))
        # a small stagger so a fixed step does not land on one kind of device (e.g. only unsupervised iPads)
        lost_serials.update(serials[min(len(serials) - 1, i * step + i % 4)] for i in range(want))
    devices, counts = [], Counter()
    for seeded in district.devices:
        is_lost = seeded.device.serialNumber in lost_serials
        if is_lost:
            counts[seeded.device.platform] += 1
        devices.append(dataclasses.replace(seeded.device, inventoryStatus="lost" if is_lost else "active"))
    return devices, counts


def write_district(folder: Path, devices: list[Device], cap: int, google_url: str, graph_url: str) -> Path:
    """A district repository as the command line sees it: orchestrator.yaml, the policy, the inventory."""
    (folder / "policies").mkdir()
    (folder / "policies" / "lost.yaml").write_text(lost_device_policy(cap, disable_windows=False))
    (folder / "inventory").mkdir()
    (folder / "inventory" / "devices.csv").write_text(write_inventory_csv(devices))
    config = folder / "orchestrator.yaml"
    config.write_text(
        "journal: journal.db\n"
        "reports: reports\n"
        f"google:\n  directory_endpoint: {google_url}\n  policy_endpoint: {google_url}\n"
        f"intune:\n  graph_endpoint: {graph_url}\n"
    )
    return config


def one_run(config: Path) -> tuple[dict[str, float], LockdownOutcome]:
    """One nightly run, as `orchestrator lockdown` does it (a fresh session: config, inventory, connections)."""
    started = time.perf_counter()
    with Session.open(str(config)) as session:
        opened = time.perf_counter() - started
        outcome = run_lockdown(session)
    times = {"open session": opened, "plan (observe + diff)": outcome.seconds["plan"]}
    if "apply" in outcome.seconds:
        times["apply (send; the plan's observation is passed on)"] = outcome.seconds["apply"]
    return times, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=120_000, help="all devices (Chromebooks:Windows:iPads 20:3:1)")
    parser.add_argument("--ous", type=int, default=400)
    parser.add_argument("--lost", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every emulator reply")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    t0 = time.perf_counter()
    district = generate(devices=args.devices, seed=args.seed, ous=args.ous, mix=MIX)
    google = GoogleEmulator(district, seed=args.seed).start()
    graph = GraphEmulator.start_local(state=GraphState.from_district(district))
    inventory, lost_by_platform = inventory_with_lost(district, args.lost)
    fleet = Counter(s.device.platform for s in district.devices)
    setup = time.perf_counter() - t0
    print(
        f"district: {args.devices} devices ({fleet['chromeos']} Chromebooks, {fleet['windows']} Windows, "
        f"{fleet['ios']} iPads), {len(google.state.ous)} OUs; lost: {dict(lost_by_platform)}; "
        f"latency {args.latency * 1000:.0f} ms; setup {setup:.1f}s"
    )
    google.faults.latency = graph.faults.latency = args.latency

    with tempfile.TemporaryDirectory() as tmp:
        config = write_district(Path(tmp), inventory, max(args.lost, 1), google.url, graph.url)
        try:
            t = time.perf_counter()
            times, first = one_run(config)
            wall = time.perf_counter() - t
            summary = first.summary
            first_google, first_graph = Counter(google.calls), Counter(graph.calls)
            google.reset_counts()
            graph.reset_counts()
            t = time.perf_counter()
            times2, second = one_run(config)
            wall2 = time.perf_counter() - t
        finally:
            google.stop()
            graph.stop()

    n_chrome = lost_by_platform["chromeos"]
    n_intune = lost_by_platform["windows"] + lost_by_platform["ios"]
    intune_fleet = fleet["windows"] + fleet["ios"]
    list_min = math.ceil(fleet["chromeos"] / 300)
    pages_min = math.ceil(intune_fleet / 1000)
    print(f"\nfirst run: {wall:.1f}s wall; " + ", ".join(f"{k} {v:.1f}s" for k, v in times.items()))
    print(f"  outcomes: {dict(summary.totals)}")
    print(f"  {'endpoint':42} {'calls':>6} {'minimum':>8}  note")
    rows = [
        (
            "chromeosdevices.list",
            first_google["chromeosdevices.list"],
            list_min,
            "one pass, or none when reading the lost devices by id is cheaper",
        ),
        (
            "chromeosdevices.batchChangeStatus",
            first_google["chromeosdevices.batchChangeStatus"],
            math.ceil(n_chrome / 50),
            "",
        ),
        ("GET managedDevices", first_graph["GET managedDevices"], pages_min, "pages, or inner by-serial reads"),
        ("POST $batch", first_graph["POST $batch"], math.ceil(n_intune / 20), ""),
        ("  inner remoteLock", first_graph["POST managedDevices/remoteLock"], None, "Windows + unsupervised iPads"),
        ("  inner enableLostMode", first_graph["POST managedDevices/enableLostMode"], None, "supervised iPads"),
        ("GET deviceConfigurations", first_graph["GET deviceConfigurations"], None, "none in a lockdown"),
    ]
    for name, calls, minimum, note in rows:
        print(f"  {name:42} {calls:>6} {'' if minimum is None else minimum:>8}  {note}")
    other = {
        k: v
        for k, v in (first_google + first_graph).items()
        if k not in {r[0] for r in rows} and not k.startswith("POST managedDevices/")
    }
    if other:
        print(f"  other: {dict(other)}")
    writes2 = {k: google.calls[k] for k in GOOGLE_WRITES} | {k: graph.calls[k] for k in GRAPH_WRITES}
    print(f"\nsecond run: {wall2:.1f}s wall; " + ", ".join(f"{k} {v:.1f}s" for k, v in times2.items()))
    print(f"  changes planned: {len(second.plan.changes)}; state-changing calls: {sum(writes2.values())} {writes2}")
    print(
        f"  reads: chromeosdevices.list {google.calls['chromeosdevices.list']}, "
        f"GET managedDevices {graph.calls['GET managedDevices']}"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS (emulators + client in one process): {peak:.0f} MiB")
    if sum(writes2.values()) or not first.ok or not second.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
