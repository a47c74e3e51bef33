"""In-memory state of the emulated Google tenant: org units, Chrome devices, commands and Chrome policies.

Over 400 lines: `GoogleState` mirrors the published Directory and Chrome Policy rules one method per API
call, all under the server's one state lock; splitting it would split that lock (field parsing is in
google_fields.py, HTTP in google_emulator.py).

Pure logic with no HTTP: the emulator's handlers call these methods under the server's state lock.
Rules follow the published APIs: device status transitions, `id:` partial serial matching, policy
inheritance with `sourceKey`/`addedSourceKey`, batchModify validation.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from googleapiclient.discovery_cache import get_static_doc

from orchestrator.sandbox.district import District


@functools.cache
def deprovision_reasons() -> tuple[frozenset[str], frozenset[str]]:
    """(every deprovisionReason enum name, the deprecated ones), from the bundled Directory discovery document.

    The real API answers an enum name it does not know with 400 INVALID_ARGUMENT for the whole request (proto
    JSON parsing: "Invalid value at 'deprovision_reason'"), before any device is touched.
    """
    schema = json.loads(get_static_doc("admin", "directory_v1") or "{}")["schemas"]
    field_ = schema["BatchChangeChromeOsDeviceStatusRequest"]["properties"]["deprovisionReason"]
    names = field_["enum"]
    deprecated = [n for n, old in zip(names, field_.get("enumDeprecated", [False] * len(names)), strict=True) if old]
    return frozenset(names), frozenset(deprecated)


class ApiError(Exception):
    """A Google API error: HTTP status, reason (errors[].reason) and the canonical status name."""

    STATUS_NAMES = {
        400: "INVALID_ARGUMENT",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ABORTED",
        412: "FAILED_PRECONDITION",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }

    def __init__(self, code: int, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason

    # The google.rpc.ErrorInfo reason (google/api/error_reason.proto, domain googleapis.com) a legacy reason
    # corresponds to in the newer error body.
    ERROR_INFO_REASONS = {
        "rateLimitExceeded": "RATE_LIMIT_EXCEEDED",
        "userRateLimitExceeded": "RATE_LIMIT_EXCEEDED",
        "quotaExceeded": "RATE_LIMIT_EXCEEDED",
    }

    def body(self, domain: str = "global", style: str = "legacy") -> dict[str, Any]:
        """The error body: legacy `errors[]`, newer `details[]` (google.rpc.ErrorInfo), or both."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if style in ("legacy", "both"):
            error["errors"] = [{"reason": self.reason, "domain": domain, "message": self.message}]
        error["status"] = self.STATUS_NAMES.get(self.code, "UNKNOWN")
        if style in ("details", "both"):
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": self.ERROR_INFO_REASONS.get(self.reason, self.reason.upper()),
                    "domain": "googleapis.com",
                    "metadata": {"service": "admin.googleapis.com"},
                }
            ]
        return {"error": error}


# Schemas the emulator knows, with their fields and allowed enum values (None = any value of that type).
SCHEMAS: dict[str, dict[str, tuple[type, tuple[str, ...] | None]]] = {
    "chrome.users.UrlBlocking": {"urlBlocklist": (list, None), "urlAllowlist": (list, None)},
    "chrome.users.SafeSearchRestrictedMode": {
        "forceGoogleSafeSearch": (bool, None),
        "forceYoutubeRestrictedMode": (str, ("OFF", "MODERATE", "STRICT")),
    },
    "chrome.users.IncognitoMode": {"incognitoModeAvailability": (str, None)},
    "chrome.devices.DisabledDeviceReturnInstructions": {"deviceDisabledMessage": (str, None)},
    "chrome.users.apps.InstallType": {
        "appInstallType": (
            str,
            (
                "FORCED",
                "FORCED_AND_PIN_TO_TOOLBAR",
                "NORMAL",
                "NORMAL_AND_PIN_TO_TOOLBAR",
                "ALLOWED",
                "BLOCKED",
            ),
        ),
    },
    "chrome.users.apps.ManagedConfiguration": {"managedConfiguration": (str, None)},
}
APP_NAMESPACE = "chrome.users.apps"
COMMAND_STATES = ("PENDING", "SENT_TO_CLIENT", "ACKED_BY_CLIENT", "EXECUTED_BY_CLIENT")


