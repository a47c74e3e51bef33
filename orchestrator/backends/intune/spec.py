"""The Intune backend's registration: its resource types, config section, readiness check, opener, compiler."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from orchestrator.backends.endpoints import is_loopback
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.core.backend import Backend, BackendSpec, CompileInput, ExportInput, OpenContext
from orchestrator.core.resources import Resource, ResourceId
from orchestrator.core.types import ResourceType

# Settings Catalog policies (Edge URL lists on Windows) sort before config profiles, so a migration's create and
# assign always precede the delete of the custom profile it replaces.
SETTINGS_POLICY = ResourceType("intune", "settings_policy", ("platform", "name"), order=1, authoritative=True)
CONFIG_PROFILE = ResourceType("intune", "config_profile", ("platform", "name"), order=2, authoritative=True)
APP_ASSIGNMENT = ResourceType("intune", "app_assignment", ("app",), order=3)
DEVICE_LOCK = ResourceType("intune", "device_lock", ("serial",), order=6, scope="lockdown")
REIMAGE = ResourceType(
    "intune", "reimage", ("serial", "request"), order=8, observed_by="journal", destructive=True, scope="maintenance"
)


def problem(section: IntuneConfig, base_dir: Path) -> str | None:
    """Why a configured Intune section cannot authenticate (never a silent skip), None when it can."""
    if is_loopback(section.graph_endpoint):
        return None  # the local emulator needs no credentials
    missing = [key for key in ("tenant_id", "client_id") if not getattr(section, key)]
    has_secret = bool(os.environ.get(section.client_secret_env))
    has_cert = bool(section.certificate_path_env and os.environ.get(section.certificate_path_env))
    if not (has_secret or has_cert):
        cert = f" or ${section.certificate_path_env}" if section.certificate_path_env else ""
        missing.append(f"${section.client_secret_env}{cert} (not set)")
    if missing:
        return f"intune: configured for a real tenant but {', '.join(missing)} missing"
    return None


def open_backend(ctx: OpenContext) -> Backend:
    from orchestrator.backends.intune.backend import IntuneBackend  # noqa: PLC0415 (the client SDK loads only when a backend is opened; backend and compiler import this spec)

    return IntuneBackend(ctx.section, counter=ctx.counter)


def compile_resources(given: CompileInput) -> list[Resource]:
    from orchestrator.backends.intune.compiler import compile_intune  # noqa: PLC0415 (the client SDK loads only when a backend is opened; backend and compiler import this spec)

    return compile_intune(
        given.policies, given.inventory, group_serials=given.group_serials, escalations=given.escalations
    )


def export_read(backend: Backend) -> list[Resource]:
    from orchestrator.backends.intune.export_read import read_for_export  # noqa: PLC0415 (the client SDK loads only when a backend is opened; backend and compiler import this spec)

    return read_for_export(backend)  # type: ignore[arg-type]


def export_files(given: ExportInput) -> list[Any]:
    from orchestrator.backends.intune.exporter import export_intune  # noqa: PLC0415 (the exporter imports this spec for its types)

    return export_intune(given)


def credential_env(section: IntuneConfig) -> list[str]:
    if is_loopback(section.graph_endpoint):
        return []
    return [section.client_secret_env, *([section.certificate_path_env] if section.certificate_path_env else [])]


def prunes(section: Any, rid: ResourceId) -> bool:
    """`manage: {prune: true}` covers every setting of this backend that no policy mentions."""
    return bool(section.manage.prune)


SPEC = BackendSpec(
    name="intune",
    order=1,
    types=(SETTINGS_POLICY, CONFIG_PROFILE, APP_ASSIGNMENT, DEVICE_LOCK, REIMAGE),
    config_model=IntuneConfig,
    problem=problem,
    open=open_backend,
    compile=compile_resources,
    prunes=prunes,
    target_kinds=("intune_group", "intune_app"),
    credential_env=credential_env,
    export=export_files,
    export_read=export_read,
)
