"""`orchestrator sandbox`: the local emulators with a generated district (or a provider's repository of
districts, `--tenants N`), for trying the commands safely."""

from __future__ import annotations

import signal
import threading

import click
from rich.table import Table

from orchestrator.cli.app import console, handle_errors
from orchestrator.sandbox.runner import run_sandbox
from orchestrator.sandbox.tenants import build_provider, wait_until_stopped


@click.command()
@click.option(
    "--devices",
    type=int,
    default=120,
    show_default=True,
    help="Devices in the generated district (with --tenants: in the largest one).",
)
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
@click.option(
    "--tenants",
    type=click.IntRange(min=1),
    default=None,
    help="A provider's repository of N districts, each with its own consoles (ports chosen freely, written into "
    "each district's orchestrator.yaml), sizes, time zone and calendar, sharing baselines/.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="sandbox-districts",
    show_default=True,
    help="With --tenants: where the repository is written (rewritten on every start).",
)
@handle_errors
def sandbox(
    devices: int,
    seed: int,
    host: str,
    google_port: int,
    graph_port: int,
    latency: float,
    lived_in: bool,
    tenants: int | None,
    out: str,
) -> None:
    """Run the Google Admin, Chrome Policy and Graph emulators with a generated district until Ctrl-C.

    Example: orchestrator sandbox --devices 5000
    Example: orchestrator sandbox --tenants 3 --out provider && cd provider && orchestrator plan --all-tenants
    """
    if tenants is None:
        run_sandbox(
            host=host,
            ports=(google_port, graph_port),
            devices=devices,
            seed=seed,
            latency=latency,
            console=console,
            lived_in=lived_in,
        )
        return
    if lived_in:
        raise click.UsageError("--lived-in applies to the one-district sandbox, not --tenants")
    districts = build_provider(out, tenants, devices, seed=seed, latency=latency, host=host)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    table = Table(title=f"Sandbox provider: {len(districts)} district(s) in {out}/", header_style="bold")
    for column in ("district", "devices", "org units", "time zone", "Google", "Graph"):
        table.add_column(column, justify="right" if column in ("devices", "org units") else "left")
    for district in districts:
        table.add_row(
            district.name,
            str(district.devices),
            str(district.org_units),
            district.timezone,
            district.google.url,
            district.graph.url,
        )
    console.print(table)
    console.print(
        f"Try: cd {out} && orchestrator validate --all-tenants && orchestrator plan --all-tenants. Ctrl-C stops.",
        soft_wrap=True,
        markup=False,
    )
    wait_until_stopped(stop, districts)
