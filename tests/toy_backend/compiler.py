"""Compile policies + inventory into desired toy resources. Pure: reads only its CompileInput, no I/O.

WebFilter (targets.google_ous, blocked)  → blocklist {ou}: the sorted blocked domains (`*.x` → `x`)
Reimage                                  → erase {serial}|{request} {"erase": method} for every inventory
                                           device the Reimage selects, with the GateFacts the gates judge
"""

from __future__ import annotations

from orchestrator.core.backend import CompileInput
from orchestrator.core.resources import GateFacts, Resource
from orchestrator.inventory.selection import selects
from orchestrator.policy.models import Reimage, WebFilter
from toy_backend.spec import BLOCKLIST, ERASE

ERASE_METHOD = "toy_erase"


def compile_toy(given: CompileInput) -> list[Resource]:
    """Desired toy resources, sorted by id, each traced to the policy lines (and inventory rows) behind it."""
    return sorted([*_blocklists(given), *_erases(given)], key=lambda resource: resource.id)


def _blocklists(given: CompileInput) -> list[Resource]:
    # The policy language allows one WebFilter `blocked` list per org unit (two are a conflict error naming
    # both places), and the engine refuses two resources with one id, so each OU maps to exactly one list.
    out: list[Resource] = []
    for model, loaded in given.policies.of_kind(WebFilter):
        if not model.blocked:
            continue
        for index, ou in enumerate(model.targets.google_ous):
            out.append(
                Resource(
                    BLOCKLIST.id(ou),
                    sorted({domain.removeprefix("*.").lower() for domain in model.blocked}),
                    sources=(str(loaded.source_of("blocked")), str(loaded.source_of("targets", "google_ous", index))),
                    policy=model.name,
                )
            )
    return out


def _erases(given: CompileInput) -> list[Resource]:
    out: list[Resource] = []
    for model, loaded in given.policies.of_kind(Reimage):
        for device in given.inventory.devices:
            if not selects(model, device, group_serials=given.group_serials):
                continue
            out.append(
                Resource(
                    ERASE.id(device.serialNumber, model.request),
                    {"erase": ERASE_METHOD},
                    sources=(str(loaded.source_of("devices")), f"{given.inventory.file}:{device.line}"),
                    policy=model.name,
                    window=model.window,
                    meta={"school": device.school},
                    # Without these the gate refuses the change: typed facts, never loose `meta` defaults.
                    gate=GateFacts(
                        policy=model.name,
                        window=model.window,
                        serial=device.serialNumber,
                        school=device.school or None,
                        method=ERASE_METHOD,
                        max_devices_per_window=model.max_devices_per_window,
                        batch_size=model.batch_size,
                    ),
                )
            )
    return out
