"""Desired vs observed → ordered Changes. Pure: no I/O.

Like a pyinfra operation: equal values are a no-op, a missing value is a create, a different value an
update, and an observed value of an authoritative type that no policy wants is a delete. Types observed
through the journal (remote locks, reimages) become `action` changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.core.backend import Catalog
from orchestrator.core.resources import Change, Resource, ResourceId
from orchestrator.engine.prune import PRUNE_EVERYTHING, Pruning


def _order(change: Change, catalog: Catalog) -> tuple[int, int, int, str]:
    rid = change.id
    # deletes of policy settings go after creates/updates of the same type (never a gap in coverage)
    delete_last = 1 if change.op == "delete" else 0
    return catalog.backend_order(rid.backend), catalog.type_of(rid).order, delete_last, rid.key


def diff(
    catalog: Catalog,
    desired: Iterable[Resource],
    observed: Mapping[ResourceId, Resource],
    journal_state: Mapping[ResourceId, Any] | None = None,
    *,
    pruning: Pruning = PRUNE_EVERYTHING,
    unmanaged: list[ResourceId] | None = None,
) -> list[Change]:
    """Changes that make `observed` equal `desired`, in plan order.

    An observed setting of an authoritative type that no policy wants is deleted only where `pruning` allows
    (make_plan passes the declared pruning; this pure function defaults to deleting it); otherwise its id is
    appended to `unmanaged` and nothing changes.
    """
    journal_state = journal_state or {}
    changes: list[Change] = []
    wanted: set[ResourceId] = set()
    for resource in desired:
        wanted.add(resource.id)
        spec = catalog.type_of(resource.id)
        if spec.observed_by == "journal":
            before = journal_state.get(resource.id)
            if before == resource.value:
                continue
            op = "action"
        else:
            seen = observed.get(resource.id)
            before = seen.value if seen is not None else None
            if before == resource.value:
                continue
            op = "create" if seen is None else "update"
        changes.append(
            Change(
                id=resource.id,
                op=op,
                before=before,
                after=resource.value,
                sources=resource.sources,
                policy=resource.policy,
                window=resource.window,
                destructive=spec.destructive,
                summary=describe(resource.id, op),
                meta=dict(resource.meta),
                gate=resource.gate,
            )
        )
    for rid, seen in observed.items():
        if rid in wanted or not catalog.type_of(rid).authoritative:
            continue
        why = pruning.reason(rid)
        if why is None:
            if unmanaged is not None:
                unmanaged.append(rid)
            continue
        changes.append(
            Change(
                id=rid,
                op="delete",
                before=seen.value,
                after=None,
                sources=(),
                policy=None,
                destructive=catalog.type_of(rid).destructive,
                summary=describe(rid, "delete") + f" (no policy wants it; {why})",
                meta=dict(seen.meta),
            )
        )
    return sorted(changes, key=lambda change: _order(change, catalog))


_VERBS = {"create": "set", "update": "change", "delete": "remove", "action": "run"}


def describe(rid: ResourceId, op: str) -> str:
    return f"{_VERBS.get(op, op)} {rid.type.replace('_', ' ')} {rid.key}"
