"""What a plan says, before it is drawn: each change as attribute lines (+ added, - removed, ~ changed, list
members one by one), its kind (setting, app, device action), the counts of the summary, and Chrome app names.

Shared by the terminal renderer (`render.py`) and the Markdown one (`plan_markdown.py`); no rich, no Markdown.
"""

from __future__ import annotations

import json
import linecache
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.backends.registry import CATALOG
from orchestrator.core.errors import OrchestratorError
from orchestrator.core.redact import redact, redact_text
from orchestrator.core.resources import Change, ResourceId
from orchestrator.core.types import KEY_SEPARATOR
from orchestrator.engine.plan import Plan

SYMBOL = {"create": "+", "update": "~", "delete": "-", "action": "!"}
VERB = {"create": "will be set", "update": "will be changed", "delete": "will be removed", "action": "will run"}
CHECK_MODE_KEYS = ("diff", "differs", "hosts", "error")  # what a network check run reports instead of a value
_APP_ID = re.compile(r"^[a-p]{32}$")
_COMMENT = re.compile(r"#\s*(.+?)\s*$")


@dataclass(frozen=True)
class Line:
    """One attribute line: `sign` (+, -, ~ or a space for a heading), `name` ("" for the whole value), `text`."""

    sign: str
    name: str
    text: str
    depth: int = 0


def shown(value: Any, show_pii: bool, name: str = "") -> str:
    """A value as compact JSON (redacted unless `show_pii`; whole when `name` is a PII key); never shortened."""
    if value is None:
        return "(none)"
    if not show_pii:
        value = redact({name: value})[name]  # a student's notes hold no e-mail address, yet they are PII
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _members(name: str, before: list[Any], after: list[Any], show_pii: bool, sign: str, depth: int = 0) -> list[Line]:
    """A list attribute: the members removed and added, one line each, under a heading line."""
    if not before and not after:
        return [Line(sign, name, "[]", depth)]
    added = [x for x in after if x not in before]
    removed = [x for x in before if x not in after]
    kept = len(after) - len(added)
    heading = Line(sign, name, f"({kept} unchanged)" if kept else "", depth)
    members = [Line("-", "", shown(x, show_pii, name), depth + 1) for x in removed]
    return [heading, *members, *(Line("+", "", shown(x, show_pii, name), depth + 1) for x in added)]


def _attribute(name: str, before: Any, after: Any, show_pii: bool, is_new: bool, is_gone: bool) -> list[Line]:
    sign = "+" if is_new else "-" if is_gone else "~"
    if isinstance(after, list | None) and isinstance(before, list | None) and (after is not None or before is not None):
        return _members(name, before or [], after or [], show_pii, sign)
    if is_new:
        return [Line("+", name, shown(after, show_pii, name))]
    if is_gone:
        return [Line("-", name, shown(before, show_pii, name))]
    return [Line("~", name, f"{shown(before, show_pii, name)} → {shown(after, show_pii, name)}")]


def attribute_lines(change: Change, show_pii: bool = False) -> list[Line]:
    """Per-attribute lines of one change (unchanged attributes left out), redacted unless `show_pii`."""
    before, after = change.before, change.after
    lines: list[Line] = []
    if isinstance(before, dict) and before.get("differs"):
        hosts = ", ".join(f"{h}: {s}" for h, s in sorted(before.get("hosts", {}).items()))
        lines.append(Line("~", "check mode", f"would change ({hosts or before.get('error') or 'see diff'})"))
        before = None
    if isinstance(after, dict) and isinstance(before, dict | None) and (before or after):
        old = before or {}
        for key in sorted((set(old) | set(after)) - set(CHECK_MODE_KEYS)):
            if key in old and key in after and old[key] == after[key]:
                continue
            lines += _attribute(key, old.get(key), after.get(key), show_pii, key not in old, key not in after)
    elif isinstance(before, dict) and after is None:
        lines += [Line("-", k, shown(v, show_pii, k)) for k, v in sorted(before.items()) if k not in CHECK_MODE_KEYS]
    elif isinstance(after, list) or isinstance(before, list):
        lines += _members("", before or [], after or [], show_pii, "~", -1)[1:] or [Line("~", "", "[]")]
    elif change.op == "delete":
        lines.append(Line("-", "", shown(before, show_pii)))
    elif before is None:
        lines.append(Line("+", "", shown(after, show_pii)))
    else:
        lines.append(Line("~", "", f"{shown(before, show_pii)} → {shown(after, show_pii)}"))
    if not show_pii:
        lines = [Line(x.sign, x.name, redact_text(x.text), x.depth) for x in lines]
    return [Line(x.sign, x.name, x.text, max(x.depth, 0)) for x in lines]


