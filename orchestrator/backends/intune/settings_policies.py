"""The settings_policy resource type: Edge URL lists on Windows as Settings Catalog configurationPolicies (beta).

Key (platform, name), see `spec.SETTINGS_POLICY`; platform "windows" is a policy whose `platforms` is
`windows10`. Authoritative for policies whose name is managed (`names.is_managed`), found by name like the
config profiles (two managed policies with one name is a problem, never a silent pick). Value
{"blocked", "allowed", "assignments"} (+ "other_settings" when someone added settings by hand, so the
next apply replaces them). The body is built and read back in `settings_body.py`.

Requests (Graph beta, `DeviceManagementConfiguration.ReadWrite.All`):
  GET    deviceManagement/configurationPolicies                       list (names, platforms), paged
  GET    deviceManagement/configurationPolicies/{id}/settings         per managed policy
  GET    deviceManagement/configurationPolicies/{id}/assignments      per managed policy
  POST   deviceManagement/configurationPolicies                       create (settings included)
  PUT    deviceManagement/configurationPolicies/{id}                  replace name, description and settings
         (PATCH does not update settings; IntuneCD and the Intune portal replace the policy with PUT)
  POST   deviceManagement/configurationPolicies/{id}/assign {"assignments": [{"target": …}]}  replaces them
  DELETE deviceManagement/configurationPolicies/{id}
"""

from __future__ import annotations

from typing import Any

from orchestrator.backends.intune.graph import GraphSession
from orchestrator.backends.intune.group_names import GroupNames
from orchestrator.backends.intune.names import is_managed, one_managed_each
from orchestrator.backends.intune.settings_body import PLATFORMS, foreign_settings, policy_body, policy_lists
from orchestrator.backends.intune.spec import SETTINGS_POLICY
from orchestrator.backends.pacing import Pacer
from orchestrator.core.backend import SentCallback
from orchestrator.core.errors import BackendError
from orchestrator.core.resources import Change, ChangeResult, Resource

SETTINGS_NOUN = ("settings catalog policy", "settings catalog policies")
COLLECTION = "deviceManagement/configurationPolicies"
PLATFORM_OF = {PLATFORMS: "windows"}


def _platform(record: dict[str, Any]) -> str:
    return PLATFORM_OF.get(str(record.get("platforms")), str(record.get("platforms") or "other"))


class SettingsPolicies:
    """Observe every managed Settings Catalog policy; apply one change at a time."""

    def __init__(self, session: GraphSession, groups: GroupNames, writes: Pacer):
        self.session = session
        self.groups = groups
        self.writes = writes
        self._records: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (platform, name) → managed policies

    async def _list(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        url = self.session.url("beta", COLLECTION, **{"$select": "id,name,platforms,technologies"})
        records: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in await self.session.get_all("GET configurationPolicies", url):
            name = str(record.get("name") or "")
            if is_managed(name):
                records.setdefault((_platform(record), name), []).append(record)
        return records

    async def observe(self, problems: list[str]) -> list[Resource]:
        self._records = await self._list()
        observed = []
        for rid, record in one_managed_each(self._records, SETTINGS_POLICY, SETTINGS_NOUN, problems):
            policy_id = record["id"]
            base = f"{COLLECTION}/{policy_id}"
            settings = await self.session.get_all(
                "GET configurationPolicies/settings", self.session.url("beta", f"{base}/settings")
            )
            assigned = await self.session.get_all(
                "GET configurationPolicies/assignments", self.session.url("beta", f"{base}/assignments")
            )
            targets = await self.groups.targets(assigned)
            value: dict[str, Any] = {**policy_lists(settings), "assignments": sorted({t for t in targets if t})}
            other = foreign_settings(settings)
            if other:
                value["other_settings"] = other
            observed.append(Resource(id=rid, value=value, meta={"id": policy_id}))
        return observed

    def apply(self, change: Change, on_sent: SentCallback) -> ChangeResult:
        """Create (POST, then assign), replace (PUT, then assign when the groups changed) or delete one policy."""
        platform, name = SETTINGS_POLICY.split(change.id.key).values()
        session = self.session
        if change.op == "delete":
            policy_id = change.meta.get("id") or self._policy_id(change.id.key)
            on_sent(change)
            self.writes.acquire()
            session.run(
                session.json("DELETE configurationPolicy", "DELETE", session.url("beta", f"{COLLECTION}/{policy_id}"))
            )
            return ChangeResult(change.key, "succeeded", f"deleted settings policy {policy_id}", {"id": policy_id})
        if platform != "windows":
            raise BackendError(f"no settings catalog policy for platform {platform!r} (windows)")
        after = change.after or {}
        group_ids = self.groups.ids_for(list(after.get("assignments") or []), change)
        body = policy_body(name, after)
        if change.op == "create":
            existing = session.run(self._list()).get((platform, name), [])
            if existing:
                ids = ", ".join(r["id"] for r in existing)
                raise BackendError(
                    f"a settings catalog policy named {name!r} already exists ({ids}); re-plan instead of "
                    "creating a duplicate"
                )
            on_sent(change)
            self.writes.acquire()
            url = session.url("beta", COLLECTION)
            created = session.run(session.json("POST configurationPolicies", "POST", url, body, idempotent=False))
            policy_id = str(created["id"])
        else:
            policy_id = self._policy_id(change.id.key)
            on_sent(change)
            self.writes.acquire()
            url = session.url("beta", f"{COLLECTION}/{policy_id}")
            session.run(session.json("PUT configurationPolicy", "PUT", url, body))
        before_groups = set((change.before or {}).get("assignments") or [])
        if change.op == "create" or before_groups != set(after.get("assignments") or []):
            self.writes.acquire()
            targets = [
                {"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g}} for g in group_ids
            ]
            url = session.url("beta", f"{COLLECTION}/{policy_id}/assign")
            session.run(session.json("POST configurationPolicies/assign", "POST", url, {"assignments": targets}))
        return ChangeResult(change.key, "succeeded", f"{change.op}d settings policy {policy_id}", {"id": policy_id})

    def _policy_id(self, key: str) -> str:
        platform, name = SETTINGS_POLICY.split(key).values()
        same = self._records.get((platform, name))
        if same is None:
            self._records = self.session.run(self._list())
            same = self._records.get((platform, name))
        if not same:
            raise BackendError(f"settings policy {key} no longer exists in Intune; re-plan")
        if len(same) > 1:
            raise BackendError(f"{len(same)} settings policies named {key}; delete the extras")
        return str(same[0]["id"])
