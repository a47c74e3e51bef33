"""`orchestrator sandbox`: the Google and Graph emulators with one generated district, until stopped."""

from __future__ import annotations

import signal
import threading

from rich.console import Console

from orchestrator.core.errors import OrchestratorError
from orchestrator.sandbox.district import LIVED_IN_GOOGLE, generate
from orchestrator.sandbox.google_emulator import GoogleEmulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.graph_state import GraphState, set_by_hand


def run_sandbox(
    *,
    host: str,
    ports: tuple[int, int],
    devices: int,
    seed: int,
    latency: float,
    console: Console,
    lived_in: bool = False,
) -> None:
    district = generate(devices=devices, seed=seed)
    try:
        google = GoogleEmulator(district, host, ports[0], seed=seed, latency=latency).start()
        graph = GraphEmulator(GraphState.from_district(district), host, ports[1])
    except OSError as exc:
        raise OrchestratorError(
            f"cannot listen on {host}:{ports[0]}/{ports[1]}: {exc.strerror} (is another sandbox running? "
            "choose other ports with --google-port/--graph-port and update orchestrator.yaml)"
        ) from exc
    graph.faults.latency = latency
    made_in_intune = 0
    if lived_in:
        google.state.set_by_hand(LIVED_IN_GOOGLE)
        made_in_intune = set_by_hand(graph.state)
    graph.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"Sandbox district: {len(district.devices)} devices, {len(district.ous)} org units (seed {seed}).")
    if lived_in:
        console.print(
            f"  lived in: {len(LIVED_IN_GOOGLE)} Chrome settings already set by hand at several org units and "
            f"{made_in_intune} Intune web filters and app assignments "
            "(try `orchestrator export --backend google --backend intune --out policies/exported`)",
            soft_wrap=True,
        )
    console.print(f"  Google Admin + Chrome Policy emulator  {google.url}")
    console.print(f"  Microsoft Graph emulator               {graph.url}")
    console.print(
        "Point orchestrator.yaml's *_endpoint keys here (the sample config already does). Ctrl-C stops.",
        soft_wrap=True,
    )
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        google.stop()
        graph.stop()
