"""The `toy:` section of orchestrator.yaml (connection settings only; a secret would come from the env var named)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Managed(BaseModel):
    """Whether toy settings that no policy mentions may be deleted (`manage: {prune: true}`)."""

    model_config = ConfigDict(extra="forbid")

    prune: bool = False


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in the section is an error naming `toy.<key>`

    token_env: str | None = None
    """The environment variable holding the console's API token; None = a local console that needs none."""
    seed: dict[str, list[str]] = {}
    """What the in-memory console holds when it is opened: org unit → blocked domains (settings no policy made)."""
    manage: Managed = Managed()
    """Absent or `prune: false`: settings no policy mentions are listed in the plan as unmanaged, never deleted."""
