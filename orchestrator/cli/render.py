"""Renderers: plans for the terminal (rich), JSON and Markdown (for pull-request comments, summarised per school),
and apply reports."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.core.redact import redact, redact_text
from orchestrator.core.resources import Change, ResourceId
from orchestrator.core.types import KEY_SEPARATOR
from orchestrator.engine.apply import ApplyReport
from orchestrator.engine.plan import Plan

_SYMBOL = {"create": "+", "update": "~", "delete": "-", "action": "!"}
_STYLE = {"create": "green", "update": "yellow", "delete": "red", "action": "magenta"}


def counts(plan: Plan) -> Counter[str]:
    return Counter(c.op for c in plan.changes)


def headline(plan: Plan) -> str:
    """One sentence: what would change; with no changes, exactly what was found in sync and what is held back."""
    held = f" {len(plan.held)} change(s) held back (listed below)." if plan.held else ""
    if not plan.changes:
        checked = ", ".join(plan.backends) or "no backend"
        return f"No changes. In sync: {checked} ({', '.join(plan.scopes)}).{held}"
    c = counts(plan)
    destructive = sum(1 for ch in plan.changes if ch.destructive)
    parts = [
        f"{c['create']} to set",
        f"{c['update']} to change",
        f"{c['delete']} to remove",
        f"{c['action']} device actions",
    ]
    tail = f" ({destructive} destructive, gated by maintenance windows)" if destructive else ""
    return "Plan: " + ", ".join(parts) + tail + "." + held


def _value(value: Any, show_pii: bool) -> str:
    if value is None:
        return "(none)"
    shown = value if show_pii else redact(value)
    text = json.dumps(shown, sort_keys=True, default=str)
    return text if len(text) <= 160 else text[:157] + "..."


_CHECK_MODE_KEYS = ("diff", "differs", "hosts")  # what a network check run reports instead of a value


def _list_delta(before: Any, after: Any) -> str | None:
    """For dicts of lists (URL blocklists, assignments) show added/removed items instead of both lists."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return None
    lines = []
    for key in sorted((set(before) | set(after)) - set(_CHECK_MODE_KEYS)):
        b, a = before.get(key), after.get(key)
        if b == a:
            continue
        if isinstance(a, list) and isinstance(b, list | None):
            b = b or []
            added = [str(x) for x in a if x not in b]
            removed = [str(x) for x in b if x not in a]
            lines.append(f"{key}: " + " ".join([f"+{x}" for x in added] + [f"-{x}" for x in removed]))
        else:
            lines.append(f"{key}: {json.dumps(b, default=str)} → {json.dumps(a, default=str)}")
    return "; ".join(lines)


def change_detail(change: Change, show_pii: bool = False) -> str:
    delta = _list_delta(change.before, change.after)
    if isinstance(change.before, dict) and change.before.get("differs"):
        hosts = ", ".join(f"{h}: {s}" for h, s in sorted(change.before.get("hosts", {}).items()))
        why = hosts or change.before.get("error", "see diff")
        text = f"check mode: would change ({why}) → {_value(change.after, show_pii)}"
    elif delta:
        text = delta
    elif change.op == "delete":
        text = f"was {_value(change.before, show_pii)}"
    else:
        text = f"{_value(change.before, show_pii)} → {_value(change.after, show_pii)}"
    return text if show_pii else redact_text(text)


def unmanaged_summary(plan: Plan) -> str:
    """ "unmanaged (not in any policy): N setting(s): google ou_policy at /Labs (2), ..." or "" when none.

    Grouped by backend, type and the first part of the key (the OU, the platform, the site): where they are.
    """
    if not plan.unmanaged:
        return ""
    where: Counter[str] = Counter()
    for text in plan.unmanaged:
        rid = ResourceId.parse(text)
        where[f"{rid.backend} {rid.type} at {rid.key.split(KEY_SEPARATOR, 1)[0]}"] += 1
    shown = ", ".join(f"{place} ({n})" for place, n in sorted(where.items()))
    return (
        f"unmanaged (not in any policy, left alone): {len(plan.unmanaged)} setting(s): {shown}. "
        "Adopt them with a policy, or declare the scope managed (manage: prune: true) to remove them."
    )


def render_text(plan: Plan, console: Console, show_pii: bool = False) -> None:
    for note in plan.notes:
        console.print(f"[dim]note:[/] {note}")
    for held in plan.held:
        console.print(f"[yellow]held:[/] {held.change.id}: {held.detail or held.reason}", soft_wrap=True)
    if plan.unmanaged:
        console.print(f"[cyan]{unmanaged_summary(plan)}[/]", soft_wrap=True)
    if not plan.changes:
        console.print("[green]" + headline(plan) + "[/]")
        return
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("", "resource", "change", "from"):
        table.add_column(column, overflow="fold")
    for change in plan.changes:
        op = change.op
        name = str(change.id) + (" [red](destructive)[/]" if change.destructive else "")
        table.add_row(
            f"[{_STYLE[op]}]{_SYMBOL[op]}[/]", name, change_detail(change, show_pii), ", ".join(change.sources) or "-"
        )
    console.print(table)
    for change in plan.changes:
        if isinstance(change.before, dict) and change.before.get("diff"):
            console.print(f"[bold]{change.id}[/] (check mode diff):", markup=True)
            console.print(_trim_diff(str(change.before["diff"])), markup=False, highlight=False)
    console.print("[bold]" + headline(plan) + "[/]")


def _trim_diff(text: str, limit: int = 60) -> str:
    lines = text.splitlines()
    return "\n".join(lines[:limit] + ([f"... {len(lines) - limit} more lines"] if len(lines) > limit else []))


def render_json(plan: Plan, show_pii: bool = False) -> str:
    data = plan.to_json()
    return json.dumps(data if show_pii else redact(data), indent=2, sort_keys=True, default=str)


def render_markdown(plan: Plan, show_pii: bool = False) -> str:
    lines = ["### Fleet plan", "", headline(plan), ""]
    if plan.policy_commit:
        lines += [f"Policy commit `{plan.policy_commit}`, observed state `{plan.fingerprint}`.", ""]
    for note in plan.notes:
        lines.append(f"> note: {note}")
    for held in plan.held:
        lines.append(f"> held: `{held.change.id}`: {held.detail or held.reason}")
    if plan.unmanaged:
        lines.append(f"> {unmanaged_summary(plan)}")
    if not plan.changes:
        return "\n".join(lines) + "\n"
    by_school: dict[str, Counter[str]] = defaultdict(Counter)
    for change in plan.changes:
        by_school[str(change.meta.get("school") or "district-wide")][change.op] += 1
    lines += ["| school | set | change | remove | device actions |", "|---|---:|---:|---:|---:|"]
    for school, c in sorted(by_school.items()):
        lines.append(f"| {school} | {c['create']} | {c['update']} | {c['delete']} | {c['action']} |")
    lines += ["", "<details><summary>All changes</summary>", "", "| | resource | change | from |", "|---|---|---|---|"]
    for change in plan.changes:
        flag = " **destructive**" if change.destructive else ""
        detail = change_detail(change, show_pii).replace("|", "\\|")
        lines.append(f"| `{_SYMBOL[change.op]}` | `{change.id}`{flag} | {detail} | {', '.join(change.sources)} |")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


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
