"""Many districts on the command line: `--tenant`/`--all-tenants`/`--parallel` anywhere on the line, the
per-district schedule, and the aggregated output (presentation only; the fan-out is `jobs.tenants`)."""

from __future__ import annotations

import getpass
import json
import os
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.jobs.config import load_config
from orchestrator.jobs.schedule import credential_vars, installed_command
from orchestrator.jobs.schedule_tenants import DEFAULT_TENANT_ENV_FILE, TENANT_KINDS, TenantJob, emit_tenants
from orchestrator.jobs.tenant_workers import WORKER_COMMAND, serve
from orchestrator.jobs.tenants import TenantRun, discover, select, worst_exit

# What every district's run imports: the consoles' backends (their specs import them only when opened). The
# worker imports these before its first fork and learns the rest (the SDKs' lazily loaded parts) from the
# first districts that finish.
WORKER_PRELOAD = (
    "orchestrator.backends.google.backend",
    "orchestrator.backends.intune.backend",
    "orchestrator.backends.network.backend",
)


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
            ctx.meta["tenants"] = {"names": names, "all": everyone, "parallel": int(parallel), "args": list(rest)}
        elif parallel is not None:
            raise click.UsageError("--parallel applies to --tenant/--all-tenants runs", ctx)
        return super().parse_args(ctx, rest)


@click.command(WORKER_COMMAND, hidden=True)
@click.option("--modules-cache", default=None, help="Import the modules this file names first; update it at the end.")
@click.pass_context
def tenant_worker(ctx: click.Context, modules_cache: str | None) -> None:
    """Internal: the warm worker of a --tenant/--all-tenants run; forks one process per district from one that
    has the command line and the backends imported (jobs.tenant_workers). Reads its orders on stdin.

    Example: (started by `orchestrator plan --all-tenants` and the other many-district runs; not run by hand)
    """
    root = ctx.find_root().command
    serve(lambda argv: root.main(args=argv, prog_name="orchestrator"), preload=WORKER_PRELOAD, cache=modules_cache)


def option_value(args: list[str], name: str) -> str | None:
    for i, token in enumerate(args):
        if token == name and i + 1 < len(args):
            return args[i + 1]
        if token.startswith(name + "="):
            return token.partition("=")[2]
    return None


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


def schedule_text(ctx: click.Context, chosen: dict[str, Any]) -> str:
    """`schedule --emit KIND --all-tenants`: entries for every chosen district, each in its own time zone.

    Raises click.ClickException (bad options), OrchestratorError (a district's config) or ValueError."""
    args = list(chosen["args"])
    args = args[args.index("schedule") + 1 :]
    with _schedule_options.make_context("schedule", args, parent=ctx) as sub:
        options = _schedule_options.invoke(sub)
    known = discover()
    jobs = []
    for tenant in select(known, chosen["names"], chosen["all"]):
        config = load_config(tenant.config_path)
        jobs.append(
            TenantJob(tenant.name, str(tenant.config_path.resolve()), config.timezone, tuple(credential_vars(config)))
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
    return text


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render_tenant_runs(runs: list[TenantRun], fmt: str, console: Console) -> None:
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
