"""The error tree. One class per failure kind; the CLI maps them to exit codes.

OrchestratorError
 ├── PolicyError        policies or inventory failed validation (carries every Diagnostic)
 ├── ConfigError        orchestrator.yaml is missing, malformed or incomplete
 ├── BackendError       a console or device API failed after retries
 │    ├── QuotaError    the API kept throttling past our retry budget
 │    └── AuthError     credentials, consent, scopes or the token endpoint failed (one actionable line)
 ├── PlanError          the plan cannot be built (unknown group name, ambiguous app, ...)
 └── StalePlanError     the world changed since a saved plan was reviewed

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
    pass


class BackendError(OrchestratorError):
    pass


class QuotaError(BackendError):
    pass


class AuthError(BackendError):
    """Authentication or authorisation failed: bad/expired credentials, missing consent or scopes, an
    unreachable token endpoint, a 401/403 that is not a rate limit.

    The message is one line naming the backend, the cause and what to check (an env var name, the scopes
    listed in the README), never a secret: retrying cannot fix it, a person has to.
    """


class PlanError(OrchestratorError):
    pass


class StalePlanError(OrchestratorError):
    pass
