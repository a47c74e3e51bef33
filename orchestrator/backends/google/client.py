"""Building and calling the Google API clients: credentials, endpoints, pacing, the one retry policy.

Every HTTP call goes through `GoogleApi.call`: it takes a token from the right bucket, counts the call,
executes with `num_retries=0` (googleapiclient's own retries are off) and maps exceptions at this one
boundary (`map_exceptions`): 429, 403 rate/quota reasons and 5xx become `TransientError` (retried by
`RetryPolicy`, honouring Retry-After; when attempts run out a throttled call is a `QuotaError`, a 5xx or an
unreachable API a `BackendError` naming the status); anything else becomes `GoogleApiError`. Non-idempotent
calls (device commands) are retried only when throttled (429/403 rate: not processed); a timeout, a reset
connection, a 408 or any 5xx raises `OutcomeUnknown`. The same boundary maps authentication failures to one
`AuthError` line: google-auth's `RefreshError` (e.g. `invalid_grant`: bad key, delegation not authorised) and
`TransportError` (token endpoint unreachable), and HTTP 401 / non-rate 403 answers. No TransientError leaves
this module.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httplib2
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.oauth2 import service_account
from google_auth_httplib2 import AuthorizedHttp
from google_auth_httplib2 import Request as TokenRequest
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from orchestrator.backends.endpoints import is_loopback
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.backends.pacing import CallCounter, Limit, Pacer, RetryPolicy, parse_retry_after
from orchestrator.core.errors import AuthError, BackendError, ConfigError, OutcomeUnknown, TransientError

SCOPES = (
    "https://www.googleapis.com/auth/admin.directory.device.chromeos",
    "https://www.googleapis.com/auth/admin.directory.orgunit.readonly",
    "https://www.googleapis.com/auth/chrome.management.policy",
)
# Throttling reasons. Legacy bodies carry them in error.errors[].reason (Directory API limits page); newer bodies
# (AIP-193) in error.details[] as a google.rpc.ErrorInfo whose reason for rate quotas is RATE_LIMIT_EXCEEDED
# (googleapis/googleapis google/api/error_reason.proto). RESOURCE_QUOTA_EXCEEDED is a resource (not rate) quota:
# waiting does not fix it, so it is not retried.
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "RATE_LIMIT_EXCEEDED"})
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
# Chrome Policy reads (customers.policies incl. policies:resolve, customers.policySchemas): "Up to 5 queries per
# second per project per user" (developers.google.com/chrome/policy/guides/api-quotas; a newer copy of the page
# says 10). A service account impersonating one admin is one user, so the published per-user floor is the default
# (`google.policy_reads_per_minute` raises it). An emulator on this machine has no such quota: reads to a
# loopback endpoint keep the old project-level pace so the sandbox stays quick.
POLICY_READS_PER_USER_PER_MINUTE = 300
LOCAL_POLICY_READS_PER_MINUTE = 1500
POLICY_WRITES_PER_SECOND = 15


class GoogleApiError(BackendError):
    """A Google API call failed for a reason retrying cannot fix (bad request, not found, permission)."""

    def __init__(self, endpoint: str, status: int, reason: str, message: str):
        super().__init__(f"{endpoint}: HTTP {status} {reason}: {message}")
        self.endpoint = endpoint
        self.status = status
        self.reason = reason


def make_credentials(config: GoogleConfig, env: Mapping[str, str] = os.environ) -> Credentials:
    """Service-account credentials with domain-wide delegation, or anonymous ones for a loopback emulator."""
    path = env.get(config.credentials_file_env, "")
    endpoints = [config.directory_endpoint, config.policy_endpoint]
    if not path:
        if all(is_loopback(e) for e in endpoints):
            return AnonymousCredentials()
        raise ConfigError(
            f"google: no credentials: set the environment variable {config.credentials_file_env} to a "
            "service-account key file (both endpoints must be loopback emulators to run without one)"
        )
    if not config.admin_subject:
        raise ConfigError("google.admin_subject: required with a service account (domain-wide delegation)")
    try:
        return service_account.Credentials.from_service_account_file(
            path, scopes=list(SCOPES), subject=config.admin_subject
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"google: cannot read the service-account file named by {config.credentials_file_env}: {type(exc).__name__}"
        ) from None


def _options(endpoint: str | None) -> dict[str, str] | None:
    return {"api_endpoint": endpoint} if endpoint else None


class GoogleApi:
    """The Directory and Chrome Policy clients plus pacing, counting and retries. Thread-safe calls."""

    def __init__(
        self,
        config: GoogleConfig,
        *,
        counter: CallCounter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        credentials: Credentials | None = None,
        policy_reads_per_minute: int | None = None,
    ):
        self.config = config
        self.counter = counter or CallCounter()
        self.sleep = sleep
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.credentials = credentials or make_credentials(config)
        self.directory = build(
            "admin",
            "directory_v1",
            static_discovery=True,
            credentials=self.credentials,
            client_options=_options(config.directory_endpoint),
            cache_discovery=False,
        )
        self.policy = build(
            "chromepolicy",
            "v1",
            static_discovery=True,
            credentials=self.credentials,
            client_options=_options(config.policy_endpoint),
            cache_discovery=False,
        )
        # Every pacer holds its published limits over every window (backends/pacing.py). Directory API: 2,400
        # queries per minute per user per project (developers.google.com/admin-sdk/directory/v1/limits).
        self.directory_bucket = Pacer(Limit(config.requests_per_minute, 60.0), sleep=sleep)
        local = is_loopback(config.policy_endpoint)
        reads = (
            policy_reads_per_minute
            or config.policy_reads_per_minute
            or (LOCAL_POLICY_READS_PER_MINUTE if local else POLICY_READS_PER_USER_PER_MINUTE)
        )
        # Chrome Policy reads are a per-second quota (5 per user): the minute's share, second by second.
        self.policy_read_bucket = Pacer(Limit(reads, 60.0), Limit(max(1, reads // 60), 1.0), sleep=sleep)
        # Chrome Policy writes (policies.orgunits|groups): 30 queries per minute per customer and 15 QPS per
        # project (developers.google.com/chrome/policy/guides/api-quotas).
        writes = config.policy_writes_per_minute
        self.policy_write_bucket = Pacer(
            Limit(writes, 60.0), Limit(min(writes, POLICY_WRITES_PER_SECOND), 1.0), sleep=sleep
        )
        self._local = threading.local()
        self._token_lock = threading.Lock()
        self.round_trips: dict[str, float] = {}  # endpoint → its replies' moving average, seconds (listing.py)

    @property
    def customer(self) -> str:
        return self.config.customer_id

    def _ensure_token(self) -> None:
        """Obtain or refresh the access token before a call leaves, so a token failure is an AuthError and is
        never mistaken for a request whose answer was lost (a wipe would be held `unknown` for nothing)."""
        credentials = self.credentials
        if isinstance(credentials, AnonymousCredentials) or credentials.valid:
            return
        with self._token_lock:
            if credentials.valid:
                return
            with map_exceptions(self.config, "token", token=True):
                credentials.refresh(TokenRequest(httplib2.Http(timeout=self.timeout)))

    def _authorized(self) -> AuthorizedHttp:
        """An authorised connection; anonymous credentials (emulator) cannot refresh, so a 401 stays a 401."""
        refresh = () if isinstance(self.credentials, AnonymousCredentials) else (401,)
        return AuthorizedHttp(self.credentials, http=httplib2.Http(timeout=self.timeout), refresh_status_codes=refresh)

    def _http(self) -> AuthorizedHttp:
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._authorized()
            self._local.http = http
        return http

    def call(self, endpoint: str, request: Any, bucket: Pacer, *, idempotent: bool = True) -> Any:
        """Execute `request` paced, counted and retried by the one policy.

        Raises only the error tree: GoogleApiError/AuthError, OutcomeUnknown (not idempotent, answer lost),
        QuotaError (still throttled when attempts ran out) or BackendError (still 5xx/unreachable).
        """

        def once() -> Any:
            self._ensure_token()
            bucket.acquire()
            self.counter.add(endpoint)
            # A non-idempotent call gets a fresh connection, so httplib2 never replays it on a stale socket.
            http = self._http() if idempotent else self._authorized()
            started = time.monotonic()
            with map_exceptions(self.config, endpoint, idempotent=idempotent):
                reply = request.execute(http=http, num_retries=0)
            took = time.monotonic() - started
            self.round_trips[endpoint] = 0.8 * self.round_trips.get(endpoint, took) + 0.2 * took
            return reply

        return self.retry.call(once, sleep=self.sleep)

    def read(self, endpoint: str, request: Any) -> Any:
        return self.call(endpoint, request, self.directory_bucket)


@contextmanager
def map_exceptions(
    config: GoogleConfig, endpoint: str, *, idempotent: bool = True, token: bool = False
) -> Iterator[None]:
    """The one place googleapiclient, google-auth and httplib2 exceptions become the error tree (like httpx's
    `map_exceptions`): HttpError by `classify`; a google-auth failure is an AuthError (the token was never
    obtained, so nothing was sent); a transport failure is an AuthError while fetching a token (`token=True`),
    else a TransientError (idempotent: retried) or OutcomeUnknown (the request may have arrived)."""
    try:
        yield
    except HttpError as exc:
        raise classify(endpoint, exc, idempotent=idempotent, config=config) from None
    except auth_exceptions.GoogleAuthError as exc:
        raise auth_error(config, exc) from None
    except (OSError, httplib2.HttpLib2Error) as exc:  # timeout, refused, reset, DNS, TLS (TimeoutError is an OSError)
        if token:
            raise auth_error(config, auth_exceptions.TransportError(type(exc).__name__)) from None
        if idempotent:
            raise TransientError(f"{endpoint}: {type(exc).__name__}") from None
        raise OutcomeUnknown(f"{endpoint}: no answer ({type(exc).__name__}); not re-sent") from None


def auth_error(config: GoogleConfig, exc: Exception) -> AuthError:
    """One line for a google-auth failure: which backend, the cause, what to check (never the key)."""
    env = f"${config.credentials_file_env}"
    if isinstance(exc, auth_exceptions.RefreshError):
        return AuthError(
            f"google: the token endpoint refused the service account ({_oauth_cause(exc)}): check the key file "
            f"named by {env}, google.admin_subject, and that domain-wide delegation authorises the scopes listed "
            "in the README"
        )
    if isinstance(exc, auth_exceptions.TransportError):
        return AuthError(
            f"google: cannot reach the token endpoint ({type(exc).__name__}): check the network and proxy, and "
            f"the token_uri in the key file named by {env}"
        )
    return AuthError(f"google: authentication failed ({type(exc).__name__}): check the key file named by {env}")


_OAUTH_ERRORS = ("invalid_grant", "unauthorized_client", "invalid_client", "invalid_scope", "access_denied")


def _oauth_cause(exc: Exception) -> str:
    """The OAuth error code only: google-auth's message can quote the response body."""
    text = str(exc)
    return next((code for code in _OAUTH_ERRORS if code in text), type(exc).__name__)


