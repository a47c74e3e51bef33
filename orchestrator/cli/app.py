"""The `main` group, the consoles, the options commands share, opening a session, and errors → exit codes.

Exit codes: 0 ok, 1 error, 2 drift, 130 interrupted. The commands live in `reconcile`, `ops`, `inventory`,
`journal` and `sandbox`; `orchestrator.cli` adds them to `main`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from orchestrator.backends.registry import CATALOG
from orchestrator.cli.logs import setup_logging, trace_journal
from orchestrator.cli.render import render_report
from orchestrator.cli.tenants import TenantGroup, option_value, render_tenant_runs, schedule_text
from orchestrator.core.errors import OrchestratorError, PolicyError
from orchestrator.core.redact import use_district_key
from orchestrator.engine.apply import ApplyReport
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
@click.option(
    "--runner",
    envvar="ORCHESTRATOR_RUNNER",
    default=None,
    help="Who runs this (e.g. provider, district): only the backends the config's owners: gives it "
    "(default: $ORCHESTRATOR_RUNNER; unset: every backend).",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", help="Log line format.")
@click.option("-v", "--verbose", is_flag=True, help="Log API calls and retries.")
@click.version_option(package_name="k12-orchestrator")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: str | None,
    journal_path: str | None,
    runner: str | None,
    log_format: str,
    verbose: bool,
) -> None:
    """K-12 fleet orchestrator: policies in git, reconciled against Google Admin, Intune and network gear.

    Example: orchestrator validate && orchestrator plan --out plan.json && orchestrator apply plan.json
    """
    setup_logging(log_format, logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = {"config": config_path, "journal": journal_path, "runner": runner}
    if "tenants" in ctx.meta:
        fan_out(ctx, ctx.meta["tenants"])


# many districts -------------------------------------------------------------------------------------
def fan_out(ctx: click.Context, chosen: dict[str, Any]) -> None:
    """Run the command once per chosen district (jobs.tenants), show each one's output, then one table; exit
    with the worst district's code. Presentation only."""
    command = ctx.invoked_subcommand
    if command == "schedule":
        try:
            text = schedule_text(ctx, chosen)
        except click.ClickException as exc:
            fail(escape(exc.format_message()))
            sys.exit(1)
        except (OrchestratorError, ValueError) as exc:
            fail(escape(f"schedule: {exc}"))
            sys.exit(1)
        click.echo(text, nl=False)
        sys.exit(0)
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
        for option in ("--out", "--html"):  # a plan or report file, a site folder: one per district
            out = option_value(args, option)
            if out and "{tenant}" not in out and len(tenants) > 1:
                raise OrchestratorError(f"{option} with several districts must contain {{tenant}} (one per district)")
        if option_value(args, "--format") == "csv" and not option_value(args, "--out"):
            raise OrchestratorError("--format csv across districts needs --out FILE (with {tenant}): one CSV each")
    except OrchestratorError as exc:
        fail(escape(str(exc)))
        sys.exit(1)
    fmt = option_value(args, "--format") or "text"
    fmt = "markdown" if fmt == "md" else fmt  # `report techcheck --format md`: one Markdown document too

    def finished(run: TenantRun) -> None:
        err_console.print(f"{run.tenant}: {run.status} ({run.seconds:.1f} s)", markup=False, highlight=False)

    runs = run_tenants(tenants, args, known=known, parallel=chosen["parallel"], on_done=finished)
    render_tenant_runs(runs, fmt, console)
    sys.exit(worst_exit(runs))


# sessions -------------------------------------------------------------------------------------------
def workspace(ctx: click.Context) -> Workspace:
    """Config, policies and inventory named by the global options (no backend connected); redaction tokens
    are keyed with this district's key from here on."""
    ws = open_workspace(ctx.obj["config"], journal=ctx.obj["journal"])
    use_district_key(ws.journal_path.parent)
    return ws


def open_session(ctx: click.Context, backends: tuple[str, ...] | list[str] = ()) -> Session:
    """A session for the global options, showing a spinner while observing and a progress bar while applying.

    Backends named here (by --backend, or a saved plan's list) must be configured and usable; with none named,
    every configured one is used and the unconfigured ones are skipped and listed (never silently).
    """
    session = Session.open(
        ctx.obj["config"],
        backends=tuple(backends),
        journal=ctx.obj["journal"],
        runner=ctx.obj.get("runner"),
        status=console.status,
        progress=ProgressBar(),
    )
    use_district_key(session.workspace.journal_path.parent)  # stable tokens in this district's output and journal
    trace_journal(session.journal, session.workspace.config.tenant)  # run id and change keys on every log line
    return session


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
