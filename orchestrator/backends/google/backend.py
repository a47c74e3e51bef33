"""The Google backend: Chrome OS devices (Admin SDK Directory) and Chrome policies (Chrome Policy API).

Resource types (keys built and split by the codecs in spec.py; strings in names.py):
    ou_policy      (ou, schema)         → {field: value} of the fields we manage, lists sorted
    ou_app         (ou, app_id)         → {"appInstallType": FORCED|FORCED_AND_PIN_TO_TOOLBAR|NORMAL|...}
    device_status  (serial,)            → "ACTIVE" | "DISABLED"
    device_annotations (serial,)        → {annotatedAssetId|annotatedUser|annotatedLocation|notes: value}
    reimage        (serial, request)    → {"command": "WIPE_USERS" | "REMOTE_POWERWASH"} (journal-observed)

Reading is bulk: one org-unit list, device pages of 300, one policies:resolve per OU and namespace (on a
thread pool, under the pacer). Serials are matched by exact equality on the full device list, never with
the partial `id:` query. Writes are grouped per OU and namespace (batchModify / batchInherit), device
status changes go 50 ids per call with per-device results, commands one device per call and are polled.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from google.auth.credentials import Credentials

from orchestrator.backends.google.annotations import ChromeAnnotations, observe_devices
from orchestrator.backends.google.client import GoogleApi
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.backends.google.devices import ChromeDevices
from orchestrator.backends.google.listing import list_fleet
from orchestrator.backends.google.names import APP_INSTALL, APP_INSTALL_TYPE
from orchestrator.backends.google.policy import (
    MANAGED_FIELDS,
    RESOLVE_FILTERS,
    extension_of,
    inherit_request,
    modify_request,
    namespace_of,
    normalise,
    policy_key,
    split_key,
    write_namespace,
)
from orchestrator.backends.google.reimage import ChromeReimages
from orchestrator.backends.google.results import Reporter
from orchestrator.backends.google.schemas import ENUM_FIELDS, SchemaEnums, SchemaValueError
from orchestrator.backends.pacing import CallCounter, RetryPolicy
from orchestrator.core.backend import ResultCallback, SentCallback
from orchestrator.core.errors import BackendError, PlanError
from orchestrator.core.resources import Change, ChangeResult, Resource, ResourceId

log = logging.getLogger(__name__)

POLICY_TYPES = ("ou_policy", "ou_app")
DEVICE_TYPES = ("device_status", "device_annotations")  # read from the one bulk device listing
INVENTORY_FIELDS = (
    "nextPageToken,chromeosdevices(deviceId,serialNumber,status,orgUnitPath,annotatedAssetId,annotatedUser,"
    "annotatedLocation,notes,lastSync,macAddress,autoUpdateThrough,autoUpdateExpiration)"
)


class GoogleBackend:
    """Admin SDK Directory + Chrome Policy through googleapiclient (see module docstring)."""

    name = "google"

    def __init__(
        self,
        config: GoogleConfig,
        *,
        counter: CallCounter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        workers: int = 8,
        poll_interval: float = 2.0,
        max_polls: int = 10,
        credentials: Credentials | None = None,
        policy_reads_per_minute: int | None = None,
    ):
        self.config = config
        self.api = GoogleApi(
            config,
            counter=counter,
            sleep=sleep,
            retry=retry,
            timeout=timeout,
            credentials=credentials,
            policy_reads_per_minute=policy_reads_per_minute,
        )
        self.counter = self.api.counter
        self.workers = workers
        self.devices = ChromeDevices(self.api, sleep=sleep, workers=workers, org_units=self.org_units)
        self.annotations = ChromeAnnotations(self.devices, workers=workers)
        self.reimages = ChromeReimages(
            self.devices, sleep=sleep, workers=workers, poll_interval=poll_interval, max_polls=max_polls
        )
        self._ous: dict[str, str] | None = None  # OU path → id (without "id:")
        self.schemas = SchemaEnums(self._policy_schema)  # enum names, read once per schema per run

    def _policy_schema(self, schema: str) -> dict[str, Any]:
        """policySchemas.get (chromepolicy v1 `customers.policySchemas.get`, name customers/{c}/policySchemas/{s})."""
        request = (
            self.api.policy.customers().policySchemas().get(name=f"customers/{self._customer}/policySchemas/{schema}")
        )
        return self.api.call("policySchemas.get", request, self.api.policy_read_bucket)

    def close(self) -> None:
        self._ous = None
        self.devices.forget()

    def devices_by_serial(self, refresh: bool = False) -> dict[str, list[dict[str, Any]]]:
        """Every Chrome device record by exact serial (bulk listing; cached for the run)."""
        return self.devices.devices_by_serial(refresh=refresh)

    def inventory_records(self, expected: int | None = None) -> list[dict[str, Any]]:
        """Every Chrome device for `inventory sync`: pages of 300 over concurrent OU subtrees (listing.py), FULL
        projection, only the synced fields.

        Read-only and uncached. FULL because macAddress and the auto-update expiration are not basic metadata
        (GAM's basic list: deviceId, annotated*, lastSync, notes, serialNumber, status); the `fields` mask keeps
        each page to these fields, so it costs what a BASIC page does. `expected`: the inventory's Chromebooks,
        which the listing's cut is sized by (listing.py).
        """
        return list_fleet(
            self.api, self.org_units, fields=INVENTORY_FIELDS, projection="FULL", workers=self.workers, fleet=expected
        ).devices

    def move_devices(self, serials: Sequence[str], ou_path: str) -> dict[str, str]:
        """Move devices (exact serials) to `ou_path` and read back: serial → moved | not_moved | not_found."""
        if ou_path not in self.org_units():
            raise BackendError(f"org unit {ou_path} does not exist in the console")
        return self.devices.move_devices(serials, ou_path)

    # ---- reading ------------------------------------------------------------------------------------
    @property
    def _customer(self) -> str:
        return self.config.customer_id

    def org_units(self, refresh: bool = False) -> dict[str, str]:
        """Every OU path → id, in one call (type=allIncludingParent from "/")."""
        if self._ous is None or refresh:
            request = self.api.directory.orgunits().list(
                customerId=self._customer,
                orgUnitPath="/",
                type="allIncludingParent",
                fields="organizationUnits(orgUnitId,orgUnitPath)",
            )
            reply = self.api.read("orgunits.list", request)
            self._ous = {
                ou["orgUnitPath"]: ou["orgUnitId"].removeprefix("id:") for ou in reply.get("organizationUnits", [])
            }
        return self._ous

    def known_targets(self, kind: str, names: Collection[str]) -> Collection[str]:
        """Every org unit path in the console (one orgunits.list), for the plan's target check."""
        if kind != "google_ou":
            return set()
        return set(self.org_units(refresh=True))

    def _resolve(self, ou_id: str, pattern: str) -> list[dict[str, Any]]:
        body: dict[str, Any] = {
            "policySchemaFilter": pattern,
            "pageSize": 1000,
            "policyTargetKey": {"targetResource": f"orgunits/{ou_id}"},
        }
        out: list[dict[str, Any]] = []
        policies = self.api.policy.customers().policies()
        while True:
            request = policies.resolve(customer=f"customers/{self._customer}", body=body)
            reply = self.api.call("policies.resolve", request, self.api.policy_read_bucket)
            out += reply.get("resolvedPolicies", [])
            token = reply.get("nextPageToken")
            if not token:
                return out
            body = {**body, "pageToken": token}

    def observe(self, desired: Sequence[Resource], *, types: Collection[str] | None = None) -> list[Resource]:
        """Observed state for `desired` plus every locally set managed policy/app under managed_root_ou.

        `types` names the resource types to read (e.g. {"ou_policy", "ou_app"} for a plan whose policies
        were all removed). By default: policy types when `desired` holds any of them or holds no
        device-level resource (device_status, reimage); device_status and device_annotations when desired
        (one device listing for both). `reimage` is journal-observed and never read here. Raises BackendError
        (QuotaError when still throttled).
        """
        mine = [r for r in desired if r.id.backend == self.name]
        wanted = {r.id.type for r in mine}
        if types is None:
            types = set(wanted)
            if wanted & set(POLICY_TYPES) or not wanted & {"device_status", "reimage"}:
                types |= set(POLICY_TYPES)
        out: list[Resource] = []
        # Device pages and policy resolves use different quotas: read both at once.
        with ThreadPoolExecutor(max_workers=1) as side:
            devices = None
            if set(types) & set(DEVICE_TYPES):
                devices = side.submit(observe_devices, self.devices, [r for r in mine if r.id.type in types])
            if set(types) & set(POLICY_TYPES):
                policies = [r for r in mine if r.id.type in POLICY_TYPES and r.id.type in types]
                out += [r for r in self._observe_policies(policies) if r.id.type in types]
            if devices is not None:
                out += devices.result()
        return out

    def recheck(self, touched: Sequence[Resource]) -> list[Resource]:
        """Apply's re-check: the policies of only the OUs the plan touches (deletions come with value None) and
        the devices it changes; never the whole OU tree."""
        policies = [r for r in touched if r.id.backend == self.name and r.id.type in POLICY_TYPES]
        devices = [r for r in touched if r.id.type in DEVICE_TYPES and r.value is not None]
        ous = {split_key(r.id.type, r.id.key)[0] for r in policies}
        out = self._observe_policies([r for r in policies if r.value is not None], only=ous) if ous else []
        return out + (observe_devices(self.devices, devices) if devices else [])

    def _check_enum_values(self, desired: list[Resource]) -> None:
        """Every desired enum value must exist in its schema (policySchemas): PlanError naming the policy otherwise."""
        problems = []
        for resource in desired:
            schema = APP_INSTALL if resource.id.type == "ou_app" else split_key(resource.id.type, resource.id.key)[1]
            if schema in ENUM_FIELDS and isinstance(resource.value, dict):
                try:
                    self.schemas.to_console(schema, resource.value)
                except SchemaValueError as exc:
                    problems.append(f"{', '.join(resource.sources) or resource.id}: {exc}")
        if problems:
            raise PlanError("Google: " + "\n".join(sorted(set(problems))))

    def _canonical(self, key: tuple[str, str, str], value: dict[str, Any]) -> dict[str, Any]:
        schema = APP_INSTALL if key[0] == "ou_app" else key[2]
        return self.schemas.from_console(schema, value) if schema in ENUM_FIELDS else value

    def _observe_policies(self, desired: list[Resource], only: Collection[str] | None = None) -> list[Resource]:
        """Every managed OU's policies (one policies:resolve per OU and namespace), or only the OUs in `only`."""
        self._check_enum_values(desired)
        ous = self.org_units()  # the plan's target check read it moments ago: one orgunits.list per plan
        paths = {v: k for k, v in ous.items()}
        root = self.config.managed_root_ou
        wanted = {(r.id.type, *split_key(r.id.type, r.id.key)): r for r in desired}
        scope = sorted({p for p in ous if _under(p, root)} | {k[1] for k in wanted if k[1] in ous})
        if only is not None:
            scope = [p for p in scope if p in only]
        jobs = [(path, pattern) for path in scope for pattern in RESOLVE_FILTERS]
        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            replies = list(pool.map(lambda job: self._resolve(ous[job[0]], job[1]), jobs))
        local: dict[tuple[str, str, str], dict[str, Any]] = {}
        resolved: dict[tuple[str, str, str], tuple[dict[str, Any], str | None]] = {}
        for (path, _), entries in zip(jobs, replies, strict=True):
            for entry in entries:
                key, value = _entry_key(path, entry)
                if key is None:
                    continue
                value = self._canonical(key, value)
                source = paths.get(entry.get("sourceKey", {}).get("targetResource", "").removeprefix("orgunits/"))
                resolved[key] = (value, source)
                if source == path:
                    local[key] = value
        out: list[Resource] = []
        for key, value in sorted(local.items()):
            want = wanted.get(key)
            if want is None and not _under(key[1], root):
                continue
            out.append(self._policy_resource(key, value, want))
        for key, want in sorted(wanted.items(), key=lambda kv: kv[0]):
            if key in local or key not in resolved:
                continue
            value, source = resolved[key]
            upstream = wanted.get((key[0], source or "", key[2]))
            # An inherited value counts only if the OU it comes from is itself kept at the same desired value.
            if upstream is not None and upstream.value == want.value:
                out.append(self._policy_resource(key, value, want, inherited_from=source))
        return out

    def _policy_resource(
        self, key: tuple[str, str, str], value: dict[str, Any], want: Resource | None, inherited_from: str | None = None
    ) -> Resource:
        kind, ou, name = key
        if kind == "ou_policy":
            only = tuple(want.value) if want is not None and isinstance(want.value, dict) else None
            value = normalise(name, value, only)
        meta = {"inherited_from": inherited_from} if inherited_from else {}
        return Resource(ResourceId(self.name, kind, policy_key(kind, ou, name)), value, meta=meta)

    def settle(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """Backend.settle: whether unknown reimages/deprovisions ran, from commands.get / chromeosdevices.get."""
        return self.reimages.settle(changes)

    def apply(self, changes: Sequence[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        reporter = Reporter(changes, on_result)
        by_type: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_type[change.id.type].append(change)
        steps: list[tuple[list[Change], Callable[[list[Change], SentCallback, Reporter], None]]] = [
            (by_type.pop("ou_policy", []) + by_type.pop("ou_app", []), self._apply_policies),
            (by_type.pop("device_status", []), self.devices.apply_status),
            (by_type.pop("device_annotations", []), self.annotations.apply),
            (by_type.pop("reimage", []), self.reimages.apply),
        ]
        for kind, rest in by_type.items():
            reporter.fail_rest(rest, f"the google backend has no resource type {kind!r}")
        for group, step in steps:
            if not group:
                continue
            try:
                step(group, on_sent, reporter)
            except BackendError as exc:
                reporter.fail_rest(group, str(exc))
        reporter.fail_rest(changes, "not processed")

    def _apply_policies(self, changes: list[Change], on_sent: SentCallback, reporter: Reporter) -> None:
        ous = self.org_units()
        writes: dict[tuple[str, str], list[tuple[Change, dict]]] = defaultdict(list)
        inherits: dict[tuple[str, str], list[tuple[Change, dict]]] = defaultdict(list)
        for change in changes:
            kind = change.id.type
            ou, name = split_key(kind, change.id.key)
            if ou not in ous:
                reporter.report(change, "failed", f"org unit {ou} does not exist in the console")
            elif change.op in ("create", "update") and isinstance(change.after, dict):
                try:  # enum names as the schema spells them (policySchemas), not as the compiler does
                    after = self.schemas.to_console(APP_INSTALL if kind == "ou_app" else name, change.after)
                except SchemaValueError as exc:
                    reporter.report(change, "failed", str(exc))
                    continue
                writes[(ou, write_namespace(kind, name))].append(
                    (change, modify_request(kind, ous[ou], name, after, change.before))
                )
            elif change.op == "delete":
                inherits[(ou, write_namespace(kind, name))].append((change, inherit_request(kind, ous[ou], name)))
            else:
                reporter.report(change, "failed", f"unsupported op {change.op!r} for {kind}")
        orgunits = self.api.policy.customers().policies().orgunits()
        customer = f"customers/{self._customer}"
        for (ou, namespace), items in sorted(writes.items()):
            self._policy_call(
                "policies.orgunits.batchModify", orgunits.batchModify, customer, items, on_sent, reporter, ou, namespace
            )
        for (ou, namespace), items in sorted(inherits.items()):
            self._policy_call(
                "policies.orgunits.batchInherit",
                orgunits.batchInherit,
                customer,
                items,
                on_sent,
                reporter,
                ou,
                namespace,
            )

    def _policy_call(
        self,
        endpoint: str,
        method: Callable[..., Any],
        customer: str,
        items: list[tuple[Change, dict]],
        on_sent: SentCallback,
        reporter: Reporter,
        ou: str,
        namespace: str,
    ) -> None:
        for change, _ in items:
            on_sent(change)
        try:
            request = method(customer=customer, body={"requests": [r for _, r in items]})
            self.api.call(endpoint, request, self.api.policy_write_bucket)
        except BackendError as exc:
            reporter.fail_rest([c for c, _ in items], str(exc))
            return
        for change, _ in items:
            reporter.report(
                change, "succeeded", "", endpoint=endpoint, orgUnit=ou, namespace=namespace, batch=len(items)
            )


def _under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def _entry_key(path: str, entry: dict[str, Any]) -> tuple[tuple[str, str, str] | None, dict[str, Any]]:
    """(type, ou, name) and value of one resolved policy, or None for schemas we do not manage."""
    schema = entry.get("value", {}).get("policySchema", "")
    value = entry.get("value", {}).get("value", {}) or {}
    if namespace_of(schema) == namespace_of(APP_INSTALL):
        app = entry.get("targetKey", {}).get("additionalTargetKeys", {}).get("app_id", "")
        extension = extension_of(app)
        if schema != APP_INSTALL or extension is None:
            return None, value
        return ("ou_app", path, extension), {APP_INSTALL_TYPE: value.get(APP_INSTALL_TYPE)}
    if schema not in MANAGED_FIELDS:
        return None, value
    return ("ou_policy", path, schema), value
