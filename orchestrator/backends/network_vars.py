"""Extra vars for Ansible written as data: every string is tagged `!unsafe`, so Ansible never templates it.

Plain extra vars (JSON on the command line or `-e @file`) ARE templated by ansible-core when used: a value
such as `{{ lookup('pipe','id') }}` would run `id`. Tagging each string `!unsafe` makes Ansible treat it as
literal text. Values are also validated against the policy grammars before they get here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class UnsafeStr(str):
    """A string Ansible must not template."""


class _UnsafeDumper(yaml.SafeDumper):
    pass


def _represent_unsafe(dumper: yaml.SafeDumper, value: UnsafeStr) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(value), style='"')


_UnsafeDumper.add_representer(UnsafeStr, _represent_unsafe)


def _tag(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return UnsafeStr(value)
    if isinstance(value, dict):
        return {str(k): _tag(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tag(v) for v in value]
    raise TypeError(f"cannot pass {type(value).__name__} to Ansible as data")


def dump_unsafe_vars(extravars: dict[str, Any]) -> str:
    """YAML text for `ansible-playbook -e @file` with every string value tagged `!unsafe`."""
    return yaml.dump(_tag(extravars), Dumper=_UnsafeDumper, sort_keys=True, default_flow_style=False)


def write_unsafe_vars(path: Path, extravars: dict[str, Any]) -> Path:
    path.write_text(dump_unsafe_vars(extravars), encoding="utf-8")
    path.chmod(0o600)
    return path
