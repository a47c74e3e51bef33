"""Rendering for `orchestrator windows`: upcoming open windows, or why each window is closed at a time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from orchestrator.errors import OrchestratorError
from orchestrator.windows import describe_windows, explain
from orchestrator.workspace import Workspace


def _parse_at(text: str, zone: ZoneInfo) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise OrchestratorError(f"--at {text!r} is not a time (use YYYY-MM-DDTHH:MM, district time)") from exc
    return when if when.tzinfo else when.replace(tzinfo=zone)


def print_windows(ws: Workspace, *, console: Console, days: int, school: str | None, at: str | None) -> None:
    zone = ZoneInfo(ws.config.timezone)
    if at:
        when = _parse_at(at, zone)
        table = Table(title=f"Maintenance windows at {when.isoformat()}", header_style="bold")
        for column in ("window", "calendar", "state", "why", "next open"):
            table.add_column(column, overflow="fold")
        for row in explain(ws.policies, ws.repo_root, when, school):
            state = "[green]open[/]" if row.state.open else "[yellow]closed[/]"
            table.add_row(row.window, row.calendar, state, row.state.reason, str(row.next_open or "none in 400 days"))
        console.print(table)
        return
    now = dt.datetime.now(zone)
    rows = describe_windows(ws.policies, ws.repo_root, now, days, school)
    title = f"Open maintenance windows, next {days} days" + (f" ({school})" if school else "")
    table = Table(title=title, header_style="bold")
    for column in ("window", "opens", "closes", "hours", "note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        hours = (row.end - row.start).total_seconds() / 3600
        table.add_row(
            row.window,
            row.start.strftime("%a %Y-%m-%d %H:%M %Z"),
            row.end.strftime("%a %Y-%m-%d %H:%M %Z"),
            f"{hours:.1f}",
            row.reason,
        )
    console.print(table if rows else f"No open maintenance window in the next {days} days.")
