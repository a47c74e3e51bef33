"""Operational commands: lockdown, maintenance, windows, calendar and schedule."""

from __future__ import annotations

import getpass
import os
import sys

import click
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.app import (
    backend_option,
    console,
    handle_errors,
    open_session,
    pii_option,
    print_applied,
    with_gate_options,
    workspace,
)
from orchestrator.cli.render import render_text
from orchestrator.cli.windows import parse_at, print_check, print_refresh, print_windows
from orchestrator.core.errors import ConfigError, OrchestratorError
from orchestrator.core.redact import redact_text
from orchestrator.engine.plan import Plan
from orchestrator.jobs.config import config_path, load_config
from orchestrator.jobs.lockdown import REPORT_OUTCOMES, run_lockdown
from orchestrator.jobs.maintenance import MaintenanceRehearsal, rehearse_maintenance, run_maintenance
from orchestrator.jobs.schedule import DEFAULT_ENV_FILE, credential_vars, emit, installed_command
from orchestrator.jobs.session import Session


@click.command()
@click.option("--dry-run", is_flag=True, help="Print the lockdown plan and report; change nothing.")
@click.option("--override-blast-radius", is_flag=True, help="Ignore the policy's max_per_run cap.")
@backend_option
@pii_option
@click.pass_context
@handle_errors
def lockdown(
    ctx: click.Context, dry_run: bool, override_blast_radius: bool, backends: tuple[str, ...], show_pii: bool
) -> None:
    """Nightly: lock every lost/stolen device on every platform, release the found ones, report per school.

    Example: orchestrator lockdown --dry-run
    """
    with open_session(ctx, backends) as session:
        outcome = run_lockdown(
            session,
            dry_run=dry_run,
            override_blast_radius=override_blast_radius,
            on_plan=lambda plan: render_text(plan, console, show_pii),
            on_report=lambda report: print_applied(session, report, show_pii),
        )
    summary = outcome.summary
    table = Table(title="Lockdown by school (devices)", header_style="bold")
    table.add_column("school")
    for name in REPORT_OUTCOMES:
        table.add_column(name, justify="right")
    for school, counts in sorted(summary.per_school.items()):
        table.add_row(school, *(str(counts[o]) for o in REPORT_OUTCOMES))
    console.print(table)
    for entry in summary.devices:
        if entry["outcome"] in ("failed", "not found", "held"):
            said = "; ".join(f"{a['backend']}: {a['said']}" for a in entry["actions"])
            shown = said if show_pii else redact_text(said)
            console.print(
                f"[red]{escape(entry['serial'])}[/] ({escape(entry['school'])}): {escape(shown)}", soft_wrap=True
            )
    console.print(
        f"{sum(summary.totals.values())} device(s) acted on tonight; {len(summary.still_locked)} lost or stolen "
        "device(s) still locked."
    )
    paths = [p for p in (outcome.markdown_path, outcome.json_path, outcome.csv_path) if p]
    console.print("Report: " + ", ".join(str(p) for p in paths))
    if not outcome.ok:
        sys.exit(1)


@click.group()
def maintenance() -> None:
    """Disruptive work (reimaging) that only runs inside maintenance windows."""


@maintenance.command("run")
@click.option("--dry-run", is_flag=True, help="Show what would run and what waits for which window; change nothing.")
@click.option(
    "--at",
    "at",
    default=None,
    help="With --dry-run: rehearse at this time (YYYY-MM-DDTHH:MM; naive = the calendar's zone).",
)
@backend_option
@with_gate_options
@pii_option
@click.pass_context
@handle_errors
def maintenance_run(
    ctx: click.Context,
    dry_run: bool,
    at: str | None,
    backends: tuple[str, ...],
    max_destructive: int | None,
    override_blast_radius: bool,
    acknowledge_deprovision: bool,
    show_pii: bool,
) -> None:
    """Run queued reimages in batches while their window is open; meant for a scheduler every 15 minutes.

    Example: orchestrator maintenance run --dry-run --at 2027-03-14T22:00
    """
    if at and not dry_run:
        raise OrchestratorError("--at rehearses a time that is not now: use it with --dry-run")
    with open_session(ctx, backends) as session:
        if dry_run:
            rehearsed = rehearse_maintenance(
                session,
                now=parse_at(at, session.workspace) if at else None,
                max_destructive=max_destructive,
                override_blast_radius=override_blast_radius,
                acknowledge_deprovision=acknowledge_deprovision,
            )
            _print_unsettled(session)
            _print_rehearsal(rehearsed)
            return
        run = run_maintenance(
            session,
            max_destructive=max_destructive,
            override_blast_radius=override_blast_radius,
            acknowledge_deprovision=acknowledge_deprovision,
            on_plan=lambda plan: _print_queue(session, plan),
            on_report=lambda report: print_applied(session, report, show_pii),
        )
    if not run.plan.changes:
        return
    for policy, reason in sorted(run.drained.waiting.items()):
        console.print(f"Waiting: {policy}: {reason}", soft_wrap=True)
    if run.drained.stopped:
        console.print(f"Stopping: {run.drained.stopped}.")
    sys.exit(0 if run.ok else 1)


def _print_unsettled(session: Session) -> None:
    for line in session.unsettled():
        console.print(f"[red]unknown outcome:[/] {line}", soft_wrap=True)


def _print_queue(session: Session, plan: Plan) -> None:
    _print_unsettled(session)
    for note in plan.notes:
        console.print(f"[dim]note:[/] {note}", soft_wrap=True)
    if plan.changes:
        console.print(f"{len(plan.changes)} device(s) waiting for reimage.")
    else:
        console.print("No reimage requests are waiting.")


