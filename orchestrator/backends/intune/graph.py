"""The Graph session under the Intune backend: one msgraph-sdk client, one retry policy, raw bulk reads, $batch.

- The SDK's own RetryHandler is switched off for the whole client (max_retries=0), so a 429 is retried by
  our `RetryPolicy` alone, honouring Retry-After (never by two layers).
- Bulk lists are read as raw JSON through the same request adapter (`send_primitive_async(..., "bytes")`):
  deserialising 1,000 devices into kiota models costs seconds of CPU.
- `$batch` inner URLs are built here, relative and without the version prefix; bodyless POSTs carry `{}`
  and a Content-Type. Inner 429s are re-sent (only those items) after Retry-After.
- A request that is not idempotent (wipe, retire, create) is sent with `idempotent=False`: a timeout, a reset
  connection or ANY 5xx (outer, or inner of a `$batch`) means "it may have run": `OutcomeUnknown`, never
  re-sent. Only a 429 (the service did not perform it) is re-sent. Per-item results of a `$batch` are kept
  whatever happens to the re-send of its throttled items.
- Every exception of httpx, kiota and azure-identity becomes the error tree at one mapping point,
  `GraphSession.map_exceptions`; authentication and authorisation failures (`ClientAuthenticationError`,
  `ServiceRequestError`, Graph 401/403) become one `AuthError` line. When the policy's attempts run out, a
  throttled call is a `QuotaError` and a 5xx or timeout a `BackendError` naming it; no TransientError leaves.
- asyncio runs on a private loop thread; callers use the synchronous `run()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode, urlparse

import httpx
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.identity.aio import CertificateCredential, ClientSecretCredential
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_core import GraphClientFactory

from orchestrator.backends.endpoints import is_loopback
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.pacing import CallCounter, RetryPolicy, parse_retry_after
from orchestrator.core.errors import AuthError, BackendError, ConfigError, OutcomeUnknown, TransientError

T = TypeVar("T")
GRAPH_ROOT = "https://graph.microsoft.com"
RETRYABLE_STATUS = (429, 503, 504)
MAX_BATCH = 20
# Graph application permissions the README lists under "Connecting a real Microsoft Intune tenant".
README_PERMISSIONS = (
    "DeviceManagementManagedDevices.ReadWrite.All, DeviceManagementManagedDevices.PrivilegedOperations.All, "
    "DeviceManagementConfiguration.ReadWrite.All, DeviceManagementApps.ReadWrite.All, Group.Read.All"
)


@dataclass
class BatchItem:
    """One inner $batch request. `url` is relative to the version root, e.g. /deviceManagement/…/wipe."""

    id: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    label: str = ""  # how results name the request (default: the URL's last segment, e.g. "remoteLock")


@dataclass
class BatchResult:
    """One inner response. `unknown`: no definite answer was seen for this item (it may have run)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    unknown: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error_text(self) -> str:
        error = self.body.get("error", {}) if isinstance(self.body, dict) else {}
        return f"HTTP {self.status} {error.get('code', '')}: {error.get('message', '')}".strip()


def odata_quote(value: str) -> str:
    """A string literal inside an OData $filter: single quotes doubled."""
    return value.replace("'", "''")