def namespace_of(schema: str) -> str:
    return schema.rsplit(".", 1)[0]


def schema_matches(pattern: str, schema: str) -> bool:
    """`chrome.users.*` matches schemas directly in chrome.users (not chrome.users.apps.X); else exact."""
    if pattern.endswith(".*"):
        return namespace_of(schema) == pattern[:-2]
    return pattern == schema


@dataclass
class OrgUnit:
    id: str  # without the "id:" prefix
    path: str
    parent: str | None  # parent path; None for "/"

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1] or "/"

    def directory_json(self, ids: dict[str, OrgUnit]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "admin#directory#orgUnit",
            "orgUnitId": f"id:{self.id}",
            "orgUnitPath": self.path,
            "name": self.name,
            "description": "",
            "etag": f'"{self.id}"',
        }
        if self.parent is not None:
            out["parentOrgUnitPath"] = self.parent
            out["parentOrgUnitId"] = f"id:{ids[self.parent].id}"
        return out


@dataclass
class Command:
    command_id: str
    device_id: str
    type: str
    issue_time: str
    gets: int = 0
    payload: str = ""


@dataclass
class GoogleState:
    """The tenant. Policies are keyed (ou_id, schema, app_id or "") → value dict (only fields set)."""

    ous: dict[str, OrgUnit] = field(default_factory=dict)  # path → OrgUnit
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # deviceId → device JSON (FULL)
    order: list[str] = field(default_factory=list)  # deviceIds in listing order
    commands: dict[str, Command] = field(default_factory=dict)
    policies: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    device_faults: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # deviceId → queued Status
    command_steps: int = 1  # how many states a command advances per commands.get
    version: int = 0  # bumped by every device mutation; keys the listing cache
    _list_cache: dict[tuple[Any, ...], list[dict[str, Any]]] = field(default_factory=dict)
    # The schemas this tenant serves (policySchemas) and validates writes against; a test may respell an
    # enum (e.g. with a prefix) to check that clients take enum names from the schema.
    schemas: dict[str, dict[str, tuple[type, tuple[str, ...] | None]]] = field(
        default_factory=lambda: {name: dict(fields) for name, fields in SCHEMAS.items()}
    )
    _next_command: int = 1000

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def from_district(cls, district: District, seed: int = 2026) -> GoogleState:
        state = cls()
        for path in district.ous:
            state.add_ou(path)
        rng = random.Random(seed)
        for seeded in district.devices:
            d = seeded.device
            if d.platform != "chromeos":
                continue
            state.add_ou(d.orgUnitPath)
            device_id = d.deviceId or f"{rng.getrandbits(64):016x}"
            state.devices[device_id] = {
                "kind": "admin#directory#chromeosdevice",
                "etag": f'"{device_id[:8]}"',
                "deviceId": device_id,
                "serialNumber": d.serialNumber,
                "status": d.status or "ACTIVE",
                "orgUnitPath": d.orgUnitPath,
                "orgUnitId": state.ous[d.orgUnitPath].id,
                "annotatedAssetId": d.annotatedAssetId,
                "annotatedUser": d.annotatedUser,
                "macAddress": d.macAddress.replace(":", ""),
                "model": "Acer Chromebook 311",
                "osVersion": "126.0.6478.132",
                "platformVersion": "15886.44.0",
                "lastSync": "2026-11-20T14:03:11.000Z",
                "autoUpdateThrough": "2031-06-01T00:00:00.000Z",
                "autoUpdateExpiration": "1938038400000",  # deprecated twin: int64 ms since the epoch, as a string
                "bootMode": "Verified",
                "recentUsers": [{"type": "USER_TYPE_MANAGED", "email": d.annotatedUser}],
            }
            state.order.append(device_id)
        return state

    def set_by_hand(self, settings: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        """Settings made in the Admin console before the tool came (`sandbox --lived-in`): (ou, schema, app, value)."""
        for path, schema, app, value in settings:
            self.policies[(self.add_ou(path).id, schema, app)] = dict(value)

    def add_ou(self, path: str) -> OrgUnit:
        if path in self.ous:
            return self.ous[path]
        parent = None if path == "/" else (path.rsplit("/", 1)[0] or "/")
        if parent is not None:
            self.add_ou(parent)
        ou = OrgUnit(id="03ph" + hashlib.sha256(path.encode()).hexdigest()[:10], path=path, parent=parent)
        self.ous[path] = ou
        return ou

    # ---- org units ----------------------------------------------------------------------------------
    def ou_by_ref(self, ref: str) -> OrgUnit:
        """An OU by path ("/A/B" or "A/B"), Directory id ("id:03ph…") or Chrome Policy name ("orgunits/…")."""
        ref = ref.strip()
        if ref.startswith("orgunits/"):
            ref = "id:" + ref.removeprefix("orgunits/")
        if ref.startswith("id:"):
            for ou in self.ous.values():
                if ou.id == ref[3:]:
                    return ou
            raise ApiError(404, f"Org unit not found: {ref}", "notFound")
        path = "/" + ref.strip("/")
        if path not in self.ous:
            raise ApiError(404, "Org unit not found", "notFound")
        return self.ous[path]

    def descendants(self, path: str, include_self: bool) -> list[OrgUnit]:
        prefix = "/" if path == "/" else path + "/"
        return [
            ou
            for p, ou in sorted(self.ous.items())
            if (p == path and include_self) or (p != path and p.startswith(prefix))
        ]

    def ancestors(self, ou: OrgUnit) -> list[OrgUnit]:
        """`ou` itself, then its parent, up to "/"."""
        chain = [ou]
        while chain[-1].parent is not None:
            chain.append(self.ous[chain[-1].parent])
        return chain

    # ---- devices ------------------------------------------------------------------------------------
    def list_devices(self, ou_ref: str | None, include_children: bool, query: str) -> list[dict[str, Any]]:
        """Devices in listing order; cached per filter so paging a large fleet is not quadratic."""
        key = (ou_ref, include_children, query, len(self.order), self.version)
        if key not in self._list_cache:
            if len(self._list_cache) > 64:
                self._list_cache.clear()
            self._list_cache[key] = self._filter_devices(ou_ref, include_children, query)
        return self._list_cache[key]

    def _filter_devices(self, ou_ref: str | None, include_children: bool, query: str) -> list[dict[str, Any]]:
        devices = [self.devices[i] for i in self.order]
        if ou_ref:
            ou = self.ou_by_ref(ou_ref)
            if include_children:
                prefix = "/" if ou.path == "/" else ou.path + "/"
                devices = [d for d in devices if d["orgUnitPath"] == ou.path or d["orgUnitPath"].startswith(prefix)]
            else:
                devices = [d for d in devices if d["orgUnitPath"] == ou.path]
        elif include_children:
            raise ApiError(400, "includeChildOrgunits requires orgUnitPath", "invalid")
        for term in query.split():
            devices = [d for d in devices if _query_term_matches(term, d)]
        return devices

    def device(self, device_id: str) -> dict[str, Any]:
        if device_id not in self.devices:
            raise ApiError(404, "Resource Not Found: deviceId", "notFound")
        return self.devices[device_id]

    def change_status(self, device_id: str, action: str, reason: str) -> dict[str, Any]:
        """One per-device result of batchChangeStatus: {deviceId, response: {}} or {deviceId, error}."""
        self.version += 1
        queued = self.device_faults.get(device_id)
        if queued:
            return {"deviceId": device_id, "error": queued.pop(0)}
        device = self.devices.get(device_id)
        if device is None:
            return {"deviceId": device_id, "error": {"code": 5, "message": "Device not found."}}
        status = device["status"]
        verb = action.removeprefix("CHANGE_CHROME_OS_DEVICE_STATUS_ACTION_")
        if verb == "DISABLE":
            if status != "ACTIVE":
                return _precondition(device_id, f"Cannot disable a device in state {status}.")
            device["status"] = "DISABLED"
        elif verb == "REENABLE":
            if status != "DISABLED":
                return _precondition(device_id, f"Cannot re-enable a device in state {status}.")
            device["status"] = "ACTIVE"
        elif verb == "DEPROVISION":
            if status == "DEPROVISIONED":
                return _precondition(device_id, "Device is already deprovisioned.")
            if not reason or reason.endswith("UNSPECIFIED"):
                return {
                    "deviceId": device_id,
                    "error": {"code": 3, "message": "deprovisionReason is required."},
                }
            device["status"] = "DEPROVISIONED"
            # Read back by Backend.settle (admin.directory_v1 ChromeOsDevice.lastDeprovisionTimestamp).
            device["deprovisionReason"] = reason
            device["lastDeprovisionTimestamp"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        else:
            raise ApiError(400, f"Invalid changeChromeOsDeviceStatusAction: {action}", "invalid")
        return {"deviceId": device_id, "response": {}}

    def policy_schema(self, customer: str, schema: str) -> dict[str, Any]:
        """policySchemas.get: the schema's fields, with `knownValueDescriptions` for enum fields.

        Shape per the bundled chromepolicy discovery document (GoogleChromePolicyVersionsV1PolicySchema:
        name, schemaName, fieldDescriptions[{field, knownValueDescriptions[{value, description}]}]); the
        `definition` (a FileDescriptorProto) is left out.
        """
        if schema not in self.schemas:
            raise ApiError(404, f"Requested entity was not found: {schema}", "notFound")
        fields = []
        for name, (kind, allowed) in self.schemas[schema].items():
            entry: dict[str, Any] = {"field": name, "fieldDescription": f"{name} ({kind.__name__})"}
            if allowed:
                entry["knownValueDescriptions"] = [{"value": v, "description": v.title()} for v in allowed]
            fields.append(entry)
        return {
            "name": f"customers/{customer}/policySchemas/{schema}",
            "schemaName": schema,
            "fieldDescriptions": fields,
            "validTargetResources": ["ORG_UNIT"],
        }

    def move_devices(self, device_ids: list[str], ou_ref: str) -> None:
        """Like the real call: unknown ids are silently ignored."""
        ou = self.ou_by_ref(ou_ref)
        self.version += 1
        for device_id in device_ids:
            if device_id in self.devices:
                self.devices[device_id]["orgUnitPath"] = ou.path
                self.devices[device_id]["orgUnitId"] = ou.id

    def issue_command(self, device_id: str, command_type: str, payload: str, now: str) -> Command:
        device = self.device(device_id)
        if device["status"] != "ACTIVE":
            raise ApiError(
                400,
                f"Commands can only be issued to active devices (state {device['status']}).",
                "failedPrecondition",
            )
        self._next_command += 1
        command = Command(
            command_id=str(self._next_command),
            device_id=device_id,
            type=command_type,
            issue_time=now,
            payload=payload,
        )
        self.commands[command.command_id] = command
        return command

    def get_command(self, device_id: str, command_id: str) -> dict[str, Any]:
        command = self.commands.get(command_id)
        if command is None or command.device_id != device_id:
            raise ApiError(404, "Command not found.", "notFound")
        command.gets += 1
        index = min(len(COMMAND_STATES) - 1, (command.gets - 1) * self.command_steps)
        state = COMMAND_STATES[index]
        out: dict[str, Any] = {
            "commandId": command.command_id,
            "type": command.type,
            "state": state,
            "issueTime": command.issue_time,
            "payload": command.payload,
            "commandExpireTime": "2099-01-01T00:00:00Z",
        }
        if state == "EXECUTED_BY_CLIENT":
            out["commandResult"] = {"result": "SUCCESS", "executeTime": command.issue_time}
        return out

    # ---- Chrome policy ------------------------------------------------------------------------------
    def resolve(self, target: OrgUnit, pattern: str, app_id: str | None) -> list[dict[str, Any]]:
        """Resolved policies for `target`: nearest ancestor that sets each schema (per app for apps)."""
        chain = self.ancestors(target)
        target_key = {"targetResource": f"orgunits/{target.id}"}
        schemas = sorted(s for s in self.schemas if schema_matches(pattern, s))
        if not schemas:
            raise ApiError(400, f"Invalid policySchemaFilter: {pattern}", "invalid")
        out: list[dict[str, Any]] = []
        is_app = namespace_of(schemas[0]) == APP_NAMESPACE
        if not is_app:
            for schema in schemas:
                for ou in chain:
                    value = self.policies.get((ou.id, schema, ""))
                    if value is not None:
                        out.append(
                            {
                                "targetKey": target_key,
                                "value": {"policySchema": schema, "value": value},
                                "sourceKey": {"targetResource": f"orgunits/{ou.id}"},
                            }
                        )
                        break
            return out
        app_ids = sorted({k[2] for k in self.policies if k[2] and k[0] in {o.id for o in chain}})
        if app_id:
            app_ids = [a for a in app_ids if a == app_id]
        for app in app_ids:
            added = next(
                (ou for ou in reversed(chain) if (ou.id, "chrome.users.apps.InstallType", app) in self.policies),
                None,
            )
            for schema in schemas:
                for ou in chain:
                    value = self.policies.get((ou.id, schema, app))
                    if value is not None:
                        entry = {
                            "targetKey": {**target_key, "additionalTargetKeys": {"app_id": app}},
                            "value": {"policySchema": schema, "value": value},
                            "sourceKey": {
                                "targetResource": f"orgunits/{ou.id}",
                                "additionalTargetKeys": {"app_id": app},
                            },
                        }
                        if added is not None:
                            entry["addedSourceKey"] = {
                                "targetResource": f"orgunits/{added.id}",
                                "additionalTargetKeys": {"app_id": app},
                            }
                        out.append(entry)
                        break
        return out

    def batch_modify(self, requests: list[dict[str, Any]]) -> None:
        """Validate all requests first (same OU, namespace, additionalTargetKeys names), then write."""
        planned = []
        for ou, schema, app, raw in _validated_batch(self, requests, "policyValue"):
            value = raw.get("value") or {}
            fields = self.schemas[schema]
            mask = [m.strip() for m in (raw.get("_mask") or "").split(",") if m.strip()] or list(value)
            for name in mask:
                if name not in fields:
                    raise ApiError(400, f"Invalid field mask path {name!r} for {schema}.", "invalid")
            for name, got in value.items():
                if name not in fields:
                    raise ApiError(400, f"Unknown field {name!r} in {schema}.", "invalid")
                kind, allowed = fields[name]
                if not isinstance(got, kind) or (allowed and got not in allowed):
                    raise ApiError(400, f"Invalid value for {schema}.{name}.", "invalid")
            planned.append(((ou.id, schema, app), {n: value[n] for n in mask if n in value}, mask))
        if any(
            k[1].startswith(APP_NAMESPACE + ".")
            and k[1] != "chrome.users.apps.InstallType"
            and (k[0], "chrome.users.apps.InstallType", k[2]) not in self.policies
            and not any(p[0] == (k[0], "chrome.users.apps.InstallType", k[2]) for p in planned)
            for k, _, _ in planned
        ):
            raise ApiError(400, "An app must have appInstallType set before other app policies.", "invalid")
        for key, value, mask in planned:
            current = dict(self.policies.get(key, {}))
            for name in mask:
                if name in value:
                    current[name] = value[name]
                else:
                    current.pop(name, None)
            if current:
                self.policies[key] = current
            else:
                self.policies.pop(key, None)

    def batch_inherit(self, requests: list[dict[str, Any]]) -> None:
        planned = list(_validated_batch(self, requests, "policySchema"))
        for ou, schema, app, _ in planned:
            if schema.endswith(".*"):
                for key in [k for k in self.policies if k[0] == ou.id and k[2] == app and schema_matches(schema, k[1])]:
                    del self.policies[key]
            else:
                self.policies.pop((ou.id, schema, app), None)


def _precondition(device_id: str, message: str) -> dict[str, Any]:
    return {"deviceId": device_id, "error": {"code": 9, "message": message}}


def _query_term_matches(term: str, device: dict[str, Any]) -> bool:
    """The list-query operators we emulate. `id:` is a PARTIAL serial match (≥3 chars), as on the real API."""
    name, sep, value = term.partition(":")
    if not sep:
        text = term.lower()
        return any(
            text in str(device.get(f, "")).lower()
            for f in ("serialNumber", "annotatedUser", "annotatedAssetId", "model")
        )
    value = value.strip('"').lower()
    if name == "id":
        if len(value) < 3:
            raise ApiError(400, "Invalid Input: id: needs at least 3 characters", "invalid")
        return value in device["serialNumber"].lower()
    if name == "status":
        mapping = {
            "provisioned": "ACTIVE",
            "active": "ACTIVE",
            "disabled": "DISABLED",
            "deprovisioned": "DEPROVISIONED",
        }
        return device["status"] == mapping.get(value, value.upper())
    if name == "asset_id":
        return value in device.get("annotatedAssetId", "").lower()
    if name == "user":
        return value in device.get("annotatedUser", "").lower()
    raise ApiError(400, f"Invalid Input: unsupported query operator {name}:", "invalid")


def _validated_batch(state: GoogleState, requests: list[dict[str, Any]], what: str):
    """Check the rules every batchModify/batchInherit call must satisfy; yield (ou, schema, app, request)."""
    if not isinstance(requests, list) or not requests:
        raise ApiError(400, "requests must not be empty.", "invalid")
    seen: set[tuple[str, str]] = set()
    targets: set[str] = set()
    namespaces: set[str] = set()
    key_names: set[tuple[str, ...]] = set()
    out = []
    for request in requests:
        target = request.get("policyTargetKey") or {}
        resource = target.get("targetResource", "")
        if not resource.startswith("orgunits/"):
            raise ApiError(400, "policyTargetKey.targetResource must be orgunits/{id}.", "invalid")
        ou = state.ou_by_ref(resource)
        extra = target.get("additionalTargetKeys") or {}
        if what == "policyValue":
            schema = (request.get("policyValue") or {}).get("policySchema", "")
            raw = dict(request.get("policyValue") or {})
            raw["_mask"] = request.get("updateMask", "")
        else:
            schema = request.get("policySchema", "")
            raw = {}
        known = schema in state.schemas or (
            what == "policySchema" and schema.endswith(".*") and any(schema_matches(schema, s) for s in state.schemas)
        )
        if not known:
            raise ApiError(400, f"Unknown policy schema: {schema}", "invalid")
        is_app = namespace_of(schema) == APP_NAMESPACE
        if is_app and "app_id" not in extra:
            raise ApiError(400, f"{schema} requires additionalTargetKeys.app_id.", "invalid")
        if not is_app and extra:
            raise ApiError(400, f"{schema} does not take additionalTargetKeys.", "invalid")
        app = extra.get("app_id", "")
        if is_app and not app.startswith(("chrome:", "android:", "web:")):
            raise ApiError(400, f"Invalid app_id {app!r}.", "invalid")
        if (schema, resource + "|" + app) in seen:
            raise ApiError(400, f"Duplicate request for {schema} on the same target.", "invalid")
        seen.add((schema, resource + "|" + app))
        targets.add(resource)
        namespaces.add(namespace_of(schema))
        key_names.add(tuple(sorted(extra)))
        out.append((ou, schema, app, raw))
    if len(targets) > 1:
        raise ApiError(400, "All requests must target the same org unit.", "invalid")
    if len(namespaces) > 1:
        raise ApiError(400, "All requests must modify policies in the same namespace.", "invalid")
    if len(key_names) > 1:
        raise ApiError(400, "All requests must use the same additionalTargetKeys names.", "invalid")
    return out
