"""Dispatch to the per-backend compilers and check that their resources do not collide."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial

from orchestrator.engine.resources import Resource, spec_for
from orchestrator.errors import PlanError
from orchestrator.inventory import Inventory
from orchestrator.policy.loader import PolicySet

Compiler = Callable[[PolicySet, Inventory], list[Resource]]


def _compiler(backend: str, group_serials: Mapping[str, Collection[str]]) -> Compiler:
    if backend == "google":
        from orchestrator.engine.compilers.google import compile_google

        return partial(compile_google, group_serials=group_serials)
    if backend == "intune":
        from orchestrator.engine.compilers.intune import compile_intune

        return partial(compile_intune, group_serials=group_serials)
    if backend == "network":
        from orchestrator.engine.compilers.network import compile_network

        return compile_network
    raise PlanError(f"unknown backend {backend!r} (known: google, intune, network)")


def compile_desired(
    policies: PolicySet,
    inventory: Inventory,
    backends: Sequence[str],
    scopes: Sequence[str] = ("policy", "lockdown", "maintenance"),
    group_serials: Mapping[str, Collection[str]] | None = None,
) -> list[Resource]:
    """Desired resources for `backends`, restricted to the jobs in `scopes`. Pure: no I/O.

    `group_serials` (Intune group → member serials) is data the plan read before compiling, so selectors by
    group select their members here without the compilers doing any I/O.
    """
    desired: list[Resource] = []
    seen: dict[str, Resource] = {}
    for backend in backends:
        for resource in _compiler(backend, group_serials or {})(policies, inventory):
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
