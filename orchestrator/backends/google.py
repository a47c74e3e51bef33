"""The Google backend: Chrome OS devices (Admin SDK Directory) and Chrome policies (Chrome Policy API).

Resource types (keys are strings):
    ou_policy      "{ou_path}|{schema}"      → {field: value} of the fields we manage, lists sorted
    ou_app         "{ou_path}|{extension}"   → {"appInstallType": FORCED|FORCED_AND_PIN_TO_TOOLBAR|NORMAL|...}
    device_status  "{serial}"                → "ACTIVE" | "DISABLED"
    reimage        "{serial}|{request}"      → {"command": "WIPE_USERS" | "REMOTE_POWERWASH"} (journal-observed)

Reading is bulk: one org-unit list, device pages of 300, one policies:resolve per OU and namespace (on a
thread pool, under the pacer). Serials are matched by exact equality on the full device list, never with
the partial `id:` query. Writes are grouped per OU and namespace (batchModify / batchInherit), device
status changes go 50 ids per call with per-device results, commands one device per call and are polled.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from google.auth.credentials import Credentials

from orchestrator.backends.base import ResultCallback, SentCallback
from orchestrator.backends.google_client import GoogleApi, OutcomeUnknown
from orchestrator.backends.google_policy import (
    APP_INSTALL,
    MANAGED_FIELDS,
    RESOLVE_FILTERS,
    extension_of,
    inherit_request,
    modify_request,
    namespace_of,
    normalise,
    split_key,
    write_namespace,
)
from orchestrator.backends.pacing import CallCounter, RetryPolicy, TransientError
from orchestrator.config import GoogleConfig
from orchestrator.engine.resources import Change, ChangeResult, Resource, ResourceId, ResultState
from orchestrator.errors import BackendError, QuotaError

log = logging.getLogger(__name__)

POLICY_TYPES = ("ou_policy", "ou_app")
DEVICE_BATCH = 50
LIST_PAGE = 300
DEVICE_FIELDS = "nextPageToken,chromeosdevices(deviceId,serialNumber,status,orgUnitPath)"
STATUS_ACTIONS = {"DISABLED": "DISABLE", "ACTIVE": "REENABLE"}
# google.rpc.Code values worth retrying inside a batchChangeStatus reply.
TRANSIENT_CODES = frozenset({4, 8, 10, 13, 14})  # DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE
COMMANDS = ("WIPE_USERS", "REMOTE_POWERWASH")
FAILED_COMMAND_STATES = ("EXPIRED", "CANCELLED")


class _Reporter:
    """Reports each change exactly once; whatever is left unreported at the end is reported failed."""

    def __init__(self, changes: Sequence[Change], on_result: ResultCallback):
        self.pending = {c.key: c for c in changes}
        self.on_result = on_result

    def report(self, change: Change, outcome: ResultState, detail: str = "", **response: Any) -> None:
        if self.pending.pop(change.key, None) is None:
            return
        self.on_result(ChangeResult(change.key, outcome, detail, dict(response)))

    def fail_rest(self, changes: Iterable[Change], detail: str) -> None:
        for change in changes:
            self.report(change, "failed", detail)


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
        self.sleep = sleep
        self.workers = workers
        self.poll_interval = poll_interval
        self.max_polls = max_polls
        self._ous: dict[str, str] | None = None  # OU path → id (without "id:")
        self._devices: dict[str, list[dict[str, Any]]] | None = None  # serial → device records

    def close(self) -> None:
        self._ous = None
        self._devices = None

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

    def devices_by_serial(self, refresh: bool = False, ou_path: str | None = None) -> dict[str, list[dict]]:
        """All Chrome devices (or those directly in `ou_path`) by exact serial, pages of 300, BASIC projection."""
        if self._devices is not None and not refresh and ou_path is None:
            return self._devices
        devices = self.api.directory.chromeosdevices()
        params: dict[str, Any] = {}
        if ou_path is not None:
            params["orgUnitPath"] = ou_path.lstrip("/") or "/"
        request = devices.list(
            customerId=self._customer, maxResults=LIST_PAGE, projection="BASIC", fields=DEVICE_FIELDS, **params
        )
        found: dict[str, list[dict]] = defaultdict(list)
        while request is not None:
            page = self.api.read("chromeosdevices.list", request)
            for device in page.get("chromeosdevices", []):
                found[device.get("serialNumber", "")].append(device)
            request = devices.list_next(request, page)
        if ou_path is None:
            self._devices = dict(found)
        return dict(found)

    def _device_for(self, serial: str) -> dict[str, Any] | None:
        """The one usable console record whose serial equals `serial` exactly (None if absent or ambiguous)."""
        records = self.devices_by_serial().get(serial, [])
        usable = [r for r in records if r.get("status") != "DEPROVISIONED"] or records
        if len(usable) > 1:
            log.warning("serial matches %d device records; left alone", len(usable))
            return None
        return usable[0] if usable else None

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
        device-level resource (device_status, reimage); device_status when desired. `reimage` is
        journal-observed and never read here. Raises BackendError (QuotaError when still throttled).
        """
        mine = [r for r in desired if r.id.backend == self.name]
        wanted = {r.id.type for r in mine}
        if types is None:
            types = set(wanted)
            if wanted & set(POLICY_TYPES) or not wanted & {"device_status", "reimage"}:
                types |= set(POLICY_TYPES)
        out: list[Resource] = []
        try:
            # Device pages and policy resolves use different quotas: read both at once.
            with ThreadPoolExecutor(max_workers=1) as side:
                devices = None
                if "device_status" in types:
                    devices = side.submit(self._observe_status, [r for r in mine if r.id.type == "device_status"])
                if set(types) & set(POLICY_TYPES):
                    policies = [r for r in mine if r.id.type in POLICY_TYPES and r.id.type in types]
                    out += [r for r in self._observe_policies(policies) if r.id.type in types]
                if devices is not None:
                    out += devices.result()
        except TransientError as exc:
            raise QuotaError(f"google: still failing after {self.api.retry.attempts} attempts: {exc}") from None
        return out

    def _observe_policies(self, desired: list[Resource]) -> list[Resource]:
        ous = self.org_units(refresh=True)
        paths = {v: k for k, v in ous.items()}
        root = self.config.managed_root_ou
        wanted = {(r.id.type, *split_key(r.id.key)): r for r in desired}
        scope = sorted({p for p in ous if _under(p, root)} | {k[1] for k in wanted if k[1] in ous})
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
        return Resource(ResourceId(self.name, kind, f"{ou}|{name}"), value, meta=meta)

    def _observe_status(self, desired: list[Resource]) -> list[Resource]:
        self.devices_by_serial(refresh=True)
        out = []
        for resource in desired:
            record = self._device_for(resource.id.key)
            if record is not None:
                out.append(
                    Resource(
                        resource.id,
                        record.get("status", ""),
                        meta={"deviceId": record["deviceId"], "orgUnitPath": record.get("orgUnitPath")},
                    )
                )
        return out

    # ---- writing ------------------------------------------------------------------------------------
    def apply(self, changes: Sequence[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        reporter = _Reporter(changes, on_result)
        by_type: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_type[change.id.type].append(change)
        steps: list[tuple[list[Change], Callable[[list[Change], SentCallback, _Reporter], None]]] = [
            (by_type.pop("ou_policy", []) + by_type.pop("ou_app", []), self._apply_policies),
            (by_type.pop("device_status", []), self._apply_status),
            (by_type.pop("reimage", []), self._apply_reimage),
        ]
        for kind, rest in by_type.items():
            reporter.fail_rest(rest, f"the google backend has no resource type {kind!r}")
        for group, step in steps:
            if not group:
                continue
            try:
                step(group, on_sent, reporter)
            except (BackendError, TransientError) as exc:
                reporter.fail_rest(group, str(exc))
        reporter.fail_rest(changes, "not processed")

    def _apply_policies(self, changes: list[Change], on_sent: SentCallback, reporter: _Reporter) -> None:
        ous = self.org_units()
        writes: dict[tuple[str, str], list[tuple[Change, dict]]] = defaultdict(list)
        inherits: dict[tuple[str, str], list[tuple[Change, dict]]] = defaultdict(list)
        for change in changes:
            kind = change.id.type
            ou, name = split_key(change.id.key)
            if ou not in ous:
                reporter.report(change, "failed", f"org unit {ou} does not exist in the console")
            elif change.op in ("create", "update") and isinstance(change.after, dict):
                writes[(ou, write_namespace(kind, name))].append(
                    (change, modify_request(kind, ous[ou], name, change.after, change.before))
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
        reporter: _Reporter,
        ou: str,
        namespace: str,
    ) -> None:
        for change, _ in items:
            on_sent(change)
        try:
            request = method(customer=customer, body={"requests": [r for _, r in items]})
            self.api.call(endpoint, request, self.api.policy_write_bucket)
        except (BackendError, TransientError) as exc:
            reporter.fail_rest([c for c, _ in items], str(exc))
            return
        for change, _ in items:
            reporter.report(
                change, "succeeded", "", endpoint=endpoint, orgUnit=ou, namespace=namespace, batch=len(items)
            )

    def _apply_status(self, changes: list[Change], on_sent: SentCallback, reporter: _Reporter) -> None:
        self.devices_by_serial()
        by_action: dict[str, list[tuple[Change, str]]] = defaultdict(list)
        for change in changes:
            wanted = change.after if isinstance(change.after, str) else ""
            action = STATUS_ACTIONS.get(wanted) if change.op in ("create", "update", "action") else None
            record = self._device_for(change.id.key) if action else None
            if action is None:
                reporter.report(change, "failed", f"cannot set device status {change.after!r} (op {change.op})")
            elif record is None:
                reporter.report(change, "failed", "serial not found in the console (exact match) or ambiguous")
            else:
                by_action[action].append((change, record["deviceId"]))
        for action, items in sorted(by_action.items()):
            for start in range(0, len(items), DEVICE_BATCH):
                self._change_status(action, items[start : start + DEVICE_BATCH], on_sent, reporter)

    def _change_status(
        self, action: str, items: list[tuple[Change, str]], on_sent: SentCallback, reporter: _Reporter
    ) -> None:
        """One chunk of ≤50: per-device transient errors are retried in later rounds, never dropped."""
        for change, _ in items:
            on_sent(change)
        pending = {device_id: change for change, device_id in items}
        last_error: dict[str, str] = {}
        chromeos = self.api.directory.customer().devices().chromeos()
        for attempt in range(self.api.retry.attempts):
            if not pending:
                return
            if attempt:
                self.sleep(min(self.api.retry.max_wait, self.api.retry.initial_wait * 2 ** (attempt - 1)))
            body = {
                "deviceIds": list(pending),
                "changeChromeOsDeviceStatusAction": f"CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_{action}",
            }
            try:
                reply = self.api.read(
                    "chromeosdevices.batchChangeStatus",
                    chromeos.batchChangeStatus(customerId=self._customer, body=body),
                )
            except (BackendError, TransientError) as exc:
                reporter.fail_rest(pending.values(), str(exc))
                return
            results = {r.get("deviceId"): r for r in reply.get("changeChromeOsDeviceStatusResults", [])}
            retry: dict[str, Change] = {}
            for device_id, change in pending.items():
                result = results.get(device_id)
                error = (result or {}).get("error")
                if result is None or (error and error.get("code") in TRANSIENT_CODES):
                    retry[device_id] = change
                    last_error[device_id] = error.get("message", "") if error else "no per-device result"
                elif error and error.get("code") == 9 and self._current_status(device_id) == change.after:
                    # Refused because it is already in the wanted state (e.g. a retried call had landed).
                    self._set_cached_status(change.id.key, change.after)
                    reporter.report(change, "succeeded", f"already {change.after}", deviceId=device_id)
                elif error:
                    reporter.report(
                        change,
                        "failed",
                        f"{action.lower()} refused: {error.get('message', '')} (code {error.get('code')})",
                        deviceId=device_id,
                    )
                else:
                    self._set_cached_status(change.id.key, change.after)
                    reporter.report(change, "succeeded", "", deviceId=device_id, action=action)
            pending = retry
        for device_id, change in pending.items():
            reporter.report(
                change,
                "failed",
                f"{action.lower()} still failing after "
                f"{self.api.retry.attempts} attempts: {last_error.get(device_id, '')}",
                deviceId=device_id,
            )

    def _current_status(self, device_id: str) -> str | None:
        """One device's status read back (only after a precondition refusal, so rare)."""
        request = self.api.directory.chromeosdevices().get(
            customerId=self._customer, deviceId=device_id, projection="BASIC", fields="status"
        )
        try:
            return self.api.read("chromeosdevices.get", request).get("status")
        except (BackendError, TransientError):
            return None

    def _set_cached_status(self, serial: str, status: str) -> None:
        for record in (self._devices or {}).get(serial, []):
            record["status"] = status

    def _apply_reimage(self, changes: list[Change], on_sent: SentCallback, reporter: _Reporter) -> None:
        """One issueCommand per device, then poll commands.get (bounded). A timeout is `unknown`, never re-sent."""
        self.devices_by_serial()
        chromeos = self.api.directory.customer().devices().chromeos()
        issued: list[tuple[Change, str, str]] = []
        for change in changes:
            serial = change.id.key.split("|", 1)[0]
            command = (change.after or {}).get("command") if isinstance(change.after, dict) else None
            record = self._device_for(serial)
            if command not in COMMANDS:
                reporter.report(change, "failed", f"unknown command {command!r} (allowed: {', '.join(COMMANDS)})")
                continue
            if record is None:
                reporter.report(change, "failed", "serial not found in the console (exact match) or ambiguous")
                continue
            device_id = record["deviceId"]
            on_sent(change)
            request = chromeos.issueCommand(
                customerId=self._customer, deviceId=device_id, body={"commandType": command}
            )
            try:
                reply = self.api.call(
                    "chromeosdevices.issueCommand", request, self.api.directory_bucket, idempotent=False
                )
            except OutcomeUnknown as exc:
                reporter.report(change, "unknown", str(exc), deviceId=device_id, command=command)
                continue
            except (BackendError, TransientError) as exc:
                reporter.report(change, "failed", str(exc), deviceId=device_id, command=command)
                continue
            issued.append((change, device_id, str(reply.get("commandId", ""))))
        self._poll_commands(issued, reporter)

    def _poll_commands(self, issued: list[tuple[Change, str, str]], reporter: _Reporter) -> None:
        commands = self.api.directory.customer().devices().chromeos().commands()
        states: dict[str, str] = {}
        pending = issued
        for _ in range(self.max_polls):
            if not pending:
                return
            self.sleep(self.poll_interval)
            waiting = []

            def poll(item: tuple[Change, str, str]) -> dict[str, Any] | Exception:
                _, device_id, command_id = item
                request = commands.get(customerId=self._customer, deviceId=device_id, commandId=command_id)
                try:
                    return self.api.read("commands.get", request)
                except (BackendError, TransientError) as exc:
                    return exc

            # Polls run in parallel; results are reported from this thread only.
            with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
                replies = list(pool.map(poll, pending))
            for (change, device_id, command_id), reply in zip(pending, replies, strict=True):
                if isinstance(reply, Exception):
                    states[command_id] = f"poll failed: {reply}"
                    waiting.append((change, device_id, command_id))
                    continue
                state = reply.get("state", "")
                states[command_id] = state
                result = (reply.get("commandResult") or {}).get("result", "")
                fields = {"deviceId": device_id, "commandId": command_id, "state": state}
                if state == "EXECUTED_BY_CLIENT" and result == "SUCCESS":
                    reporter.report(change, "succeeded", "", **fields, result=result)
                elif state == "EXECUTED_BY_CLIENT" or state in FAILED_COMMAND_STATES:
                    reporter.report(
                        change, "failed", f"command {state.lower()} ({result or 'no result'})", **fields, result=result
                    )
                else:
                    waiting.append((change, device_id, command_id))
            pending = waiting
        for change, device_id, command_id in pending:
            # Accepted by Google and queued for the device: re-sending would only queue a second wipe.
            reporter.report(
                change,
                "succeeded",
                f"issued; device has not executed it yet ({states.get(command_id, 'PENDING')})",
                deviceId=device_id,
                commandId=command_id,
                state=states.get(command_id, "PENDING"),
            )

    # ---- moves --------------------------------------------------------------------------------------
    def move_devices(self, serials: Sequence[str], ou_path: str) -> dict[str, str]:
        """Move devices (exact serials) to `ou_path`, ≤50 per call, then read the OU back to confirm.

        Returns serial → "moved" | "not_moved" | "not_found" (moveDevicesToOu reports nothing per device).
        """
        if ou_path not in self.org_units():
            raise BackendError(f"org unit {ou_path} does not exist in the console")
        outcome: dict[str, str] = {}
        ids: list[tuple[str, str]] = []
        for serial in serials:
            record = self._device_for(serial)
            if record is None:
                outcome[serial] = "not_found"
            else:
                ids.append((serial, record["deviceId"]))
        devices = self.api.directory.chromeosdevices()
        for start in range(0, len(ids), DEVICE_BATCH):
            chunk = [device_id for _, device_id in ids[start : start + DEVICE_BATCH]]
            self.api.read(
                "chromeosdevices.moveDevicesToOu",
                devices.moveDevicesToOu(customerId=self._customer, orgUnitPath=ou_path, body={"deviceIds": chunk}),
            )
        there = self.devices_by_serial(ou_path=ou_path)
        for serial, device_id in ids:
            outcome[serial] = "moved" if any(r["deviceId"] == device_id for r in there.get(serial, [])) else "not_moved"
        self._devices = None
        return outcome


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
        return ("ou_app", path, extension), {"appInstallType": value.get("appInstallType")}
    if schema not in MANAGED_FIELDS:
        return None, value
    return ("ou_policy", path, schema), value