def kind(change: Change) -> str:
    """`setting`, `app` or `device` (a lock, a release, a reimage, a quarantine: anything not of scope policy)."""
    try:
        scope = CATALOG.type_of(change.id).scope
    except OrchestratorError:
        scope = "policy" if change.op != "action" and not change.destructive else "lockdown"
    if scope != "policy":
        return "device"
    return "app" if "app" in change.id.type else "setting"


def device_count(change: Change) -> int:
    """How many devices one device change acts on (a quarantine list adds and removes several)."""
    if isinstance(change.after, list) or isinstance(change.before, list):
        before, after = change.before or [], change.after or []
        return max(1, len([x for x in after if x not in before]) + len([x for x in before if x not in after]))
    return 1


@dataclass
class Summary:
    settings: Counter[str]
    apps: int
    devices: int
    destructive: int
    prunes: int

    @classmethod
    def of(cls, plan: Plan) -> Summary:
        settings: Counter[str] = Counter()
        apps = devices = destructive = prunes = 0
        for change in plan.changes:
            what = kind(change)
            if what == "device":
                devices += device_count(change)
            elif what == "app":
                apps += 1
            else:
                settings[change.op] += 1
            destructive += change.destructive
            prunes += is_prune(change)
        return cls(settings, apps, devices, destructive, prunes)

    def sentence(self) -> str:
        s = self.settings
        text = (
            f"Plan: settings {s['create']} to set, {s['update']} to change, {s['delete']} to remove; "
            f"{self.apps} app change(s); {self.devices} device action(s)"
        )
        if self.destructive:
            text += f"; {self.destructive} destructive (gated by maintenance windows)"
        return text + "."


def is_prune(change: Change) -> bool:
    """A delete of a setting no policy mentions any more (shown at the top of a review)."""
    return change.op == "delete" and kind(change) != "device"


def headline(plan: Plan) -> str:
    """One sentence: what would change; with no changes, exactly what was found in sync and what is held back."""
    held = f" {len(plan.held)} change(s) held back (listed below)." if plan.held else ""
    if not plan.changes:
        checked = ", ".join(plan.backends) or "no backend"
        return f"No changes. In sync: {checked} ({', '.join(plan.scopes)}).{held}"
    return Summary.of(plan).sentence() + held


def app_name(change: Change) -> str | None:
    """The name a policy gives a Chrome app id: the comment on the line of the policy that names it."""
    app_id = change.id.key.rsplit("|", 1)[-1]
    if not _APP_ID.match(app_id):
        return None
    for source in change.sources:
        path, _, line = source.rpartition(":")
        if not line.isdigit() or not Path(path).is_file():
            continue
        # Keyed by the absolute path and re-checked: a relative path read from another folder, or a file
        # edited since, must never return a stale line from linecache.
        absolute = str(Path(path).resolve())
        linecache.checkcache(absolute)
        text = linecache.getline(absolute, int(line))
        if app_id in text and (found := _COMMENT.search(text.split(app_id, 1)[1])):
            return found.group(1)
    return None


def title(change: Change) -> str:
    """The resource id, with the Chrome app's name when the policy gives one."""
    name = app_name(change)
    return f"{change.id} ({name})" if name else str(change.id)


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
