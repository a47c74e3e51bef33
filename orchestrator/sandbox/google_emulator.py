"""A local HTTP emulator of the Admin SDK Directory API (Chrome devices, org units) and the Chrome Policy API.

Both APIs are served from one port under their published paths, so the real googleapiclient (static
discovery, `client_options={"api_endpoint": url}`) talks to it unchanged:

    /admin/directory/v1/customer/{customerId}/devices/chromeos[...]   Directory: devices, commands
    /admin/directory/v1/customer/{customerId}/orgunits[/{path}]        Directory: org units
    /v1/customers/{customer}/policies:resolve                          Chrome Policy
    /v1/customers/{customer}/policies/orgunits:batchModify|batchInherit

Limits and error bodies follow the references (maxResults ≤ 300, ≤ 50 ids per device batch, pageSize ≤ 1000,
`{"error": {"code", "message", "errors": [...], "status"}}`). Faults and latency come from `FaultPlan`;
calls are counted per endpoint name (`chromeosdevices.list`, `policies.resolve`, ...).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from orchestrator.sandbox import district as district_mod
from orchestrator.sandbox.google_device_update import update_device
from orchestrator.sandbox.google_fields import parse_fields, project, select
from orchestrator.sandbox.google_state import ApiError, GoogleState, deprovision_reasons
from orchestrator.sandbox.httpbase import EmulatorServer, Fault, JsonHandler

CUSTOMERS = ("my_customer", "C01k12dst")
DIR = r"/admin/directory/v1/customer/(?P<customer>[^/]+)"
CROS = DIR + r"/devices/chromeos"
POLICY = r"/v1/customers/(?P<customer>[^/]+)/policies"

# (HTTP method, path pattern, endpoint name)
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(CROS + r"$"), "chromeosdevices.list"),
    ("POST", re.compile(CROS + r":batchChangeStatus$"), "chromeosdevices.batchChangeStatus"),
    ("POST", re.compile(CROS + r"/moveDevicesToOu$"), "chromeosdevices.moveDevicesToOu"),
    ("POST", re.compile(CROS + r"/(?P<device>[^/:]+):issueCommand$"), "chromeosdevices.issueCommand"),
    ("GET", re.compile(CROS + r"/(?P<device>[^/:]+)/commands/(?P<command>[^/]+)$"), "commands.get"),
    ("GET", re.compile(CROS + r"/(?P<device>[^/:]+)$"), "chromeosdevices.get"),
    ("PATCH", re.compile(CROS + r"/(?P<device>[^/:]+)$"), "chromeosdevices.patch"),
    ("PUT", re.compile(CROS + r"/(?P<device>[^/:]+)$"), "chromeosdevices.update"),
    ("GET", re.compile(DIR + r"/orgunits$"), "orgunits.list"),
    ("GET", re.compile(DIR + r"/orgunits/(?P<path>.+)$"), "orgunits.get"),
    ("POST", re.compile(POLICY + r":resolve$"), "policies.resolve"),
    ("GET", re.compile(r"/v1/customers/(?P<customer>[^/]+)/policySchemas/(?P<schema>[^/]+)$"), "policySchemas.get"),
    ("GET", re.compile(r"/v1/customers/(?P<customer>[^/]+)/policySchemas$"), "policySchemas.list"),
    ("POST", re.compile(POLICY + r"/orgunits:batchModify$"), "policies.orgunits.batchModify"),
    ("POST", re.compile(POLICY + r"/orgunits:batchInherit$"), "policies.orgunits.batchInherit"),
]
MAX_LIST = 300
MAX_DEVICE_BATCH = 50
MAX_RESOLVE_PAGE = 1000
FAULT_REASONS = {
    429: "rateLimitExceeded",
    403: "userRateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
}


class GoogleEmulator(EmulatorServer):
    """The emulated tenant behind a real HTTP server; `state` is a GoogleState (tests may inspect it)."""

    def __init__(
        self,
        district: district_mod.District,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 2026,
        latency: float = 0.0,
    ):
        super().__init__((host, port), GoogleHandler)
        self.state = GoogleState.from_district(district, seed=seed)
        self.faults.latency = latency
        self.companions: list[GoogleEmulator] = []

    def also_listen(self, host: str = "127.0.0.1", port: int = 0) -> GoogleEmulator:
        """Serve the same tenant (state, lock, faults, call counts) on a second port, e.g. policy_endpoint."""
        other = GoogleEmulator.__new__(GoogleEmulator)
        EmulatorServer.__init__(other, (host, port), GoogleHandler)
        other.state, other.state_lock, other.faults, other.calls = self.state, self.state_lock, self.faults, self.calls
        other.companions = []
        self.companions.append(other.start())
        return other

    def stop(self) -> None:
        for companion in self.companions:
            companion.stop()
        super().stop()

    def start(self) -> GoogleEmulator:
        """Serve on a daemon thread; a short poll interval makes stop() quick."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="GoogleEmulator", daemon=True
        )
        self._thread.start()
        return self


