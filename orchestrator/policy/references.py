"""Checks across policy documents: unique names, references from one document to another (a window's calendar,
the window a Reimage or an escalation runs in) and conflicts (two documents setting one setting on one target).

Each problem is a diagnostic at the `file:line` of the document that has to change, with a did-you-mean.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from orchestrator.core.errors import Diagnostic
from orchestrator.policy.models import (
    AppPush,
    LostDevicePolicy,
    MaintenanceWindow,
    Reimage,
    RepairPolicy,
    SchoolCalendar,
    WebFilter,
)

if TYPE_CHECKING:  # the loader runs these checks; its types are only named here
    from orchestrator.policy.loader import LoadedPolicy, PolicySet, Source


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for the closest of `choices`, or "" when none is close."""
    if len(word) > 100:  # no key or kind is this long; difflib would only spend time on it
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_references(policies: PolicySet) -> list[Diagnostic]:
    """Duplicate names and references between documents (window and repair → calendar, reimage and escalate →
    window), and one RepairPolicy at most."""
    problems: list[Diagnostic] = []
    seen: dict[tuple[str, str], LoadedPolicy] = {}
    for loaded in policies.policies:
        key = (loaded.model.kind, loaded.model.name)
        if key in seen:
            first = seen[key].source
            problems.append(
                Diagnostic(
                    loaded.doc.file,
                    loaded.doc.line_of(("name",)),
                    "name",
                    f"duplicate {key[0]} name {key[1]!r}, first defined at {first}",
                    "names are unique per kind",
                )
            )
        else:
            seen[key] = loaded
    calendars = {m.name for m, _ in policies.of_kind(SchoolCalendar)}
    windows = {m.name for m, _ in policies.of_kind(MaintenanceWindow)}
    # (the name used, the names it may be, their kind, the document, the field path)
    refs = [(w.calendar, calendars, "SchoolCalendar", d, ("calendar",)) for w, d in policies.of_kind(MaintenanceWindow)]
    refs += [(m.window, windows, "MaintenanceWindow", ld, ("window",)) for m, ld in policies.of_kind(Reimage)]
    refs += [
        (m.escalate.window, windows, "MaintenanceWindow", ld, ("escalate", "window"))
        for m, ld in policies.of_kind(LostDevicePolicy)
        if m.escalate
    ]
    refs += [(m.calendar, calendars, "SchoolCalendar", ld, ("calendar",)) for m, ld in policies.of_kind(RepairPolicy)]
    repair = policies.of_kind(RepairPolicy)
    for _, loaded in repair[1:]:  # due dates have one rule per district
        problems.append(
            Diagnostic(
                loaded.doc.file,
                loaded.doc.line_of(("kind",)),
                "kind",
                f"a second RepairPolicy; the first is at {repair[0][1].source}",
                "one RepairPolicy per district",
            )
        )
    for name, known, kind, loaded, path in refs:
        if name not in known:
            problems.append(
                Diagnostic(
                    loaded.doc.file,
                    loaded.doc.line_of(path),
                    ".".join(path),
                    f"no {kind} named {name!r}{did_you_mean(name, known)}",
                    "known: " + (", ".join(sorted(known)) or "none"),
                )
            )
    return problems


def check_conflicts(policies: PolicySet) -> list[Diagnostic]:
    """Two documents setting the same setting on the same target is an error naming both places."""
    claims: dict[tuple[str, ...], Source] = {}
    problems: list[Diagnostic] = []

    def claim(key: tuple[str, ...], source: Source, field_path: str) -> None:
        if key in claims and claims[key].file + str(claims[key].line) != source.file + str(source.line):
            first = claims[key]
            problems.append(
                Diagnostic(
                    source.file,
                    source.line,
                    field_path,
                    f"conflict: {key[1]} {key[2]!r} already sets {key[0]} at {first}",
                    "one document per setting and target",
                )
            )
        else:
            claims.setdefault(key, source)

    for model, loaded in policies.of_kind(WebFilter):
        for target_field, targets in _targets(model.targets):
            for target in targets:
                for setting in ("blocked", "allowed", "safe_search", "youtube"):
                    value = getattr(model, setting)
                    if value not in (None, []):
                        claim((f"WebFilter.{setting}", target_field, target), loaded.source_of(setting), setting)
    for model, loaded in policies.of_kind(AppPush):
        for target_field, targets in _targets(model.targets):
            for target in targets:
                for i, app in enumerate(model.chrome):
                    claim((f"chrome app {app.id}", target_field, target), loaded.source_of("chrome", i), f"chrome[{i}]")
                for i, iapp in enumerate(model.intune):
                    claim(
                        (f"intune app {iapp.app!r}", target_field, target),
                        loaded.source_of("intune", i),
                        f"intune[{i}]",
                    )
    for model, loaded in policies.of_kind(LostDevicePolicy):
        for school in model.schools or ["*"]:
            claim(("LostDevicePolicy", "school", school), loaded.source_of("schools"), "schools")
    return problems


def _targets(targets: Any) -> list[tuple[str, list[str]]]:
    return [
        ("google_ou", targets.google_ous),
        ("intune_group", targets.intune_groups),
        ("network_site", targets.network_sites),
    ]
