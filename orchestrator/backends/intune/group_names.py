"""Entra ID group display names ↔ ids for assignments, cached for one run.

Policies name groups by display name; Graph assigns by id. A name must match exactly one group: a missing or
ambiguous one is a problem naming the policy line that used it (collected, then raised as one PlanError by
observe). Ids met in assignments are read back to names (`<deleted group …>` when gone).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder

from orchestrator.backends.intune.graph import GraphSession, odata_quote
from orchestrator.core.errors import BackendError
from orchestrator.core.resources import Change


class GroupNames:
    """Group display name → id and id → name, filled by exact-name lookups and read-backs."""

    def __init__(self, session: GraphSession):
        self.session = session
        self.ids: dict[str, str] = {}
        self.names: dict[str, str] = {}

    async def resolve(self, wanted: dict[str, str], problems: list[str]) -> None:
        """Look up each name of `wanted` (name → where it is used) not known yet; record a problem per miss."""
        missing = [n for n in wanted if n not in self.ids]
        found = await asyncio.gather(*(self._named(n) for n in missing))
        for name, groups in zip(missing, found, strict=True):
            if not groups:
                problems.append(f"{wanted[name]}: Intune group {name!r} not found (check the display name)")
            elif len(groups) > 1:
                ids = ", ".join(sorted(g for g, _ in groups))
                problems.append(
                    f"{wanted[name]}: Intune group name {name!r} is ambiguous ({len(groups)} groups: "
                    f"{ids}); rename one so the name is unique"
                )
            else:
                self.ids[name] = groups[0][0]
                self.names[groups[0][0]] = name

    async def _named(self, name: str) -> list[tuple[str, str]]:
        query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter=f"displayName eq '{odata_quote(name)}'", select=["id", "displayName"]
        )
        config = RequestConfiguration(query_parameters=query)
        page = await self.session.call("GET groups", lambda: self.session.client.groups.get(config))
        return [
            (g.id or "", g.display_name or "") for g in (page.value if page else []) or [] if g.display_name == name
        ]

    async def name_of(self, group_id: str) -> str:
        if group_id not in self.names:
            try:
                group = await self.session.json("GET group", "GET", self.session.url("v1.0", f"groups/{group_id}"))
                self.names[group_id] = str(group.get("displayName") or group_id)
            except BackendError:
                self.names[group_id] = f"<deleted group {group_id}>"
        return self.names[group_id]

    async def targets(self, assignments: Iterable[dict[str, Any]]) -> list[str | None]:
        """The display name of each assignment's target, reading back the group ids not known yet."""
        assignments = list(assignments)
        for assignment in assignments:
            group_id = (assignment.get("target") or {}).get("groupId")
            if group_id:
                await self.name_of(group_id)
        return [target_name(a.get("target") or {}, self.names) for a in assignments]

    def ids_for(self, names: list[str], change: Change) -> list[str]:
        """Ids of `names` (sorted, unique) for an apply; a name that no longer resolves fails the change."""
        missing = {
            n: change.meta.get("group_sources", {}).get(n) or ", ".join(change.sources)
            for n in names
            if n not in self.ids
        }
        if missing:
            problems: list[str] = []
            self.session.run(self.resolve(missing, problems))
            if problems:
                raise BackendError("; ".join(problems))
        return [self.ids[n] for n in sorted(set(names))]


def target_name(target: dict[str, Any], names: dict[str, str]) -> str | None:
    kind = str(target.get("@odata.type") or "")
    if kind.endswith("exclusionGroupAssignmentTarget"):
        return f"<excluded {names.get(target.get('groupId', ''), target.get('groupId'))}>"
    if kind.endswith("groupAssignmentTarget"):
        return names.get(target.get("groupId", ""), f"<unknown group {target.get('groupId')}>")
    if kind.endswith("allDevicesAssignmentTarget"):
        return "<all devices>"
    if kind.endswith("allLicensedUsersAssignmentTarget"):
        return "<all users>"
    return f"<{kind or 'unknown target'}>"
