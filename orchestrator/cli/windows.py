"""Rendering for `orchestrator windows` and `orchestrator calendar`: windows, feed refreshes, coverage notes.

Naive times (`--at 2027-03-14T22:00`, `--from 2027-03-12`) are read in the calendars' zone, not the
config's: a window is defined in its calendar's local time, and the output always names that zone.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.core.errors import OrchestratorError
from orchestrator.jobs.workspace import Workspace
from orchestrator.policy.models import SchoolCalendar
from orchestrator.schooltime.coverage import CoverageReport, FeedRefresh, coverage, refresh_calendars
from orchestrator.schooltime.windows import build_window_schedules, describe_windows, explain


def calendar_zone(ws: Workspace) -> ZoneInfo:
    """The zone the windows live in: the calendars' one zone (the config's when there is no calendar)."""
    zones = sorted({model.timezone for model, _ in ws.policies.of_kind(SchoolCalendar)})
    if len(zones) > 1:
        raise OrchestratorError(
            f"the calendars use several time zones ({', '.join(zones)}); give the time with an offset, "
            "like 2027-03-14T22:00-05:00"
        )
    return ZoneInfo(zones[0] if zones else ws.config.timezone)


def parse_at(text: str, ws: Workspace) -> dt.datetime:
    """An aware time: an offset given is kept, a naive time is read in the calendars' zone."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise OrchestratorError(f"--at {text!r} is not a time (use YYYY-MM-DDTHH:MM, calendar time)") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=calendar_zone(ws))


def print_notes(console: Console, refreshed: list[FeedRefresh], report: CoverageReport) -> None:
    """Failed feed refreshes and calendar coverage problems, before any table."""
    for item in refreshed:
        if item.result.outcome == "failed":
            who = f"{item.calendar}" + (f" ({item.school})" if item.school else "")
            console.print(
                f"[yellow]warning:[/] calendar {escape(who)}: feed refresh failed: {escape(item.result.message)}"
            )
    for diagnostic in [*report.errors, *report.warnings]:
        console.print(f"[yellow]warning:[/] {escape(str(diagnostic))}", soft_wrap=True)


def print_windows(
    ws: Workspace,
    *,
    console: Console,
    days: int,
    school: str | None,
    at: str | None,
    start: str | None = None,
) -> None:
    """`windows`: refresh feeds, show calendar warnings, then the state at `at` or the open windows ahead."""
    when = parse_at(at, ws) if at else None
    refreshed = refresh_calendars(ws.policies, ws.repo_root)
    schedules = build_window_schedules(ws.policies, ws.repo_root, refresh=False)
    print_notes(console, refreshed, coverage(ws.policies, ws.repo_root))
    if when is not None:
        table = Table(title=f"Maintenance windows at {when:%Y-%m-%d %H:%M} {when.tzinfo}", header_style="bold")
        for column in ("window", "calendar", "state", "why", "next open"):
            table.add_column(column, overflow="fold")
        for row in explain(ws.policies, ws.repo_root, when, school, schedules=schedules):
            state = "[green]open[/]" if row.state.open else "[yellow]closed[/]"
            table.add_row(
                row.window, row.calendar, state, escape(row.state.reason), str(row.next_open or "none in 400 days")
            )
        console.print(table)
        return
    if start:
        try:
            first = dt.date.fromisoformat(start)
        except ValueError as exc:
            raise OrchestratorError(f"--from {start!r} is not a date (use YYYY-MM-DD)") from exc
        now = dt.datetime.combine(first, dt.time(0), calendar_zone(ws))
        span = f"{days} days from {first.isoformat()}"
    else:
        now = dt.datetime.now(calendar_zone(ws))
        span = f"next {days} days"
    rows = describe_windows(ws.policies, ws.repo_root, now, days, school, schedules=schedules)
    title = f"Open maintenance windows, {span} ({now.tzinfo})" + (f" ({school})" if school else "")
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
            escape(row.reason),
        )
    console.print(table if rows else f"No open maintenance window in the {span} ({now.tzinfo}).")


def print_refresh(ws: Workspace, *, console: Console, accept_fewer_events: bool) -> bool:
    """`calendar refresh`: fetch every feed now; True when all of them answered with a usable calendar."""
    refreshed = refresh_calendars(ws.policies, ws.repo_root, accept_fewer_events=accept_fewer_events)
    if not refreshed:
        console.print("No SchoolCalendar names an ics.url feed; nothing to refresh.")
        return True
    table = Table(title="Calendar feeds", header_style="bold")
    for column in ("calendar", "school", "url", "result", "events", "last good fetch"):
        table.add_column(column, overflow="fold")
    for item in refreshed:
        record = item.result.record
        colour = "red" if item.result.outcome == "failed" else "green"
        table.add_row(
            item.calendar,
            item.school or "-",
            escape(item.result.url),
            f"[{colour}]{escape(item.result.message)}[/]",
            str(record.events),
            f"{record.fetched_at:%Y-%m-%d %H:%M %Z}" if record.fetched_at else "never",
        )
    console.print(table)
    return all(item.result.outcome != "failed" for item in refreshed)


def print_check(ws: Workspace, *, console: Console, today: str | None) -> bool:
    """`calendar check`: coverage errors and warnings; True when there is no error."""
    day = dt.date.fromisoformat(today) if today else None
    report = coverage(ws.policies, ws.repo_root, today=day)
    for diagnostic in report.errors:
        console.print(f"[red]error:[/] {escape(str(diagnostic))}", soft_wrap=True)
    for diagnostic in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(str(diagnostic))}", soft_wrap=True)
    if not report.errors:
        console.print(f"[green]OK[/]: {len(ws.policies.of_kind(SchoolCalendar))} calendar(s) cover the year ahead.")
    return not report.errors
