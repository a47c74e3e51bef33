"""Parse ansible-runner events into per-resource-type, per-host outcomes and unified diffs.

Plays are named `K12 <resource type> ...` (see playbooks/site.yml); every host event of a play counts
for that type. Check mode is not marked in events: the caller knows which mode it ran. A report play
(playbooks/report.yml) ends each host with a `k12_report` fact, kept per host as the gear's current state.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_PLAY = re.compile(r"^K12 ([a-z_]+)\b")
# how ansible-playbook says why a whole run failed: `[ERROR]: …` (ansible-core ≥ 2.19) or `ERROR! …` (older)
_ERROR = re.compile(r"^\s*(\[ERROR\]:|ERROR!)\s*")
_ORIGIN = re.compile(r"^\s*(Origin:|The error appears to be in)")
HOST_EVENTS = {"runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped"}
REPORT_FACT = "k12_report"  # what a report play's last task sets per host (playbooks/report.yml)


@dataclass
class HostOutcome:
    changed: bool = False
    failed: bool = False
    unreachable: bool = False
    messages: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"

    def summary(self) -> str:
        return self.state + (f": {'; '.join(self.messages)}" if self.messages else "")


@dataclass
class TypeOutcome:
    """What one resource type's play did on a site's hosts."""

    hosts: dict[str, HostOutcome] = field(default_factory=dict)
    diffs: list[str] = field(default_factory=list)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    """host → the `k12_report` fact a report play (playbooks/report.yml) set: the gear's current state."""

    @property
    def changed(self) -> bool:
        return any(h.changed for h in self.hosts.values())

    @property
    def ok(self) -> bool:
        return bool(self.hosts) and not any(h.failed or h.unreachable for h in self.hosts.values())

    def host_summary(self) -> dict[str, str]:
        return {name: outcome.summary() for name, outcome in sorted(self.hosts.items())}


def resource_type_of(play: str | None) -> str | None:
    match = _PLAY.match(play or "")
    return match.group(1) if match else None


def parse_events(events: Iterable[dict[str, Any]]) -> dict[str, TypeOutcome]:
    """Outcomes keyed by resource type, from ansible-runner event dicts (`Runner.events` or job_events/*.json)."""
    outcomes: dict[str, TypeOutcome] = {}
    for event in events:
        kind = event.get("event")
        data = event.get("event_data") or {}
        rtype = resource_type_of(data.get("play"))
        if kind not in HOST_EVENTS or rtype is None or not data.get("host"):
            continue
        outcome = outcomes.setdefault(rtype, TypeOutcome())
        host = outcome.hosts.setdefault(data["host"], HostOutcome())
        res = data.get("res") or {}
        report = (res.get("ansible_facts") or {}).get(REPORT_FACT) if kind == "runner_on_ok" else None
        if isinstance(report, dict):
            outcome.reports[data["host"]] = report
        if kind == "runner_on_unreachable":
            host.unreachable = True
            host.messages.append(_message(data, res))
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            host.failed = True
            host.messages.append(_message(data, res))
        elif kind == "runner_on_ok" and res.get("changed"):
            host.changed = True
            outcome.diffs.extend(render_diff(res.get("diff"), data["host"], data.get("task", "")))
            if data.get("task_action") in ("debug", "ansible.builtin.debug") and res.get("msg"):
                host.messages.append(_message(data, res))  # a drift note such as "live table differs"
    return outcomes


def _message(data: dict[str, Any], res: dict[str, Any]) -> str:
    text = str(res.get("msg") or res.get("stderr") or "failed").strip().splitlines()
    return f"{data.get('task', '')}: {text[0] if text else ''}"[:300]


def render_diff(diff: Any, host: str, task: str) -> list[str]:
    """Unified diffs from a module result's `diff` (a dict or a list of dicts with before/after)."""
    entries = diff if isinstance(diff, list) else [diff] if isinstance(diff, dict) else []
    rendered: list[str] = []
    for entry in entries:
        if "prepared" in entry:
            rendered.append(f"--- {host}: {task}\n{entry['prepared']}")
            continue
        before, after = _text(entry.get("before")), _text(entry.get("after"))
        if before == after:
            continue
        # both sides are named after the destination: a template's after_header is a random temp path, and
        # the observed value (this diff included) must be identical on every check run of the same state
        name = entry.get("before_header") or task
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{host}:{name} (before)",
            tofile=f"{host}:{name} (after)",
        )
        rendered.append("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return rendered


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=1, sort_keys=True) + "\n"


def failure_cause(stdout: str, limit: int = 800) -> str:
    """Why a run failed before any host reported, from ansible-playbook's output ("" when it does not say).

    Keeps each `[ERROR]:`/`ERROR!` line and the `Origin:` line naming the playbook file:line after it, so a
    missing collection reads "couldn't resolve module/action 'x.y.z' … (site.yml:5:7)", not a stdout tail.
    """
    lines = stdout.splitlines()
    found: list[str] = []
    for index, line in enumerate(lines):
        if not _ERROR.match(line):
            continue
        text = _ERROR.sub("", line).strip()
        origin = next((o.strip() for o in lines[index + 1 : index + 4] if _ORIGIN.match(o)), "")
        found.append(f"{text} ({origin})" if origin else text)
    return "; ".join(dict.fromkeys(found))[:limit]