class GoogleHandler(JsonHandler):
    server: GoogleEmulator

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        body = self.read_body()
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        routed = _route(method, url.path)
        if routed is None:
            self._error(ApiError(404, f"Not Found: {method} {url.path}", "notFound"))
            return
        endpoint, match = routed
        fault = self.begin(endpoint)
        try:
            if match.group("customer") not in CUSTOMERS and not match.group("customer").startswith("customers/"):
                raise ApiError(400, "Bad Request: invalid customer", "badRequest")
            payload = json.loads(body) if body else {}
            if fault is not None and not fault.after_effect:
                self._fault(fault, endpoint)
                return
            with self.server.state_lock:
                status, reply = self._handle(endpoint, match.groupdict(), query, payload)
            if fault is not None:
                self._fault(fault, endpoint)
                return
            if "fields" in query and isinstance(reply, dict):
                try:
                    reply = select(reply, parse_fields(query["fields"]))
                except ValueError as exc:
                    raise ApiError(  # noqa: B904 - the client sees the API error, not ours
                        400, f"Invalid field selection {query['fields']}: {exc}", "invalidParameter"
                    )
            self.send_json(status, reply)
        except ApiError as exc:
            self._error(exc)
        except (ValueError, KeyError, TypeError) as exc:
            self._error(ApiError(400, f"Invalid request: {type(exc).__name__}", "badRequest"))

    def _fault(self, fault: Fault, endpoint: str) -> None:
        if fault.status == 0:  # a timeout: the client has given up; drop the connection without a reply
            self.close_connection = True
            return
        reason = fault.reason or FAULT_REASONS.get(fault.status, "backendError")
        message = {
            "rateLimitExceeded": "Rate Limit Exceeded",
            "userRateLimitExceeded": "User Rate Limit Exceeded",
            "quotaExceeded": "Quota exceeded for quota metric 'Queries'",
        }.get(reason, "Backend Error")
        # Error bodies as each API answers (unverified wording, api-conformance.md): the Directory API the legacy
        # error.errors[].reason; the Chrome Policy API (AIP-193) error.status + details[] google.rpc.ErrorInfo.
        style = fault.style or ("details" if endpoint.startswith("policies.") else "legacy")
        body = ApiError(fault.status, message, reason).body(style=style)
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
        self.send_json(fault.status, body, headers)

    def _error(self, exc: ApiError) -> None:
        self.send_json(exc.code, exc.body())

    # ---- endpoints ----------------------------------------------------------------------------------
    def _handle(self, endpoint: str, params: dict[str, str], query: dict[str, str], payload: Any) -> tuple[int, Any]:
        state = self.server.state
        if endpoint == "chromeosdevices.list":
            return 200, self._list_devices(state, query)
        if endpoint == "chromeosdevices.get":
            device = state.device(unquote(params["device"]))
            return 200, project(device, query.get("projection", "FULL"))
        if endpoint in ("chromeosdevices.patch", "chromeosdevices.update"):
            device = update_device(state, unquote(params["device"]), payload, replace=endpoint.endswith("update"))
            return 200, project(device, query.get("projection", "FULL"))
        if endpoint == "chromeosdevices.batchChangeStatus":
            ids = payload.get("deviceIds") or []
            if not ids or len(ids) > MAX_DEVICE_BATCH:
                raise ApiError(400, f"deviceIds must hold 1 to {MAX_DEVICE_BATCH} ids.", "invalid")
            action = payload.get("changeChromeOsDeviceStatusAction", "")
            reason = payload.get("deprovisionReason", "")
            known, deprecated = deprovision_reasons()
            if reason and reason not in known:
                raise ApiError(
                    400,
                    f"Invalid value at 'deprovision_reason' "
                    f'(type.googleapis.com/google.admin.directory.v1.DeprovisionReason), "{reason}"',
                    "badRequest",
                )
            if reason in deprecated:  # assumed: the console no longer offers them (unverified, api-conformance.md)
                raise ApiError(400, f"Deprecated deprovisionReason: {reason}", "invalid")
            results = [state.change_status(i, action, payload.get("deprovisionReason", "")) for i in ids]
            return 200, {"changeChromeOsDeviceStatusResults": results}
        if endpoint == "chromeosdevices.moveDevicesToOu":
            ids = payload.get("deviceIds") or []
            if not ids or len(ids) > MAX_DEVICE_BATCH:
                raise ApiError(400, f"deviceIds must hold 1 to {MAX_DEVICE_BATCH} ids.", "invalid")
            if not query.get("orgUnitPath"):
                raise ApiError(400, "Missing required field: orgUnitPath", "required")
            state.move_devices(ids, query["orgUnitPath"])
            return 200, {}
        if endpoint == "chromeosdevices.issueCommand":
            kind = payload.get("commandType", "")
            if kind not in (
                "REBOOT",
                "WIPE_USERS",
                "REMOTE_POWERWASH",
                "SET_VOLUME",
                "CAPTURE_LOGS",
                "TAKE_A_SCREENSHOT",
            ):
                raise ApiError(400, f"Invalid commandType: {kind}", "invalid")
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            command = state.issue_command(unquote(params["device"]), kind, payload.get("payload", ""), now)
            return 200, {"commandId": command.command_id}
        if endpoint == "commands.get":
            return 200, state.get_command(unquote(params["device"]), params["command"])
        if endpoint == "orgunits.list":
            return 200, self._list_ous(state, query)
        if endpoint == "orgunits.get":
            ou = state.ou_by_ref(unquote(params["path"]))
            return 200, ou.directory_json(state.ous)
        if endpoint == "policySchemas.get":
            return 200, state.policy_schema(params["customer"], unquote(params["schema"]))
        if endpoint == "policySchemas.list":
            schemas = [state.policy_schema(params["customer"], name) for name in sorted(state.schemas)]
            return 200, {"policySchemas": schemas}
        if endpoint == "policies.resolve":
            return 200, self._resolve(state, payload)
        if endpoint == "policies.orgunits.batchModify":
            state.batch_modify(payload.get("requests") or [])
            return 200, {}
        if endpoint == "policies.orgunits.batchInherit":
            state.batch_inherit(payload.get("requests") or [])
            return 200, {}
        raise ApiError(404, "Not Found", "notFound")

    def _list_devices(self, state: GoogleState, query: dict[str, str]) -> dict[str, Any]:
        size = int(query.get("maxResults") or 100)
        if size < 1 or size > MAX_LIST:
            raise ApiError(400, f"Invalid value '{size}'. Values must be within the range: [1, {MAX_LIST}]", "invalid")
        children = query.get("includeChildOrgunits", "false").lower() == "true"
        scope = [query.get("orgUnitPath", ""), str(children), query.get("query", "")]
        devices = state.list_devices(scope[0] or None, children, scope[2])
        offset = _read_token(query.get("pageToken"), scope)
        page = devices[offset : offset + size]
        out: dict[str, Any] = {
            "kind": "admin#directory#chromeosdevices",
            "etag": '"list"',
            "chromeosdevices": [project(d, query.get("projection", "FULL")) for d in page],
        }
        if offset + size < len(devices):
            out["nextPageToken"] = _make_token(offset + size, scope)
        if not page:
            del out["chromeosdevices"]
        return out

    def _list_ous(self, state: GoogleState, query: dict[str, str]) -> dict[str, Any]:
        kind = query.get("type", "children").lower()
        base = state.ou_by_ref(query.get("orgUnitPath") or "/")
        if kind == "children":
            ous = [ou for ou in state.ous.values() if ou.parent == base.path]
        elif kind == "all":
            ous = state.descendants(base.path, include_self=False)
        elif kind == "allincludingparent":
            ous = state.descendants(base.path, include_self=True)
        else:
            raise ApiError(400, f"Invalid value for type: {query.get('type')}", "invalid")
        return {
            "kind": "admin#directory#orgUnits",
            "etag": '"ous"',
            "organizationUnits": [ou.directory_json(state.ous) for ou in sorted(ous, key=lambda o: o.path)],
        }

    def _resolve(self, state: GoogleState, payload: dict[str, Any]) -> dict[str, Any]:
        size = int(payload.get("pageSize") or MAX_RESOLVE_PAGE)
        if size < 1 or size > MAX_RESOLVE_PAGE:
            raise ApiError(400, f"pageSize must be between 1 and {MAX_RESOLVE_PAGE}.", "invalid")
        pattern = payload.get("policySchemaFilter", "")
        if not pattern or "*" in pattern[:-1] or (pattern.endswith("*") and not pattern.endswith(".*")):
            raise ApiError(
                400,
                "policySchemaFilter may only use a wildcard as its leaf (e.g. chrome.users.*).",
                "invalid",
            )
        target = payload.get("policyTargetKey") or {}
        resource = target.get("targetResource", "")
        if not resource.startswith("orgunits/"):
            raise ApiError(400, "policyTargetKey.targetResource must be orgunits/{id}.", "invalid")
        ou = state.ou_by_ref(resource)
        app_id = (target.get("additionalTargetKeys") or {}).get("app_id")
        resolved = state.resolve(ou, pattern, app_id)
        scope = [resource, pattern, app_id or ""]
        offset = _read_token(payload.get("pageToken"), scope)
        out: dict[str, Any] = {"resolvedPolicies": resolved[offset : offset + size]}
        if offset + size < len(resolved):
            out["nextPageToken"] = _make_token(offset + size, scope)
        return out


