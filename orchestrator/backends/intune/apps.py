"""The app_assignment resource type: which groups an Intune mobile app is assigned to, and with what intent.

Key (app display name,), see `spec.APP_ASSIGNMENT`; value sorted [{"group", "intent"}]. The app name must
match exactly one mobileApp (a missing or ambiguous one is a problem naming the policy lines); `assign`
replaces the app's assignments as a whole.
"""

from __future__ import annotations

import asyncio
import logging

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.device_app_management.mobile_apps.item.assign.assign_post_request_body import (
    AssignPostRequestBody,
)
from msgraph.generated.device_app_management.mobile_apps.mobile_apps_request_builder import MobileAppsRequestBuilder
from msgraph.generated.models.group_assignment_target import GroupAssignmentTarget
from msgraph.generated.models.install_intent import InstallIntent
from msgraph.generated.models.mobile_app_assignment import MobileAppAssignment

from orchestrator.backends.intune.graph import GraphSession, odata_quote
from orchestrator.backends.intune.group_names import GroupNames
from orchestrator.backends.intune.groups import device_member_count
from orchestrator.backends.intune.spec import APP_ASSIGNMENT
from orchestrator.backends.pacing import Pacer
from orchestrator.core.backend import SentCallback
from orchestrator.core.errors import BackendError
from orchestrator.core.resources import Change, ChangeResult, Resource

log = logging.getLogger(__name__)
AVAILABLE = "available"


class Apps:
    """Observe the assignments of the apps policies name; apply one app's assignments at a time."""

    def __init__(self, session: GraphSession, groups: GroupNames, writes: Pacer):
        self.session = session
        self.groups = groups
        self.writes = writes
        self._ids: dict[str, str] = {}  # app display name → mobileApp id

    async def observe(self, desired: list[Resource], problems: list[str]) -> list[Resource]:
        names = [APP_ASSIGNMENT.split(r.id.key)["app"] for r in desired]
        lookups = await asyncio.gather(*(self._named(n) for n in names))
        observed = []
        for resource, name, apps in zip(desired, names, lookups, strict=True):
            where = ", ".join(resource.meta.get("app_sources") or resource.sources)
            if not apps:
                problems.append(f"{where}: Intune app {name!r} not found in mobileApps (check the display name)")
                continue
            if len(apps) > 1:
                problems.append(
                    f"{where}: Intune app name {name!r} is ambiguous ({len(apps)} apps: "
                    f"{', '.join(sorted(apps))}); rename one so the name is unique"
                )
                continue
            app_id = apps[0]
            self._ids[name] = app_id
            url = self.session.url("v1.0", f"deviceAppManagement/mobileApps/{app_id}/assignments")
            assignments = await self.session.get_all("GET mobileApps/assignments", url)
            targets = await self.groups.targets(assignments)
            value = sorted(
                (
                    {"group": target or "", "intent": str(a.get("intent"))}
                    for a, target in zip(assignments, targets, strict=True)
                ),
                key=lambda e: (e["group"], e["intent"]),
            )
            observed.append(Resource(id=resource.id, value=value, meta={"id": app_id}))
        await self._warn_available_to_devices(desired)
        return observed

    async def _warn_available_to_devices(self, desired: list[Resource]) -> list[str]:
        """Warn (once per app and group) when an `available` assignment targets a group holding devices.

        Intune offers `available` apps to users in the Company Portal: the intent applies to user groups only
        (Intune "Assign apps to groups"), so devices in the group get nothing. Returns the warnings.
        """
        warnings = []
        counts: dict[str, int] = {}
        for resource in desired:
            app = APP_ASSIGNMENT.split(resource.id.key)["app"]
            for entry in resource.value:
                group_id = self.groups.ids.get(entry["group"])
                if entry["intent"] != AVAILABLE or group_id is None:
                    continue
                if group_id not in counts:
                    counts[group_id] = await device_member_count(self.session, group_id)
                if counts[group_id]:
                    where = resource.meta.get("group_sources", {}).get(entry["group"]) or ", ".join(resource.sources)
                    warnings.append(
                        f"{where}: Intune app {app!r} is assigned as available to {entry['group']!r}, which holds "
                        f"{counts[group_id]} device(s): 'available' applies to user groups only, so those devices "
                        "get nothing (assign it to a user group, or use intent: required)"
                    )
        for warning in warnings:
            log.warning("%s", warning)
        return warnings

    async def _named(self, name: str) -> list[str]:
        query = MobileAppsRequestBuilder.MobileAppsRequestBuilderGetQueryParameters(
            filter=f"displayName eq '{odata_quote(name)}'", select=["id", "displayName"]
        )
        config = RequestConfiguration(query_parameters=query)
        apps = self.session.client.device_app_management.mobile_apps
        page = await self.session.call("GET mobileApps", lambda: apps.get(config))
        return [a.id or "" for a in (page.value if page else []) or [] if a.display_name == name]

    def apply(self, change: Change, on_sent: SentCallback) -> ChangeResult:
        """Replace the app's assignments with `change.after` (none for a delete)."""
        name = APP_ASSIGNMENT.split(change.id.key)["app"]
        if name not in self._ids:
            apps = self.session.run(self._named(name))
            if len(apps) != 1:
                raise BackendError(
                    f"{', '.join(change.sources)}: Intune app {name!r} {'not found' if not apps else 'is ambiguous'}"
                )
            self._ids[name] = apps[0]
        entries = list(change.after or []) if change.op != "delete" else []
        group_ids = dict(
            zip(
                sorted({e["group"] for e in entries}),
                self.groups.ids_for([e["group"] for e in entries], change),
                strict=True,
            )
        )
        body = AssignPostRequestBody(
            mobile_app_assignments=[
                MobileAppAssignment(
                    intent=InstallIntent(e["intent"]), target=GroupAssignmentTarget(group_id=group_ids[e["group"]])
                )
                for e in entries
            ]
        )
        builder = self.session.client.device_app_management.mobile_apps.by_mobile_app_id(self._ids[name])
        on_sent(change)
        self.writes.acquire()
        self.session.run(self.session.call("POST mobileApps/assign", lambda: builder.assign.post(body)))
        return ChangeResult(change.key, "succeeded", f"assigned {len(entries)} group(s)")
