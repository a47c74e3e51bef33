"""`orchestrator journal`: recent runs, one run's actions, destructive actions of unknown outcome, and settling them."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from orchestrator.cli.app import console, handle_errors, pii_option
from orchestrator.core.errors import OrchestratorError
from orchestrator.core.redact import redact_text, use_district_key
from orchestrator.engine.journal import Journal
from orchestrator.engine.settle import resolve_unknown, unsettled_lines
from orchestrator.jobs.config import load_config


def _journal_path(ctx: click.Context) -> Path:
    root = ctx.find_root().obj
    if root["journal"]:
        return Path(root["journal"])
    config = load_config(root["config"])
    return config.path(config.journal)


@click.group(invoke_without_command=True)
@click.option("--run", "run_id", help="Show the actions of one run.")
@click.option("--limit", type=int, default=20, show_default=True)
@pii_option
@click.pass_context
@handle_errors
def journal(ctx: click.Context, run_id: str | None, limit: int, show_pii: bool) -> None:
    """List recent runs, or the actions of one run; `journal resolve` settles an unknown destructive action.

    Example: orchestrator journal --run 20261123T020000Z-1a2b3c
    """
    if ctx.invoked_subcommand is not None:
        return
    path = _journal_path(ctx)
    if not path.exists():
        console.print(f"No journal yet at {path}.")
        return
    use_district_key(path.parent)  # the same redaction tokens as the district's plans and reports
    j = Journal(path)
    try:
        if run_id:
            table = Table(title=f"Actions of run {run_id}", header_style="bold")
            for column in ("updated", "state", "op", "resource", "detail"):
                table.add_column(column, overflow="fold")
            for row in j.actions(run_id, limit=max(limit, 1000)):
                detail = row.detail if show_pii else redact_text(row.detail)
                table.add_row(row.updated_at, row.state, row.op, row.resource, detail)
            console.print(table)
            return
        table = Table(title=f"Runs in {path}", header_style="bold")
        for column in ("run", "kind", "status", "actor", "policy commit", "started", "summary"):
            table.add_column(column, overflow="fold")
        for run in j.runs(limit):
            table.add_row(
                run["id"],
                run["kind"],
                run["status"],
                run["actor"],
                (run["policy_commit"] or "-")[:12],
                run["started_at"],
                run["summary"] or "",
            )
        console.print(table)
        for line in unsettled_lines(j):
            console.print(f"[red]unknown outcome:[/] {line}", soft_wrap=True)
    finally:
        j.close()


@journal.command("resolve")
@click.argument("action")
@click.option("--done", "outcome", flag_value="succeeded", help="It ran (checked on the device or console).")
@click.option("--resend", "outcome", flag_value="failed", help="It did not run: let the next run send it again.")
@click.option("--reason", required=True, help="What was checked (kept in the journal with who and when).")
@click.pass_context
@handle_errors
def resolve(ctx: click.Context, action: str, outcome: str | None, reason: str) -> None:
    """Settle a destructive action whose outcome is unknown (a wipe that timed out): --done or --resend.

    ACTION is the resource shown by `maintenance run` or `journal` (e.g. intune/reimage/PF0000123|spring-reset).

    Example: orchestrator journal resolve "intune/reimage/PF0000123|spring-reset" --done --reason "device shows OOBE"
    """
    if outcome is None:
        raise OrchestratorError("say what happened: --done (it ran) or --resend (it did not; send it again)")
    path = _journal_path(ctx)
    if not path.exists():
        raise OrchestratorError(f"no journal at {path}")
    j = Journal(path)
    try:
        run_id = resolve_unknown(j, action, outcome, reason)
    finally:
        j.close()
    verb = "recorded as done" if outcome == "succeeded" else "will be sent again by the next run"
    console.print(f"{action}: {verb} (journal run {run_id}).", soft_wrap=True)
