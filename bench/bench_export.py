"""Benchmark: `export` against `plan` on the same lived-in Google emulator and Graph emulator (calls, wall time).

A generated district (N devices, 400 OUs) gets the sandbox's lived-in settings plus, at every school OU, a URL
blocklist, SafeSearch and two apps set by hand. Then, each through a fresh GoogleBackend over HTTP:
- plan: the sample policies compiled and planned by the engine (`make_plan`, as `orchestrator plan`);
- export: `observe([])` and the Google exporter + writer (as `orchestrator export`), files rendered in memory.
Prints wall time and HTTP calls by endpoint for each (export must read no more than plan).

Intune (`--web-filters`, `--apps`, `--groups`): the Graph emulator gets that many `K12 WebFilter` pairs (Windows
Settings Catalog policy + iOS profile) and assigned apps, each over its own groups; export (`export_read` and the
Intune exporter) is compared with the plan of the files it wrote, and with its minimum: one list each of
configurationPolicies, deviceConfigurations and mobileApps, settings + assignments per managed policy, one
`groups/{id}` per assigned group.

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
from orchestrator.backends.intune.backend import IntuneBackend  # noqa: E402
from orchestrator.backends.intune.config import IntuneConfig  # noqa: E402
from orchestrator.backends.intune.export_read import read_for_export  # noqa: E402
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
from orchestrator.sandbox.graph_emulator import GraphEmulator  # noqa: E402
from orchestrator.sandbox.graph_state import GraphState  # noqa: E402

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


EDGE = "device_vendor_msft_policy_config_microsoft_edge~policy~microsoft_edge_urlblocklist"
CATALOG_TYPE = "#microsoft.graph.deviceManagementConfiguration"


def intune_lived_in(state: GraphState, filters: int, apps: int, groups: int) -> int:
    """`filters` web filter pairs and `apps` assigned apps over `groups` new groups; returns the group count."""
    ids = [state.add_group(f"Bench Group {g:03d}") for g in range(groups)]
    target = "#microsoft.graph.groupAssignmentTarget"
    for n in range(filters):
        name, domains = f"K12 WebFilter bench-{n:03d}", [f"game-{n}.example", "twitch.tv"]
        child = {
            "@odata.type": CATALOG_TYPE + "SimpleSettingCollectionInstance",
            "settingDefinitionId": f"{EDGE}_urlblocklistdesc",
            "simpleSettingCollectionValue": [
                {"@odata.type": CATALOG_TYPE + "StringSettingValue", "value": d} for d in domains
            ],
        }
        instance = {
            "@odata.type": CATALOG_TYPE + "ChoiceSettingInstance",
            "settingDefinitionId": EDGE,
            "choiceSettingValue": {
                "@odata.type": CATALOG_TYPE + "ChoiceSettingValue",
                "value": f"{EDGE}_1",
                "children": [child],
            },
        }
        body = {
            "name": name,
            "platforms": "windows10",
            "technologies": "mdm",
            "settings": [{"settingInstance": instance}],
        }
        assign = [{"target": {"@odata.type": target, "groupId": ids[n % groups]}}]
        state.assign_policy(state.catalog.create(body, "2026-01-01T00:00:00Z")["id"], assign)
        profile = state.create_config(
            {
                "@odata.type": "#microsoft.graph.iosDeviceFeaturesConfiguration",
                "displayName": name,
                "contentFilterSettings": {
                    "@odata.type": "#microsoft.graph.iosWebContentFilterAutoFilter",
                    "blockedUrls": [f"https://{d}" for d in domains],
                    "allowedUrls": [],
                },
            }
        )
        state.assign_config(profile["id"], assign)
    for n in range(apps):
        group = {"@odata.type": target, "groupId": ids[(n * 7) % groups]}
        state.assign_app(state.add_app(f"Bench App {n:03d}"), [{"intent": "required", "target": group}])
    return groups


def bench_intune(args: argparse.Namespace) -> None:
    state = GraphState.from_district(generate(devices=200, seed=args.seed))
    groups = intune_lived_in(state, args.web_filters, args.apps, args.groups)
    graph = GraphEmulator(state)
    graph.faults.latency = args.latency
    graph.start()
    config = IntuneConfig(graph_endpoint=graph.url)
    figures: dict[str, tuple[float, Counter[str]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            backend = IntuneBackend(config, counter=CallCounter())
            before = Counter(graph.calls)
            t = time.perf_counter()
            files = CATALOG.spec("intune").export(
                ExportInput(read_for_export(backend), config, None, "2026-11-24T00:00:00Z")
            )
            for file in files:
                if file.documents:
                    (Path(tmp) / Path(file.path).name).write_text(render_file(file))
            figures["export"] = (time.perf_counter() - t, Counter(graph.calls) - before)
            backend.close()
            backend = IntuneBackend(config, counter=CallCounter())
            journal = Journal(Path(tmp) / "journal.db")
            before = Counter(graph.calls)
            t = time.perf_counter()
            plan = make_plan(
                catalog=CATALOG,
                policies=load_policies(Path(tmp)),
                inventory=Inventory(file="none.csv", devices=[]),
                backends={"intune": backend},
                journal=journal,
                scopes=("policy",),
            )
            figures["plan"] = (time.perf_counter() - t, Counter(graph.calls) - before)
            backend.close()
            journal.close()
    finally:
        graph.stop()
    documents = sum(len(f.documents) for f in files)
    minimum = 3 + 2 * args.web_filters + groups
    print(
        f"\nIntune: {args.web_filters} web filters (Windows + iOS), {args.apps} assigned apps, {groups} groups, "
        f"latency {args.latency}s; export: {documents} documents, "
        f"{sum(len(f.left_out) for f in files)} left out; plan of the export: {len(plan.changes)} changes"
    )
    print(f"  export minimum {minimum} calls")
    _print(figures)


def _print(figures: dict[str, tuple[float, Counter[str]]]) -> None:
    print("              seconds   calls")
    for name, (seconds, calls) in figures.items():
        print(
            f"  {name:<10} {seconds:8.2f} {sum(calls.values()):7d}   "
            + ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10000)
    parser.add_argument("--ous", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every emulator reply")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--web-filters", type=int, default=40, help="Intune K12 WebFilter pairs")
    parser.add_argument("--apps", type=int, default=100, help="Intune apps assigned to groups")
    parser.add_argument("--groups", type=int, default=50, help="groups the Intune objects are assigned to")
    parser.add_argument("--skip-google", action="store_true", help="only the Intune part")
    args = parser.parse_args()
    if not args.skip_google:
        bench_google(args)
    bench_intune(args)


def bench_google(args: argparse.Namespace) -> None:

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
    print()
    _print(figures)


if __name__ == "__main__":
    main()
