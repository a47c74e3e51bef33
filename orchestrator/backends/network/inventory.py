"""Sites of the Ansible inventory (YAML): every group is a site; its hosts include its children's."""

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
