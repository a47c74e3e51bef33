"""The compass workload, District-100k, and the emulators that serve it from a child process.

District-100k: 100,000 Chromebooks in 400 org units, 15,000 Windows laptops, 5,000 iPads, 30 policies, 500
devices lost, 50 ms on every reply, and the real quotas (the pacers at the published limits: Directory
2,400/min, Chrome Policy reads 5/s per user and writes 30/min, Intune device writes 200 and configuration
writes 100 per 20 s). The emulators run in a forked child so the client's CPU time and peak RSS are its own;
the parent asks the child for the per-endpoint request counts the emulators saw.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import random
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from orchestrator.inventory.devices import Device, write_inventory_csv
from orchestrator.sandbox.district import District, generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.graph_state import GraphState
from orchestrator.sandbox.lost_policy import lost_device_policy

MIX = (20, 3, 1)  # Chromebooks : Windows : iPads
APPS = """\
kind: AppPush
name: student-core-apps
targets:
  google_ous: [/Students]
  intune_groups: [All Student Devices]
chrome:
  - id: ghbmnnjooekpmoecnnnilnnbdlolhkhi
    install: force
  - id: mkaakpdehdafacodkgkpghoibnmamcme
    install: normal
    pinned: true
intune:
  - app: Microsoft Word
    intent: required
"""
FILTER = """\
kind: WebFilter
name: filter-{n:02d}
targets:
  google_ous: [{ou}]
blocked: [{blocked}]
allowed: [khanacademy.org]
safe_search: true
youtube: {youtube}
"""
WINDOWS_FILTER = """\
kind: WebFilter
name: secondary-windows
targets:
  intune_groups: [Secondary Windows Laptops]
blocked: [tiktok.com, discord.com]
safe_search: true
"""


@dataclass
class Workload:
    devices: int = 120_000
    ous: int = 400
    lost: int = 500
    quiet: int = 10
    latency: float = 0.05
    seed: int = 2026

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build(workload: Workload) -> District:
    return generate(devices=workload.devices, seed=workload.seed, ous=workload.ous, mix=MIX)


def write_policies(folder: Path, district: District, cap: int) -> int:
    """30 policies: 27 web filters on school OUs, one on Windows laptops, the core apps, the lost-device policy."""
    folder.mkdir(exist_ok=True)
    schools = sorted({ou.rsplit("/Grade-", 1)[0] for ou in district.ous if "/Grade-" in ou})
    grades = sorted(ou for ou in district.ous if "/Grade-" in ou)
    chosen = (schools[:: max(1, len(schools) // 27)] + grades[:: max(1, len(grades) // 27)])[:27]
    for n, ou in enumerate(chosen):
        blocked = ", ".join(f"blocked-{n}-{i}.example.com" for i in range(5))
        text = FILTER.format(n=n, ou=ou, blocked=blocked, youtube=("strict", "moderate")[n % 2])
        (folder / f"filter-{n:02d}.yaml").write_text(text)
    (folder / "windows.yaml").write_text(WINDOWS_FILTER)
    (folder / "apps.yaml").write_text(APPS)
    (folder / "lost.yaml").write_text(lost_device_policy(cap))
    return len(chosen) + 3


def inventory(district: District, lost: set[str]) -> list[Device]:
    return [
        dataclasses.replace(s.device, inventoryStatus="lost" if s.device.serialNumber in lost else "active")
        for s in district.devices
    ]


def pick_lost(district: District, count: int, seed: int, exclude: set[str] = frozenset()) -> set[str]:
    """`count` devices spread over the fleet, each platform in proportion to its share."""
    serials = [s.device.serialNumber for s in district.devices if s.device.serialNumber not in exclude]
    return set(random.Random(seed).sample(serials, count))


def write_repo(root: Path, district: District, devices: list[Device], urls: dict[str, str], cap: int) -> Path:
    """A district repository as the command line sees it, with the pacers at the published quotas."""
    write_policies(root / "policies", district, cap)
    (root / "inventory").mkdir(exist_ok=True)
    (root / "inventory" / "devices.csv").write_text(write_inventory_csv(devices))
    config = root / "orchestrator.yaml"
    config.write_text(
        "journal: journal.db\nreports: reports\n"
        f"google:\n  directory_endpoint: {urls['google']}\n  policy_endpoint: {urls['google']}\n"
        "  requests_per_minute: 2400\n  policy_reads_per_minute: 300\n  policy_writes_per_minute: 30\n"
        f"intune:\n  graph_endpoint: {urls['graph']}\n  device_writes_per_20s: 200\n  config_writes_per_20s: 100\n"
    )
    return config


def use_inventory(root: Path, night: str) -> None:
    """Make root/inventory-<night>.csv the repository's inventory."""
    (root / "inventory" / "devices.csv").write_text((root / f"inventory-{night}.csv").read_text())


