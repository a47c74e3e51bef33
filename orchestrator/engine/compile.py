"""Dispatch to the per-backend compilers and check that their resources do not collide."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orchestrator.engine.resources import Resource, spec_for
from orchestrator.errors import PlanError
from orchestrator.inventory import Inventory
from orchestrator.policy.loader import PolicySet

Compiler = Callable[[PolicySet, Inventory], list[Resource]]


def _compiler(backend: str) -> Compiler:
    if backend == "google":
        from orchestrator.engine.compilers.google import compile_google

        return compile_google
    if backend == "intune":
        from orchestrator.engine.compilers.intune import compile_intune

        return compile_intune
    if backend == "network":
        from orchestrator.engine.compilers.network import compile_network

        return compile_network
    raise PlanError(f"unknown backend {backend!r} (known: google, intune, network)")


def compile_desired(
    policies: PolicySet,
    inventory: Inventory,
    backends: Sequence[str],
    scopes: Sequence[str] = ("policy", "lockdown", "maintenance"),
) -> list[Resource]:
    """Desired resources for `backends`, restricted to the jobs in `scopes`. Pure: no I/O."""
    desired: list[Resource] = []
    seen: dict[str, Resource] = {}
    for backend in backends:
        for resource in _compiler(backend)(policies, inventory):
            if spec_for(resource.id).scope not in scopes:
                continue
            key = str(resource.id)
            if key in seen:
                raise PlanError(
                    f"{key} is wanted twice: by {', '.join(seen[key].sources)} and {', '.join(resource.sources)}"
                )
            seen[key] = resource
            desired.append(resource)
    return desired
