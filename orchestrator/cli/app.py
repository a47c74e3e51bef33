"""Command line: parse arguments, call the library, render, map errors to exit codes (0 ok, 1 error, 2 drift)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.backends.registry import CATALOG
from orchestrator.core.errors import OrchestratorError, PolicyError
from orchestrator.schooltime.coverage import coverage as calendar_coverage


def _console(stderr: bool = False) -> Console:
    """Rich console; when output is not a terminal (CI logs, cron mail) use a readable fixed width.

    Emoji codes are off: `devices.csv:100:` is a place in a file, not the 💯 emoji.
    """
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, highlight=False, emoji=False, width=None if probe.is_terminal else 160)


console = _console()
err_console = _console(stderr=True)
SCOPES = ("policy", "lockdown", "maintenance")


def _fail(message: str) -> None:
    err_console.print(f"[red]error:[/] {message}", markup=True, soft_wrap=True)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into a clear message and exit 1; never show a traceback for bad input."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PolicyError as exc:
            for diagnostic in exc.diagnostics:
                err_console.print(str(diagnostic), markup=False, soft_wrap=True)
            err_console.print(f"[red]{len(exc.diagnostics)} problem(s) found.[/]")
            sys.exit(1)
        except OrchestratorError as exc:
            _fail(escape(str(exc)))
            sys.exit(1)
        except KeyboardInterrupt:
            _fail("interrupted; the journal holds what was done (run the same command again to resume)")
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="orchestrator.yaml to use (default: ./orchestrator.yaml).",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Override the journal path from the config.",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", help="Log line format.")
@click.option("-v", "--verbose", is_flag=True, help="Log API calls and retries.")
@click.version_option(package_name="k12-orchestrator")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, journal_path: str | None, log_format: str, verbose: bool) -> None:
    """K-12 fleet orchestrator: policies in git, reconciled against Google Admin, Intune and network gear.

    Example: orchestrator validate && orchestrator plan --out plan.json && orchestrator apply plan.json
    """
    from orchestrator.cli.logs import setup_logging

    setup_logging(log_format, logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = {"config": config_path, "journal": journal_path}


def _workspace(ctx: click.Context):
    from orchestrator.jobs.workspace import open_workspace

    return open_workspace(ctx.obj["config"], journal=ctx.obj["journal"])


@contextmanager
def _session(ctx: click.Context, backends: tuple[str, ...]) -> Iterator[Any]:
    """Workspace + connected backends + journal, closed on exit.

    Backends named here (by --backend, or a saved plan's list) must be configured and usable; with none named,
    every configured one is used and the unconfigured ones are skipped and listed (never silently).
    """
    from orchestrator.engine.journal import Journal
    from orchestrator.jobs.connect import open_backends

    ws = _workspace(ctx)
    connections = open_backends(ws.config, backends or None, required=bool(backends))
    journal = Journal(ws.journal_path)
    try:
        yield ws, connections, journal
    finally:
        journal.close()
        connections.close()


backend_option = click.option(
    "--backend",
    "backends",
    multiple=True,
    type=click.Choice(list(CATALOG.names())),
    help="Only these backends (repeatable; default: every configured one).",
)
pii_option = click.option("--show-pii", is_flag=True, help="Show student emails and names (redacted by default).")


# validate / schema ----------------------------------------------------------------------------------
@main.command()
@click.pass_context
@handle_errors
def validate(ctx: click.Context) -> None:
    """Check every policy document and the inventory; print a summary.

    Example: orchestrator validate
    """
    ws = _workspace(ctx)
    table = Table(title=f"Policies in {ws.config.policies}", show_header=True, header_style="bold")
    table.add_column("kind")
    table.add_column("documents", justify="right")
    table.add_column("names")
    for kind, count in sorted(ws.policies.counts().items()):
        names = ", ".join(sorted(p.model.name for p in ws.policies.policies if p.model.kind == kind))
        table.add_row(kind, str(count), names)
    console.print(table)
    statuses: dict[str, int] = {}
    for device in ws.inventory.devices:
        statuses[device.inventoryStatus] = statuses.get(device.inventoryStatus, 0) + 1
    shown = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    console.print(f"Inventory {ws.inventory.file}: {len(ws.inventory.devices)} devices ({shown or 'empty'}).")
    # A calendar that has run out (or never had class days) would open every window: fail here, warn early.
    coverage = calendar_coverage(ws.policies, ws.repo_root)
    for warning in coverage.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(str(warning))}", soft_wrap=True)
    if coverage.errors:
        raise PolicyError(coverage.errors)
    console.print(f"[green]OK[/]: {len(ws.policies.policies)} policy documents are valid.")


@main.command()
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@handle_errors
def schema(out: str | None) -> None:
    """Print the JSON Schema of every policy kind (for editor autocompletion).

    Example: orchestrator schema --out .orchestrator/schema.json
    """
    from orchestrator.policy.schema import policy_schema

    text = json.dumps(policy_schema(), indent=2, sort_keys=True)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
        console.print(f"Wrote {out}")
    else:
        click.echo(text)


# plan / apply / drift -------------------------------------------------------------------------------
def unchecked_resources(ws: Any, skipped: list[str], scopes: tuple[str, ...]) -> dict[str, int]:
    """Desired resources per skipped backend in `scopes`: what a plan without that backend cannot see.

    compile_desired is pure (no I/O), so this costs no API call and works without credentials.
    """
    from orchestrator.engine.compile import compile_desired

    counts = dict.fromkeys(skipped, 0)
    for resource in compile_desired(CATALOG, ws.policies, ws.inventory, skipped, scopes):
        counts[resource.id.backend] += 1
    return counts


def plan_in_session(
    ws: Any, connections: Any, journal: Any, scopes: tuple[str, ...], status: str, *, override_caps: bool = False
) -> Any:
    """Compile, observe and diff for `scopes` with an open session, showing `status` while observing.

    Every skipped backend stays visible: the plan's notes say how many desired resources it was not checked
    for, and `connections.unchecked` carries the counts (drift fails on them).
    """
    from orchestrator.engine.plan import policy_commit
    from orchestrator.engine.reconcile import make_plan

    connections.unchecked = unchecked_resources(ws, connections.skipped, scopes)
    notes = list(connections.notes)
    for name, count in connections.unchecked.items():
        if count:
            notes.append(
                f"{name}: skipped, but the policies want {count} resource(s) there; they were NOT checked "
                "(configure it, or limit the run with --backend)"
            )
    with console.status(status):
        return make_plan(
            catalog=CATALOG,
            policies=ws.policies,
            inventory=ws.inventory,
            backends=connections.backends,
            journal=journal,
            scopes=scopes,
            notes=notes,
            policy_commit=policy_commit(ws.config.path(ws.config.policies)),
            override_caps=override_caps,
        )


def _plan_with_skips(
    ctx: click.Context, backends: tuple[str, ...], scopes: tuple[str, ...]
) -> tuple[Any, dict[str, int], dict[str, int]]:
    """(plan, API calls made to observe, desired resources per skipped backend)."""
    with _session(ctx, backends) as (ws, connections, journal):
        plan = plan_in_session(ws, connections, journal, scopes, "Observing the consoles and network gear...")
        return plan, connections.counter.as_dict(), dict(connections.unchecked)


def _build_plan(ctx: click.Context, backends: tuple[str, ...], scopes: tuple[str, ...]):
    plan, calls, _ = _plan_with_skips(ctx, backends, scopes)
    return plan, calls


def _render(plan: Any, fmt: str, show_pii: bool, unchecked: dict[str, int] | None = None) -> None:
    """Render `plan`; skipped backends with desired resources are called out in every format."""
    from orchestrator.cli.render import render_json, render_markdown, render_text

    unchecked = unchecked or {}
    missed = {name: count for name, count in unchecked.items() if count}
    warning = (
        "Not checked: "
        + ", ".join(f"{name} ({count} desired resource(s))" for name, count in missed.items())
        + " - skipped because not configured; the result above covers only "
        + (", ".join(plan.backends) or "no backend")
        + "."
    )
    if fmt == "json":
        data = json.loads(render_json(plan, show_pii))
        data["skipped_backends"] = unchecked
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    elif fmt == "markdown":
        text = render_markdown(plan, show_pii)
        click.echo(text + (f"\n> **{warning}**\n" if missed else ""))
    else:
        render_text(plan, console, show_pii)
        if missed:
            console.print(f"[bold yellow]{escape(warning)}[/]")


scope_option = click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice([*SCOPES, "all"]),
    default=("policy",),
    show_default=True,
    help="Which resources: policy settings, lost-device lockdown, maintenance (reimage).",
)


def _scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    return SCOPES if "all" in scopes else tuple(dict.fromkeys(scopes))


@main.command()
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan for `apply` (JSON).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@backend_option
@scope_option
@pii_option
@click.pass_context
@handle_errors
def plan(
    ctx: click.Context, out: str | None, fmt: str, backends: tuple[str, ...], scopes: tuple[str, ...], show_pii: bool
) -> None:
    """Show what apply would change, each change traced to its policy file:line.

    Example: orchestrator plan --out plan.json --format markdown > plan.md
    """
    the_plan, calls, unchecked = _plan_with_skips(ctx, backends, _scopes(scopes))
    if out:
        the_plan.save(out)
    _render(the_plan, fmt, show_pii, unchecked)
    if out and fmt == "text":
        console.print(f"Saved plan {the_plan.plan_id} to {out} ({sum(calls.values())} API calls to observe).")


@main.command()
@backend_option
@scope_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text")
@pii_option
@click.pass_context
@handle_errors
def drift(ctx: click.Context, backends: tuple[str, ...], scopes: tuple[str, ...], fmt: str, show_pii: bool) -> None:
    """Exit 0 when everything is in sync, 2 when something drifted, 1 on error.

    A backend skipped as not configured while the policies want resources there is an error (1): its drift
    cannot be known, so "in sync" would be a guess. Limit the check with --backend to leave it out on purpose.

    Example: orchestrator drift || echo "drift found"
    """
    the_plan, _, unchecked = _plan_with_skips(ctx, backends, _scopes(scopes))
    _render(the_plan, fmt, show_pii, unchecked)
    missed = sorted(name for name, count in unchecked.items() if count)
    if missed:
        _fail(f"cannot tell drift for {', '.join(missed)}: not configured, but the policies want resources there")
        sys.exit(1)
    sys.exit(2 if the_plan.changes else 0)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def _print_report(report: Any, show_pii: bool) -> None:
    from orchestrator.core.redact import redact_text

    counts = report.counts()
    table = Table(show_header=True, header_style="bold", title=f"Run {report.run_id}")
    for column in ("state", "resource", "detail"):
        table.add_column(column, overflow="fold")
    for key, state in report.states.items():
        if state in ("succeeded", "skipped") and len(report.states) > 40:
            continue
        change = report.changes[key]
        detail = report.details.get(key, "")
        seconds = report.responses.get(key, {}).get("seconds")
        if seconds is not None:
            detail = f"{detail} ({float(seconds):.1f} s)".strip()
        style = {"failed": "red", "unknown": "red", "deferred": "yellow", "succeeded": "green"}.get(state, "")
        table.add_row(
            f"[{style}]{state}[/]" if style else state, str(change.id), detail if show_pii else redact_text(detail)
        )
    if report.states:
        console.print(table)
    console.print(
        "Applied: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if counts else "Nothing to apply."
    )


def run_apply(
    ctx: click.Context,
    the_plan: Any,
    *,
    kind: str,
    backends: tuple[str, ...],
    gates: Any,
    check_stale: bool,
    show_pii: bool,
) -> Any:
    from orchestrator.engine.apply import Executor

    with _session(ctx, backends or tuple(the_plan.backends)) as (ws, connections, journal), _progress() as progress:
        task = progress.add_task("Applying", total=len(the_plan.changes))
        executor = Executor(
            catalog=CATALOG,
            backends=connections.backends,
            journal=journal,
            policies=ws.policies,
            repo_root=ws.repo_root,
            progress=lambda change, state: progress.advance(task),
        )
        report = executor.apply(the_plan, kind=kind, gates=gates, check_stale=check_stale)
    _print_report(report, show_pii)
    console.print(f"Journal: {ws.journal_path} (run {report.run_id}); `orchestrator journal --run {report.run_id}`")
    return report


gate_options = [
    click.option(
        "--max-destructive",
        type=int,
        default=None,
        help="Refuse more than this many destructive device actions in this run.",
    ),
    click.option(
        "--override-blast-radius",
        is_flag=True,
        help="Allow destructive actions beyond max_devices_per_window / --max-destructive.",
    ),
    click.option("--acknowledge-deprovision", is_flag=True, help="Required before any deprovision runs."),
]


def with_gate_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(gate_options):
        fn = option(fn)
    return fn


@main.command()
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@backend_option
@scope_option
@with_gate_options
@pii_option
@click.pass_context
@handle_errors
def apply(
    ctx: click.Context,
    plan_file: str | None,
    yes: bool,
    backends: tuple[str, ...],
    scopes: tuple[str, ...],
    max_destructive: int | None,
    override_blast_radius: bool,
    acknowledge_deprovision: bool,
    show_pii: bool,
) -> None:
    """Apply a saved plan exactly (refusing if the world changed), or plan, confirm and apply.

    Example: orchestrator apply plan.json
    """
    from orchestrator.cli.render import render_text
    from orchestrator.engine.apply import GateOptions
    from orchestrator.engine.plan import Plan

    if plan_file:
        the_plan = Plan.load(plan_file)
    else:
        the_plan, _ = _build_plan(ctx, backends, _scopes(scopes))
        render_text(the_plan, console, show_pii)
        if not the_plan.changes:
            return
        if not yes:
            if not sys.stdin.isatty():
                _fail("no plan file and no --yes: refusing to apply without confirmation")
                sys.exit(1)
            click.confirm("Apply these changes?", abort=True)
    gates = GateOptions(
        max_destructive=max_destructive,
        override_blast_radius=override_blast_radius,
        acknowledge_deprovision=acknowledge_deprovision,
    )
    report = run_apply(ctx, the_plan, kind="apply", backends=backends, gates=gates, check_stale=True, show_pii=show_pii)
    sys.exit(0 if report.ok else 1)


# sandbox --------------------------------------------------------------------------------------------
@main.command()
@click.option("--devices", type=int, default=120, show_default=True, help="Devices in the generated district.")
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--google-port", type=int, default=8801, show_default=True, help="Directory + Chrome Policy API port.")
@click.option("--graph-port", type=int, default=8803, show_default=True, help="Microsoft Graph API port.")
@click.option("--latency", type=float, default=0.0, help="Seconds of latency added to every API call.")
@handle_errors
def sandbox(devices: int, seed: int, host: str, google_port: int, graph_port: int, latency: float) -> None:
    """Run the Google Admin, Chrome Policy and Graph emulators with a generated district until Ctrl-C.

    Example: orchestrator sandbox --devices 5000
    """
    from orchestrator.sandbox.runner import run_sandbox

    run_sandbox(
        host=host, ports=(google_port, graph_port), devices=devices, seed=seed, latency=latency, console=console
    )
