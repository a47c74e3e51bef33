"""The error tree. One class per failure kind; the CLI maps them to exit codes.

OrchestratorError
 ├── PolicyError          policies or inventory failed validation (carries every Diagnostic)
 ├── ConfigError          orchestrator.yaml is missing, malformed or incomplete
 ├── BackendError         a console or device API failed after retries
 │    ├── QuotaError      the API kept throttling past our retry budget
 │    ├── AuthError       credentials, consent, scopes or the token endpoint failed (one actionable line)
 │    └── OutcomeUnknown  a request left and no definite answer came back: it may have run (never re-sent)
 ├── TransientError       worth retrying (throttled, 5xx, timeout on an idempotent call): raised at a client's
 │                        error-mapping point, consumed by the one retry policy (not a BackendError, so a
 │                        handler of failed calls never swallows a retry)
 ├── PlanError            the plan cannot be built (unknown group name, ambiguous app, ...)
 │    └── UnknownResourceType  a resource type no backend registered (never a permissive default)
 └── StalePlanError       the world changed since a saved plan was reviewed

A destructive change refused by a safety gate is not an error: the gate returns a decision and the change
stays queued (journal state `deferred`).
"""

from __future__ import annotations

from dataclasses import dataclass


class OrchestratorError(Exception):
    """Base class: the message is written for the person running the command."""


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in one place: `file:line: field.path: what is wrong (what is allowed)`."""

    file: str
    line: int
    path: str
    message: str
    allowed: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        field = f" {self.path}:" if self.path else ""
        hint = f" ({self.allowed})" if self.allowed else ""
        return f"{where}:{field} {self.message}{hint}"


class PolicyError(OrchestratorError):
    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class ConfigError(OrchestratorError):
    """orchestrator.yaml is missing, malformed or incomplete, or a configured backend cannot connect."""


class BackendError(OrchestratorError):
    """A console or device API failed after retries; the message names the backend and the call."""


class QuotaError(BackendError):
    """The API kept throttling (429 / rate-limit 403) past the retry budget."""


class AuthError(BackendError):
    """Authentication or authorisation failed: bad/expired credentials, missing consent or scopes, an
    unreachable token endpoint, a 401/403 that is not a rate limit.

    The message is one line naming the backend, the cause and what to check (an env var name, the scopes
    listed in the README), never a secret: retrying cannot fix it, a person has to.
    """


class OutcomeUnknown(BackendError):
    """A request that may have reached the service got no definite answer (timeout, reset, 5xx): it may or may
    not have happened, so a non-idempotent one is never re-sent blindly."""


class TransientError(OrchestratorError):
    """A failure worth retrying (throttled, 5xx, timeout on an idempotent call), with the server's wait hint."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class PlanError(OrchestratorError):
    """The plan cannot be built (an unknown target, an ambiguous app name, a selector that cannot expand)."""


class UnknownResourceType(PlanError):
    """A resource type no backend registered: never guessed (a default would make a wipe non-destructive)."""


class StalePlanError(OrchestratorError):
    """The consoles changed since a saved plan was reviewed: nothing was applied; plan again."""
