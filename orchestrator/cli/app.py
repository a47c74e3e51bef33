"""The `main` group, the consoles, the options commands share, opening a session, and errors → exit codes.

Exit codes: 0 ok, 1 error, 2 drift, 130 interrupted. The commands live in `reconcile`, `ops`, `inventory`,
`journal` and `sandbox`; `orchestrator.cli` adds them to `main`.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.backends.registry import CATALOG
from orchestrator.cli.logs import setup_logging
from orchestrator.cli.render import render_report
from orchestrator.core.errors import OrchestratorError, PolicyError
from orchestrator.engine.apply import ApplyReport
from orchestrator.jobs.config import load_config
from orchestrator.jobs.schedule import (
    DEFAULT_TENANT_ENV_FILE,
    TENANT_KINDS,
    TenantJob,
    credential_vars,
    emit_tenants,
    installed_command,
)
from orchestrator.jobs.session import SCOPES, ApplyStep, Session
from orchestrator.jobs.tenants import COMMANDS as TENANT_COMMANDS
from orchestrator.jobs.tenants import TenantRun, discover, run_tenants, select, worst_exit
from orchestrator.jobs.workspace import Workspace, open_workspace


def _console(stderr: bool = False) -> Console:
    """Rich console; when output is not a terminal (CI logs, cron mail) use a readable fixed width.

    Emoji codes are off: `devices.csv:100:` is a place in a file, not the 💯 emoji.
    """
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, highlight=False, emoji=False, width=None if probe.is_terminal else 160)


console = _console()
err_console = _console(stderr=True)


def fail(message: str) -> None:
    """Print `message` (rich markup) as an error line on stderr."""
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
            fail(escape(str(exc)))
            sys.exit(1)
        except KeyboardInterrupt:
            fail("interrupted; the journal holds what was done (run the same command again to resume)")
            sys.exit(130)

    return wrapper


class TenantGroup(click.Group):
    """The `main` group; `--tenant NAME`, `--all-tenants` and `--parallel N` may stand anywhere on the line
    (`orchestrator plan --all-tenants`, or before the command): they are lifted out before parsing and the
    command then runs once per district (see `fan_out`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names: list[str] = []
        everyone = False
        parallel: str | None = None
        rest: list[str] = []
        tokens = iter(args)
        for token in tokens:
            if token == "--":
                rest += [token, *tokens]
                break
            if token in ("--tenant", "--parallel"):
                value = next(tokens, None)
                if value is None:
                    raise click.UsageError(f"{token} needs a value", ctx)
                if token == "--tenant":
                    names.append(value)
                else:
                    parallel = value
            elif token.startswith("--tenant="):
                names.append(token.partition("=")[2])
            elif token.startswith("--parallel="):
                parallel = token.partition("=")[2]
            elif token == "--all-tenants":
                everyone = True
            else:
                rest.append(token)
        if names or everyone:
            if not parallel:
                parallel = "4"
            if not parallel.isdigit() or int(parallel) < 1:
                raise click.UsageError(f"--parallel must be a whole number of at least 1, not {parallel!r}", ctx)
            ctx.meta["tenants"] = {"names": names, "all": everyone, "parallel": int(parallel), "args": rest}
        elif parallel is not None:
            raise click.UsageError("--parallel applies to --tenant/--all-tenants runs", ctx)
        return super().parse_args(ctx, rest)


@click.group(
    cls=TenantGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog=(
        "Many districts: with tenants/<name>/orchestrator.yaml, add --tenant NAME (repeatable) or --all-tenants "
        f"(and --parallel N, default 4) to {', '.join(TENANT_COMMANDS)}; `{{tenant}}` in an argument becomes "
        "each district's name (plan --out plans/{tenant}.json)."
    ),
)
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
    setup_logging(log_format, logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = {"config": config_path, "journal": journal_path}
    if "tenants" in ctx.meta:
        fan_out(ctx, ctx.meta["tenants"])


# many districts -------------------------------------------------------------------------------------
def _option_value(args: list[str], name: str) -> str | None:
    for i, token in enumerate(args):
        if token == name and i + 1 < len(args):
            return args[i + 1]
        if token.startswith(name + "="):
            return token.partition("=")[2]
    return None


def fan_out(ctx: click.Context, chosen: dict[str, Any]) -> None:
    """Run the command once per chosen district (jobs.tenants), show each one's output, then one table; exit
    with the worst district's code. Presentation only."""
    command = ctx.invoked_subcommand
    if command == "schedule":
        schedule_tenants(ctx, chosen)
    try:
        if command not in TENANT_COMMANDS:
            raise OrchestratorError(
                f"--tenant/--all-tenants work with {', '.join(TENANT_COMMANDS)}, not {command or 'no command'}"
            )
        if ctx.obj["config"]:
            raise OrchestratorError("--config names one district; with --tenant/--all-tenants leave it out")
        args: list[str] = chosen["args"]
        known = discover()
        tenants = select(known, chosen["names"], chosen["all"])
        journal = ctx.obj["journal"]
        if journal and "{tenant}" not in journal:
            raise OrchestratorError("--journal with --tenant/--all-tenants must contain {tenant} (each has its own)")
        out = _option_value(args, "--out")
        if out and "{tenant}" not in out and len(tenants) > 1:
            raise OrchestratorError("--out with several districts must contain {tenant} (one plan per district)")
    except OrchestratorError as exc:
        fail(escape(str(exc)))
        sys.exit(1)
    fmt = _option_value(args, "--format") or "text"

    def finished(run: TenantRun) -> None:
        err_console.print(f"{run.tenant}: {run.status} ({run.seconds:.1f} s)", markup=False, highlight=False)

    runs = run_tenants(tenants, args, known=known, parallel=chosen["parallel"], on_done=finished)
    render_tenant_runs(runs, fmt)
    sys.exit(worst_exit(runs))


@click.command("schedule", add_help_option=False)
@click.option("--emit", "kind", type=click.Choice(list(TENANT_KINDS)), required=True)
@click.option("--workdir", default=None)
@click.option("--executable", default=None)
@click.option("--env-file", default=None)
@click.option("--no-env-file", is_flag=True)
@click.option("--user", "user", default=None)
@click.option("--on-failure", default=None)
@click.option("--mail-to", default=None)
@click.option("--image", default="k12-orchestrator:latest")
def _schedule_options(**options: Any) -> dict[str, Any]:
    """`schedule`'s options with --tenant/--all-tenants: kubernetes too, and an env file per district."""
    return options


def schedule_tenants(ctx: click.Context, chosen: dict[str, Any]) -> None:
    """`schedule --emit KIND --all-tenants`: entries for every chosen district, each in its own time zone."""
    args = list(chosen["args"])
    try:
        args = args[args.index("schedule") + 1 :]
        with _schedule_options.make_context("schedule", args, parent=ctx) as sub:
            options = _schedule_options.invoke(sub)
        known = discover()
        jobs = []
        for tenant in select(known, chosen["names"], chosen["all"]):
            config = load_config(tenant.config_path)
            jobs.append(
                TenantJob(
                    tenant.name, str(tenant.config_path.resolve()), config.timezone, tuple(credential_vars(config))
                )
            )
        env_file = options["env_file"] or DEFAULT_TENANT_ENV_FILE
        text = emit_tenants(
            options["kind"],
            jobs,
            workdir=os.path.abspath(options["workdir"] or "."),
            python=options["executable"] or installed_command(),
            env_file=None if options["no_env_file"] else os.path.abspath(env_file),
            user=options["user"] or getpass.getuser(),
            on_failure=options["on_failure"],
            mail_to=options["mail_to"],
            image=options["image"],
        )
    except click.ClickException as exc:
        fail(escape(exc.format_message()))
        sys.exit(1)
    except (OrchestratorError, ValueError) as exc:
        fail(escape(f"schedule: {exc}"))
        sys.exit(1)
    click.echo(text, nl=False)
    sys.exit(0)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render_tenant_runs(runs: list[TenantRun], fmt: str) -> None:
    """Every district's own output (in district order), then one table: tenant, status, changes, failures,
    drift. JSON: one document holding every district's result and parsed output."""
    worst = worst_exit(runs)
    if fmt == "json":
        results = []
        for run in runs:
            entry = run.to_json()
            try:
                entry["output"] = json.loads(run.stdout) if run.stdout.strip() else None
            except json.JSONDecodeError:
                entry["output"] = run.stdout
            results.append(entry)
        click.echo(json.dumps({"tenants": results, "exit_code": worst}, indent=2, sort_keys=True))
        return
    columns = ("tenant", "status", "changes", "failures", "drift")
    if fmt == "markdown":
        for run in runs:
            click.echo(f"## District `{run.tenant}`\n")
            click.echo(run.stdout.rstrip() or "_no output_")
            if run.error:
                click.echo(f"\n> **{run.tenant}: {run.error}**")
            click.echo("")
        click.echo("## All districts\n")
        click.echo("| " + " | ".join(columns) + " |")
        click.echo("|" + "---|" * len(columns))
        for run in runs:
            cells = (run.tenant, run.status, _cell(run.changes), _cell(run.failures), _cell(run.drift))
            click.echo("| " + " | ".join(cells) + " |")
        return
    for run in runs:
        console.rule(f"district {run.tenant}", characters="─")
        if run.stdout.strip():
            click.echo(run.stdout.rstrip())
        for line in run.stderr.splitlines():
            click.echo(f"[{run.tenant}] {line}", err=True)
    table = Table(title="All districts", show_header=True, header_style="bold")
    for name in (*columns, "error"):
        table.add_column(name, justify="right" if name in ("changes", "failures") else "left")
    for run in runs:
        table.add_row(
            run.tenant, run.status, _cell(run.changes), _cell(run.failures), _cell(run.drift), escape(run.error)
        )
    console.print(table)
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    console.print(
        f"{len(runs)} district(s): " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
        markup=False,
    )


# sessions -------------------------------------------------------------------------------------------
def workspace(ctx: click.Context) -> Workspace:
    """Config, policies and inventory named by the global options (no backend connected)."""
    return open_workspace(ctx.obj["config"], journal=ctx.obj["journal"])


def open_session(ctx: click.Context, backends: tuple[str, ...] | list[str] = ()) -> Session:
    """A session for the global options, showing a spinner while observing and a progress bar while applying.

    Backends named here (by --backend, or a saved plan's list) must be configured and usable; with none named,
    every configured one is used and the unconfigured ones are skipped and listed (never silently).
    """
    return Session.open(
        ctx.obj["config"],
        backends=tuple(backends),
        journal=ctx.obj["journal"],
        status=console.status,
        progress=ProgressBar(),
    )


class ProgressBar:
    """A transient progress bar on stderr for each apply (fed `ApplyStep`s); nothing when stderr is not a
    terminal."""

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, step: ApplyStep) -> None:
        if step.state == "started":
            self.stop()
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
                disable=not err_console.is_terminal,
            )
            self._bar.start()
            self._task = self._bar.add_task("Applying", total=step.total)
        elif step.state == "finished":
            self.stop()
        elif self._bar is not None and self._task is not None:
            self._bar.advance(self._task)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def print_applied(session: Session, report: ApplyReport, show_pii: bool) -> None:
    """The apply report, then where its journal entries are."""
    render_report(report, console, show_pii)
    console.print(
        f"Journal: {session.workspace.journal_path} (run {report.run_id}); `orchestrator journal --run {report.run_id}`"
    )


# options shared by several commands -----------------------------------------------------------------
backend_option = click.option(
    "--backend",
    "backends",
    multiple=True,
    type=click.Choice(list(CATALOG.names())),
    help="Only these backends (repeatable; default: every configured one).",
)
pii_option = click.option("--show-pii", is_flag=True, help="Show student emails and names (redacted by default).")
scope_option = click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice([*SCOPES, "all"]),
    default=("policy",),
    show_default=True,
    help="Which resources: policy settings, lost-device lockdown, maintenance (reimage).",
)


def scopes_of(scopes: tuple[str, ...]) -> tuple[str, ...]:
    """`--scope` values in order, without repeats; `all` is every scope."""
    return SCOPES if "all" in scopes else tuple(dict.fromkeys(scopes))


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
