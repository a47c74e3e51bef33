"""Build a plan: compile desired resources, observe them through the backends, diff."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.core.backend import Backend, Catalog
from orchestrator.core.resources import Resource, ResourceId
from orchestrator.engine.caps import LockdownTypes, cap_lockdown, hold_absent_devices, lockdown_cap
from orchestrator.engine.compile import compile_desired
from orchestrator.engine.diff import diff
from orchestrator.engine.journal import Journal
from orchestrator.engine.plan import Plan, observed_digests
from orchestrator.engine.prune import Pruning
from orchestrator.engine.targets import check_targets, expand_groups, selector_notes
from orchestrator.inventory.devices import Inventory
from orchestrator.inventory.escalation import Escalations
from orchestrator.policy.loader import PolicySet


@dataclass
class Observation:
    observed: dict[ResourceId, Resource]
    journal_state: dict[ResourceId, Any]


def observe(
    catalog: Catalog,
    backends: Mapping[str, Backend],
    desired: Sequence[Resource],
    journal: Journal,
    scopes: Sequence[str] = ("policy", "lockdown", "maintenance"),
    touched: Sequence[Resource] | None = None,
) -> Observation:
    """Ask every backend for its part in parallel (each paces itself); journal-observed types come from the journal.

    A backend with nothing desired is still asked when its authoritative types are in scope (so settings no
    policy wants any more are found and removed); otherwise it is not called at all. `touched` (apply's re-check
    before sending: every resource a plan's changes touch, deletions included with value None) goes to a backend
    that can re-read just those (`recheck`, e.g. Google: only the OUs the plan changes); the others observe.
    """
    by_backend: dict[str, list[Resource]] = {name: [] for name in backends}
    journal_ids: list[ResourceId] = []
    for resource in desired:
        if resource.id.backend not in backends:
            continue
        if catalog.type_of(resource.id).observed_by == "journal":
            journal_ids.append(resource.id)
        else:
            by_backend[resource.id.backend].append(resource)
    observed: dict[ResourceId, Resource] = {}
    asked = {name: wanted for name, wanted in by_backend.items() if wanted or _has_authoritative(catalog, name, scopes)}
    rechecked = {
        name: [r for r in touched if r.id.backend == name and catalog.type_of(r.id).observed_by != "journal"]
        for name in asked
        if touched is not None and callable(getattr(backends[name], "recheck", None))
    }
    with ThreadPoolExecutor(max_workers=max(1, len(asked))) as pool:
        futures = {
            name: pool.submit(backends[name].recheck, rechecked[name])
            if name in rechecked
            else pool.submit(backends[name].observe, wanted)
            for name, wanted in asked.items()
        }
        for future in futures.values():
            for resource in future.result():
                observed[resource.id] = resource
    return Observation(observed=observed, journal_state=journal.resource_state(journal_ids))


def _has_authoritative(catalog: Catalog, backend: str, scopes: Sequence[str]) -> bool:
    return any(t.authoritative and t.scope in scopes for t in catalog.spec(backend).types)


def make_plan(
    *,
    catalog: Catalog,
    policies: PolicySet,
    inventory: Inventory,
    backends: Mapping[str, Backend],
    journal: Journal,
    scopes: Sequence[str],
    notes: Sequence[str] = (),
    policy_commit: str | None = None,
    override_caps: bool = False,
    pruning: Pruning | None = None,
    escalations: Escalations | None = None,
) -> Plan:
    """Resolve targets, expand selectors, compile, observe, diff.

    Settings no policy wants are deleted only where `pruning` allows or this tool applied them (journal);
    the rest are listed in `plan.unmanaged` (see engine/prune.py). Default: nothing declared, no --prune.

    Every target a policy in scope names must exist before anything is compiled (PlanError otherwise, and
    no plan); Intune group selectors are expanded through the backend here so compile stays pure. Lost devices
    due for escalation (`escalations`, see jobs/escalation.py) are compiled for the maintenance scope, with notes.
    """
    check_targets(catalog, policies, inventory, backends, scopes)
    group_serials = expand_groups(catalog, policies, backends, scopes)
    notes = [*notes, *selector_notes(policies, inventory, group_serials, scopes, list(backends))]
    due = escalations.due if escalations is not None and "maintenance" in scopes else {}
    notes += escalations.notes if escalations is not None and "maintenance" in scopes else []
    desired = compile_desired(catalog, policies, inventory, list(backends), scopes, group_serials, due)
    seen = observe(catalog, backends, desired, journal, scopes)
    observed = {rid: r for rid, r in seen.observed.items() if catalog.type_of(rid).scope in scopes}
    wanted = {r.id for r in desired}
    candidates = [str(rid) for rid in observed if rid not in wanted and catalog.type_of(rid).authoritative]
    pruning = replace(pruning or Pruning(), applied=frozenset(journal.applied_among(candidates)))
    unmanaged: list[ResourceId] = []
    changes = diff(catalog, desired, observed, seen.journal_state, pruning=pruning, unmanaged=unmanaged)
    changes, held = hold_absent_devices(catalog, changes, observed)
    plan = Plan(
        changes=changes,
        held=held,
        observed=observed_digests(observed, seen.journal_state, desired),
        backends=sorted(backends),
        scopes=list(scopes),
        policy_commit=policy_commit,
        notes=list(notes),
        unmanaged=sorted(str(rid) for rid in unmanaged),
    )
    if "lockdown" in scopes:  # the per-run cap holds for every entry point: plan, apply, lockdown
        plan = cap_lockdown(
            plan, inventory, lockdown_cap(policies), LockdownTypes.of(catalog), override=override_caps, journal=journal
        )
    return plan
