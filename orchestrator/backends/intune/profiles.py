"""The config_profile resource type: web filter profiles as Intune deviceConfigurations.

Key (platform, display name), see `spec.CONFIG_PROFILE`. Authoritative for profiles whose display name is
managed (`names.is_managed`): created and updated by display name, two managed profiles with one name on one
platform is a problem (never a silent pick). Value {"blocked", "allowed", "assignments"}; assignments are
compared as sorted sets of group display names. The Graph body is built and read back in `profile_body.py`.
"""

from __future__ import annotations

from typing import Any

from msgraph.generated.device_management.device_configurations.item.assign.assign_post_request_body import (
    AssignPostRequestBody,
)
from msgraph.generated.models.device_configuration_assignment import DeviceConfigurationAssignment
from msgraph.generated.models.group_assignment_target import GroupAssignmentTarget

from orchestrator.backends.intune.graph import GraphSession, odata_quote
from orchestrator.backends.intune.group_names import GroupNames
from orchestrator.backends.intune.names import is_managed, one_managed_each
from orchestrator.backends.intune.profile_body import PLATFORM_OF_TYPE, profile_body, profile_lists
from orchestrator.backends.intune.spec import CONFIG_PROFILE
from orchestrator.backends.pacing import Pacer
from orchestrator.core.backend import SentCallback
from orchestrator.core.errors import BackendError
from orchestrator.core.resources import Change, ChangeResult, Resource


def _platform(record: dict[str, Any]) -> str:
    return PLATFORM_OF_TYPE.get(str(record.get("@odata.type")), "other")


class Profiles:
    """Observe every managed profile (one beta list with assignments expanded); apply one change at a time."""

    def __init__(self, session: GraphSession, groups: GroupNames, writes: Pacer):
        self.session = session
        self.groups = groups
        self.writes = writes
        self._records: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (platform, name) → managed profiles

    async def observe(self, problems: list[str]) -> list[Resource]:
        url = self.session.url("beta", "deviceManagement/deviceConfigurations", **{"$expand": "assignments"})
        self._records = {}
        for record in await self.session.get_all("GET deviceConfigurations", url):
            name = str(record.get("displayName") or "")
            if is_managed(name):
                self._records.setdefault((_platform(record), name), []).append(record)
        observed = []
        for rid, record in one_managed_each(self._records, CONFIG_PROFILE, ("profile", "profiles"), problems):
            targets = await self.groups.targets(record.get("assignments") or [])
            value = {**profile_lists(record), "assignments": sorted({t for t in targets if t})}
            observed.append(
                Resource(id=rid, value=value, meta={"id": record["id"], "odata_type": record.get("@odata.type")})
            )
        return observed

    def apply(self, change: Change, on_sent: SentCallback) -> ChangeResult:
        """Create, update (PATCH, then assign when the groups changed) or delete one profile."""
        platform, display_name = CONFIG_PROFILE.split(change.id.key).values()
        session = self.session
        if change.op == "delete":
            config_id = change.meta.get("id") or self._profile_id(change.id.key)
            on_sent(change)
            self.writes.acquire()
            url = session.url("beta", f"deviceManagement/deviceConfigurations/{config_id}")
            session.run(session.json("DELETE deviceConfiguration", "DELETE", url))
            return ChangeResult(change.key, "succeeded", f"deleted profile {config_id}", {"id": config_id})
        after = change.after or {}
        group_ids = self.groups.ids_for(list(after.get("assignments") or []), change)
        body = profile_body(platform, display_name, after)
        if change.op == "create":
            existing = session.run(self._named(display_name, platform))
            if existing:
                raise BackendError(
                    f"a {platform} profile named {display_name!r} already exists ({', '.join(existing)}); "
                    "re-plan instead of creating a duplicate"
                )
            on_sent(change)
            self.writes.acquire()
            url = session.url("beta", "deviceManagement/deviceConfigurations")
            created = session.run(session.json("POST deviceConfigurations", "POST", url, body, idempotent=False))
            config_id = created["id"]
        else:
            config_id = self._profile_id(change.id.key)
            on_sent(change)
            self.writes.acquire()
            url = session.url("beta", f"deviceManagement/deviceConfigurations/{config_id}")
            session.run(session.json("PATCH deviceConfiguration", "PATCH", url, body))
        before_groups = set((change.before or {}).get("assignments") or [])
        if change.op == "create" or before_groups != set(after.get("assignments") or []):
            self.writes.acquire()
            session.run(self._assign(config_id, group_ids))
        return ChangeResult(change.key, "succeeded", f"{change.op}d profile {config_id}", {"id": config_id})

    def _profile_id(self, key: str) -> str:
        platform, name = CONFIG_PROFILE.split(key).values()
        same = self._records.get((platform, name))
        if same is None:
            self.session.run(self.observe([]))
            same = self._records.get((platform, name))
        if not same:
            raise BackendError(f"profile {key} no longer exists in Intune; re-plan")
        if len(same) > 1:
            raise BackendError(f"{len(same)} profiles named {key}; delete the extras")
        return str(same[0]["id"])

    async def _named(self, display_name: str, platform: str) -> list[str]:
        url = self.session.url(
            "beta",
            "deviceManagement/deviceConfigurations",
            **{"$filter": f"displayName eq '{odata_quote(display_name)}'"},
        )
        records = await self.session.get_all("GET deviceConfigurations", url)
        return [r["id"] for r in records if r.get("displayName") == display_name and _platform(r) == platform]

    async def _assign(self, config_id: str, group_ids: list[str]) -> None:
        body = AssignPostRequestBody(
            assignments=[DeviceConfigurationAssignment(target=GroupAssignmentTarget(group_id=g)) for g in group_ids]
        )
        builder = self.session.client.device_management.device_configurations.by_device_configuration_id(config_id)
        await self.session.call("POST deviceConfigurations/assign", lambda: builder.assign.post(body))
