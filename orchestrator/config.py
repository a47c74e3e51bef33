"""orchestrator.yaml: connection settings only. Secrets come from environment variables it names."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import ConfigError
from orchestrator.policy.grammar import TimeZoneName

DEFAULT_CONFIG = "orchestrator.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GoogleConfig(_Section):
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


class IntuneConfig(_Section):
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret_env: str = "AZURE_CLIENT_SECRET"
    certificate_path_env: str | None = None
    graph_endpoint: str | None = None
    # Entra ID token endpoint (https): a sovereign cloud, or a loopback token endpoint in tests.
    authority_host: str | None = None
    # A CA bundle that signs the token endpoint's certificate (a TLS-inspecting proxy, a test authority).
    authority_ca_file: str | None = None
    device_writes_per_20s: int = Field(default=180, ge=1)
    config_writes_per_20s: int = Field(default=90, ge=1)


class NetworkConfig(_Section):
    inventory: str = "playbooks/inventory.yaml"
    playbooks: str = "playbooks"
    parallel_sites: int = Field(default=4, ge=1, le=32)
    timeout_seconds: int = Field(default=300, ge=10)


class Config(_Section):
    timezone: TimeZoneName = "America/Chicago"
    journal: str = ".orchestrator/journal.db"
    policies: str = "policies/"
    inventory: str = "inventory/devices.csv"
    reports: str = ".orchestrator/reports"
    google: GoogleConfig | None = None
    intune: IntuneConfig | None = None
    network: NetworkConfig | None = None
    base_dir: Path = Field(default=Path("."), exclude=True)

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.base_dir / p


def config_path(path: str | Path | None = None) -> Path:
    """The config file a command uses: `--config`, else $ORCHESTRATOR_CONFIG, else ./orchestrator.yaml."""
    return Path(path or os.environ.get("ORCHESTRATOR_CONFIG") or DEFAULT_CONFIG)


def load_config(path: str | Path | None = None) -> Config:
    """Read the config file; a missing one is an error naming where it was looked for.

    Never fall back to defaults: with no file every backend would be "not configured" and plan/drift would
    report an empty, in-sync fleet (issue 10, item 4).
    """
    cfg_path = config_path(path)
    if not cfg_path.is_file():
        if path is not None:
            how = "given with --config"
        elif os.environ.get("ORCHESTRATOR_CONFIG"):
            how = "named by $ORCHESTRATOR_CONFIG"
        else:
            how = "the default in the current directory"
        raise ConfigError(
            f"{cfg_path.resolve()}: config file not found ({how}); run from the repository that holds "
            f"{DEFAULT_CONFIG}, or pass --config PATH or set ORCHESTRATOR_CONFIG"
        )
    try:
        raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{cfg_path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{cfg_path}: must be a mapping of settings")
    _refuse_inline_secrets(cfg_path, raw)
    try:
        config = Config.model_validate({**raw, "base_dir": cfg_path.resolve().parent})
    except ValidationError as exc:
        lines = [f"{cfg_path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    return config


_SECRET_KEYS = ("secret", "password", "private_key", "token")


def _refuse_inline_secrets(cfg_path: Path, raw: dict, prefix: str = "") -> None:
    for key, value in raw.items():
        if isinstance(value, dict):
            _refuse_inline_secrets(cfg_path, value, f"{prefix}{key}.")
        elif any(s in str(key).lower() for s in _SECRET_KEYS) and not str(key).endswith("_env"):
            raise ConfigError(
                f"{cfg_path}: {prefix}{key}: secrets are not allowed in the config file "
                "(name an environment variable with a *_env key instead)"
            )


def is_loopback(url: str | None) -> bool:
    """True when `url` points at this machine (emulators run there and need no credentials)."""
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
