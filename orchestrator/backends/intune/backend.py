"""The Intune backend: observe and apply the `intune/*` resources through Microsoft Graph (msgraph-sdk).

A thin router over one module per resource kind, sharing one Graph session, one group-name cache and the
write pacers:
  settings_policy settings_policies.py  Edge URL lists as Settings Catalog policies (authoritative, managed names)
  config_profile  profiles.py  web filter deviceConfigurations (authoritative for managed names)
  app_assignment  apps.py      mobileApp assignments
  device_lock     devices.py   lost mode / remote lock in $batch
  reimage         devices.py   wipe / retire in $batch (journal-observed; `settle` for unknown outcomes)
Keys are built and split with the types in spec.py; the compiler's strings are in names.py.

Unknown or ambiguous group/app names, duplicate managed profiles and serials matching several managed
devices raise one PlanError from `observe`, listing every problem with its policy file:line. At apply time
each change gets exactly one result: `unknown` for OutcomeUnknown, `failed` for any other BackendError.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from orchestrator.backends.intune.apps import Apps
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.intune.devices import Devices
from orchestrator.backends.intune.graph import GraphSession
from orchestrator.backends.intune.group_names import GroupNames
from orchestrator.backends.intune.groups import group_serials, known_names
from orchestrator.backends.intune.profiles import Profiles
from orchestrator.backends.intune.settings_policies import SettingsPolicies
from orchestrator.backends.intune.spec import APP_ASSIGNMENT, CONFIG_PROFILE, DEVICE_LOCK, REIMAGE, SETTINGS_POLICY
from orchestrator.backends.pacing import CallCounter, Limit, Pacer, RetryPolicy
from orchestrator.core.backend import ResultCallback, SentCallback
from orchestrator.core.errors import BackendError, OutcomeUnknown, PlanError
from orchestrator.core.resources import Change, ChangeResult, Resource


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
        self.device_writes = Pacer(Limit(config.device_writes_per_20s, 20.0), sleep=sleep)
        self.config_writes = Pacer(Limit(config.config_writes_per_20s, 20.0), sleep=sleep)
        self.groups = GroupNames(self.session)
        self.profiles = Profiles(self.session, self.groups, self.config_writes)
        self.settings_policies = SettingsPolicies(self.session, self.groups, self.config_writes)
        self.apps = Apps(self.session, self.groups, self.config_writes)
        self.devices = Devices(self.session, self.device_writes)

    def close(self) -> None:
        self.session.close()

    def observe(self, desired: Sequence[Resource]) -> list[Resource]:
        return self.session.run(self._observe(list(desired)))

    async def _observe(self, desired: list[Resource]) -> list[Resource]:
        problems: list[str] = []
        wanted_groups: dict[str, str] = {}
        for resource in desired:
            if resource.id.type in (CONFIG_PROFILE.name, SETTINGS_POLICY.name):
                names = list(resource.value.get("assignments") or [])
            elif resource.id.type == APP_ASSIGNMENT.name:
                names = [entry["group"] for entry in resource.value]
            else:
                continue
            for name in names:
                where = resource.meta.get("group_sources", {}).get(name) or ", ".join(resource.sources)
                wanted_groups.setdefault(name, where)
        await self.groups.resolve(wanted_groups, problems)
        observed: list[Resource] = []
        device_level = {DEVICE_LOCK.name, REIMAGE.name}
        # Configuration is read when it is wanted or nothing device-level is (a plan whose profiles were all
        # removed still finds them); a lockdown, wanting only device locks, reads no profile, policy or app.
        if not desired or any(r.id.type not in device_level for r in desired):
            observed += await self.settings_policies.observe(problems)
            observed += await self.profiles.observe(problems)
            observed += await self.apps.observe([r for r in desired if r.id.type == APP_ASSIGNMENT.name], problems)
        locks = [r for r in desired if r.id.type == DEVICE_LOCK.name]
        if locks:
            observed += await self.devices.observe_locks(locks, problems)
        if problems:
            raise PlanError("Intune: " + "\n".join(sorted(set(problems))))
        return observed

    def apply(self, changes: Sequence[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        """Apply in the given order; every change gets exactly one on_result (callbacks on this thread)."""
        by_type: dict[str, list[Change]] = {}
        for change in changes:
            by_type.setdefault(change.id.type, []).append(change)
        not_replaced: set[str] = set()  # settings policies not created: keep the custom profile they replace
        for change in by_type.pop(SETTINGS_POLICY.name, []):
            result = _one(change, on_sent, self.settings_policies.apply)
            if result.state != "succeeded":
                not_replaced.add(change.id.key)
            on_result(result)
        for change in by_type.pop(CONFIG_PROFILE.name, []):
            if change.op == "delete" and change.id.key in not_replaced:
                why = f"not deleted: the settings policy {change.id.key} that replaces it was not applied; re-run"
                on_result(ChangeResult(change.key, "failed", why))
                continue
            on_result(_one(change, on_sent, self.profiles.apply))
        for change in by_type.pop(APP_ASSIGNMENT.name, []):
            on_result(_one(change, on_sent, self.apps.apply))
        self.devices.apply_locks(by_type.pop(DEVICE_LOCK.name, []), on_sent, on_result)
        self.devices.apply_reimages(by_type.pop(REIMAGE.name, []), on_sent, on_result)
        for rest in by_type.values():
            for change in rest:
                on_result(ChangeResult(change.key, "failed", f"intune has no resource type {change.id.type!r}"))

    def settle(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """Backend.settle: whether wipes/retires whose outcome is unknown ran (see `Devices.settle`)."""
        return self.devices.settle(changes)

    def inventory_records(self, expected: int | None = None) -> list[dict[str, Any]]:
        """Every managed device; `expected` (the inventory's count) does not change one sequential listing."""
        return self.devices.inventory_records()

    # ---- plan-time targets and selectors (see groups.py) ----------------------------------------------

    def known_targets(self, kind: str, names: Collection[str]) -> Collection[str]:
        """Existing group (intune_group) or app (intune_app) display names, for the plan's target check."""
        return self.session.run(known_names(self.session, self.groups, kind, names))

    def group_device_serials(self, names: Collection[str]) -> dict[str, set[str]]:
        """Serials of the managed devices that are transitive members of each named group (Reimage selectors)."""
        problems: list[str] = []
        missing = {n: "a Reimage devices.intune_groups selector" for n in names if n not in self.groups.ids}
        self.session.run(self.groups.resolve(missing, problems))
        if problems:
            raise PlanError("Intune: " + "\n".join(sorted(problems)))
        return self.session.run(group_serials(self.session, {n: self.groups.ids[n] for n in names}))


def _one(change: Change, on_sent: SentCallback, step: Callable[[Change, SentCallback], ChangeResult]) -> ChangeResult:
    """Run one change's step: on_sent at most once; OutcomeUnknown is `unknown`, any other BackendError `failed`."""
    sent = False

    def mark(sent_change: Change) -> None:
        nonlocal sent
        if not sent:
            sent = True
            on_sent(sent_change)

    try:
        return step(change, mark)
    except OutcomeUnknown as exc:
        return ChangeResult(change.key, "unknown", str(exc))
    except BackendError as exc:
        return ChangeResult(change.key, "failed", str(exc))
