"""`orchestrator report --html DIR`: the principals' static site, rendered with Jinja2 from `jobs.report.SiteData`.

Self-contained pages (index, calendar, lockdown, tech check, plan): the style sheet is inlined, the calendars are inline
SVG, there is no script and no external asset, so the folder works from file:// and on any static web server.
Every table has header cells; colour is never the only signal (each day kind has its own pattern and a text
label, every calendar cell a <title>, every state a word).
"""

from __future__ import annotations

import calendar as cal
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from jinja2 import Environment, PackageLoader, select_autoescape

from orchestrator.cli.app import console, handle_errors, workspace
from orchestrator.cli.report_techcheck import techcheck
from orchestrator.jobs.report import SiteData, gather_site
from orchestrator.jobs.report_calendar import Day, SchoolYear
from orchestrator.jobs.report_techcheck import NUMERIC

PAGES = ("index", "calendar", "lockdown", "techcheck", "plan")
TITLES = {
    "index": "District status",
    "calendar": "School-year calendar",
    "lockdown": "Lost devices",
    "techcheck": "Morning tech check",
    "plan": "Plan",
}
CELL = 18
GAP = 14
COLUMNS = 3
MONTH_HEIGHT = 16 + 12 + 6 * CELL
WEEKDAYS = "MTWTFSS"
LEGEND = (
    ("class", "class day"),
    ("weekend", "weekend"),
    ("off", "no school (holiday, break)"),
    ("staff", "staff only (no students)"),
    ("unknown", "not in the calendar"),
)


@dataclass
class Cell:
    x: int
    y: int
    day: Day
    look: str
    title: str


def look_of(day: Day) -> str:
    """The cell's class: its fill and pattern (and the legend's label)."""
    if day.kind == "class_day":
        return "class"
    if day.kind == "staff_only":
        return "staff"
    if day.kind == "unknown":
        return "unknown"
    return "weekend" if day.reason == "weekend" else "off"


def describe(day: Day) -> str:
    words = {
        "class_day": "class day",
        "no_students": "no students",
        "staff_only": "staff only, no students",
        "unknown": "not in the calendar",
    }[day.kind]
    parts = [f"{day.date:%a %d %b %Y}: {words}" + (f" ({day.reason})" if day.reason else "")]
    if day.testing:
        parts.append(f"testing: {day.testing}")
    parts += [f"blackout: {b}" for b in day.blackouts]
    parts += [f"window opened: {w}" for w in day.opened]
    parts += [f"ran: {r}" for r in day.ran]
    return "; ".join(parts)


def months(year: SchoolYear) -> list[dict[str, Any]]:
    """Month blocks laid out COLUMNS wide, each with its day cells (Monday first)."""
    by_month: dict[tuple[int, int], list[Day]] = {}
    for day in year.days:
        by_month.setdefault((day.date.year, day.date.month), []).append(day)
    blocks = []
    for index, ((y, m), days) in enumerate(sorted(by_month.items())):
        left = (index % COLUMNS) * (7 * CELL + GAP)
        top = (index // COLUMNS) * (MONTH_HEIGHT + GAP)
        offset = dt.date(y, m, 1).weekday()
        cells = []
        for day in days:
            slot = offset + day.date.day - 1
            cells.append(
                Cell(left + (slot % 7) * CELL, top + 28 + (slot // 7) * CELL, day, look_of(day), describe(day))
            )
        blocks.append({"name": f"{cal.month_name[m]} {y}", "x": left, "y": top, "cells": cells})
    return blocks


def svg_size(year: SchoolYear) -> tuple[int, int]:
    count = len({(d.date.year, d.date.month) for d in year.days})
    rows = (count + COLUMNS - 1) // COLUMNS
    return COLUMNS * 7 * CELL + (COLUMNS - 1) * GAP, rows * MONTH_HEIGHT + (rows - 1) * GAP


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("orchestrator.cli", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        months=months,
        svg_size=svg_size,
        CELL=CELL,
        WEEKDAYS=WEEKDAYS,
        LEGEND=LEGEND,
        PAGES=PAGES,
        TITLES=TITLES,
        NUMERIC=NUMERIC,
    )
    return env


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def write_site(data: SiteData, folder: str | Path) -> list[Path]:
    """Render every page into `folder` (created); returns the files written."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    env.filters["slug"] = slug
    written = []
    for page in PAGES:
        html = env.get_template(f"{page}.html").render(site=data, page=page, title=TITLES[page])
        path = out / f"{page}.html"
        path.write_text(html, encoding="utf-8")
        written.append(path)
    return written


@click.group(invoke_without_command=True)
@click.option(
    "--html",
    "folder",
    type=click.Path(file_okay=False),
    help="Write the static site (index.html and its pages) into this folder.",
)
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Show this saved plan (status and changes); default: the journal's last run.",
)
@click.pass_context
@handle_errors
def report(ctx: click.Context, folder: str | None, plan_path: str | None) -> None:
    """A static site for principals: status, school-year calendars, lost devices, the morning tech check, the
    latest plan (no PII: no student, no repair reason).

    Self-contained HTML (no server, no external assets): open index.html, or publish the folder on any web
    server or GitHub Pages. Reads the journal and the reports folder; changes nothing.

    Example: orchestrator report --html site/ --plan plan.json  (or a subcommand: orchestrator report techcheck)
    """
    if ctx.invoked_subcommand is not None:
        if folder or plan_path:
            raise click.UsageError("--html and --plan make the site; give them without a subcommand")
        return
    if folder is None:
        raise click.UsageError("give --html DIR for the principals' site, or a subcommand (techcheck)")
    data = gather_site(workspace(ctx), plan_path=plan_path)
    written = write_site(data, folder)
    console.print(f"Wrote {len(written)} pages: {Path(folder) / 'index.html'}", soft_wrap=True)


report.add_command(techcheck)
