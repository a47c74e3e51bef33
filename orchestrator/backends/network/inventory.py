"""Sites of the Ansible inventory (YAML): every group is a site; its hosts include its children's.

Role groups (`ROLES`) pick the playbook a host runs, they are not sites; `report_sites` picks the sites an
export reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestrator.core.errors import ConfigError


def read_sites(path: Path) -> dict[str, list[str]]:
    """Group name → sorted host names, for a YAML inventory (`all: {hosts, children, vars}`)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the Ansible inventory: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: an Ansible YAML inventory is a mapping of groups")
    groups: dict[str, set[str]] = {}

    def walk(name: str, body: Any) -> set[str]:
        body = body if isinstance(body, dict) else {}
        hosts = set((body.get("hosts") or {}).keys())
        for child, child_body in (body.get("children") or {}).items():
            hosts |= walk(str(child), child_body)
        groups[name] = groups.get(name, set()) | hosts
        return hosts

    for name, body in raw.items():
        walk(str(name), body)
    groups.pop("all", None)
    groups.pop("ungrouped", None)
    return {name: sorted(hosts) for name, hosts in sorted(groups.items())}


# role group → (resource type, whether playbooks/report.yml can read its gear)
ROLES: dict[str, tuple[str, bool]] = {
    "k12_dns_filters": ("dns_blocklist", True),
    "k12_meraki_networks": ("dns_blocklist", False),
    "k12_fortigates": ("dns_blocklist", False),
    "k12_quarantine_routers": ("mac_quarantine", True),
}
FORTIGATE_QUARANTINE = ("k12_fortigates", "mac_quarantine")  # FortiGates hold both types


def role_hosts(sites: dict[str, list[str]], rtype: str, *, readable: bool) -> set[str]:
    """Hosts of the role groups that manage `rtype` (and that the report can, or cannot, read)."""
    groups = {g for g, (t, can) in ROLES.items() if t == rtype and can == readable}
    if rtype == FORTIGATE_QUARANTINE[1] and not readable:
        groups.add(FORTIGATE_QUARANTINE[0])
    return {h for g in groups for h in sites.get(g, [])}


def report_sites(sites: dict[str, list[str]]) -> list[str]:
    """The groups an export reads: every non-role group holding gear, except a parent whose every gear host is
    also in a smaller group (its children are read instead; a policy names the innermost site)."""
    gear = {h for g in ROLES for h in sites.get(g, [])}
    candidates = {g: set(hosts) & gear for g, hosts in sites.items() if g not in ROLES and set(hosts) & gear}
    kept = []
    for group, hosts in candidates.items():
        smaller = [other for o, other in candidates.items() if o != group and len(other) < len(hosts)]
        if not all(any(h in other for other in smaller) for h in hosts):
            kept.append(group)
    return sorted(kept)
