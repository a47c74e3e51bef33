"""Network compiler: WebFilter + LostDevicePolicy + inventory → per-site network Resources. Pure: no I/O.

Resource types (backend "network", key = site name, an Ansible inventory group):

- ``dns_blocklist``: ``{"blocked": [sorted domains], "safesearch": bool, "youtube": "off|moderate|strict"}``.
  Union of every WebFilter whose ``targets.network_sites`` names the site. A wildcard ``*.x`` is normalised
  to ``x``: a DNS block of ``x`` already covers every subdomain. ``youtube`` is ``"off"`` when unset.
- ``mac_quarantine``: sorted lowercase MACs of inventory devices whose ``inventoryStatus`` is lost or
  stolen (and have a ``macAddress``), for each site in ``LostDevicePolicy.network.sites`` when
  ``network.quarantine`` is true, restricted to ``policy.schools`` if set. Found devices are simply
  absent, so applying the list releases them (unless ``on_found.release_quarantine`` is false).
  ``meta["serials"]`` maps MAC → serial for reports.
"""

from __future__ import annotations

from orchestrator.core.resources import Resource, ResourceId
from orchestrator.inventory.devices import Inventory
from orchestrator.policy.grammar import check_domain, check_mac
from orchestrator.policy.loader import PolicySet
from orchestrator.policy.models import LostDevicePolicy, WebFilter

BACKEND = "network"
QUARANTINED_STATUSES = ("lost", "stolen")
_YOUTUBE_RANK = {"off": 0, "moderate": 1, "strict": 2}


def normalise_domain(domain: str) -> str:
    """`*.example.com` → `example.com`; DNS blocking a name blocks its subdomains too."""
    domain = check_domain(domain)
    return domain[2:] if domain.startswith("*.") else domain


def compile_network(policies: PolicySet, inventory: Inventory) -> list[Resource]:
    """Desired network resources, sorted by id."""
    return sorted(_dns_blocklists(policies) + _quarantines(policies, inventory), key=lambda r: r.id)


def _dns_blocklists(policies: PolicySet) -> list[Resource]:
    by_site: dict[str, Resource] = {}
    for model, loaded in policies.of_kind(WebFilter):
        for index, site in enumerate(model.targets.network_sites):
            resource = by_site.setdefault(
                site,
                Resource(
                    id=ResourceId(BACKEND, "dns_blocklist", site),
                    value={"blocked": [], "safesearch": False, "youtube": "off"},
                    policy=model.name,
                    meta={"site": site},
                ),
            )
            value = resource.value
            value["blocked"] = sorted(set(value["blocked"]) | {normalise_domain(d) for d in model.blocked})
            value["safesearch"] = value["safesearch"] or bool(model.safe_search)
            if model.youtube and _YOUTUBE_RANK[model.youtube] > _YOUTUBE_RANK[value["youtube"]]:
                value["youtube"] = model.youtube
            sources = [str(loaded.source_of("targets", "network_sites", index))]
            for setting in ("blocked", "safe_search", "youtube"):
                if getattr(model, setting) not in (None, []):
                    sources.append(str(loaded.source_of(setting)))
            resource.sources = tuple(dict.fromkeys((*resource.sources, *sources)))
            if model.name not in (resource.policy or "").split(","):
                resource.policy = f"{resource.policy},{model.name}"
    return list(by_site.values())


def _quarantines(policies: PolicySet, inventory: Inventory) -> list[Resource]:
    by_site: dict[str, Resource] = {}
    for model, loaded in policies.of_kind(LostDevicePolicy):
        if not model.network.quarantine:
            continue
        schools = set(model.schools)
        serials: dict[str, str] = {}
        # with on_found.release_quarantine false a found device stays quarantined until it is marked active
        statuses = QUARANTINED_STATUSES if model.on_found.release_quarantine else (*QUARANTINED_STATUSES, "found")
        for device in inventory.with_status(*statuses):
            if not device.macAddress or (schools and device.school not in schools):
                continue
            serials[check_mac(device.macAddress)] = device.serialNumber
        for index, site in enumerate(model.network.sites):
            resource = by_site.setdefault(
                site,
                Resource(
                    id=ResourceId(BACKEND, "mac_quarantine", site),
                    value=[],
                    policy=model.name,
                    meta={"site": site, "serials": {}},
                ),
            )
            merged = {**resource.meta["serials"], **serials}
            resource.value = sorted(merged)
            resource.meta["serials"] = dict(sorted(merged.items()))
            sources = (str(loaded.source_of("network", "sites", index)), str(loaded.source_of("network")))
            resource.sources = tuple(dict.fromkeys((*resource.sources, *sources)))
            if model.name not in (resource.policy or "").split(","):
                resource.policy = f"{resource.policy},{model.name}"
    return list(by_site.values())