def _auth_provider(config: IntuneConfig, root: str) -> tuple[Any, Any]:
    """The kiota auth provider and the azure-identity credential behind it (None: anonymous, for emulators)."""
    secret = os.environ.get(config.client_secret_env or "") if config.client_secret_env else None
    cert_path = os.environ.get(config.certificate_path_env or "") if config.certificate_path_env else None
    has_credentials = bool(config.tenant_id and config.client_id and (secret or cert_path))
    if is_loopback(root) and not has_credentials:
        return AnonymousAuthenticationProvider(), None
    if not has_credentials:
        raise ConfigError(
            "intune: no credentials: set tenant_id and client_id in orchestrator.yaml and the "
            f"client secret in ${config.client_secret_env} (or a certificate via certificate_path_env)"
        )
    options: dict[str, Any] = {}
    if config.authority_host:  # a sovereign cloud, or a loopback token endpoint in tests (must be https)
        options["authority"] = config.authority_host
    if config.authority_ca_file:  # a private CA in front of the token endpoint (TLS-inspecting proxy, tests)
        options["connection_verify"] = config.authority_ca_file
    credential: Any
    try:
        if secret:
            credential = ClientSecretCredential(config.tenant_id, config.client_id, secret, **options)
        else:
            credential = CertificateCredential(
                config.tenant_id, config.client_id, certificate_path=cert_path, **options
            )
    except ValueError as exc:  # an http:// authority, an unreadable certificate: azure-identity says which
        raise ConfigError(f"intune: {str(exc).splitlines()[0][:200]}") from None
    # azure-identity logs each failed token request at WARNING with the service's whole answer; the failure
    # reaches the person as one AuthError line instead (GraphSession._auth_failure).
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    host = urlparse(root).hostname or "graph.microsoft.com"
    provider = AzureIdentityAuthenticationProvider(
        credential, scopes=[f"https://{host}/.default"], allowed_hosts=[host]
    )
    return provider, credential


