"""Extra vars for Ansible written as data: every string is marked unsafe, so Ansible never templates it.

Plain extra vars (JSON on the command line or `-e @file`) ARE templated by ansible-core when used: a value
such as `{{ lookup('pipe','id') }}` would run `id`. Each string is written as
`{"__ansible_unsafe": "..."}` in a JSON vars file, which Ansible loads as literal, never-templated text.
(The YAML `!unsafe` tag is not used: it re-resolves scalars, so `!unsafe "off"` became the boolean false.)
Values are also validated against the policy grammars before they get here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def mark_unsafe(value: Any) -> Any:
    """`value` with every string (including dict keys' values, not the keys) wrapped as unsafe."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return {"__ansible_unsafe": value}
    if isinstance(value, dict):
        return {str(k): mark_unsafe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mark_unsafe(v) for v in value]
    raise TypeError(f"cannot pass {type(value).__name__} to Ansible as data")


def dump_unsafe_vars(extravars: dict[str, Any]) -> str:
    """JSON text for `ansible-playbook -e @file` with every string value marked unsafe."""
    return json.dumps(mark_unsafe(extravars), indent=1, sort_keys=True)


def write_unsafe_vars(path: Path, extravars: dict[str, Any]) -> Path:
    path.write_text(dump_unsafe_vars(extravars), encoding="utf-8")
    path.chmod(0o600)
    return path