def _route(method: str, path: str) -> tuple[str, re.Match[str]] | None:
    for verb, pattern, endpoint in ROUTES:
        match = pattern.match(path)
        if match and verb == method:
            return endpoint, match
    return None


def _make_token(offset: int, scope: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps([offset, scope]).encode()).decode()


def _read_token(token: str | None, scope: list[str]) -> int:
    if not token:
        return 0
    try:
        offset, token_scope = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as exc:
        raise ApiError(400, "Invalid page token.", "invalid") from exc
    if token_scope != scope:
        raise ApiError(400, "The page token does not match the request parameters.", "invalid")
    return int(offset)


def start_emulator(
    devices: int = 120,
    *,
    seed: int = 2026,
    ous: int = 0,
    latency: float = 0.0,
    host: str = "127.0.0.1",
    port: int = 0,
) -> GoogleEmulator:
    """Generate a district and start its emulator on a background thread (port 0 = any free port)."""
    district = district_mod.generate(devices=devices, seed=seed, ous=ous)
    return GoogleEmulator(district, host, port, seed=seed, latency=latency).start()  # type: ignore[return-value]


def serve(
    host: str = "127.0.0.1",
    port: int = 8801,
    devices: int = 120,
    seed: int = 2026,
    latency: float = 0.0,
    *,
    ous: int = 0,
    policy_port: int | None = None,
    block: bool = True,
) -> GoogleEmulator:
    """Run the emulator for `orchestrator sandbox`: blocks until interrupted unless `block=False`.

    Both APIs answer on `port`; with `policy_port` (e.g. 8802 for policy_endpoint) the same tenant also
    answers there. Returns the started server (`server.url`, `server.companions[0].url`).
    """
    server = start_emulator(devices, seed=seed, ous=ous, latency=latency, host=host, port=port)
    if policy_port is not None and (policy_port == 0 or policy_port != port):
        server.also_listen(host, policy_port)
    if block:
        try:
            server._thread.join()  # type: ignore[union-attr]
        except KeyboardInterrupt:
            server.stop()
    return server
