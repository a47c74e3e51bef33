"""Safe YAML → plain Python, remembering the line of every node.

Only YAML's core types are built (`safe_load`-equivalent: no Python objects). Duplicate keys and merge
keys are refused because both silently drop settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from orchestrator.errors import Diagnostic

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Path = tuple[str | int, ...]
_CORE_TAGS = {
    f"tag:yaml.org,2002:{name}" for name in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp", "merge")
}


@dataclass
class YamlDocument:
    file: str
    line: int
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """Line of the deepest known node on `path` (a bad list item falls back to its list's line)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return self.line


class _Builder:
    def __init__(self, file: str, problems: list[Diagnostic]):
        self.file = file
        self.problems = problems
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
        lines[path] = node.start_mark.line + 1
        if node.tag not in _CORE_TAGS:
            self.problems.append(
                Diagnostic(
                    self.file,
                    node.start_mark.line + 1,
                    ".".join(str(p) for p in path),
                    f"unsupported YAML tag {node.tag!r}",
                    "plain YAML values only (no ! tags)",
                )
            )
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, lines)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i), lines) for i, child in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path, lines: dict[Path, int]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            dotted = ".".join(str(p) for p in path)
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append(
                    Diagnostic(self.file, line, dotted, "YAML merge keys (<<) are not supported", "write the keys out")
                )
                continue
            key = self.constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                self.problems.append(
                    Diagnostic(
                        self.file,
                        line,
                        ".".join(str(p) for p in (*path, key)),
                        "duplicate key",
                        "each key once per mapping",
                    )
                )
                continue
            lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key), lines)
            lines[(*path, key)] = line
        return result


def read_documents(file: str, text: str, problems: list[Diagnostic]) -> Iterator[YamlDocument]:
    """Yield each non-empty document of one file; syntax errors become diagnostics."""
    builder = _Builder(file, problems)
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            lines: dict[Path, int] = {}
            data = builder.build(node, (), lines)
            if data is None:  # an empty document, e.g. after a trailing `---`
                continue
            yield YamlDocument(file=file, line=node.start_mark.line + 1, data=data, lines=lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problems.append(Diagnostic(file, line, "", f"YAML syntax error: {exc.problem or exc}", "valid YAML"))
    except yaml.YAMLError as exc:
        problems.append(Diagnostic(file, 1, "", f"YAML error: {exc}", "valid YAML"))
