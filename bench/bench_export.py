"""Benchmark: `export` against `plan` on the same lived-in Google emulator (calls and wall time).

A generated district (N devices, 400 OUs) gets the sandbox's lived-in settings plus, at every school OU, a URL
blocklist, SafeSearch and two apps set by hand. Then, each through a fresh GoogleBackend over HTTP:
- plan: the sample policies compiled and planned by the engine (`make_plan`, as `orchestrator plan`);
- export: `observe([])` and the Google exporter + writer (as `orchestrator export`), files rendered in memory.
Prints wall time and HTTP calls by endpoint for each (export must read no more than plan).

    .venv/bin/python bench/bench_export.py --devices 10000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.backends.google.backend import GoogleBackend  # noqa: E402
from orchestrator.backends.google.config import GoogleConfig  # noqa: E402
from orchestrator.backends.pacing import CallCounter  # noqa: E402
from orchestrator.backends.registry import CATALOG  # noqa: E402
from orchestrator.core.backend import ExportInput  # noqa: E402
from orchestrator.engine.journal import Journal  # noqa: E402
from orchestrator.engine.reconcile import make_plan  # noqa: E402
from orchestrator.inventory.devices import Inventory  # noqa: E402
from orchestrator.policy.loader import load_policies  # noqa: E402
from orchestrator.policy.writer import render_file  # noqa: E402
from orchestrator.sandbox.district import LIVED_IN_GOOGLE, generate  # noqa: E402
from orchestrator.sandbox.google_emulator import GoogleEmulator  # noqa: E402

APPS = ("ghbmnnjooekpmoecnnnilnnbdlolhkhi", "mkaakpdehdafacodkgkpghoibnmamcme")


def lived_in(emulator: GoogleEmulator) -> int:
    """The sandbox's lived-in settings plus four settings at every school OU; returns how many were set."""
    settings = list(LIVED_IN_GOOGLE)
    for n, path in enumerate(p for p in emulator.state.ous if p.count("/") == 3 and p.startswith("/Students/")):
        settings += [
            (path, "chrome.users.UrlBlocking", "", {"urlBlocklist": [f"game-{n}.example", "twitch.tv"]}),
            (path, "chrome.users.SafeSearchRestrictedMode", "", {"forceGoogleSafeSearch": True}),
            (path, "chrome.users.apps.InstallType", f"chrome:{APPS[0]}", {"appInstallType": "FORCED"}),
            (path, "chrome.users.apps.InstallType", f"chrome:{APPS[1]}", {"appInstallType": "NORMAL"}),
        ]
    emulator.state.set_by_hand(settings)
    return len(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10000)
    parser.add_argument("--ous", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every emulator reply")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    district = generate(devices=args.devices, seed=args.seed, ous=args.ous)
    emulator = GoogleEmulator(district, seed=args.seed, latency=args.latency).start()
    made = lived_in(emulator)
    config = GoogleConfig(
        directory_endpoint=emulator.url, policy_endpoint=emulator.url, credentials_file_env="K12_BENCH_NO_CREDENTIALS"
    )
    inventory = Inventory(file="generated.csv", devices=[s.device for s in district.devices])
    policies = load_policies(REPO / "policies", display_root=REPO)
    figures: dict[str, tuple[float, Counter[str]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            journal = Journal(Path(tmp) / "journal.db")
            backend = GoogleBackend(config, counter=CallCounter())
            before = Counter(emulator.calls)
            t = time.perf_counter()
            plan = make_plan(
                catalog=CATALOG,
                policies=policies,
                inventory=inventory,
                backends={"google": backend},
                journal=journal,
                scopes=("policy",),
            )
            figures["plan"] = (time.perf_counter() - t, Counter(emulator.calls) - before)
            backend.close()
            journal.close()

        backend = GoogleBackend(config, counter=CallCounter())
        before = Counter(emulator.calls)
        t = time.perf_counter()
        observed = backend.observe([])
        files = CATALOG.spec("google").export(ExportInput(observed, config, None, "2026-11-24T00:00:00Z"))
        text = "".join(render_file(f) for f in files)
        figures["export"] = (time.perf_counter() - t, Counter(emulator.calls) - before)
        backend.close()
    finally:
        emulator.stop()

    documents = sum(len(f.documents) for f in files)
    print(
        f"devices {args.devices} (chromebooks {len(emulator.state.devices)}), org units {len(emulator.state.ous)}, "
        f"latency {args.latency}s; {made} settings set by hand"
    )
    print(f"plan: {len(plan.changes)} changes, {len(plan.unmanaged)} unmanaged")
    print(f"export: {len(files)} files, {documents} documents, {len(text.splitlines())} lines of YAML")
    print("\n              seconds   calls")
    for name, (seconds, calls) in figures.items():
        print(
            f"  {name:<10} {seconds:8.2f} {sum(calls.values()):7d}   "
            + ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
        )


if __name__ == "__main__":
    main()
