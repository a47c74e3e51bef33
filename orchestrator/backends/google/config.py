"""The `google:` section of orchestrator.yaml (connection settings only; secrets come from the env var it names)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.policy.grammar import OrgUnitPath


class ManagedOu(BaseModel):
    """An OU subtree whose Chrome settings no policy mentions may be deleted (`prune: true`)."""

    model_config = ConfigDict(extra="forbid")

    ou: OrgUnitPath
    prune: bool = False


class GoogleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = "my_customer"
    admin_subject: str | None = None
    credentials_file_env: str = "GOOGLE_APPLICATION_CREDENTIALS"
    directory_endpoint: str | None = None
    policy_endpoint: str | None = None
    managed_root_ou: str = "/"
    # The published quotas, held over every window by the pacers (backends/pacing.py): Directory API 2,400
    # queries/min per user per project; Chrome Policy writes 30/min per customer. Lower them on a project or
    # customer the district shares with other tools (GAM, a sync job), never raise them above the quota.
    requests_per_minute: int = Field(default=2400, ge=1)
    policy_writes_per_minute: int = Field(default=30, ge=1)
    # Chrome Policy reads (policies:resolve, policySchemas): 5 queries per second per user (api-quotas page);
    # None = 300/min against Google (one admin subject is one user), 1500/min against a loopback emulator.
    # Raise it only if Google raised your per-user quota; lower it on a tenant shared with other tools.
    policy_reads_per_minute: int | None = Field(default=None, ge=1)
    # Where pruning is declared: settings at these OUs (and below) that no policy mentions are deleted.
    # Absent: nothing is pruned; such settings are listed in the plan as unmanaged.
    manage: list[ManagedOu] = []
