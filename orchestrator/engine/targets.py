"""Resolve every target a policy names before a plan is built: fail closed, never "in sync" by accident.

A typo in a target (`/Students/Elementry`) used to compile to a set at an OU that does not exist and a
remove at the real one: the set failed on apply, the remove succeeded, and elementary Chromebooks lost
URL blocking. So, before compiling, every name a policy in scope mentions is looked up where it lives:

    google_ou     Google org units (one orgunits.list per plan, from the Google backend)
    intune_group  Entra ID groups, intune_app Intune mobile apps (the Intune backend)
    network_site  groups with hosts in the Ansible inventory (the network backend)
    school        schools of the device inventory and of the SchoolCalendar documents
    serial, asset_tag  Reimage selectors: rows of the device inventory

An unknown name is a PlanError naming the policy `file:line`, with a did-you-mean; no plan is written.
Selectors are then expanded (Intune group → member serials, through the backend, before the pure
compile) and a selector that selects no device becomes a plan note.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from orchestrator.core.backend import Catalog
from orchestrator.core.errors import PlanError
from orchestrator.inventory.devices import Inventory
from orchestrator.inventory.selection import selects
from orchestrator.policy.loader import LoadedPolicy, PolicySet
from orchestrator.policy.models import (
    AppPush,
    LostDevicePolicy,
    MaintenanceWindow,
    Reimage,
    SchoolCalendar,
    Targets,
    WebFilter,
)

# target kinds the policy repository itself knows (inventory, calendars); the others belong to the backend
# whose spec lists them in `target_kinds`
LOCAL_KINDS = ("school", "serial", "asset_tag", "selector_ou")
WHAT = {
    "google_ou": ("Google org unit", "in the Google console"),
    "selector_ou": ("org unit", "in the Google console or the device inventory"),
    "intune_group": ("Intune group", "in Entra ID (check the display name)"),
    "intune_app": ("Intune app", "in Intune mobileApps (check the display name)"),
    "network_site": ("network site", "as a group with hosts in the Ansible inventory"),
    "school": ("school", "in the device inventory or a SchoolCalendar"),
    "serial": ("serial", "in the device inventory"),
    "asset_tag": ("asset tag", "in the device inventory"),
}


@runtime_checkable
class KnowsTargets(Protocol):
    """A backend that can say which target names exist in its console."""

    def known_targets(self, kind: str, names: Collection[str]) -> Collection[str]:
        """Names of `kind` that exist: every one of `names` that exists and, when some do not, the others too.

        The extra names feed the did-you-mean; a backend may return all names of that kind.
        """


@runtime_checkable
class ExpandsGroups(Protocol):
    """A backend that can turn device group names into the serial numbers of their (transitive) members."""

    def group_device_serials(self, names: Collection[str]) -> dict[str, set[str]]:
        """Group name → serials of the devices that are (transitive) members; every asked name is a key."""


@dataclass(frozen=True)
class Named:
    """One target name in one policy, with the place to fix it."""

    kind: str
    name: str
    where: str
    field: str
    policy: str


def named_targets(policies: PolicySet, scopes: Sequence[str]) -> list[Named]:
    """Every target named by the policies that feed `scopes` (a WebFilter typo never blocks a lockdown)."""
    out: list[Named] = []
    if "policy" in scopes:
        for model, loaded in [*policies.of_kind(WebFilter), *policies.of_kind(AppPush)]:
            out += _targets(model.targets, loaded, model.name)
        for app_push, loaded in policies.of_kind(AppPush):
            for i, app in enumerate(app_push.intune):
                out.append(_named("intune_app", app.app, loaded, ("intune", i, "app"), app_push.name))
    if "lockdown" in scopes:
        for lost, loaded in policies.of_kind(LostDevicePolicy):
            if lost.network.quarantine:
                for i, site in enumerate(lost.network.sites):
                    out.append(_named("network_site", site, loaded, ("network", "sites", i), lost.name))
            for i, school in enumerate(lost.schools):
                out.append(_named("school", school, loaded, ("schools", i), lost.name))
    if "maintenance" in scopes:
        for window, loaded in policies.of_kind(MaintenanceWindow):
            for i, school in enumerate(window.schools):
                out.append(_named("school", school, loaded, ("schools", i), window.name))
        for reimage, loaded in policies.of_kind(Reimage):
            sel = reimage.devices
            for kind, attr, values in (
                ("selector_ou", "google_ous", sel.google_ous),
                ("intune_group", "intune_groups", sel.intune_groups),
                ("serial", "serials", sel.serials),
                ("asset_tag", "asset_tags", sel.asset_tags),
                ("school", "schools", sel.schools),
            ):
                for i, value in enumerate(values):
                    out.append(_named(kind, value, loaded, ("devices", attr, i), reimage.name))
    return out


def _targets(targets: Targets, loaded: LoadedPolicy, policy: str) -> list[Named]:
    out = []
    for kind, attr in (
        ("google_ou", "google_ous"),
        ("intune_group", "intune_groups"),
        ("network_site", "network_sites"),
    ):
        for i, value in enumerate(getattr(targets, attr)):
            out.append(_named(kind, value, loaded, ("targets", attr, i), policy))
    return out


def _named(kind: str, name: str, loaded: LoadedPolicy, path: tuple[str | int, ...], policy: str) -> Named:
    field = ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")
    return Named(kind, name, str(loaded.source_of(*path)), field, policy)


def inventory_targets(policies: PolicySet, inventory: Inventory) -> dict[str, set[str]]:
    """Names the policy repository itself defines: schools, serials, asset tags and OU paths (with parents)."""
    schools = {d.school for d in inventory.devices if d.school}
    for calendar, _ in policies.of_kind(SchoolCalendar):
        schools |= set(calendar.schools)
    ous: set[str] = set()
    for device in inventory.devices:
        path = device.orgUnitPath.rstrip("/")
        while path:
            ous.add(path)
            path = path.rsplit("/", 1)[0]
        if device.orgUnitPath:
            ous.add("/")
    return {
        "school": schools,
        "serial": {d.serialNumber for d in inventory.devices},
        "asset_tag": {d.annotatedAssetId for d in inventory.devices if d.annotatedAssetId},
        "selector_ou": ous,
    }


def check_targets(
    catalog: Catalog,
    policies: PolicySet,
    inventory: Inventory,
    backends: Mapping[str, object],
    scopes: Sequence[str],
) -> None:
    """Raise PlanError listing every target name that does not exist (file:line, did-you-mean).

    Kinds whose backend is not configured are not checked here (that backend is skipped and says so).
    """
    wanted = named_targets(policies, scopes)
    known: dict[str, Collection[str]] = dict(inventory_targets(policies, inventory))
    by_kind: dict[str, set[str]] = {}
    for named in wanted:
        by_kind.setdefault(named.kind, set()).add(named.name)
    owner_of = {kind: spec.name for spec in catalog.specs.values() for kind in spec.target_kinds}
    if "selector_ou" in by_kind and isinstance(backends.get(owner_of.get("google_ou", "")), KnowsTargets):
        # Reimage OUs may be console OUs or only inventory labels; one orgunits.list serves both kinds
        by_kind.setdefault("google_ou", set())
    for kind, names in by_kind.items():
        owner = None if kind in LOCAL_KINDS else owner_of.get(kind)
        backend = backends.get(owner) if owner else None
        if isinstance(backend, KnowsTargets):
            asked = names | by_kind.get("selector_ou", set()) if kind == "google_ou" else names
            known[kind] = backend.known_targets(kind, asked)
    if "selector_ou" in known and "google_ou" in known:
        known["selector_ou"] = set(known["selector_ou"]) | set(known["google_ou"])
    problems = [
        _problem(named, known[named.kind])
        for named in wanted
        if named.kind in known and named.name not in known[named.kind]
    ]
    if problems:
        raise PlanError(
            f"{len(problems)} target(s) named by the policies do not exist; no plan was made:\n"
            + "\n".join(sorted(dict.fromkeys(problems)))
        )


def _problem(named: Named, known: Iterable[str]) -> str:
    noun, place = WHAT[named.kind]
    close = difflib.get_close_matches(named.name, sorted(known), n=1, cutoff=0.6)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return f"{named.where}: {named.field}: {noun} {named.name!r} does not exist {place}{guess} (policy {named.policy})"


def expand_groups(
    catalog: Catalog, policies: PolicySet, backends: Mapping[str, object], scopes: Sequence[str]
) -> dict[str, frozenset[str]]:
    """Serials of the members of every Intune group a Reimage selects by, read through the Intune backend.

    Empty when maintenance is not in scope or no Reimage names a group. A Reimage naming groups while the
    Intune backend is configured but cannot expand them is an error (never a silent empty selection).
    """
    if "maintenance" not in scopes:
        return {}
    names = sorted({g for model, _ in policies.of_kind(Reimage) for g in model.devices.intune_groups})
    owner = next((spec.name for spec in catalog.specs.values() if "intune_group" in spec.target_kinds), "")
    backend = backends.get(owner)
    if not names or backend is None:
        return {}
    if not isinstance(backend, ExpandsGroups):
        raise PlanError(f"the {owner} backend cannot read group members; Reimage selectors name {', '.join(names)}")
    members = backend.group_device_serials(names)
    return {name: frozenset(members.get(name, set())) for name in names}


def selector_notes(
    policies: PolicySet,
    inventory: Inventory,
    group_serials: Mapping[str, Collection[str]],
    scopes: Sequence[str],
    backends: Collection[str],
) -> list[str]:
    """Plan notes for selectors that select nothing, and group members the inventory does not know."""
    if "maintenance" not in scopes:
        return []
    notes: list[str] = []
    by_serial = inventory.by_serial()
    for model, loaded in policies.of_kind(Reimage):
        where = loaded.source_of("devices")
        decommission = bool(
            (model.google and model.google.method == "deprovision")
            or (model.intune and model.intune.method == "retire")
        )
        if not any(
            selects(model, d, group_serials=group_serials, decommission=decommission) for d in inventory.devices
        ):
            notes.append(f"{where}: Reimage {model.name!r} selects no device in {inventory.file}")
        sel = model.devices
        for i, ou in enumerate(sel.google_ous):
            prefix = ou.rstrip("/") + "/"
            if not any(d.orgUnitPath == ou or d.orgUnitPath.startswith(prefix) for d in inventory.devices):
                notes.append(f"{loaded.source_of('devices', 'google_ous', i)}: org unit {ou} holds no inventory device")
        for i, school in enumerate(sel.schools):
            if not any(d.school == school for d in inventory.devices):
                notes.append(f"{loaded.source_of('devices', 'schools', i)}: school {school} has no inventory device")
        if "intune" not in backends:
            continue
        for i, group in enumerate(sel.intune_groups):
            serials = group_serials.get(group, frozenset())
            where_group = loaded.source_of("devices", "intune_groups", i)
            if not serials:
                notes.append(f"{where_group}: Intune group {group!r} has no managed device as a member")
            unknown = sorted(s for s in serials if s not in by_serial)
            if unknown:
                shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
                notes.append(
                    f"{where_group}: {len(unknown)} member(s) of Intune group {group!r} are not in "
                    f"{inventory.file} and are not reimaged: {shown}"
                )
    return notes
