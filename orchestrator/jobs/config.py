"""orchestrator.yaml: connection settings only. Secrets come from environment variables it names.

General settings are fields of `Config`; each backend's section (`google:`, `intune:`, `network:`, ...) is
validated by the config model its BackendSpec registers, so a new backend needs no change here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.backends.registry import CATALOG
from orchestrator.core.backend import Catalog
from orchestrator.core.errors import ConfigError
from orchestrator.policy.grammar import TimeZoneName

DEFAULT_CONFIG = "orchestrator.yaml"
TENANTS_DIR = "tenants"
"""A repository of several districts holds each one's config as tenants/<name>/orchestrator.yaml."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Config(_Section):
    timezone: TimeZoneName = "America/Chicago"
    journal: str = ".orchestrator/journal.db"
    policies: str = "policies/"
    inventory: str = "inventory/devices.csv"
    reports: str = ".orchestrator/reports"
    environment_file: str | None = None
    """KEY=value file with this district's credential variables; read only by this district's runs."""
    owners: dict[str, str] = Field(default_factory=dict)
    """backend → who keeps it (`{network: provider, google: district}`): a runner that says who it is
    (`--runner`, $ORCHESTRATOR_RUNNER) touches only what it keeps. Backends not listed are anyone's."""
    base_dir: Path = Field(default=Path("."), exclude=True)
    sections: dict[str, Any] = Field(default_factory=dict, exclude=True)
    """backend name → its validated config section (only the backends the file configures)."""
    tenant: str | None = Field(default=None, exclude=True)
    """The district's name when the file is tenants/<name>/orchestrator.yaml; None in a one-district repository."""

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.base_dir / p

    def section(self, backend: str) -> Any | None:
        """The backend's section, or None when orchestrator.yaml does not configure it."""
        return self.sections.get(backend)


def config_path(path: str | Path | None = None) -> Path:
    """The config file a command uses: `--config`, else $ORCHESTRATOR_CONFIG, else ./orchestrator.yaml."""
    return Path(path or os.environ.get("ORCHESTRATOR_CONFIG") or DEFAULT_CONFIG)


def tenant_configs(root: str | Path = ".") -> dict[str, Path]:
    """name → config file of every district under `root`/tenants/ (empty in a one-district repository)."""
    folder = Path(root) / TENANTS_DIR
    if not folder.is_dir():
        return {}
    return {p.parent.name: p for p in sorted(folder.glob(f"*/{DEFAULT_CONFIG}")) if p.is_file()}


def tenant_of(cfg_path: Path) -> str | None:
    """The tenant a config file belongs to: its folder's name when that folder is inside tenants/."""
    folder = cfg_path.resolve().parent
    return folder.name if folder.parent.name == TENANTS_DIR else None


def read_environment_file(path: Path) -> dict[str, str]:
    """KEY=value lines (blank lines and # comments skipped; `export ` and matching quotes allowed)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read environment file: {exc.strerror or exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path}:{number}: expected KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def environment_of(config: Config) -> dict[str, str]:
    """The variables the config's `environment_file` sets (empty without one)."""
    if not config.environment_file:
        return {}
    return read_environment_file(config.path(config.environment_file))


def load_config(path: str | Path | None = None, catalog: Catalog = CATALOG) -> Config:
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
            tenants = tenant_configs()
            if tenants:
                raise ConfigError(
                    f"{cfg_path.resolve()}: not found; this repository holds several districts under "
                    f"{TENANTS_DIR}/ ({', '.join(tenants)}): choose with --tenant NAME (repeatable) or --all-tenants"
                )
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
    general = {k: v for k, v in raw.items() if k not in catalog.specs}
    internal = ("base_dir", "sections", "tenant")
    allowed = sorted(set(Config.model_fields) - set(internal)) + list(catalog.names())
    unknown = sorted(str(k) for k in general if k not in Config.model_fields or k in internal)
    if unknown:
        raise ConfigError(f"{cfg_path}: unknown setting(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})")
    lines: list[str] = []
    sections: dict[str, Any] = {}
    for name in catalog.names():
        if name not in raw:
            continue
        try:
            sections[name] = catalog.spec(name).config_model.model_validate(raw[name] or {})
        except ValidationError as exc:
            lines += [f"{cfg_path}: {name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    try:
        config = Config.model_validate(
            {**general, "base_dir": cfg_path.resolve().parent, "tenant": tenant_of(cfg_path)}
        )
    except ValidationError as exc:
        lines += [f"{cfg_path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    for backend, who in (raw.get("owners") or {}).items() if isinstance(raw.get("owners"), dict) else ():
        if backend not in catalog.specs:
            lines.append(f"{cfg_path}: owners.{backend}: not a backend (one of {', '.join(catalog.names())})")
        elif not isinstance(who, str) or not who.strip():
            lines.append(f"{cfg_path}: owners.{backend}: name who keeps it (e.g. provider, district)")
    if lines:
        raise ConfigError("\n".join(lines))
    return config.model_copy(update={"sections": sections})


def runner_backends(
    config: Config, backends: Sequence[str], runner: str | None, catalog: Catalog = CATALOG
) -> tuple[list[str], list[str]]:
    """(the backends a run may use, notes) for `runner` under the config's `owners:`.

    No runner or no owners: `backends` unchanged. Otherwise a named backend kept by someone else is an error,
    and with none named the run uses every backend not kept by someone else; the others are noted.
    """
    if not runner or not config.owners:
        return list(backends), []
    kept = {b: who for b, who in config.owners.items() if who != runner}
    where = f"district {config.tenant!r}" if config.tenant else "this district"
    refused = [b for b in backends if b in kept]
    if refused:
        raise ConfigError(
            "; ".join(f"{b}: kept by {kept[b]} in {where} (owners:), not by this runner ({runner})" for b in refused)
        )
    notes = [f"{b}: kept by {who} (owners:); left alone by this runner ({runner})" for b, who in kept.items()]
    if backends:
        return list(backends), notes
    mine = [b for b in catalog.names() if b not in kept]
    if not mine:
        raise ConfigError(f"runner {runner!r} keeps no part of {where}: owners: gives every backend to someone else")
    return mine, notes


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
