"""What `orchestrator export` reads from Intune: every web filter profile, Settings Catalog policy and assigned app.

A plan observes only managed profiles (names starting `K12 `) and the apps its policies name, so `observe([])`
cannot show an adopting district what it has. This reads, through the backend's own Graph session (msgraph-sdk
request adapter, retries, call counter), no more than a plan of the exported policies reads:

  GET beta deviceManagement/configurationPolicies ($select id,name,platforms,technologies)   one list, paged
  GET beta …/configurationPolicies/{id}/settings and /assignments     only for managed names (as a plan does)
  GET beta deviceManagement/deviceConfigurations?$expand=assignments                         one list, paged
  GET v1.0 deviceAppManagement/mobileApps?$expand=assignments                                one list, paged
  GET v1.0 groups/{id}                                  once per assigned group (the names policies use)

Every object becomes a Resource of the backend's types keyed (platform, name) or (app name,), with `meta`:
`name` (the console's own display name; a `|` is shown as `/` in the key only), `ids` (several when names
repeat), `managed` (the name is one this tool writes), `odata_type`, `filters` (assignment filters on the targets)
and for apps `settings` (assignment settings other than Intune's defaults, and assignment filters: an `assign`
from a policy would drop both). `value` is the plan's
value (`{"blocked", "allowed", "assignments"}` (+ `other_settings`) or `[{"group", "intent"}]`) when exactly
one object has the name, else None. The exporter (exporter.py) decides what the policy language can say.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from orchestrator.backends.intune.backend import IntuneBackend
from orchestrator.backends.intune.names import is_managed
from orchestrator.backends.intune.profile_body import PLATFORM_OF_TYPE, profile_lists
from orchestrator.backends.intune.settings_body import foreign_settings, policy_lists
from orchestrator.backends.intune.settings_policies import COLLECTION, PLATFORM_OF
from orchestrator.backends.intune.spec import APP_ASSIGNMENT, CONFIG_PROFILE, SETTINGS_POLICY
from orchestrator.core.resources import Resource
from orchestrator.core.types import KEY_SEPARATOR

# Assignment settings an `assign` without settings leaves as they are here (Graph win32LobAppAssignmentSettings:
# notifications showAll, deliveryOptimizationPriority notConfigured; absent restart/install-time settings). Any
# other value is one the policy language cannot say. Unverified against a real tenant (docs/api-conformance.md).
DEFAULT_SETTINGS: dict[str, Any] = {"notifications": "showAll", "deliveryOptimizationPriority": "notConfigured"}


def read_for_export(backend: IntuneBackend) -> list[Resource]:
    """BackendSpec.export_read for Intune (see the module docstring)."""
    return backend.session.run(_read(backend))


def _key_name(name: str) -> str:
    return name.replace(KEY_SEPARATOR, "/")


async def _read(backend: IntuneBackend) -> list[Resource]:
    return [*await _settings_policies(backend), *await _profiles(backend), *await _apps(backend)]


async def _settings_policies(backend: IntuneBackend) -> list[Resource]:
    session = backend.session
    url = session.url("beta", COLLECTION, **{"$select": "id,name,platforms,technologies"})
    named: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in await session.get_all("GET configurationPolicies", url):
        platforms = str(record.get("platforms") or "")
        named[(PLATFORM_OF.get(platforms, platforms or "other"), str(record.get("name") or ""))].append(record)
    out = []
    for (platform, name), records in sorted(named.items()):
        managed = is_managed(name)
        meta = {"name": name, "ids": sorted(str(r["id"]) for r in records), "managed": managed}
        meta["odata_type"] = "#microsoft.graph.deviceManagementConfigurationPolicy"
        value = None
        if managed and len(records) == 1:
            base = f"{COLLECTION}/{records[0]['id']}"
            settings = await session.get_all(
                "GET configurationPolicies/settings", session.url("beta", f"{base}/settings")
            )
            assigned = await session.get_all(
                "GET configurationPolicies/assignments", session.url("beta", f"{base}/assignments")
            )
            targets = await backend.groups.targets(assigned)
            value = {**policy_lists(settings), "assignments": sorted({t for t in targets if t})}
            meta["filters"] = _filters(assigned)
            other = foreign_settings(settings)
            if other:
                value["other_settings"] = other
        out.append(Resource(SETTINGS_POLICY.id(platform, _key_name(name)), value, meta=meta))
    return out


async def _profiles(backend: IntuneBackend) -> list[Resource]:
    session = backend.session
    url = session.url("beta", "deviceManagement/deviceConfigurations", **{"$expand": "assignments"})
    named: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in await session.get_all("GET deviceConfigurations", url):
        platform = PLATFORM_OF_TYPE.get(str(record.get("@odata.type")), "other")
        named[(platform, str(record.get("displayName") or ""))].append(record)
    out = []
    for (platform, name), records in sorted(named.items()):
        managed = is_managed(name)
        kinds = sorted({str(r.get("@odata.type") or "") for r in records})
        meta = {"name": name, "ids": sorted(str(r["id"]) for r in records), "managed": managed, "odata_type": kinds[0]}
        meta["web_filter"] = any(r.get("contentFilterSettings") for r in records)
        value = None
        if managed and len(records) == 1:
            targets = await backend.groups.targets(records[0].get("assignments") or [])
            value = {**profile_lists(records[0]), "assignments": sorted({t for t in targets if t})}
            meta["filters"] = _filters(records[0].get("assignments") or [])
        out.append(Resource(CONFIG_PROFILE.id(platform, _key_name(name)), value, meta=meta))
    return out


def _filters(assignments: list[dict[str, Any]]) -> list[str]:
    """Assignment filters on the targets (Graph `deviceAndAppManagementAssignmentFilterId/Type`): a policy
    cannot say them, and an `assign` from one would drop them."""
    out = set()
    for assignment in assignments:
        target = assignment.get("target") or {}
        kind = target.get("deviceAndAppManagementAssignmentFilterType")
        if target.get("deviceAndAppManagementAssignmentFilterId") and kind not in (None, "none"):
            out.add(f"assignment filter {target['deviceAndAppManagementAssignmentFilterId']} ({kind})")
    return sorted(out)


def _unusual_settings(assignment: dict[str, Any]) -> list[str]:
    settings = assignment.get("settings") or {}
    return sorted(
        f"{field}={value!r}"
        for field, value in settings.items()
        if not field.startswith("@odata") and value is not None and DEFAULT_SETTINGS.get(field) != value
    ) + _filters([assignment])


async def _apps(backend: IntuneBackend) -> list[Resource]:
    """Apps with at least one assignment (an unassigned app needs no policy: a plan leaves it alone)."""
    session = backend.session
    url = session.url("v1.0", "deviceAppManagement/mobileApps", **{"$expand": "assignments"})
    named: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in await session.get_all("GET mobileApps", url):
        named[str(record.get("displayName") or "")].append(record)
    out = []
    for name, records in sorted(named.items()):
        assignments = [a for r in records for a in r.get("assignments") or []]
        if not assignments:
            continue
        meta: dict[str, Any] = {
            "name": name,
            "ids": sorted(str(r["id"]) for r in records),
            "odata_type": str(records[0].get("@odata.type") or ""),
            "settings": sorted({s for a in assignments for s in _unusual_settings(a)}),
        }
        value = None
        if len(records) == 1:
            targets = await backend.groups.targets(assignments)
            value = sorted(
                ({"group": t or "", "intent": str(a.get("intent"))} for a, t in zip(assignments, targets, strict=True)),
                key=lambda e: (e["group"], e["intent"]),
            )
        out.append(Resource(APP_ASSIGNMENT.id(_key_name(name)), value, meta=meta))
    return out
