"""The toy backend's registration: its resource types, config section, readiness check, opener, compiler.

Modelled on orchestrator/backends/google/spec.py. A product backend adds `SPEC` to the list in
orchestrator/backends/registry.py; tests register it in a copy of the catalog instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.core.backend import Backend, BackendSpec, CompileInput, OpenContext
from orchestrator.core.resources import Resource, ResourceId
from orchestrator.core.types import ResourceType
from toy_backend.config import ToyConfig

# How the engine treats each toy type (see orchestrator/core/types.py):
#   blocklist  one org unit's blocked domains; authoritative: a list no policy wants any more is removed
#   erase      one device erased for one Reimage request; destructive, so it carries GateFacts and passes the
#              safety gates; the console cannot report it, so the journal's last applied value is its state
BLOCKLIST = ResourceType("toy", "blocklist", ("ou",), order=0, authoritative=True)
ERASE = ResourceType(
    "toy", "erase", ("serial", "request"), order=5, observed_by="journal", destructive=True, scope="maintenance"
)


def problem(section: ToyConfig, base_dir: Path) -> str | None:
    """Why a configured toy section cannot connect (an error, never a silent skip); None when it can."""
    if section.token_env and not os.environ.get(section.token_env):
        return f"toy: ${section.token_env} is not set (the console's API token)"
    return None


def open_backend(ctx: OpenContext) -> Backend:
    from toy_backend.backend import ToyBackend  # the client is imported only when the backend is opened

    section: ToyConfig = ctx.section
    return ToyBackend(section.seed)


def compile_resources(given: CompileInput) -> list[Resource]:
    from toy_backend.compiler import compile_toy

    return compile_toy(given)


def prunes(section: ToyConfig, rid: ResourceId) -> bool:
    """`manage: {prune: true}` covers every toy setting no policy mentions (a scope could be narrower: Google's
    `manage:` names OU subtrees)."""
    return section.manage.prune


def credential_env(section: ToyConfig) -> list[str]:
    return [section.token_env] if section.token_env else []


SPEC = BackendSpec(
    name="toy",
    order=9,
    types=(BLOCKLIST, ERASE),
    config_model=ToyConfig,
    problem=problem,
    open=open_backend,
    compile=compile_resources,
    credential_env=credential_env,
    prunes=prunes,
)