class GraphSession:
    """A GraphServiceClient on a private event loop, with counting, retries and raw JSON helpers."""

    def __init__(
        self,
        config: IntuneConfig,
        *,
        counter: CallCounter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: RetryPolicy | None = None,
        timeout: float = 60.0,
    ):
        self.root = (config.graph_endpoint or GRAPH_ROOT).rstrip("/")
        self.config = config
        self.counter = counter or CallCounter()
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.error_map = {"XXX": ODataError}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="intune-graph", daemon=True)
        self._thread.start()
        no_sdk_retry = RetryHandlerOption(max_retries=0, should_retry=False)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        client = GraphClientFactory.create_with_default_middleware(
            client=self.http, options={RetryHandlerOption.get_key(): no_sdk_retry}
        )
        provider, self.credential = _auth_provider(config, self.root)
        self.adapter = GraphRequestAdapter(provider, client=client)
        self.adapter.base_url = f"{self.root}/v1.0"
        self.client = GraphServiceClient(request_adapter=self.adapter)

    # ---- plumbing ------------------------------------------------------------------------------

    def run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()  # type: ignore[arg-type]

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.run(self.http.aclose())
        if self.credential is not None:
            self.run(self.credential.close())  # azure-identity's own aiohttp session
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()

    async def _sleep(self, seconds: float) -> None:
        if self.sleep is time.sleep:
            await asyncio.sleep(seconds)
        else:
            self.sleep(seconds)

    def url(self, version: str, path: str, **query: str) -> str:
        text = f"{self.root}/{version}/{path.lstrip('/')}"
        return f"{text}?{urlencode(query)}" if query else text

    async def call(self, endpoint: str, send: Callable[[], Awaitable[T]], *, idempotent: bool = True) -> T:
        """Send through `send`, counting each attempt; transient failures retried by the one policy.

        Not idempotent (wipe, create): only a 429 is retried (the service did not perform it); a timeout,
        a broken connection or a 5xx raises OutcomeUnknown and nothing is re-sent. Raises only the error tree
        (QuotaError when still throttled after the last attempt, BackendError when still failing otherwise).
        """

        async def attempt() -> T:
            self.counter.add(endpoint)
            with self.map_exceptions(endpoint, idempotent=idempotent):
                return await send()

        return await self.policy.acall(attempt, sleep=self._sleep)

    @contextmanager
    def map_exceptions(self, endpoint: str, *, idempotent: bool = True) -> Iterator[None]:
        """The one place httpx, kiota (ODataError/APIError) and azure-identity exceptions become the error tree,
        like httpx's `map_exceptions`. A transport failure is a TransientError (idempotent) or OutcomeUnknown;
        a token failure an AuthError (the request did not leave); an HTTP error by status (`_mapped`). Not
        idempotent: a 5xx (or 408) may come after the service acted (a wipe that ran and then answered 503):
        only a 429 proves it was not performed (Graph JSON batching: the outer status says nothing about the
        inner requests' execution)."""
        try:
            yield
        except httpx.TransportError as exc:  # includes every httpx timeout
            if not idempotent:
                raise OutcomeUnknown(f"{endpoint}: no answer ({type(exc).__name__}); outcome unknown") from exc
            raise TransientError(f"{endpoint}: {type(exc).__name__}") from exc
        except (ClientAuthenticationError, ServiceRequestError) as exc:  # raised while the SDK gets a token
            raise self._auth_failure(exc) from None
        except Exception as exc:
            status = getattr(exc, "response_status_code", None)
            if status is None:
                raise
            mapped = self._mapped(endpoint, exc, status)
            if not idempotent and (status >= 500 or status == 408):
                raise OutcomeUnknown(f"{mapped}; the request may have been performed; not re-sent") from exc
            raise mapped from exc

    def _mapped(self, endpoint: str, exc: Exception, status: int) -> Exception:
        headers = getattr(exc, "response_headers", None) or {}
        retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
        error = getattr(exc, "error", None)
        code = getattr(error, "code", None) or ""
        message = getattr(error, "message", None) or ""
        text = f"{endpoint}: HTTP {status} {code}: {message}".rstrip(": ")
        if status in RETRYABLE_STATUS:
            return TransientError(text, retry_after=retry_after, status=status)
        if status == 401:
            return AuthError(
                f"intune: Microsoft Graph rejected the access token on {endpoint} (HTTP 401 {code}): check "
                "intune.tenant_id and intune.client_id and that the app's credential has not expired"
            )
        if status == 403:
            return AuthError(
                f"intune: Microsoft Graph denied {endpoint} (HTTP 403 {code}): grant the app the Graph application "
                f"permissions listed in the README ({README_PERMISSIONS}) with admin consent"
            )
        return BackendError(text)

    def _auth_failure(self, exc: ClientAuthenticationError | ServiceRequestError) -> AuthError:
        """One line for an azure-identity failure: the backend, the cause and what to check, never the secret."""
        config = self.config
        where = config.authority_host or "https://login.microsoftonline.com"
        secret = f"${config.client_secret_env}" if config.client_secret_env else "the client secret"
        if config.certificate_path_env and not os.environ.get(config.client_secret_env or ""):
            secret = f"the certificate named by ${config.certificate_path_env}"
        if isinstance(exc, ClientAuthenticationError):
            return AuthError(
                f"intune: the token endpoint {where} refused the app's credentials ({_aad_cause(exc)}): check "
                f"intune.tenant_id, intune.client_id and {secret}, and that admin consent was granted"
            )
        return AuthError(
            f"intune: cannot reach the token endpoint {where} ({_first_line(exc)}): check the network, "
            "proxy and intune.authority_host"
        )

    async def _raw(self, method: str, url: str, body: Any = None) -> Any:
        info = RequestInformation(Method[method])
        info.url = url
        info.headers.try_add("Accept", "application/json")
        if body is not None:
            info.set_stream_content(json.dumps(body).encode(), "application/json")
        raw = await self.adapter.send_primitive_async(info, "bytes", self.error_map)
        return json.loads(raw) if raw else None

    async def json(self, endpoint: str, method: str, url: str, body: Any = None, *, idempotent: bool = True) -> Any:
        return await self.call(endpoint, lambda: self._raw(method, url, body), idempotent=idempotent)

    async def get_all(self, endpoint: str, url: str) -> list[dict[str, Any]]:
        """Every item of a collection, following absolute @odata.nextLink URLs."""
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            page = await self.json(endpoint, "GET", next_url)
            items.extend(page.get("value") or [])
            next_url = page.get("@odata.nextLink")
        return items

    # ---- $batch --------------------------------------------------------------------------------

    async def batch(
        self,
        version: str,
        items: list[BatchItem],
        *,
        idempotent: bool = True,
        on_sent: Callable[[list[BatchItem]], None] | None = None,
        pace: Callable[[int], None] | None = None,
        chunk_size: int = MAX_BATCH,
    ) -> dict[str, BatchResult]:
        """Send ≤20 items per request; inner 429s (and, for idempotent items, inner 5xx) are re-sent, only those.

        With `idempotent=False` the outer request is never re-sent (a timeout raises OutcomeUnknown for the
        items in flight) and neither is an inner 5xx (a wipe that failed server-side may still have run); inner
        429s are still re-sent because a throttled request was not performed.
        """
        results: dict[str, BatchResult] = {}
        size = max(1, min(chunk_size, MAX_BATCH))
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            if on_sent is not None:
                on_sent(chunk)
            results.update(await self._batch_chunk(version, chunk, idempotent=idempotent, pace=pace))
        return results

    async def _batch_chunk(
        self, version: str, chunk: list[BatchItem], *, idempotent: bool, pace: Callable[[int], None] | None
    ) -> dict[str, BatchResult]:
        results: dict[str, BatchResult] = {}
        pending = list(chunk)

        async def send_round() -> None:
            """One $batch of what is pending; raises TransientError while some items must be re-sent."""
            nonlocal pending
            if pace is not None:
                pace(len(pending))
            payload = {"requests": [_inner_request(item) for item in pending]}
            try:
                reply = await self.json(
                    "POST $batch", "POST", self.url(version, "$batch"), payload, idempotent=idempotent
                )
            except BackendError as exc:
                # Only the items of THIS request take this outcome; answers already seen for the others stand.
                unknown = isinstance(exc, OutcomeUnknown)
                code = "OutcomeUnknown" if unknown else type(exc).__name__
                for item in pending:
                    results[item.id] = BatchResult(0, {"error": {"code": code, "message": str(exc)}}, unknown=unknown)
                pending = []
                return
            by_id = {str(r.get("id")): r for r in (reply or {}).get("responses") or []}
            again: list[BatchItem] = []
            waits: list[float] = []
            for item in pending:
                raw = by_id.get(item.id)
                if raw is None:  # a 200 batch that lost an item: it may have run
                    results[item.id] = BatchResult(
                        0, {"error": {"code": "MissingResponse", "message": "no response for this item"}}, unknown=True
                    )
                    continue
                headers = {str(k): str(v) for k, v in (raw.get("headers") or {}).items()}
                result = BatchResult(int(raw.get("status") or 0), raw.get("body"), headers)
                results[item.id] = result
                if result.status == 429 or (idempotent and result.status in TRANSIENT_INNER):
                    again.append(item)
                    after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
                    if after is not None:
                        waits.append(after)
            pending = again
            if again:
                wait = max(waits) if waits else None
                raise TransientError(f"POST $batch: {len(again)} item(s) to re-send", retry_after=wait, status=429)

        await self.policy.arounds(send_round, sleep=self._sleep)
        return results


TRANSIENT_INNER = (500, 502, 503, 504)
_AADSTS = re.compile(r"\bAADSTS\d+\b")
_OAUTH_ERRORS = (
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "invalid_request",
    "invalid_scope",
    "consent_required",
    "interaction_required",
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def _aad_cause(exc: BaseException) -> str:
    """The OAuth error code and AADSTS number, never the whole message (it may echo ids and URLs)."""
    text = str(exc)
    found = [code for code in _OAUTH_ERRORS if code in text] + _AADSTS.findall(text)[:1]
    return " ".join(found) or type(exc).__name__


def _inner_request(item: BatchItem) -> dict[str, Any]:
    request: dict[str, Any] = {"id": item.id, "method": item.method, "url": item.url}
    if item.method in ("POST", "PATCH", "PUT"):
        request["headers"] = {"Content-Type": "application/json"}
        request["body"] = item.body if item.body is not None else {}
    return request
