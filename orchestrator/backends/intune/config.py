"""The `intune:` section of orchestrator.yaml (connection settings only; secrets come from the env vars it names)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Managed(BaseModel):
    """Whether settings of this backend that no policy mentions may be deleted (`prune: true`)."""

    model_config = ConfigDict(extra="forbid")

    prune: bool = False


class IntuneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str | None = None
    client_id: str | None = None
    client_secret_env: str = "AZURE_CLIENT_SECRET"
    certificate_path_env: str | None = None
    graph_endpoint: str | None = None
    # Entra ID token endpoint (https): a sovereign cloud, or a loopback token endpoint in tests.
    authority_host: str | None = None
    # A CA bundle that signs the token endpoint's certificate (a TLS-inspecting proxy, a test authority).
    authority_ca_file: str | None = None
    # Graph throttling per app per tenant (learn.microsoft.com/graph/throttling-limits, Intune): device writes
    # (managedDevices and their actions) 200 per 20 s, configuration/apps writes 100 per 20 s; held over every
    # 20-s window by the pacers (backends/pacing.py). Lower them when other apps share the tenant's limits.
    device_writes_per_20s: int = Field(default=200, ge=1)
    config_writes_per_20s: int = Field(default=100, ge=1)
    # Absent or prune: false: settings no policy mentions are listed in the plan as unmanaged, never deleted.
    manage: Managed = Managed()
