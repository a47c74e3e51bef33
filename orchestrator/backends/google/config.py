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
    requests_per_minute: int = Field(default=1800, ge=1)
    policy_writes_per_minute: int = Field(default=25, ge=1)
    # Chrome Policy reads: 30 QPS per project but 5 QPS per user; None = min(requests_per_minute, 1500).
    # Set 300 to stay under the per-user limit on a tenant shared with other tools.
    policy_reads_per_minute: int | None = Field(default=None, ge=1)
    # Where pruning is declared: settings at these OUs (and below) that no policy mentions are deleted.
    # Absent: nothing is pruned; such settings are listed in the plan as unmanaged.
    manage: list[ManagedOu] = []
