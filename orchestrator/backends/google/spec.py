"""The Google backend's registration: its resource types, config section, readiness check, opener, compiler."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.backends.endpoints import is_loopback
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.core.backend import Backend, BackendSpec, CompileInput, ExportInput, OpenContext
from orchestrator.core.resources import Resource, ResourceId
from orchestrator.core.types import KEY_SEPARATOR, ResourceType

OU_POLICY = ResourceType("google", "ou_policy", ("ou", "schema"), order=0, authoritative=True)
OU_APP = ResourceType("google", "ou_app", ("ou", "app_id"), order=1, authoritative=True)
DEVICE_STATUS = ResourceType("google", "device_status", ("serial",), order=5, scope="lockdown")
# The inventory's asset tag, user, location and notes written back (InventoryWriteBack; annotations.py).
DEVICE_ANNOTATIONS = ResourceType("google", "device_annotations", ("serial",), order=6, needs_device=True)
REIMAGE = ResourceType(
    "google", "reimage", ("serial", "request"), order=8, observed_by="journal", destructive=True, scope="maintenance"
)


def problem(section: GoogleConfig, base_dir: Path) -> str | None:
    """Why a configured Google section cannot authenticate (never a silent skip), None when it can."""
    if is_loopback(section.directory_endpoint) and is_loopback(section.policy_endpoint):
        return None  # both APIs are a local emulator, which needs no credentials (an absent one is Google)
    key_file = os.environ.get(section.credentials_file_env)
    if not key_file:
        return (
            f"google: configured for a real tenant but ${section.credentials_file_env} is not set "
            "(path of the service-account key file)"
        )
    if not Path(key_file).is_file():
        return f"google: ${section.credentials_file_env} names {key_file}, which does not exist"
    if not section.admin_subject:
        return "google.admin_subject: required with a service account (domain-wide delegation subject)"
    return None


def open_backend(ctx: OpenContext) -> Backend:
    from orchestrator.backends.google.backend import GoogleBackend  # noqa: PLC0415 (the client SDK loads only when a backend is opened; backend and compiler import this spec)

    section: GoogleConfig = ctx.section
    return GoogleBackend(section, counter=ctx.counter, policy_reads_per_minute=section.policy_reads_per_minute)


def compile_resources(given: CompileInput) -> list[Resource]:
    from orchestrator.backends.google.compiler import compile_google  # noqa: PLC0415 (the client SDK loads only when a backend is opened; backend and compiler import this spec)

    return compile_google(
        given.policies, given.inventory, group_serials=given.group_serials, escalations=given.escalations
    )


def export_files(given: ExportInput) -> list:
    from orchestrator.backends.google.exporter import export_google  # noqa: PLC0415 (the exporter imports the compiler, which imports this spec)

    return export_google(given)


def prunes(section: GoogleConfig, rid: ResourceId) -> bool:
    """The nearest `manage:` entry at or above the setting's OU decides; no entry: not pruned."""
    if rid.type not in (OU_POLICY.name, OU_APP.name):
        return False
    ou = rid.key.split(KEY_SEPARATOR, 1)[0]
    covering = [m for m in section.manage if ou == m.ou or ou.startswith(m.ou.rstrip("/") + "/")]
    return max(covering, key=lambda m: len(m.ou)).prune if covering else False


def credential_env(section: GoogleConfig) -> list[str]:
    loopback = is_loopback(section.directory_endpoint) and is_loopback(section.policy_endpoint)
    return [] if loopback else [section.credentials_file_env]


SPEC = BackendSpec(
    name="google",
    order=0,
    types=(OU_POLICY, OU_APP, DEVICE_STATUS, DEVICE_ANNOTATIONS, REIMAGE),
    config_model=GoogleConfig,
    problem=problem,
    open=open_backend,
    compile=compile_resources,
    target_kinds=("google_ou",),
    prunes=prunes,
    export=export_files,
    credential_env=credential_env,
)
