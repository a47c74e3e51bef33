"""The Intune backend: observe and apply the `intune/*` resources through Microsoft Graph (msgraph-sdk).

Resource types (see orchestrator/engine/compilers/intune.py for values):
  config_profile "{platform}|K12 WebFilter {policy}"  authoritative for profiles named "K12 …"; created and
      updated by display name (two managed profiles with one name is an error, never a silent pick);
      assignments compared as sorted sets of group display names.
  app_assignment "{app display name}"                  `assign` replaces the app's assignments.
  device_lock "{serial}"                               {"lost": bool}. Observed from the device list:
      lost = lost mode enabled (lostModeState, beta) or a remoteLock in deviceActionResults (pending,
      active or done); for a found device only lost mode counts (a remote lock has no remote undo).
      Applied as enableLostMode (supervised corporate iOS, policy lost_mode) or remoteLock, and
      disableLostMode for found devices, in $batch requests of ≤20. A second run finds them locked.
  reimage "{serial}|{request}"                         journal-observed; `wipe` (or `retire`) in $batch,
      never re-sent after a timeout (reported "unknown").

Unknown or ambiguous group/app names, and serials matching several managed devices, raise one PlanError
listing every problem with its policy file:line. Device serials match exactly, client-side (an unsupported
Graph $filter is silently ignored, so the bulk list is always read and filtered here).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.intune.graph import BatchItem, BatchResult, GraphSession
from orchestrator.backends.intune.profiles import PLATFORM_OF_TYPE, profile_body, profile_lists
from orchestrator.backends.pacing import CallCounter, RetryPolicy, TokenBucket
from orchestrator.core.backend import ResultCallback, SentCallback
from orchestrator.core.errors import AuthError, BackendError, OutcomeUnknown, PlanError
from orchestrator.core.resources import Change, ChangeResult, Resource, ResourceId

MANAGED_PREFIX = "K12 "
DEVICE_FIELDS = (
    "id,serialNumber,operatingSystem,isSupervised,managedDeviceOwnerType,lostModeState,"
    "deviceActionResults,managementState"
)
INVENTORY_FIELDS = "id,serialNumber,operatingSystem,wiFiMacAddress,lastSyncDateTime"
LOCK_STATES = ("pending", "active", "done")
MAX_BATCH = 20


def _quote(value: str) -> str:
    return value.replace("'", "''")


def _target_name(target: dict[str, Any], names: dict[str, str]) -> str | None:
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


class IntuneBackend:
    """Backend protocol implementation for Intune. Synchronous API; asyncio on a private loop inside."""

    name = "intune"

    def __init__(
        self,
        config: IntuneConfig,
        *,
        counter: CallCounter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60.0,
        policy: RetryPolicy | None = None,
    ):
        self.config = config
        self.counter = counter or CallCounter()
        self.session = GraphSession(config, counter=self.counter, sleep=sleep, policy=policy, timeout=timeout)
        self.device_writes = TokenBucket(config.device_writes_per_20s, 20.0, sleep=sleep)
        self.config_writes = TokenBucket(config.config_writes_per_20s, 20.0, sleep=sleep)
        self._group_ids: dict[str, str] = {}
        self._group_names: dict[str, str] = {}
        self._profiles: dict[str, list[dict[str, Any]]] = {}
        self._app_ids: dict[str, str] = {}
        self._devices: dict[str, list[dict[str, Any]]] | None = None

    def close(self) -> None:
        self.session.close()

    # ================================================================================ observe

    def observe(self, desired: Sequence[Resource]) -> list[Resource]:
        return self.session.run(self._observe(list(desired)))

    async def _observe(self, desired: list[Resource]) -> list[Resource]:
        problems: list[str] = []
        wanted_groups: dict[str, str] = {}
        for resource in desired:
            if resource.id.type == "config_profile":
                names = list(resource.value.get("assignments") or [])
            elif resource.id.type == "app_assignment":
                names = [entry["group"] for entry in resource.value]
            else:
                continue
            for name in names:
                where = resource.meta.get("group_sources", {}).get(name) or ", ".join(resource.sources)
                wanted_groups.setdefault(name, where)
        await self._resolve_groups(wanted_groups, problems)
        observed = await self._observe_profiles(problems)
        observed += await self._observe_apps([r for r in desired if r.id.type == "app_assignment"], problems)
        locks = [r for r in desired if r.id.type == "device_lock"]
        if locks:
            observed += await self._observe_locks(locks, problems)
        if problems:
            raise PlanError("Intune: " + "\n".join(sorted(set(problems))))
        return observed

    async def _resolve_groups(self, wanted: dict[str, str], problems: list[str]) -> None:
        missing = [n for n in wanted if n not in self._group_ids]
        found = await asyncio.gather(*(self._groups_named(n) for n in missing))
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
                self._group_ids[name] = groups[0][0]
                self._group_names[groups[0][0]] = name

    async def _groups_named(self, name: str) -> list[tuple[str, str]]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder

        query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter=f"displayName eq '{_quote(name)}'", select=["id", "displayName"]
        )
        config = RequestConfiguration(query_parameters=query)
        page = await self.session.call("GET groups", lambda: self.session.client.groups.get(config))
        return [
            (g.id or "", g.display_name or "") for g in (page.value if page else []) or [] if g.display_name == name
        ]

    async def _group_name(self, group_id: str) -> str:
        if group_id not in self._group_names:
            try:
                group = await self.session.json("GET group", "GET", self.session.url("v1.0", f"groups/{group_id}"))
                self._group_names[group_id] = str(group.get("displayName") or group_id)
            except BackendError:
                self._group_names[group_id] = f"<deleted group {group_id}>"
        return self._group_names[group_id]

    async def _observe_profiles(self, problems: list[str]) -> list[Resource]:
        url = self.session.url("beta", "deviceManagement/deviceConfigurations", **{"$expand": "assignments"})
        records = await self.session.get_all("GET deviceConfigurations", url)
        self._profiles = {}
        for record in records:
            name = str(record.get("displayName") or "")
            if not name.startswith(MANAGED_PREFIX):
                continue
            platform = PLATFORM_OF_TYPE.get(str(record.get("@odata.type")), "other")
            self._profiles.setdefault(f"{platform}|{name}", []).append(record)
        observed = []
        for key, same in sorted(self._profiles.items()):
            if len(same) > 1:
                ids = ", ".join(sorted(r["id"] for r in same))
                problems.append(
                    f"Intune has {len(same)} {key.split('|')[0]} profiles named {key.split('|', 1)[1]!r} "
                    f"({ids}); delete the extras so exactly one is managed"
                )
                continue
            record = same[0]
            for assignment in record.get("assignments") or []:
                group_id = (assignment.get("target") or {}).get("groupId")
                if group_id:
                    await self._group_name(group_id)
            targets = [_target_name(a.get("target") or {}, self._group_names) for a in record.get("assignments") or []]
            value = {**profile_lists(record), "assignments": sorted({t for t in targets if t})}
            observed.append(
                Resource(
                    id=ResourceId("intune", "config_profile", key),
                    value=value,
                    meta={"id": record["id"], "odata_type": record.get("@odata.type")},
                )
            )
        return observed

    async def _observe_apps(self, desired: list[Resource], problems: list[str]) -> list[Resource]:
        names = [r.id.key for r in desired]
        lookups = await asyncio.gather(*(self._apps_named(n) for n in names))
        observed = []
        for resource, apps in zip(desired, lookups, strict=True):
            name = resource.id.key
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
            self._app_ids[name] = app_id
            url = self.session.url("v1.0", f"deviceAppManagement/mobileApps/{app_id}/assignments")
            assignments = await self.session.get_all("GET mobileApps/assignments", url)
            for assignment in assignments:
                group_id = (assignment.get("target") or {}).get("groupId")
                if group_id:
                    await self._group_name(group_id)
            value = sorted(
                (
                    {
                        "group": _target_name(a.get("target") or {}, self._group_names) or "",
                        "intent": str(a.get("intent")),
                    }
                    for a in assignments
                ),
                key=lambda e: (e["group"], e["intent"]),
            )
            observed.append(Resource(id=resource.id, value=value, meta={"id": app_id}))
        return observed

    async def _apps_named(self, name: str) -> list[str]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.device_app_management.mobile_apps.mobile_apps_request_builder import (
            MobileAppsRequestBuilder,
        )

        query = MobileAppsRequestBuilder.MobileAppsRequestBuilderGetQueryParameters(
            filter=f"displayName eq '{_quote(name)}'", select=["id", "displayName"]
        )
        config = RequestConfiguration(query_parameters=query)
        apps = self.session.client.device_app_management.mobile_apps
        page = await self.session.call("GET mobileApps", lambda: apps.get(config))
        return [a.id or "" for a in (page.value if page else []) or [] if a.display_name == name]

    async def _device_index(self, refresh: bool = False) -> dict[str, list[dict[str, Any]]]:
        """Every managed device by exact serial: $top=1000 pages, $select, raw JSON, beta (lostModeState)."""
        if self._devices is None or refresh:
            url = self.session.url(
                "beta", "deviceManagement/managedDevices", **{"$select": DEVICE_FIELDS, "$top": "1000"}
            )
            index: dict[str, list[dict[str, Any]]] = {}
            for record in await self.session.get_all("GET managedDevices", url):
                serial = record.get("serialNumber")
                if serial:
                    index.setdefault(serial, []).append(record)
            self._devices = index
        return self._devices

    def inventory_records(self) -> list[dict[str, Any]]:
        """Every managed device for `inventory sync`: raw v1.0 list, $top=1000, $select of the synced fields."""
        url = self.session.url(
            "v1.0", "deviceManagement/managedDevices", **{"$select": INVENTORY_FIELDS, "$top": "1000"}
        )
        return self.session.run(self.session.get_all("GET managedDevices", url))

    # ---- plan-time targets and selectors (see intune_groups.py) --------------------------------------

    def known_targets(self, kind: str, names: Collection[str]) -> Collection[str]:
        """Existing group (intune_group) or app (intune_app) display names, for the plan's target check."""
        from orchestrator.backends.intune.groups import known_names

        return self.session.run(known_names(self, kind, names))

    def group_device_serials(self, names: Collection[str]) -> dict[str, set[str]]:
        """Serials of the managed devices that are transitive members of each named group (Reimage selectors)."""
        from orchestrator.backends.intune.groups import group_serials

        problems: list[str] = []
        missing = {n: "a Reimage devices.intune_groups selector" for n in names if n not in self._group_ids}
        self.session.run(self._resolve_groups(missing, problems))
        if problems:
            raise PlanError("Intune: " + "\n".join(sorted(problems)))
        return self.session.run(group_serials(self.session, {n: self._group_ids[n] for n in names}))

    async def _observe_locks(self, locks: list[Resource], problems: list[str]) -> list[Resource]:
        index = await self._device_index(refresh=True)
        observed = []
        for resource in locks:
            matches = index.get(resource.id.key, [])
            if len(matches) > 1:
                problems.append(
                    f"{', '.join(resource.sources)}: serial {resource.id.key} matches {len(matches)} "
                    "Intune managed devices; remove the stale enrollment"
                )
                continue
            if not matches:
                continue
            record = matches[0]
            observed.append(
                Resource(
                    id=resource.id,
                    value=lock_value(record, bool(resource.value.get("lost"))),
                    meta={"id": record["id"], "lostModeState": record.get("lostModeState")},
                )
            )
        return observed

    # ================================================================================ apply

    def apply(self, changes: Sequence[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        """Apply in the given order; every change gets exactly one on_result (callbacks on this thread)."""
        by_type: dict[str, list[Change]] = {}
        for change in changes:
            by_type.setdefault(change.id.type, []).append(change)
        for change in by_type.pop("config_profile", []):
            on_result(self._guard(change, on_sent, self._apply_profile))
        for change in by_type.pop("app_assignment", []):
            on_result(self._guard(change, on_sent, self._apply_app))
        self._apply_locks(by_type.pop("device_lock", []), on_sent, on_result)
        self._apply_reimages(by_type.pop("reimage", []), on_sent, on_result)
        for rest in by_type.values():
            for change in rest:
                on_result(ChangeResult(change.key, "failed", f"intune has no resource type {change.id.type!r}"))

    def _guard(
        self, change: Change, on_sent: SentCallback, step: Callable[[Change, SentCallback], ChangeResult]
    ) -> ChangeResult:
        sent = False

        def mark(c: Change) -> None:
            nonlocal sent
            if not sent:
                sent = True
                on_sent(c)

        try:
            return step(change, mark)
        except OutcomeUnknown as exc:
            return ChangeResult(change.key, "unknown", str(exc))
        except (BackendError, PlanError) as exc:
            return ChangeResult(change.key, "failed", str(exc))

    def _group_id_list(self, names: list[str], change: Change) -> list[str]:
        missing = {
            n: change.meta.get("group_sources", {}).get(n) or ", ".join(change.sources)
            for n in names
            if n not in self._group_ids
        }
        if missing:
            problems: list[str] = []
            self.session.run(self._resolve_groups(missing, problems))
            if problems:
                raise PlanError("; ".join(problems))
        return [self._group_ids[n] for n in sorted(set(names))]

    def _apply_profile(self, change: Change, on_sent: SentCallback) -> ChangeResult:
        platform, display_name = change.id.key.split("|", 1)
        session = self.session
        if change.op == "delete":
            config_id = change.meta.get("id") or self._profile_id(change.id.key)
            on_sent(change)
            self.config_writes.acquire()
            url = session.url("beta", f"deviceManagement/deviceConfigurations/{config_id}")
            session.run(session.json("DELETE deviceConfiguration", "DELETE", url))
            return ChangeResult(change.key, "succeeded", f"deleted profile {config_id}", {"id": config_id})
        after = change.after or {}
        group_ids = self._group_id_list(list(after.get("assignments") or []), change)
        body = profile_body(platform, display_name, after)
        if change.op == "create":
            existing = self.session.run(self._profiles_named(display_name, platform))
            if existing:
                raise PlanError(
                    f"a {platform} profile named {display_name!r} already exists ({', '.join(existing)}); "
                    "re-plan instead of creating a duplicate"
                )
            on_sent(change)
            self.config_writes.acquire()
            url = session.url("beta", "deviceManagement/deviceConfigurations")
            created = session.run(session.json("POST deviceConfigurations", "POST", url, body, idempotent=False))
            config_id = created["id"]
        else:
            config_id = self._profile_id(change.id.key)
            on_sent(change)
            self.config_writes.acquire()
            url = session.url("beta", f"deviceManagement/deviceConfigurations/{config_id}")
            session.run(session.json("PATCH deviceConfiguration", "PATCH", url, body))
        before_groups = set((change.before or {}).get("assignments") or [])
        if change.op == "create" or before_groups != set(after.get("assignments") or []):
            self.config_writes.acquire()
            session.run(self._assign_profile(config_id, group_ids))
        return ChangeResult(change.key, "succeeded", f"{change.op}d profile {config_id}", {"id": config_id})

    def _profile_id(self, key: str) -> str:
        same = self._profiles.get(key)
        if same is None:
            problems: list[str] = []
            self.session.run(self._observe_profiles(problems))
            same = self._profiles.get(key)
        if not same:
            raise BackendError(f"profile {key} no longer exists in Intune; re-plan")
        if len(same) > 1:
            raise PlanError(f"{len(same)} profiles named {key}; delete the extras")
        return str(same[0]["id"])

    async def _profiles_named(self, display_name: str, platform: str) -> list[str]:
        url = self.session.url(
            "beta", "deviceManagement/deviceConfigurations", **{"$filter": f"displayName eq '{_quote(display_name)}'"}
        )
        records = await self.session.get_all("GET deviceConfigurations", url)
        return [
            r["id"]
            for r in records
            if r.get("displayName") == display_name
            and PLATFORM_OF_TYPE.get(str(r.get("@odata.type")), "other") == platform
        ]

    async def _assign_profile(self, config_id: str, group_ids: list[str]) -> None:
        from msgraph.generated.device_management.device_configurations.item.assign.assign_post_request_body import (
            AssignPostRequestBody,
        )
        from msgraph.generated.models.device_configuration_assignment import DeviceConfigurationAssignment
        from msgraph.generated.models.group_assignment_target import GroupAssignmentTarget

        body = AssignPostRequestBody(
            assignments=[DeviceConfigurationAssignment(target=GroupAssignmentTarget(group_id=g)) for g in group_ids]
        )
        builder = self.session.client.device_management.device_configurations.by_device_configuration_id(config_id)
        await self.session.call("POST deviceConfigurations/assign", lambda: builder.assign.post(body))

    def _apply_app(self, change: Change, on_sent: SentCallback) -> ChangeResult:
        from msgraph.generated.device_app_management.mobile_apps.item.assign.assign_post_request_body import (
            AssignPostRequestBody,
        )
        from msgraph.generated.models.group_assignment_target import GroupAssignmentTarget
        from msgraph.generated.models.install_intent import InstallIntent
        from msgraph.generated.models.mobile_app_assignment import MobileAppAssignment

        name = change.id.key
        if name not in self._app_ids:
            apps = self.session.run(self._apps_named(name))
            if len(apps) != 1:
                raise PlanError(
                    f"{', '.join(change.sources)}: Intune app {name!r} {'not found' if not apps else 'is ambiguous'}"
                )
            self._app_ids[name] = apps[0]
        entries = list(change.after or []) if change.op != "delete" else []
        group_ids = dict(
            zip(
                sorted({e["group"] for e in entries}),
                self._group_id_list([e["group"] for e in entries], change),
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
        builder = self.session.client.device_app_management.mobile_apps.by_mobile_app_id(self._app_ids[name])
        on_sent(change)
        self.config_writes.acquire()
        self.session.run(self.session.call("POST mobileApps/assign", lambda: builder.assign.post(body)))
        return ChangeResult(change.key, "succeeded", f"assigned {len(entries)} group(s)")

    # ---- device actions through $batch -----------------------------------------------------------

    def _device(self, serial: str) -> dict[str, Any]:
        index = self.session.run(self._device_index())
        matches = index.get(serial, [])
        if not matches:
            raise BackendError(f"no Intune managed device has serial {serial}")
        if len(matches) > 1:
            raise PlanError(f"serial {serial} matches {len(matches)} Intune managed devices")
        return matches[0]

    def _lock_item(self, change: Change) -> BatchItem | str:
        """The batch request for a device_lock change, or a reason string when nothing needs sending."""
        record = self._device(change.id.key)
        base = f"/deviceManagement/managedDevices/{record['id']}"
        meta = change.meta
        if not (change.after or {}).get("lost"):
            if record.get("lostModeState") == "enabled":
                return BatchItem(change.key, "POST", f"{base}/disableLostMode")
            return "nothing to undo: lost mode is off (a remote lock is released with the device passcode)"
        supervised_ios = (
            record.get("operatingSystem") == "iOS"
            and record.get("isSupervised")
            and record.get("managedDeviceOwnerType") == "company"
        )
        if meta.get("lost_mode", True) and supervised_ios:
            body = {
                "message": meta.get("message") or "This device is lost.",
                "phoneNumber": meta.get("phone") or "",
                "footer": meta.get("footer") or "",
            }
            return BatchItem(change.key, "POST", f"{base}/enableLostMode", body)
        if meta.get("remote_lock", True):
            return BatchItem(change.key, "POST", f"{base}/remoteLock")
        raise BackendError("the policy asks for lost mode only and this is not a supervised corporate iOS device")

    def _apply_locks(self, changes: list[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        self._run_batches(changes, self._lock_item, "beta", MAX_BATCH, True, on_sent, on_result)

    def _wipe_item(self, change: Change) -> BatchItem:
        """`wipe` (keepEnrollmentData for an Autopilot reset) or, for {"action": "retire"}, `retire` (no body)."""
        record = self._device(change.id.key.split("|", 1)[0])
        after = change.after or {}
        if after.get("action") == "retire":
            return BatchItem(change.key, "POST", f"/deviceManagement/managedDevices/{record['id']}/retire")
        body = {
            "keepEnrollmentData": bool(after.get("keepEnrollmentData")),
            "keepUserData": bool(after.get("keepUserData")),
            "persistEsimDataPlan": False,
        }
        return BatchItem(change.key, "POST", f"/deviceManagement/managedDevices/{record['id']}/wipe", body)

    def _apply_reimages(self, changes: list[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        size = min([MAX_BATCH, *(int(c.meta.get("batch_size") or MAX_BATCH) for c in changes)])
        self._run_batches(changes, self._wipe_item, "v1.0", size, False, on_sent, on_result)

    # ---- settling unknown destructive outcomes (Backend.settle) ------------------------------------

    def settle(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """Ask Intune whether wipes/retires whose outcome is unknown ran; omit what the console cannot tell.

        One fresh device list, then one single-device GET per change (beta, `$select` of managementState and
        deviceActionResults: the list often returns deviceActionResults empty, API-NOTES §6). Never sends an
        action. The evidence rules are in `settle_from_record`; an AuthError propagates, any other read
        failure leaves the change unsettled.
        """
        wanted = [c for c in changes if c.id.backend == self.name and c.id.type == "reimage" and c.destructive]
        out: list[ChangeResult] = []
        if not wanted:
            return out
        try:
            index = self.session.run(self._device_index(refresh=True))
            for change in wanted:
                matches = index.get(change.id.key.split("|", 1)[0], [])
                if len(matches) != 1:
                    continue  # gone (a full wipe removes the record, so may an admin) or ambiguous: cannot tell
                url = self.session.url(
                    "beta",
                    f"deviceManagement/managedDevices/{matches[0]['id']}",
                    **{"$select": "id,managementState,deviceActionResults"},
                )
                try:
                    record = self.session.run(self.session.json("GET managedDevice", "GET", url))
                except AuthError:
                    raise
                except BackendError:
                    continue
                result = settle_from_record(change, record or {})
                if result is not None:
                    out.append(result)
        except AuthError:
            raise
        except BackendError:
            pass  # the device list could not be read: what is settled so far stands, the rest stays unknown
        return out

    def _run_batches(
        self,
        changes: list[Change],
        item_for: Callable[[Change], BatchItem | str],
        version: str,
        size: int,
        idempotent: bool,
        on_sent: SentCallback,
        on_result: ResultCallback,
    ) -> None:
        ready: list[tuple[Change, BatchItem]] = []
        for change in changes:
            try:
                item = item_for(change)
            except (BackendError, PlanError) as exc:
                on_result(ChangeResult(change.key, "failed", str(exc)))
                continue
            if isinstance(item, str):
                on_result(ChangeResult(change.key, "succeeded", item))
            else:
                ready.append((change, item))
        for start in range(0, len(ready), size):
            chunk = ready[start : start + size]
            for change, _ in chunk:
                on_sent(change)
            try:
                results = self.session.run(
                    self.session.batch(
                        version, [item for _, item in chunk], idempotent=idempotent, pace=self.device_writes.acquire
                    )
                )
            except OutcomeUnknown as exc:
                for change, _ in chunk:
                    on_result(ChangeResult(change.key, "unknown", f"$batch: {exc}"))
                continue
            except BackendError as exc:
                for change, _ in chunk:
                    on_result(ChangeResult(change.key, "failed", f"$batch: {exc}"))
                continue
            for change, item in chunk:  # per item: one item's fate never overwrites another's answer
                on_result(_batch_outcome(change, item, results.get(item.id), idempotent=idempotent))
        if ready:
            self._devices = None  # device state changed: re-read before the next use


def _batch_outcome(
    change: Change, item: BatchItem, result: BatchResult | None, *, idempotent: bool = True
) -> ChangeResult:
    """One item's result. Not idempotent (wipe, retire): `failed` only for an answer proving it did not run
    (4xx: validation, 404, 403, or 429 throttled past our retries); any 5xx, 408, missing answer or lost
    re-send is `unknown` (Graph JSON batching: inner requests run independently and each carries its own
    status, learn.microsoft.com/graph/json-batching)."""
    action = item.url.rsplit("/", 1)[-1]
    if result is None or result.unknown:
        detail = result.error_text() if result is not None else "no response in the batch"
        return ChangeResult(change.key, "unknown", f"{action}: {detail}; outcome unknown, not re-sent")
    if result.ok:
        return ChangeResult(change.key, "succeeded", f"{action}: HTTP {result.status}", {"action": action})
    if result.status == 429:
        return ChangeResult(change.key, "failed", f"{action}: still throttled after retries")
    if not idempotent and (result.status >= 500 or result.status == 408):
        return ChangeResult(
            change.key, "unknown", f"{action}: {result.error_text()}; it may have run, so it is not re-sent"
        )
    return ChangeResult(change.key, "failed", f"{action}: {result.error_text()}")


# deviceActionResult.actionState (Graph v1.0 actionState enum: none, pending, canceled, active, done, failed,
# notSupported; learn.microsoft.com/graph/api/resources/intune-devices-deviceactionresult).
RAN_STATES = ("pending", "active", "done")
IN_FLIGHT_STATES = ("pending", "active")
NOT_RUN_STATES = ("failed", "notSupported")
CLOCK_SKEW = dt.timedelta(minutes=5)


def _when(value: Any) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def settle_from_record(change: Change, record: dict[str, Any]) -> ChangeResult | None:
    """What one managedDevice proves about an unknown wipe/retire: succeeded, failed, or None (cannot tell).

    `change.meta["sent_at"]` (ISO 8601, when the earlier request left) dates the evidence: only an action
    started at or after it (less 5 minutes of clock skew) speaks for this request. Succeeded: such an action is
    pending, active or done; or, with or without a date, one is in flight (pending/active) or managementState
    is wipePending/retirePending (a wipe is underway whoever sent it). Failed: such an action failed or is
    notSupported on the device. `canceled` (an admin cancelled it) and silence are left to a person.
    """
    action = "retire" if (change.after or {}).get("action") == "retire" else "wipe"
    entries = [
        r for r in record.get("deviceActionResults") or [] if str(r.get("actionName", "")).lower() == action.lower()
    ]
    since = _when(change.meta.get("sent_at")) if change.meta.get("sent_at") else None
    dated = [
        r for r in entries if since is not None and (t := _when(r.get("startDateTime"))) and t >= since - CLOCK_SKEW
    ]

    def found(entry: dict[str, Any], how: str) -> ChangeResult:
        state = str(entry.get("actionState"))
        response = {"settledBy": "deviceActionResults", "action": action, "actionState": state}
        response["startDateTime"] = str(entry.get("startDateTime") or "")
        return ChangeResult(change.key, "succeeded" if state in RAN_STATES else "failed", how, response)

    ran = [r for r in dated if r.get("actionState") in RAN_STATES]
    if ran:
        return found(ran[-1], f"Intune shows the {action} {ran[-1].get('actionState')} since the request")
    in_flight = [r for r in entries if r.get("actionState") in IN_FLIGHT_STATES]
    if in_flight:
        return found(in_flight[-1], f"Intune shows a {action} {in_flight[-1].get('actionState')} for the device")
    if record.get("managementState") == f"{action}Pending":
        return ChangeResult(
            change.key,
            "succeeded",
            f"Intune shows managementState {action}Pending",
            {"settledBy": "managementState", "action": action, "managementState": f"{action}Pending"},
        )
    refused = [r for r in dated if r.get("actionState") in NOT_RUN_STATES]
    if refused:
        return found(refused[-1], f"Intune shows the {action} {refused[-1].get('actionState')} on the device")
    return None


def lock_value(record: dict[str, Any], wanted_lost: bool) -> dict[str, bool]:
    """Observed device_lock value: lost mode counts always; a remote lock only for a device that should be lost."""
    lost_mode = record.get("lostModeState") == "enabled"
    if not wanted_lost:
        return {"lost": lost_mode}
    locked = any(
        r.get("actionName") == "remoteLock" and r.get("actionState") in LOCK_STATES
        for r in record.get("deviceActionResults") or []
    )
    return {"lost": lost_mode or locked}