def _serve_graph(state: GraphState, latency: float, conn: Connection) -> None:
    """The Graph emulator's own process (Google and Microsoft are separate services: one's load must not slow
    the other's replies, as it would sharing one interpreter); answers counts until told to stop."""
    graph = GraphEmulator.start_local(state=state)
    graph.faults.latency = latency
    conn.send(graph.url)
    while conn.recv() == "counts":
        conn.send(dict(graph.calls))
        graph.reset_counts()
    graph.stop()
    conn.send("stopped")


def _serve(workload: Workload, root: Path, conn: Connection) -> None:
    """The child: generate the district, start its emulators (Graph in a process of its own), write the
    repository and the nights' inventories (root/inventory-lost.csv, root/inventory-quiet.csv), report what the
    parent needs, then answer counts."""
    district = build(workload)
    google = GoogleEmulator(district, seed=workload.seed).start()
    google.faults.latency = workload.latency
    context = multiprocessing.get_context("fork")
    to_graph, graph_end = context.Pipe()
    graph = context.Process(
        target=_serve_graph, args=(GraphState.from_district(district), workload.latency, graph_end), daemon=True
    )
    graph.start()
    graph_end.close()
    urls = {"google": google.url, "graph": to_graph.recv()}
    lost = pick_lost(district, workload.lost, workload.seed)
    quiet = pick_lost(district, workload.quiet, workload.seed + 1, exclude=lost)
    config = write_repo(root, district, inventory(district, set()), urls, max(1, workload.lost))
    (root / "inventory-lost.csv").write_text(write_inventory_csv(inventory(district, lost)))
    (root / "inventory-quiet.csv").write_text(write_inventory_csv(inventory(district, quiet)))
    platform = {s.device.serialNumber: s.device.platform for s in district.devices}
    conn.send(
        {
            "config": str(config),
            "urls": urls,
            "fleet": Counter(s.device.platform for s in district.devices),
            "ous": len(district.ous),
            "lost": Counter(platform[s] for s in lost),
            "quiet": Counter(platform[s] for s in quiet),
        }
    )
    while True:
        command = conn.recv()
        if command == "counts":
            to_graph.send("counts")
            conn.send({"google": dict(google.calls), "graph": to_graph.recv()})
            google.reset_counts()
        else:
            google.stop()
            to_graph.send("stop")
            to_graph.recv()
            graph.join(timeout=30)
            conn.send("stopped")
            return


class Emulators:
    """District-100k and its emulators in forked child processes (Google's, and Graph's below it), so the
    parent's CPU and peak RSS are the client's alone; `setup` says where the repository is and what the
    district holds; `counts()` returns and resets the emulators' per-endpoint request counts."""

    def __init__(self, workload: Workload, root: Path):
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(workload, root, child))  # not a daemon: it has a child
        self._process.start()
        child.close()  # the child's end lives in the child only: if it dies, recv() raises EOFError, never hangs
        self.setup: dict[str, Any] = self._conn.recv()

    def counts(self) -> dict[str, Counter[str]]:
        self._conn.send("counts")
        return {name: Counter(calls) for name, calls in self._conn.recv().items()}

    def stop(self) -> None:
        self._conn.send("stop")
        self._conn.recv()
        self._process.join(timeout=30)
