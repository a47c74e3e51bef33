"""`orchestrator sandbox`: the local emulators with a generated district, for trying the commands safely."""

from __future__ import annotations

import click

from orchestrator.cli.app import console, handle_errors
from orchestrator.sandbox.runner import run_sandbox


@click.command()
@click.option("--devices", type=int, default=120, show_default=True, help="Devices in the generated district.")
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--google-port", type=int, default=8801, show_default=True, help="Directory + Chrome Policy API port.")
@click.option("--graph-port", type=int, default=8803, show_default=True, help="Microsoft Graph API port.")
@click.option("--latency", type=float, default=0.0, help="Seconds of latency added to every API call.")
@click.option(
    "--lived-in",
    is_flag=True,
    help="Start with Chrome settings already made by hand at several org units (to try `export`).",
)
@handle_errors
def sandbox(
    devices: int, seed: int, host: str, google_port: int, graph_port: int, latency: float, lived_in: bool
) -> None:
    """Run the Google Admin, Chrome Policy and Graph emulators with a generated district until Ctrl-C.

    Example: orchestrator sandbox --devices 5000
    """
    run_sandbox(
        host=host,
        ports=(google_port, graph_port),
        devices=devices,
        seed=seed,
        latency=latency,
        console=console,
        lived_in=lived_in,
    )
