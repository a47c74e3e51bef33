"""Renderers: plans for the terminal (rich), JSON and Markdown (for pull-request comments, summarised per school),
and apply reports."""

from __future__ import annotations

import json
import textwrap

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.cli.plan_markdown import render_markdown
from orchestrator.cli.plan_view import SYMBOL, VERB, attribute_lines, headline, title, unmanaged_summary
from orchestrator.core.redact import redact, redact_text
from orchestrator.core.resources import Change
from orchestrator.engine.apply import ApplyReport
from orchestrator.engine.plan import Plan

_STYLE = {"create": "green", "update": "yellow", "delete": "red", "action": "magenta"}
_SIGN_STYLE = {"+": "green", "-": "red", "~": "yellow", "!": "magenta"}
INDENT = 4


def wrapped(text: str, width: int, first: str = "", rest: str | None = None) -> list[str]:
    """`text` folded to `width` at spaces only: ids, JSON tokens and file:line are never cut mid-word."""
    lines = textwrap.wrap(
        text,
        width=max(width, 20),
        initial_indent=first,
        subsequent_indent=first if rest is None else rest,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return lines or [first.rstrip()]


def _say(console: Console, text: str, style: str = "", first: str = "", rest: str | None = None) -> None:
    for line in wrapped(text, console.width, first, rest):
        console.print(Text(line, style=style), soft_wrap=True)


def render_change(change: Change, console: Console, show_pii: bool = False) -> None:
    """One resource block: the id and what happens to it, the file:line that caused it, one line per attribute."""
    style = _STYLE[change.op]
    flag = " (destructive)" if change.destructive else ""
    _say(console, f"{SYMBOL[change.op]} {title(change)}{flag} {VERB[change.op]}", f"bold {style}", "", "    ")
    if change.sources:
        _say(console, "from " + ", ".join(change.sources), "dim", " " * INDENT, " " * (INDENT + 5))
    for line in attribute_lines(change, show_pii):
        pad = " " * (INDENT + 4 * line.depth)
        label = f"{line.name} = " if line.name and line.text else line.name
        first = f"{pad}{line.sign} {label}"
        for i, text in enumerate(wrapped(line.text, console.width, first, pad + "    ")):
            if i == 0:
                sign = Text(text[len(pad) :], style=_SIGN_STYLE.get(line.sign, ""))
                console.print(Text(text[: len(pad)]) + sign, soft_wrap=True)
            else:
                console.print(Text(text), soft_wrap=True)
    if isinstance(change.before, dict) and change.before.get("diff"):
        console.print(Text(" " * INDENT + "check mode diff:", style="bold"), soft_wrap=True)
        console.print(_trim_diff(str(change.before["diff"])), markup=False, highlight=False)


def render_text(plan: Plan, console: Console, show_pii: bool = False) -> None:
    """Terraform-like: notes, held changes and unmanaged settings, one block per resource, then the summary."""
    for note in plan.notes:
        _say(console, f"note: {note}", "dim", "", "      ")
    for held in plan.held:
        _say(console, f"held: {held.change.id}: {held.detail or held.reason}", "yellow", "", "      ")
    if plan.unmanaged:
        _say(console, unmanaged_summary(plan), "cyan", "", "    ")
    if not plan.changes:
        _say(console, headline(plan), "green")
        return
    for change in plan.changes:
        console.print()
        render_change(change, console, show_pii)
    console.print()
    _say(console, headline(plan), "bold")


def _trim_diff(text: str, limit: int = 60) -> str:
    lines = text.splitlines()
    return "\n".join(lines[:limit] + ([f"... {len(lines) - limit} more lines"] if len(lines) > limit else []))


def render_json(plan: Plan, show_pii: bool = False) -> str:
    data = plan.to_json()
    return json.dumps(data if show_pii else redact(data), indent=2, sort_keys=True, default=str)


def render_report(report: ApplyReport, console: Console, show_pii: bool = False) -> None:
    """One row per change (only the problems when there are more than 40), then the counts per state."""
    by_state = report.counts()
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
        "Applied: " + ", ".join(f"{n} {s}" for s, n in sorted(by_state.items())) if by_state else "Nothing to apply."
    )


__all__ = ["headline", "render_json", "render_markdown", "render_report", "render_text", "unmanaged_summary"]
