"""Dispatch to each backend's compiler (through the catalog) and check that their resources do not collide."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from orchestrator.core.backend import Catalog, CompileInput
from orchestrator.core.errors import PlanError
from orchestrator.core.resources import Resource
from orchestrator.inventory.devices import Inventory
from orchestrator.inventory.escalation import Due
from orchestrator.policy.loader import PolicySet


def compile_desired(
    catalog: Catalog,
    policies: PolicySet,
    inventory: Inventory,
    backends: Sequence[str],
    scopes: Sequence[str] = ("policy", "lockdown", "maintenance"),
    group_serials: Mapping[str, Collection[str]] | None = None,
    escalations: Mapping[str, Due] | None = None,
) -> list[Resource]:
    """Desired resources for `backends`, restricted to the jobs in `scopes`. Pure: no I/O.

    `group_serials` (Intune group → member serials) is data the plan read before compiling, so selectors by
    group select their members here without the compilers doing any I/O. A compiler that emits a type its
    backend did not register fails the plan (UnknownResourceType). `escalations` (serial → Due, decided at plan time
    from the device history and the calendar) are compiled the same way.
    """
    given = CompileInput(
        policies=policies, inventory=inventory, group_serials=group_serials or {}, escalations=escalations or {}
    )
    desired: list[Resource] = []
    seen: dict[str, Resource] = {}
    for backend in backends:
        for resource in catalog.spec(backend).compile(given):
            if catalog.type_of(resource.id).scope not in scopes:
                continue
            key = str(resource.id)
            if key in seen:
                raise PlanError(
                    f"{key} is wanted twice: by {', '.join(seen[key].sources)} and {', '.join(resource.sources)}"
                )
            seen[key] = resource
            desired.append(resource)
    return desired
