"""A plan as GitHub-flavoured Markdown for a pull-request comment (the way Atlantis and Terraform Cloud post one).

Destructive changes and prunes first, the policy commit with its dirty flag, counts per school and backend, then
every change grouped per school and backend in folded sections. Every table cell is escaped (a `|` inside a
resource id must not split the row) and the comment stays under GitHub's 65,536 characters, ending with
"… and N more" when it had to stop.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict

from orchestrator.cli.plan_view import (
    SYMBOL,
    Summary,
    attribute_lines,
    headline,
    is_prune,
    kind,
    title,
    unmanaged_summary,
)
from orchestrator.core.redact import redact_text
from orchestrator.core.resources import Change
from orchestrator.engine.plan import Plan

GITHUB_LIMIT = 65_536
BUDGET = GITHUB_LIMIT - 1_536  # room for the "… and N more" note and the caller's warnings
_TEXT_SPECIALS = "\\`*_{}[]<>#|~!"


def cell(text: str) -> str:
    """Plain text for one GFM table cell: Markdown and HTML characters escaped, `|` escaped, one line."""
    out = "".join("\\" + ch if ch in _TEXT_SPECIALS else ch for ch in str(text))
    return out.replace("\r", " ").replace("\n", "<br>") or " "


def quote(text: str) -> str:
    """Prose for a `>` line: what could become HTML, emphasis, a link or a code span is escaped."""
    return "".join("\\" + ch if ch in "\\`*[]<>" else ch for ch in str(text)).replace("\n", " ")


def code(text: str) -> str:
    """Text in a code span inside a GFM table cell: `|` still needs its backslash, backticks cannot appear."""
    return "`" + str(text).replace("`", "'").replace("|", "\\|").replace("\r", " ").replace("\n", " ") + "`"


def school_of(change: Change) -> str:
    return str(change.meta.get("school") or "district-wide")


def detail(change: Change, show_pii: bool) -> str:
    """The attribute lines of one change in one cell (`<br>` between them), each in a code span."""
    parts = []
    for line in attribute_lines(change, show_pii):
        label = f"{line.name}: " if line.name and line.text else line.name
        parts.append(code(f"{'  ' * line.depth}{line.sign} {label}{line.text}".rstrip()))
    return "<br>".join(parts) or " "


def row(change: Change, show_pii: bool) -> str:
    flag = " **destructive**" if change.destructive else " **prune**" if is_prune(change) else ""
    sources = ", ".join(code(s) for s in change.sources) or "-"
    name = code(title(change)) + flag
    text = f"| {code(SYMBOL[change.op])} | {name} | {detail(change, show_pii)} | {sources} |"
    return text if show_pii else redact_text(text)


_HEADER = ["| | resource | change | from |", "|---|---|---|---|"]


def _preamble(plan: Plan) -> list[str]:
    lines = ["### Fleet plan", "", f"**{headline(plan)}**", ""]
    if plan.policy_commit:
        commit, dirty = plan.policy_commit.removesuffix("+dirty"), plan.policy_commit.endswith("+dirty")
        state = " **with uncommitted changes (dirty)**" if dirty else " (clean)"
        lines += [f"Policy commit `{commit}`{state}, observed state `{plan.fingerprint}`.", ""]
    else:
        lines += [f"Policy commit: not in git, observed state `{plan.fingerprint}`.", ""]
    lines += [f"> note: {quote(note)}" for note in plan.notes]
    lines += [f"> held: {code(h.change.id)}: {quote(h.detail or h.reason)}" for h in plan.held]
    if plan.unmanaged:
        lines.append(f"> {quote(unmanaged_summary(plan))}")
    return lines


def _per_school(plan: Plan) -> list[str]:
    counted: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for change in plan.changes:
        c = counted[(school_of(change), change.id.backend)]
        c[kind(change)] += 1
        c["destructive"] += change.destructive
    lines = [
        "| school | backend | settings | apps | device actions | destructive |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (school, backend), c in sorted(counted.items()):
        lines.append(
            f"| {cell(school)} | {cell(backend)} | {c['setting']} | {c['app']} | {c['device']} | {c['destructive']} |"
        )
    return lines


def render_markdown(plan: Plan, show_pii: bool = False, limit: int = BUDGET) -> str:
    """The plan as a pull-request comment of at most `limit` characters (plus a short "… and N more" note)."""
    lines = _preamble(plan)
    if not plan.changes:
        return "\n".join(lines) + "\n"
    summary = Summary.of(plan)
    first = [c for c in plan.changes if c.destructive or is_prune(c)]
    if first:
        lines += [
            "",
            f"#### Destructive changes and prunes ({summary.destructive} destructive, {summary.prunes} prune(s))",
            "",
            *_HEADER,
        ]
        lines += [row(c, show_pii) for c in first]
    lines += ["", "#### Per school and backend", "", *_per_school(plan)]
    groups: dict[tuple[str, str], list[Change]] = defaultdict(list)
    for change in plan.changes:
        groups[(school_of(change), change.id.backend)].append(change)
    used = sum(len(x) + 1 for x in lines)
    left = len(plan.changes)
    for (school, backend), changes in sorted(groups.items()):
        heading = f"<summary>{html.escape(school)} · {html.escape(backend)} ({len(changes)})</summary>"
        block = ["", f"<details>{heading}", "", *_HEADER]
        closing = ["", "</details>"]
        cost = sum(len(x) + 1 for x in block + closing)
        rows = []
        for change in changes:
            text = row(change, show_pii)
            if used + cost + len(text) + 1 > limit:
                break
            rows.append(text)
            cost += len(text) + 1
        if rows:
            lines += [*block, *rows, *closing]
            used += cost
            left -= len(rows)
        if len(rows) < len(changes):
            break
    if left:
        lines += [
            "",
            f"… and {left} more change(s) not shown (GitHub limits a comment to 65,536 characters); "
            "run `orchestrator plan` for all of them.",
        ]
    return "\n".join(lines) + "\n"
