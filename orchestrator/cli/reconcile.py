"""The reconcile commands: validate, schema, plan, drift, apply."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.app import (
    backend_option,
    console,
    err_console,
    fail,
    handle_errors,
    open_session,
    pii_option,
    print_applied,
    scope_option,
    scopes_of,
    with_gate_options,
    workspace,
)
from orchestrator.cli.render import render_json, render_markdown, render_text
from orchestrator.core.errors import PolicyError
from orchestrator.engine.apply import GateOptions
from orchestrator.engine.plan import Plan
from orchestrator.engine.settle import unsettled_lines
from orchestrator.policy.schema import policy_schema
from orchestrator.schooltime.coverage import coverage as calendar_coverage


@click.command()
@click.pass_context
@handle_errors
def validate(ctx: click.Context) -> None:
    """Check every policy document and the inventory; print a summary.

    Example: orchestrator validate
    """
    ws = workspace(ctx)
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


@click.command()
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@handle_errors
def schema(out: str | None) -> None:
    """Print the JSON Schema of every policy kind (for editor autocompletion).

    Example: orchestrator schema --out .orchestrator/schema.json
    """
    text = json.dumps(policy_schema(), indent=2, sort_keys=True)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
        console.print(f"Wrote {out}")
    else:
        click.echo(text)


def _plan(
    ctx: click.Context, backends: tuple[str, ...], scopes: tuple[str, ...], *, prune: bool = False
) -> tuple[Plan, int, dict[str, int], list[str]]:
    """(plan, API calls made to observe, desired resources per skipped backend, unsettled destructive actions)."""
    with open_session(ctx, backends) as session:
        plan = session.plan(scopes, prune=prune)
        return plan, sum(session.api_calls().values()), session.unchecked, unsettled_lines(session.journal)


def _print_unsettled(lines: list[str]) -> None:
    for line in lines:
        err_console.print(f"[red]unknown outcome:[/] {escape(line)}", soft_wrap=True)


prune_option = click.option(
    "--prune",
    is_flag=True,
    help="This run only: also delete console settings no policy mentions (default: list them as unmanaged).",
)


def _render(plan: Plan, fmt: str, show_pii: bool, unchecked: dict[str, int]) -> None:
    """Render `plan`; skipped backends with desired resources are called out in every format."""
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


@click.command()
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan for `apply` (JSON).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@backend_option
@scope_option
@prune_option
@pii_option
@click.pass_context
@handle_errors
def plan(
    ctx: click.Context,
    out: str | None,
    fmt: str,
    backends: tuple[str, ...],
    scopes: tuple[str, ...],
    prune: bool,
    show_pii: bool,
) -> None:
    """Show what apply would change, each change traced to its policy file:line.

    Settings in the consoles that no policy mentions are listed as unmanaged and left alone, unless the
    config declares their scope managed (`manage: prune: true`) or `--prune` is given.

    Example: orchestrator plan --out plan.json --format markdown > plan.md
    """
    the_plan, calls, unchecked, unsettled = _plan(ctx, backends, scopes_of(scopes), prune=prune)
    _print_unsettled(unsettled)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)  # plans/{tenant}.json in a fresh repository
        the_plan.save(out)
    _render(the_plan, fmt, show_pii, unchecked)
    if out and fmt == "text":
        console.print(f"Saved plan {the_plan.plan_id} to {out} ({calls} API calls to observe).")


@click.command()
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
    the_plan, _, unchecked, unsettled = _plan(ctx, backends, scopes_of(scopes))
    _print_unsettled(unsettled)
    _render(the_plan, fmt, show_pii, unchecked)
    missed = sorted(name for name, count in unchecked.items() if count)
    if missed:
        fail(f"cannot tell drift for {', '.join(missed)}: not configured, but the policies want resources there")
        sys.exit(1)
    sys.exit(2 if the_plan.changes or unsettled else 0)


@click.command()
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@backend_option
@scope_option
@prune_option
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
    prune: bool,
    max_destructive: int | None,
    override_blast_radius: bool,
    acknowledge_deprovision: bool,
    show_pii: bool,
) -> None:
    """Apply a saved plan exactly (refusing if the world changed), or plan, confirm and apply.

    Example: orchestrator apply plan.json
    """
    if plan_file:
        the_plan = Plan.load(plan_file)
    else:
        if prune and plan_file:
            fail("--prune makes a new plan; a saved plan is applied exactly as reviewed")
            sys.exit(1)
        the_plan, _, _, _ = _plan(ctx, backends, scopes_of(scopes), prune=prune)
        render_text(the_plan, console, show_pii)
        if not the_plan.changes:
            return
        if not yes:
            if not sys.stdin.isatty():
                fail("no plan file and no --yes: refusing to apply without confirmation")
                sys.exit(1)
            click.confirm("Apply these changes?", abort=True)
    gates = GateOptions(
        max_destructive=max_destructive,
        override_blast_radius=override_blast_radius,
        acknowledge_deprovision=acknowledge_deprovision,
    )
    # A fresh session: the plan may be a file made elsewhere, or the confirmation may have waited a while.
    with open_session(ctx, backends or tuple(the_plan.backends)) as session:
        report = session.apply(the_plan, gates)
    print_applied(session, report, show_pii)
    sys.exit(0 if report.ok else 1)
