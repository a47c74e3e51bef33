"""The inverse of the Intune compiler: what export_read.py saw → WebFilter and AppPush documents. Pure: no I/O.

The compiler makes, per WebFilter with `intune_groups`, a Windows Settings Catalog policy and an iOS web
content filter profile, both named `K12 WebFilter <policy>` with the same value {"blocked", "allowed",
"assignments"}; and per app an `app_assignment` whose value is every (group, intent) of the AppPush documents
naming it. So:

    intune/web-filters.yaml  one WebFilter per managed name with both objects and one value: name <policy>,
                             targets.intune_groups = the assigned groups, blocked/allowed = the lists
    intune/apps.yaml         one AppPush per assigned group (`intune-apps-<group>`): intune [{app, intent}]

A setting is exported only when compiling the document gives back exactly the console's value, so the plan of
an export is empty. Everything else stays in the console, unmanaged (a plan never changes it), and is named in
the file's header and the command's output: profiles and policies not made by this tool (their names do not
start with `K12 `; rename one `K12 WebFilter <name>` in the console to adopt it), kinds the policy language does
not manage, a name with only one of its two objects or different lists on Windows and iOS, settings added by
hand to a managed policy, list entries that are not plain domains, assignments to all devices/all users/an
excluded or deleted group, assignment filters, assignment settings other than Intune's defaults, app names
shared by several apps, and a group that two web filters would both set (the policy language allows one per
group).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import Any

from orchestrator.backends.intune.names import MANAGED_PREFIX, profile_name
from orchestrator.backends.intune.spec import APP_ASSIGNMENT, CONFIG_PROFILE, SETTINGS_POLICY
from orchestrator.core.backend import ExportInput
from orchestrator.core.resources import Resource
from orchestrator.policy.grammar import check_app_name, check_domain, check_group, check_name
from orchestrator.policy.models import AppPush, IntuneApp, Targets, WebFilter
from orchestrator.policy.writer import ExportedDoc, ExportFile

WEB_FILTERS = "intune/web-filters.yaml"
APPS = "intune/apps.yaml"
INTENTS = ("required", "available", "uninstall")
_APPS_PREFIX = "intune-apps-"
_MAX_NAME = 63


def group_slug(group: str) -> str:
    """`Students - Grade 5` → `students-grade-5` (stable: the AppPush names); long names keep a hash."""
    room = _MAX_NAME - len(_APPS_PREFIX)
    slug = re.sub(r"[^a-z0-9]+", "-", group.lower()).strip("-") or "group"
    if len(slug) > room:
        slug = slug[: room - 9].rstrip("-") + "-" + hashlib.sha256(group.encode()).hexdigest()[:8]
    return slug


def _valid(check: Any, value: str) -> bool:
    try:
        return check(value) == value
    except ValueError:
        return False


def _domains(value: dict[str, Any]) -> str | None:
    """Why the lists cannot be said as policy domains, or None (the compiler writes `*.d` as `d`)."""
    bad = sorted(d for key in ("blocked", "allowed") for d in value.get(key) or [] if not _valid(check_domain, d))
    bad += sorted(d for key in ("blocked", "allowed") for d in value.get(key) or [] if d.startswith("*."))
    if bad:
        return f"entries that are not plain domains: {', '.join(bad[:5])}"
    both = sorted(set(value.get("blocked") or []) & set(value.get("allowed") or []))
    return f"domains both blocked and allowed: {', '.join(both)}" if both else None


def _groups(names: list[str]) -> str | None:
    odd = [g for g in names if not _valid(check_group, g)]
    if odd:
        return f"assigned to {', '.join(odd)} (a policy targets groups by a plain display name)"
    return None if names else "assigned to no group (a WebFilter targets at least one)"


def _describe(resource: Resource) -> str:
    kind = str(resource.meta.get("odata_type") or "").removeprefix("#microsoft.graph.")
    platform = resource.id.key.split("|", 1)[0] if resource.id.type != APP_ASSIGNMENT.name else ""
    noun = "settings catalog policy" if resource.id.type == SETTINGS_POLICY.name else "profile"
    return f"{platform} {noun} {resource.meta.get('name')!r} ({kind})".strip()


def _web_filters(observed: list[Resource]) -> tuple[list[WebFilter], list[str]]:
    left_out: list[str] = []
    pairs: dict[str, dict[str, Resource]] = defaultdict(dict)
    for resource in observed:
        name = str(resource.meta.get("name"))
        if resource.id.type not in (SETTINGS_POLICY.name, CONFIG_PROFILE.name):
            continue
        if not resource.meta.get("managed"):
            hint = "not made by this tool"
            if resource.id.type == SETTINGS_POLICY.name or resource.meta.get("web_filter"):
                hint += f"; to adopt a web filter, rename it {MANAGED_PREFIX}WebFilter <name> and export again"
            left_out.append(f"{_describe(resource)}: {hint}")
            continue
        if len(resource.meta.get("ids") or []) > 1:
            left_out.append(f"{_describe(resource)}: {len(resource.meta['ids'])} objects share this name")
            continue
        platform = resource.id.key.split("|", 1)[0]
        if (resource.id.type, platform) not in ((SETTINGS_POLICY.name, "windows"), (CONFIG_PROFILE.name, "ios")):
            left_out.append(f"{_describe(resource)}: not a kind the policy language makes")
            continue
        pairs[name][platform] = resource
    filters: list[WebFilter] = []
    claimed: dict[tuple[str, str], str] = {}
    for name, found in sorted(pairs.items()):
        policy = name.removeprefix(f"{MANAGED_PREFIX}WebFilter ")
        why = _pair_problem(name, policy, found)
        if why is None:
            value = found["windows"].value
            claims = [(g, key) for g in value["assignments"] for key in ("blocked", "allowed") if value[key]]
            shared = sorted({f"{g} ({claimed[(g, k)]})" for g, k in claims if (g, k) in claimed})
            if shared:
                why = f"a web filter for {', '.join(shared)} is already exported (one per group)"
        if why is not None:
            left_out.append(f"web filter {name!r}: {why}")
            continue
        for claim in claims:
            claimed[claim] = policy
        settings = {key: value[key] for key in ("blocked", "allowed") if value[key]}
        filters.append(
            WebFilter(
                kind="WebFilter",
                name=policy,
                description=f"Intune web filter {name}",
                targets=Targets(intune_groups=value["assignments"]),
                **settings,
            )
        )
    return filters, left_out


def _pair_problem(name: str, policy: str, found: dict[str, Resource]) -> str | None:
    """Why the Windows policy and iOS profile named `name` are not exactly one WebFilter, or None."""
    if not _valid(check_name, policy) or profile_name(policy) != name:
        return f"{policy!r} is not a policy name (lowercase letters, digits and '-')"
    missing = [p for p in ("windows", "ios") if p not in found]
    if missing:
        return f"has no {' or '.join(missing)} object of the same name (a WebFilter makes both)"
    windows, ios = found["windows"].value, found["ios"].value
    filters = sorted({f for r in found.values() for f in r.meta.get("filters") or []})
    if filters:
        return f"assignment filters a policy cannot say: {', '.join(filters)}"
    if windows.get("other_settings"):
        return f"settings added by hand: {', '.join(windows['other_settings'])}"
    if windows != ios:
        return "the Windows and iOS lists or groups differ (a WebFilter sets both alike)"
    return _domains(windows) or _groups(list(windows["assignments"]))


def _app_problem(resource: Resource) -> str | None:
    name = str(resource.meta.get("name"))
    if len(resource.meta.get("ids") or []) > 1:
        return f"{len(resource.meta['ids'])} apps share this name"
    if not _valid(check_app_name, name):
        return "not an app name the policy language takes (letters, digits, spaces and ' _.&()+,:-')"
    if resource.meta.get("settings"):
        return f"assignment settings a policy cannot say: {', '.join(resource.meta['settings'])}"
    entries = list(resource.value or [])
    odd = sorted({e["intent"] for e in entries if e["intent"] not in INTENTS})
    if odd:
        return f"intent {', '.join(odd)} (the policy language has {', '.join(INTENTS)})"
    groups = [e["group"] for e in entries]
    why = _groups(groups)
    if why is not None:
        return why
    twice = sorted({g for g in groups if groups.count(g) > 1})
    return f"assigned to {', '.join(twice)} with several intents" if twice else None


def _app_pushes(observed: list[Resource]) -> tuple[list[AppPush], list[str]]:
    left_out: list[str] = []
    by_group: dict[str, list[IntuneApp]] = defaultdict(list)
    for resource in observed:
        if resource.id.type != APP_ASSIGNMENT.name:
            continue
        why = _app_problem(resource)
        if why is not None:
            left_out.append(f"app {resource.meta.get('name')!r}: {why}")
            continue
        for entry in resource.value:
            by_group[entry["group"]].append(IntuneApp(app=str(resource.meta["name"]), intent=entry["intent"]))
    pushes = []
    names: set[str] = set()
    for group in sorted(by_group):
        slug = group_slug(group)
        if slug in names:  # two groups with one slug (`Grade 5` and `Grade-5`): the hash keeps them apart
            slug = f"{slug[: _MAX_NAME - len(_APPS_PREFIX) - 9]}-{hashlib.sha256(group.encode()).hexdigest()[:8]}"
        names.add(slug)
        apps = sorted(by_group[group], key=lambda a: a.app)
        pushes.append(
            AppPush(
                kind="AppPush",
                name=f"{_APPS_PREFIX}{slug}",
                description=f"Intune apps assigned to {group}",
                targets=Targets(intune_groups=[group]),
                intune=apps,
            )
        )
    return pushes, left_out


def export_intune(given: ExportInput) -> list[ExportFile]:
    """web-filters.yaml and apps.yaml from what `read_for_export` returned (a file without documents only
    carries what was left out)."""
    section = given.section
    console = f"Microsoft Intune (tenant {section.tenant_id or section.graph_endpoint or 'unknown'})"
    if given.subtree is not None:
        why = f"--ou {given.subtree} limits the export to Google org units; Intune was not exported"
        return [ExportFile(WEB_FILTERS, (), (), left_out=(why,))]
    observed = [r for r in given.observed if r.id.backend == "intune"]
    filters, filter_notes = _web_filters(observed)
    pushes, app_notes = _app_pushes(observed)
    filter_docs = tuple(
        ExportedDoc(f, (f"The Windows Edge URL lists and iOS web content filter {profile_name(f.name)}.",))
        for f in filters
    )
    app_docs = tuple(ExportedDoc(p, (f"Apps assigned to the group {p.targets.intune_groups[0]}.",)) for p in pushes)
    return [
        ExportFile(
            WEB_FILTERS,
            (f"Exported by `orchestrator export` from {console}: web filter profiles.",),
            filter_docs,
            read_at=given.read_at,
            left_out=tuple(sorted(filter_notes)),
        ),
        ExportFile(
            APPS,
            (f"Exported by `orchestrator export` from {console}: app assignments.",),
            app_docs,
            read_at=given.read_at,
            left_out=tuple(sorted(app_notes)),
        ),
    ]
