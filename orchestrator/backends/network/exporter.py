"""The inverse of the network compiler: each site's reported resolver blocklist → one WebFilter. Pure: no I/O.

`NetworkBackend.report()` runs playbooks/report.yml per site in check mode; each resolver reports the
blocklist its file holds (`blocked`, `safesearch`, `youtube`) and whether dns_filter.yml's own template writes
that value back byte for byte (`reproduces`). A site whose resolvers all reproduce one value, and have loaded
it, becomes `network/<site>.yaml` with one WebFilter (`dns-<site>`) targeting that site alone:

    blocked → blocked (the compiler writes `*.d` as `d`, so exported domains have no wildcard)
    safesearch true → safe_search: true        youtube moderate|strict → youtube (off is the default)

Everything else stays as it is on the gear (no policy names the site, so a plan never touches it) and is
named: a file with lines the template does not write (edited by hand, or written for another site),
resolvers of one site that disagree, a resolver that has not loaded its file, gear the report cannot read
(FortiGate, Meraki), a site whose report failed, and the MAC quarantine sets (they follow the inventory's
lost devices through a LostDevicePolicy, which also locks devices in every console: never made up from gear).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import Any

from orchestrator.backends.network.backend import validate_value
from orchestrator.core.backend import ExportInput
from orchestrator.core.resources import Resource
from orchestrator.policy.models import Targets, WebFilter
from orchestrator.policy.writer import ExportedDoc, ExportFile

_MAX_SLUG = 63 - len("dns-")
VALUE_KEYS = ("blocked", "safesearch", "youtube")


def site_slug(site: str) -> str:
    """`jefferson_high` → `jefferson-high` (file and policy names); a hash keeps long or clashing names apart."""
    slug = re.sub(r"[^a-z0-9]+", "-", site.lower()).strip("-") or "site"
    if len(slug) > _MAX_SLUG or slug != site:
        slug = slug[: _MAX_SLUG - 9].rstrip("-") + "-" + hashlib.sha256(site.encode()).hexdigest()[:8]
    return slug


def _blocklist(resource: Resource) -> tuple[dict[str, Any] | None, list[str]]:
    """The one value every resolver of the site holds, or None and why not."""
    site = resource.meta["site"]
    if resource.meta.get("failure"):
        return None, [f"site {site}: the DNS filters could not be read: {resource.meta['failure']}"]
    why = [f"site {site}: {h} is gear the report cannot read yet" for h in resource.meta.get("unreadable") or []]
    reports: dict[str, dict[str, Any]] = resource.meta.get("hosts") or {}
    present = {h: r for h, r in sorted(reports.items()) if r.get("exists") is True}
    if not present:
        return None, why  # no blocklist file anywhere: nothing is set on this site's resolvers
    why += [
        f"site {site}: {h} has no blocklist file while other resolvers of the site have one"
        for h in reports
        if h not in present
    ]
    for host, report in present.items():
        if report.get("reproduces") is not True:
            why.append(
                f"site {site}: {host}'s {report.get('file')} has lines the filter does not write (edited by hand, or "
                "written for another site)"
            )
        if report.get("loaded") is not True:
            why.append(f"site {site}: {host} has not loaded its current blocklist file (a plan would reload it)")
    values = {}
    for host, report in present.items():
        try:
            values[host] = validate_value("dns_blocklist", {k: report.get(k) for k in VALUE_KEYS})
        except ValueError as exc:
            why.append(f"site {site}: {host}: {exc}")
    if len({repr(v) for v in values.values()}) > 1:
        why.append(f"site {site}: its resolvers hold different blocklists ({', '.join(sorted(values))})")
    if why or not values:
        return None, why
    return next(iter(values.values())), []


def _quarantine(resource: Resource) -> list[str]:
    site = resource.meta["site"]
    if resource.meta.get("failure"):
        return [f"site {site}: the quarantine routers could not be read: {resource.meta['failure']}"]
    notes = [f"site {site}: {h} is gear the report cannot read yet" for h in resource.meta.get("unreadable") or []]
    for host, report in sorted((resource.meta.get("hosts") or {}).items()):
        macs = sorted(set(report.get("macs") or []) | set(report.get("live") or []))
        if macs:
            notes.append(
                f"site {site}: {host} quarantines {len(macs)} MAC(s) ({', '.join(macs)}): not exported, quarantine "
                "follows the inventory's lost devices (mark them lost, with a LostDevicePolicy naming this site)"
            )
    return notes


def _web_filter(site: str, slug: str, value: dict[str, Any]) -> WebFilter:
    settings: dict[str, Any] = {}
    if value["blocked"]:
        settings["blocked"] = value["blocked"]
    if value["safesearch"]:
        settings["safe_search"] = True
    if value["youtube"] != "off":
        settings["youtube"] = value["youtube"]
    return WebFilter(
        kind="WebFilter",
        name=f"dns-{slug}",
        description=f"DNS filter on the resolvers of site {site}",
        targets=Targets(network_sites=[site]),
        **settings,
    )


def export_network(given: ExportInput) -> list[ExportFile]:
    """One ExportFile per site (sorted) with a blocklist or something left out."""
    if given.subtree is not None:
        why = f"--ou {given.subtree} limits the export to Google org units; the network was not exported"
        return [ExportFile("network/sites.yaml", (), (), left_out=(why,))]
    by_site: dict[str, dict[str, Resource]] = defaultdict(dict)
    for resource in given.observed:
        if resource.id.backend == "network":
            by_site[resource.id.key][resource.id.type] = resource
    inventory = given.section.inventory if given.section is not None else "the Ansible inventory"
    files = []
    for site, found in sorted(by_site.items()):
        slug = site_slug(site)
        value, left_out = _blocklist(found["dns_blocklist"]) if "dns_blocklist" in found else (None, [])
        if "mac_quarantine" in found:
            left_out += _quarantine(found["mac_quarantine"])
        documents = ()
        if value is not None:
            comment = f"The blocklist every resolver of site {site} holds, read in check mode."
            documents = (ExportedDoc(_web_filter(site, slug, value), (comment,)),)
        header = (
            f"Exported by `orchestrator export` from the network gear of site {site} ({inventory}).",
            "Read with playbooks/report.yml in check mode; nothing on the gear was changed.",
        )
        if documents or left_out:
            files.append(
                ExportFile(
                    f"network/{slug}.yaml",
                    header,
                    documents,
                    read_at=given.read_at,
                    left_out=tuple(dict.fromkeys(left_out)),
                )
            )
    return files