def _print_rehearsal(rehearsed: MaintenanceRehearsal) -> None:
    plan, rehearsal, now = rehearsed.plan, rehearsed.rehearsal, rehearsed.now
    by_key = {c.key: c for c in plan.changes}
    if not plan.changes:
        console.print("No reimage requests are waiting.")
        return
    table = Table(title=f"Reimage queue at {now:%Y-%m-%d %H:%M %Z} (dry run)", header_style="bold")
    for column in ("device", "policy", "window", "then", "reason / next window"):
        table.add_column(column, overflow="fold")
    would_run = rehearsal.would_run()
    for decision in rehearsal.decisions:
        change = by_key[decision.change_key]
        verdict = "[green]would run[/]" if decision.change_key in would_run else "[yellow]waits[/]"
        table.add_row(change.id.key, change.policy or "-", change.window or "-", verdict, decision.reason)
    console.print(table)
    console.print(f"{len(would_run)} would run, {len(rehearsal.decisions) - len(would_run)} wait.")


@click.command()
@click.option("--days", type=int, default=30, show_default=True, help="How many days of windows to list.")
@click.option("--from", "start", default=None, help="List from this date (YYYY-MM-DD, calendar zone) instead of now.")
@click.option("--school", default=None, help="Use this school's calendar overrides.")
@click.option(
    "--at",
    "at",
    default=None,
    help="Explain whether windows are open at this time (YYYY-MM-DDTHH:MM; naive = the calendar's zone).",
)
@click.pass_context
@handle_errors
def windows(ctx: click.Context, days: int, start: str | None, school: str | None, at: str | None) -> None:
    """List open maintenance windows, or explain why each window is open or closed at any given time.

    Calendar feeds are refreshed first; calendar warnings (stale feed, coverage ending) come before the table.

    Example: orchestrator windows --at 2027-03-14T22:00 --school jefferson-high
    """
    ws = workspace(ctx)
    print_windows(ws, console=console, days=days, school=school, at=at, start=start)


@click.group("calendar")
def calendar_group() -> None:
    """School calendars: fetch published iCalendar feeds, check that they cover the year ahead."""


@calendar_group.command("refresh")
@click.option(
    "--accept-fewer-events",
    is_flag=True,
    help="Take a feed even if it lost most of the cached copy's events (after checking it by hand).",
)
@click.pass_context
@handle_errors
def calendar_refresh(ctx: click.Context, accept_fewer_events: bool) -> None:
    """Fetch every SchoolCalendar ics.url feed now (conditional requests); exit 1 if one failed.

    Example: orchestrator calendar refresh
    """
    ok = print_refresh(workspace(ctx), console=console, accept_fewer_events=accept_fewer_events)
    sys.exit(0 if ok else 1)


@calendar_group.command("check")
@click.option("--today", default=None, help="Check as if today were this date (YYYY-MM-DD).")
@click.pass_context
@handle_errors
def calendar_check(ctx: click.Context, today: str | None) -> None:
    """Fail when a calendar has no class days in the next 365 days; warn 30 days before one ends.

    Example: orchestrator calendar check --today 2028-05-01
    """
    ok = print_check(workspace(ctx), console=console, today=today)
    sys.exit(0 if ok else 1)


@click.command()
@click.option("--emit", "kind", type=click.Choice(["cron", "systemd", "github-actions"]), required=True)
@click.option("--workdir", default=None, help="Directory the jobs run in (default: the folder of the config file).")
@click.option(
    "--executable",
    default=None,
    help="Absolute command that runs the orchestrator (default: the one running now, e.g. .venv/bin/orchestrator).",
)
@click.option(
    "--env-file",
    default=None,
    help="KEY=value file with the credentials' environment variables (default: /etc/orchestrator/orchestrator.env).",
)
@click.option("--no-env-file", is_flag=True, help="Emulators only: load no credentials file.")
@click.option("--user", "user", default=None, help="systemd User= (default: the current user).")
@click.option("--on-failure", default=None, help="Shell command run when a job fails ($K12_FAILED_JOB names it).")
@click.option("--mail-to", default=None, help="cron: MAILTO address for failure reports.")
@click.pass_context
@handle_errors
def schedule(
    ctx: click.Context,
    kind: str,
    workdir: str | None,
    executable: str | None,
    env_file: str | None,
    no_env_file: bool,
    user: str | None,
    on_failure: str | None,
    mail_to: str | None,
) -> None:
    """Print scheduler entries for the nightly lockdown and the 15-minute maintenance run.

    The entries name the installed executable and the config by absolute path and read credentials from an
    environment file, so they run under cron's or systemd's bare PATH from any directory.

    Example: orchestrator schedule --emit systemd
    """
    config = load_config(ctx.obj["config"])
    try:
        text = emit(
            kind,  # type: ignore[arg-type]
            workdir=os.path.abspath(workdir) if workdir else str(config.base_dir),
            timezone=config.timezone,
            python=executable or installed_command(),
            config=str(config_path(ctx.obj["config"]).resolve()),
            env_file=None if no_env_file else os.path.abspath(env_file or DEFAULT_ENV_FILE),
            user=user or getpass.getuser(),
            on_failure=on_failure,
            mail_to=mail_to,
            credential_vars=credential_vars(config),
        )
    except ValueError as exc:
        raise ConfigError(f"schedule: {exc}") from None
    click.echo(text, nl=False)
