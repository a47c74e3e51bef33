"""A local Microsoft Graph (Intune) emulator: a real HTTP server for the SDK, the tests and the sandbox.

Over 400 lines: an emulator is a route table; every route the Intune backend calls is handled here so the
file reads like the list below (tenant state is in graph_state.py, groups and members in graph_directory.py).

Routes (under both /v1.0 and /beta; beta-only fields and actions are refused or hidden on /v1.0):

  GET    deviceManagement/managedDevices            $select, $top (≤1000, default 100), $skiptoken, $filter
  GET    deviceManagement/managedDevices/{id}
  POST   deviceManagement/managedDevices/{id}/{remoteLock|wipe|retire|syncDevice|disableLostMode|...}  → 204
  POST   beta deviceManagement/managedDevices/{id}/enableLostMode   (supervised corporate iOS/iPadOS only, else 400)
  GET    groups ($filter displayName eq '…'), groups/{id}
  GET    groups/{id}/transitiveMembers[/microsoft.graph.device]  paged, $top ≤ 999 (see graph_directory.py)
  GET    groups/{id}/members[/microsoft.graph.device|user|group]/$count  text/plain (ConsistencyLevel: eventual)
  GET/PATCH devices/{id} | devices(deviceId='…')   Entra ID device objects; PATCH accountEnabled (Windows only)
  remoteLock on a Windows device → 400 (not supported on Windows desktops)
  GET    deviceAppManagement/mobileApps ($filter displayName eq '…', $expand=assignments), mobileApps/{id},
         …/{id}/assignments
  POST   deviceAppManagement/mobileApps/{id}/assign  {"mobileAppAssignments": [...]}  → 204 (replaces)
  GET|POST deviceManagement/deviceConfigurations ($expand=assignments); GET|PATCH|DELETE …/{id}
  POST   deviceManagement/deviceConfigurations/{id}/assign {"assignments": [...]}  → 200; GET …/assignments
  beta deviceManagement/configurationPolicies (Settings Catalog, graph_catalog.py): GET ($expand=settings,
         assignments) | POST; GET|PUT (replace, settings included)|PATCH (no settings)|DELETE …/{id};
         GET …/{id}/settings; POST …/{id}/assign → 200; GET …/{id}/assignments. Unknown setting definitions and
         wrong instance shapes are 400; on /v1.0 the segment does not exist.
  POST   $batch  ≤20 relative inner requests; write requests need a body and Content-Type (else the whole
         batch is 400, like Graph); every inner request is counted and throttled on its own.

A `$filter` the service does not support is silently ignored (the whole collection comes back), as the
real Intune service does. Errors use Graph's body `{"error": {"code", "message", "innerError"}}`.
Calls are counted per endpoint name, e.g. "GET managedDevices" or "POST managedDevices/remoteLock"; the
same names select where a queued `Fault` strikes.

Fault rules (`GraphEmulator.inject`) reproduce what the service does to destructive actions, by endpoint, at
a seeded rate or on given call numbers: an inner `$batch` wipe that executes and then answers 503
(`inject("POST managedDevices/wipe", 503, rate=0.3)`), an outer 500/502 around a `$batch` whose items ran
(`inject("POST $batch", 502, on_calls={1})`), a reset connection (`status=RESET`, outer requests only), and
throttled items whose re-send fails (`inject("POST managedDevices/wipe", 429, after_effect=False)` plus an
outer fault on the second `$batch`). `state.executed` counts every action that really ran, per device.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from orchestrator.sandbox.district import District, generate
from orchestrator.sandbox.graph_catalog import CatalogProblem
from orchestrator.sandbox.graph_directory import entra_get, entra_patch, transitive_members
from orchestrator.sandbox.graph_state import (
    BETA_ONLY_CONFIG_FIELDS,
    BETA_ONLY_DEVICE_FIELDS,
    GraphProblem,
    GraphState,
    now_iso,
    strip_beta,
)
from orchestrator.sandbox.httpbase import EmulatorServer, Fault, JsonHandler

MAX_TOP = 1000
DEFAULT_DEVICE_PAGE = 100
MAX_BATCH = 20
WRITE_METHODS = ("POST", "PATCH", "PUT")
_EQ = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$")
DEVICE_FILTER_FIELDS = ("id", "serialNumber", "deviceName", "operatingSystem", "userPrincipalName")


RESET = -1  # a Fault status for whole requests: close the connection without answering


@dataclass
class FaultRule:
    """Faults that strike one endpoint at a seeded `rate` or on the 1-based call numbers in `on_calls`.

    `fault.after_effect` runs the request first (the console acted; the client sees only the error).
    """

    endpoint: str
    fault: Fault
    rate: float = 0.0
    on_calls: frozenset[int] = frozenset()
    seen: int = 0
    struck: int = 0


@dataclass
class Reply:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def error_reply(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    inner = {"date": now_iso()[:19], "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}
    return Reply(status, {"error": {"code": code, "message": message, "innerError": inner}}, headers or {})


def fault_reply(fault: Fault) -> Reply:
    if fault.status == 429:
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        return error_reply(429, "TooManyRequests", "Too many requests. Please retry later.", headers)
    code = {
        500: "InternalServerError",
        502: "BadGateway",
        503: "ServiceUnavailable",
        504: "GatewayTimeout",
        403: "Forbidden",
    }.get(fault.status, fault.reason or "Error")
    return error_reply(fault.status, code, fault.reason or "Injected failure")


def endpoint_name(method: str, parts: list[str]) -> str:
    """Stable endpoint name for counting and faults, e.g. "POST managedDevices/wipe"."""
    if parts == ["$batch"]:
        return "POST $batch"
    collection = parts[1] if parts and parts[0] in ("deviceManagement", "deviceAppManagement") else ""
    rest = parts[2:] if collection else parts[1:]
    base = collection or (parts[0].split("(", 1)[0] if parts else "")  # devices(deviceId='…') → devices
    if not rest:
        return f"{method} {base}"
    if len(rest) == 1:
        return f"{method} {base[:-3] + 'y' if base.endswith('ies') else base.rstrip('s')}"
    if rest[-1] == "$count":
        return f"{method} {base}/{rest[1]}/$count"
    return f"{method} {base}/{rest[1]}"


def _filter_eq(raw: str | None, supported: tuple[str, ...]) -> tuple[str, str] | None:
    """(field, value) for a supported `field eq 'value'` filter; None means "ignored" (the Graph way)."""
    if not raw:
        return None
    match = _EQ.match(raw)
    if not match or match.group(1) not in supported:
        return None
    return match.group(1), match.group(2).replace("''", "'")


class GraphApi:
    """Routing and semantics, independent of sockets (so $batch inner requests share every rule)."""

    def __init__(self, state: GraphState):
        self.state = state

    def handle(
        self,
        method: str,
        version: str,
        parts: list[str],
        query: dict[str, str],
        body: Any,
        base_url: str,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request; `headers` are the request headers with lower-case names."""
        try:
            if parts[:1] == ["groups"] and parts[-1:] == ["$count"]:
                return self._member_count(parts, headers or {})
            return self._route(method, version, parts, query, body, base_url)
        except GraphProblem as problem:
            return error_reply(problem.status, problem.code, problem.message)

    def _route(
        self, method: str, version: str, parts: list[str], query: dict[str, str], body: Any, base_url: str
    ) -> Reply:
        state = self.state
        head = parts[:2]
        if head == ["deviceManagement", "managedDevices"]:
            if len(parts) == 2 and method == "GET":
                return self._list_devices(version, query, base_url)
            if len(parts) == 3 and method == "GET":
                record = strip_beta(state.device(parts[2]), BETA_ONLY_DEVICE_FIELDS, version)
                return Reply(200, _select(record, query.get("$select")))
            if len(parts) == 4 and method == "POST":
                state.act(parts[2], parts[3], body if isinstance(body, dict) else {}, version)
                return Reply(204)
        if head == ["deviceManagement", "deviceConfigurations"]:
            return self._configs(method, version, parts[2:], query, body)
        if head == ["deviceAppManagement", "mobileApps"]:
            return self._apps(method, parts[2:], query, body)
        if head == ["deviceManagement", "configurationPolicies"] and version == "beta":
            try:
                return self._policies(method, parts[2:], query, body)
            except CatalogProblem as problem:
                raise GraphProblem(problem.status, problem.code, problem.message) from None
        if parts and (parts[0].startswith("devices(") or (parts[0] == "devices" and len(parts) == 2)):
            if method == "GET":
                return Reply(200, entra_get(state, parts, query))
            if method == "PATCH":
                entra_patch(state, parts, body)
                return Reply(204)
        if parts[:1] == ["groups"] and method == "GET":
            if len(parts) == 1:
                groups = list(state.groups.values())
                wanted = _filter_eq(query.get("$filter"), ("displayName", "id"))
                if wanted:
                    groups = [g for g in groups if g[wanted[0]] == wanted[1]]
                return Reply(200, {"value": groups})
            if len(parts) == 2:
                group = state.groups.get(parts[1])
                if group is None:
                    raise GraphProblem(404, "Request_ResourceNotFound", f"Resource '{parts[1]}' does not exist")
                return Reply(200, group)
        if parts[:1] == ["groups"] and method == "GET" and len(parts) in (3, 4) and parts[2] == "transitiveMembers":
            cast = parts[3] if len(parts) == 4 else None
            return Reply(200, transitive_members(state, parts[1], cast, query, version, base_url))
        segment = parts[0] if parts else ""
        raise GraphProblem(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    def _member_count(self, parts: list[str], headers: dict[str, str]) -> Reply:
        """`GET groups/{id}/members[/microsoft.graph.{device|user|group}]/$count`: a text/plain number.

        `$count` on directory objects is an advanced query: without `ConsistencyLevel: eventual` the service
        answers 400 Request_UnsupportedQuery (https://learn.microsoft.com/graph/aad-advanced-queries).
        """
        if len(parts) not in (4, 5) or parts[2] != "members":
            raise GraphProblem(400, "BadRequest", "Resource not found for the segment '$count'.")
        if headers.get("consistencylevel", "").lower() != "eventual":
            raise GraphProblem(
                400,
                "Request_UnsupportedQuery",
                "Count is not currently supported: add the header ConsistencyLevel: eventual",
            )
        group_id = parts[1]
        if group_id not in self.state.groups:
            raise GraphProblem(404, "Request_ResourceNotFound", f"Resource '{group_id}' does not exist")
        cast = parts[3] if len(parts) == 5 else None
        if cast not in (None, "microsoft.graph.device", "microsoft.graph.group", "microsoft.graph.user"):
            raise GraphProblem(400, "BadRequest", f"Resource not found for the segment '{cast}'.")
        members = self.state.group_members.get(group_id, set())
        devices = sum(1 for m in members if m in self.state.devices)
        groups = sum(1 for m in members if m in self.state.groups)
        users = len(self.state.group_users.get(group_id, set()))
        count = {
            None: devices + groups + users,
            "microsoft.graph.device": devices,
            "microsoft.graph.group": groups,
            "microsoft.graph.user": users,
        }[cast]
        return Reply(200, str(count), {"Content-Type": "text/plain"})

    def _list_devices(self, version: str, query: dict[str, str], base_url: str) -> Reply:
        try:
            top = min(int(query.get("$top") or DEFAULT_DEVICE_PAGE), MAX_TOP)
            offset = int(query.get("$skiptoken") or 0)
        except ValueError:
            raise GraphProblem(400, "BadRequest", "Invalid $top or $skiptoken value") from None
        if top < 1:
            raise GraphProblem(400, "BadRequest", "$top must be positive")
        records = list(self.state.devices.values())
        wanted = _filter_eq(query.get("$filter"), DEVICE_FILTER_FIELDS)
        if wanted:
            records = [r for r in records if r[wanted[0]] == wanted[1]]
        page = records[offset : offset + top]
        select = query.get("$select")
        value = [_select(strip_beta(r, BETA_ONLY_DEVICE_FIELDS, version), select) for r in page]
        payload: dict[str, Any] = {
            "@odata.context": f"{base_url}/{version}/$metadata#deviceManagement/managedDevices",
            "value": value,
        }
        if offset + top < len(records):
            params = {k: v for k, v in query.items() if k in ("$select", "$filter")}
            params.update({"$top": str(top), "$skiptoken": str(offset + top)})
            payload["@odata.nextLink"] = f"{base_url}/{version}/deviceManagement/managedDevices?" + urlencode(params)
        return Reply(200, payload)

    def _configs(self, method: str, version: str, rest: list[str], query: dict[str, str], body: Any) -> Reply:
        state = self.state
        if not rest:
            if method == "GET":
                records = list(state.configs.values())
                wanted = _filter_eq(query.get("$filter"), ("displayName", "id"))
                if wanted:
                    records = [r for r in records if r[wanted[0]] == wanted[1]]
                expand = "assignments" in (query.get("$expand") or "")
                value = []
                for record in records:
                    shown = strip_beta(record, BETA_ONLY_CONFIG_FIELDS, version)
                    if expand:
                        shown = {**shown, "assignments": state.config_assignments.get(record["id"], [])}
                    value.append(shown)
                return Reply(200, {"value": value})
            if method == "POST":
                created = state.create_config(_object(body))
                return Reply(201, strip_beta(created, BETA_ONLY_CONFIG_FIELDS, version))
        elif len(rest) == 1:
            if method == "GET":
                return Reply(200, strip_beta(state.config(rest[0]), BETA_ONLY_CONFIG_FIELDS, version))
            if method == "PATCH":
                state.patch_config(rest[0], _object(body))
                return Reply(204)
            if method == "DELETE":
                state.delete_config(rest[0])
                return Reply(204)
        elif len(rest) == 2 and rest[1] == "assign" and method == "POST":
            stored = state.assign_config(rest[0], list(_object(body).get("assignments") or []))
            return Reply(200, {"value": stored})
        elif len(rest) == 2 and rest[1] == "assignments" and method == "GET":
            state.config(rest[0])
            return Reply(200, {"value": state.config_assignments.get(rest[0], [])})
        raise GraphProblem(405, "MethodNotAllowed", f"{method} is not allowed here")

    def _policies(self, method: str, rest: list[str], query: dict[str, str], body: Any) -> Reply:
        catalog = self.state.catalog
        expand = query.get("$expand") or ""
        if not rest:
            if method == "GET":
                records = [catalog.expanded(r, expand) for r in catalog.policies.values()]
                return Reply(200, {"value": [_select(r, query.get("$select")) for r in records]})
            if method == "POST":
                return Reply(201, catalog.create(_object(body), now_iso()))
        elif len(rest) == 1:
            if method == "GET":
                return Reply(200, catalog.expanded(catalog.get(rest[0]), expand))
            if method == "PUT":
                catalog.replace(rest[0], _object(body), now_iso())
                return Reply(204)
            if method == "PATCH":
                catalog.patch(rest[0], _object(body), now_iso())
                return Reply(204)
            if method == "DELETE":
                catalog.delete(rest[0])
                return Reply(204)
        elif len(rest) == 2 and method == "GET" and rest[1] in ("settings", "assignments"):
            catalog.get(rest[0])
            table = catalog.settings if rest[1] == "settings" else catalog.assignments
            return Reply(200, {"value": table.get(rest[0], [])})
        elif len(rest) == 2 and rest[1] == "assign" and method == "POST":
            stored = self.state.assign_policy(rest[0], list(_object(body).get("assignments") or []))
            return Reply(200, {"value": stored})
        raise GraphProblem(405, "MethodNotAllowed", f"{method} is not allowed here")

    def _apps(self, method: str, rest: list[str], query: dict[str, str], body: Any) -> Reply:
        state = self.state
        if not rest and method == "GET":
            apps = list(state.apps.values())
            wanted = _filter_eq(query.get("$filter"), ("displayName", "id"))
            if wanted:
                apps = [a for a in apps if a[wanted[0]] == wanted[1]]
            if "assignments" in (query.get("$expand") or ""):
                apps = [{**a, "assignments": state.app_assignments.get(a["id"], [])} for a in apps]
            return Reply(200, {"value": apps})
        if len(rest) == 1 and method == "GET":
            return Reply(200, state.app(rest[0]))
        if len(rest) == 2 and rest[1] == "assign" and method == "POST":
            state.assign_app(rest[0], list(_object(body).get("mobileAppAssignments") or []))
            return Reply(204)
        if len(rest) == 2 and rest[1] == "assignments" and method == "GET":
            state.app(rest[0])
            return Reply(200, {"value": state.app_assignments[rest[0]]})
        raise GraphProblem(405, "MethodNotAllowed", f"{method} is not allowed here")


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise GraphProblem(400, "BadRequest", "A JSON object body is required")
    return body


def _select(record: dict[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return record
    names = {s.strip() for s in select.split(",") if s.strip()} | {"id"}
    return {k: v for k, v in record.items() if k in names}


def split_url(raw_path: str) -> tuple[str, list[str], dict[str, str]]:
    """("v1.0", ["deviceManagement", "managedDevices"], {"$top": "5"}) from a request path."""
    parts_url = urlsplit(raw_path)
    segments = [s for s in parts_url.path.split("/") if s]
    version = segments[0] if segments else ""
    query = {k: v[-1] for k, v in parse_qs(parts_url.query, keep_blank_values=True).items()}
    return version, segments[1:], query


class GraphHandler(JsonHandler):
    server: GraphEmulator

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        raw = self.read_body()
        version, parts, query = split_url(self.path)
        base_url = f"http://{self.headers.get('Host') or '127.0.0.1'}"
        if version not in ("v1.0", "beta"):
            self._send(error_reply(400, "BadRequest", f"Invalid version: {version!r}"))
            return
        endpoint = endpoint_name(method, parts)
        queued = self.begin(endpoint)
        ruled = self.server.strike(endpoint)
        if queued is None and ruled is not None and ruled.status == 0:
            time.sleep(ruled.delay or 5.0)
        fault = queued or ruled
        if fault is not None and fault.status == RESET and not fault.after_effect:
            self.close_connection = True  # no answer at all: the client sees a dropped connection
            return
        if fault is not None and fault.status != 0 and not fault.after_effect:
            self._send(fault_reply(fault))
            return
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            self._send(error_reply(400, "BadRequest", "Request body is not valid JSON"))
            return
        with self.server.state_lock:
            if parts == ["$batch"] and method == "POST":
                reply = self.server.batch(version, body, base_url)
            else:
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = self.server.api.handle(method, version, parts, query, body, base_url, headers)
        if fault is not None and fault.status == RESET:
            self.close_connection = True  # acted, then dropped the connection without answering
            return
        if fault is not None and fault.after_effect:
            reply = fault_reply(fault)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        try:
            if isinstance(reply.payload, str):  # $count: a bare number as text/plain
                self.send_raw(reply.status, reply.payload.encode(), "text/plain")
                return
            self.send_json(reply.status, reply.payload, reply.headers)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): nothing to tell
            self.close_connection = True


class GraphEmulator(EmulatorServer):
    """The emulator server. `GraphEmulator.start_local(district)` for tests; `serve()` for the sandbox."""

    def __init__(self, state: GraphState, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), GraphHandler)
        self.state = state
        self.api = GraphApi(state)
        self.rules: list[FaultRule] = []
        self._rules_lock = threading.Lock()
        self._rng = random.Random(7)

    def inject(
        self,
        endpoint: str,
        status: int,
        *,
        rate: float = 0.0,
        on_calls: Iterable[int] = (),
        after_effect: bool = True,
        retry_after: float | None = None,
        delay: float = 0.0,
        seed: int | None = None,
    ) -> FaultRule:
        """Add a fault rule (see the module docstring); by default the request runs before the fault answers."""
        if seed is not None:
            self._rng = random.Random(seed)
        fault = Fault(status, retry_after=retry_after, delay=delay, endpoint=endpoint, after_effect=after_effect)
        rule = FaultRule(endpoint, fault, rate=rate, on_calls=frozenset(on_calls))
        with self._rules_lock:
            self.rules.append(rule)
        return rule

    def strike(self, endpoint: str) -> Fault | None:
        """The rule fault for this call of `endpoint`, if one strikes (every matching rule counts the call)."""
        chosen: Fault | None = None
        with self._rules_lock:
            for rule in self.rules:
                if rule.endpoint != endpoint:
                    continue
                rule.seen += 1
                hit = rule.seen in rule.on_calls or (rule.rate > 0 and self._rng.random() < rule.rate)
                if hit and chosen is None:
                    rule.struck += 1
                    chosen = rule.fault
        return chosen

    def serve_forever(self, poll_interval: float = 0.05) -> None:
        """A short poll interval so `stop()` returns quickly in tests."""
        super().serve_forever(poll_interval)

    @classmethod
    def start_local(
        cls, district: District | None = None, *, state: GraphState | None = None, latency: float = 0.0
    ) -> GraphEmulator:
        emulator = cls(state or GraphState.from_district(district or generate()))
        emulator.faults.latency = latency
        return emulator.start()  # type: ignore[return-value]

    def batch(self, version: str, body: Any, base_url: str) -> Reply:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return error_reply(400, "BadRequest", "Invalid batch payload format.")
        if len(requests) > MAX_BATCH:
            return error_reply(400, "BadRequest", f"Number of batch requests exceeds the limit of {MAX_BATCH}.")
        ids = [str(r.get("id", "")) for r in requests if isinstance(r, dict)]
        if len(ids) != len(requests) or len(set(ids)) != len(ids) or "" in ids:
            return error_reply(400, "BadRequest", "Batch request ids must be present and unique.")
        for request in requests:
            url = str(request.get("url") or "")
            if not url or re.match(r"^[a-z]+://", url, re.I):
                return error_reply(400, "BadRequest", "Invalid batch payload format.")
            method = str(request.get("method") or "").upper()
            headers = {k.lower(): v for k, v in (request.get("headers") or {}).items()}
            if method in WRITE_METHODS and ("body" not in request or "content-type" not in headers):
                return error_reply(
                    400,
                    "BadRequest",
                    f"Write request id : {request['id']} does not contain Content-Type header or body.",
                )
        statuses: dict[str, int] = {}
        responses = []
        for request in requests:
            reply = self._inner(version, request, statuses, base_url)
            statuses[str(request["id"])] = reply.status
            entry: dict[str, Any] = {
                "id": str(request["id"]),
                "status": reply.status,
                "headers": {"Content-Type": "application/json", **reply.headers},
            }
            if reply.payload is not None:
                entry["body"] = reply.payload
            responses.append(entry)
        return Reply(200, {"responses": responses})

    def _inner(self, version: str, request: dict[str, Any], statuses: dict[str, int], base_url: str) -> Reply:
        for dependency in request.get("dependsOn") or []:
            if not 200 <= statuses.get(str(dependency), 424) < 300:
                return error_reply(424, "FailedDependency", f"Request {dependency} failed")
        method = str(request.get("method") or "GET").upper()
        inner_version, parts, query = split_url("/" + version + "/" + str(request["url"]).lstrip("/"))
        if parts and parts[0] in ("v1.0", "beta"):
            return error_reply(400, "BadRequest", f"Resource not found for the segment '{parts[0]}'.")
        endpoint = endpoint_name(method, parts)
        self.calls[endpoint] += 1
        queued = self.faults.next_fault(endpoint)
        ruled = self.strike(endpoint)
        fault = queued or ruled
        if fault is not None and fault.status == RESET:
            fault = Fault(500, after_effect=fault.after_effect)  # an inner item cannot drop the connection
        if fault is not None and fault.status == 0:
            time.sleep(fault.delay)
        elif fault is not None and not fault.after_effect:
            return fault_reply(fault)
        reply = self.api.handle(method, inner_version, parts, query, request.get("body"), base_url)
        return fault_reply(fault) if fault is not None and fault.after_effect else reply


def serve(
    host: str = "127.0.0.1", port: int = 8803, devices: int = 120, seed: int = 2026, latency: float = 0.0
) -> None:
    """Run the emulator in the foreground (the lead's `orchestrator sandbox` command) until interrupted."""
    emulator = GraphEmulator(GraphState.from_district(generate(devices=devices, seed=seed)), host, port)
    emulator.faults.latency = latency
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.server_close()
