"""The `network:` section of orchestrator.yaml: the Ansible inventory of sites and gear, and how to run it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Managed(BaseModel):
    """Whether settings of this backend that no policy mentions may be deleted (`prune: true`)."""

    model_config = ConfigDict(extra="forbid")

    prune: bool = False


class NetworkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inventory: str = "playbooks/inventory.yaml"
    playbooks: str = "playbooks"
    parallel_sites: int = Field(default=4, ge=1, le=32)
    timeout_seconds: int = Field(default=300, ge=10)
    # Absent or prune: false: settings no policy mentions are listed in the plan as unmanaged, never deleted.
    manage: Managed = Managed()
