"""Policy models → YAML text with comments (pure: no I/O; `orchestrator export` writes what this returns).

A file is a list of documents, each preceded by its comment lines; fields keep the model's order (kind, name,
description, targets, then the settings) and only the fields the exporter set are written, so the text reads
like a hand-written policy and two exports of the same settings are byte-identical (apart from the one
`# Read at:` line, which `same_settings` ignores). Text that looks like an e-mail address is refused: an
exported file never carries a person's address (student PII).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from orchestrator.policy.models import PolicyDoc

READ_AT = "# Read at: "
EXPORTED_BY = "# Exported by `orchestrator export`"
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")


@dataclass(frozen=True)
class ExportedDoc:
    """One policy document and the comment lines written above it (without the leading `# `)."""

    model: PolicyDoc
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportFile:
    """One file of an export: a relative POSIX path, its header lines, its documents, and what was left out."""

    path: str
    header: tuple[str, ...]
    documents: tuple[ExportedDoc, ...]
    read_at: str = ""
    left_out: tuple[str, ...] = ()


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key (`targets:\\n  google_ous:\\n    - /Students`), as the sample policies are."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _comment(lines: tuple[str, ...] | list[str]) -> str:
    for line in lines:
        if _EMAIL.search(line):
            raise ValueError("an exported comment contains an e-mail address")
    return "".join(f"# {line}\n".replace("# \n", "#\n") for line in lines)


def render_document(doc: ExportedDoc) -> str:
    """The YAML of one document: its comments, then the fields the exporter set, in the model's order."""
    data = doc.model.model_dump(mode="json", exclude_unset=True, by_alias=True)
    for text in _strings(data):
        if _EMAIL.search(text):
            raise ValueError(f"{doc.model.name}: a value looks like an e-mail address; exports never carry one")
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)
    return _comment(doc.comments) + body


def render_file(file: ExportFile) -> str:
    """The whole file: the header (with the `# Read at:` line), then the documents separated by `---`."""
    head = _comment(file.header)
    if file.read_at:
        head += f"{READ_AT}{file.read_at}\n"
    if file.left_out:
        head += _comment(["Left out (the console has them, the policy language cannot say them exactly):"])
        head += _comment([f"  - {item}" for item in file.left_out])
    return head + "---\n".join(render_document(doc) for doc in file.documents)


def same_settings(old: str, new: str) -> bool:
    """Whether two renderings differ only in their `# Read at:` line (a re-export with nothing changed)."""

    def strip(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith(READ_AT)]

    return strip(old) == strip(new)
