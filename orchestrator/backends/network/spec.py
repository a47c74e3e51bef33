"""The network backend's registration: its resource types, config section, readiness check, opener, compiler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.backends.network.config import NetworkConfig
from orchestrator.core.backend import Backend, BackendSpec, CompileInput, ExportInput, OpenContext
from orchestrator.core.resources import Resource, ResourceId
from orchestrator.core.types import ResourceType

DNS_BLOCKLIST = ResourceType("network", "dns_blocklist", ("site",), order=4)
MAC_QUARANTINE = ResourceType("network", "mac_quarantine", ("site",), order=7, scope="lockdown", quarantines_macs=True)


def problem(section: NetworkConfig, base_dir: Path) -> str | None:
    """Why a configured network section cannot run (its Ansible inventory is missing), None when it can."""
    inventory = Path(section.inventory) if Path(section.inventory).is_absolute() else base_dir / section.inventory
    if not inventory.is_file():
        return f"network: Ansible inventory {section.inventory} not found (looked for {inventory.resolve()})"
    return None


def open_backend(ctx: OpenContext) -> Backend:
    from orchestrator.backends.network.backend import NetworkBackend  # noqa: PLC0415 (the client SDK loads only when a backend is opened; backend and compiler import this spec)

    return NetworkBackend(ctx.section, base_dir=ctx.base_dir, artifacts_dir=ctx.state_dir / "artifacts")


def compile_resources(given: CompileInput) -> list[Resource]:
    from orchestrator.backends.network.compiler import compile_network  # noqa: PLC0415 (the client SDK loads only when a backend is opened; backend and compiler import this spec)

    return compile_network(given.policies, given.inventory)


def export_read(backend: Backend) -> list[Resource]:
    """Each site's gear reports its current state (playbooks/report.yml, check mode): see NetworkBackend.report."""
    return backend.report()  # type: ignore[attr-defined]


def export_files(given: ExportInput) -> list[Any]:
    from orchestrator.backends.network.exporter import export_network  # noqa: PLC0415 (the exporter imports the backend, which loads ansible-runner's helpers; only export needs it)

    return export_network(given)


def prunes(section: Any, rid: ResourceId) -> bool:
    """`manage: {prune: true}` covers every setting of this backend that no policy mentions."""
    return bool(section.manage.prune)


SPEC = BackendSpec(
    name="network",
    order=2,
    types=(DNS_BLOCKLIST, MAC_QUARANTINE),
    config_model=NetworkConfig,
    problem=problem,
    open=open_backend,
    compile=compile_resources,
    prunes=prunes,
    target_kinds=("network_site",),
    export=export_files,
    export_read=export_read,
)