def error_reasons(exc: HttpError) -> set[str]:
    """Every reason a Google error body gives: legacy `error.errors[].reason` and `error.details[]` ErrorInfo.

    Read from the body itself: googleapiclient's `error_details` keeps only the first of `details`/`errors`
    it finds (`HttpError._get_reason`), so a body with both would hide the legacy reasons.
    """
    try:
        error = json.loads(exc.content.decode("utf-8")).get("error")
    except (ValueError, AttributeError, UnicodeDecodeError):
        error = None
    if not isinstance(error, dict):
        details = exc.error_details if isinstance(exc.error_details, list) else []
        return {str(d.get("reason")) for d in details if isinstance(d, dict) and d.get("reason")}
    entries = [e for e in (error.get("errors") or []) if isinstance(e, dict)]
    infos = [d for d in (error.get("details") or []) if isinstance(d, dict) and d.get("@type") == ERROR_INFO_TYPE]
    return {str(e["reason"]) for e in [*entries, *infos] if e.get("reason")}


def classify(endpoint: str, exc: HttpError, *, idempotent: bool, config: GoogleConfig | None = None) -> Exception:
    """Map an HttpError to TransientError (retry), OutcomeUnknown, AuthError or GoogleApiError."""
    status = int(exc.resp.status)
    reasons = error_reasons(exc)
    reason = next(iter(sorted(reasons)), "")
    message = str(exc.reason or "")[:200]
    retry_after = parse_retry_after(exc.resp.get("retry-after"))
    throttled = status == 429 or (status == 403 and reasons & RATE_REASONS)
    if throttled or (idempotent and status >= 500):
        return TransientError(f"{endpoint}: HTTP {status} {reason or message}", retry_after, status)
    if status >= 500 or status == 408:
        return OutcomeUnknown(f"{endpoint}: HTTP {status}: the request may have been processed; not re-sent")
    if status in (401, 403):
        env = f"${config.credentials_file_env}" if config else "the credentials file"
        what = "rejected the credentials" if status == 401 else "denied the call"
        return AuthError(
            f"google: {endpoint} {what} (HTTP {status} {reason or 'forbidden'}): check the key file named by {env}, "
            "that google.admin_subject is an admin with the needed privileges, that the API is enabled, and that "
            "domain-wide delegation authorises the scopes listed in the README"
        )
    return GoogleApiError(endpoint, status, reason or "error", message)
