"""Safe YAML → plain Python, remembering the line of every node, within fixed limits.

Only YAML's core types are built (`safe_load`-equivalent: no Python objects). Duplicate keys and merge
keys are refused because both silently drop settings.

Documents are built from the parser's event stream with an explicit stack, not by recursion over a node
graph, so hostile input meets a limit and a `file:line: field: message (allowed)` diagnostic instead of a
RecursionError (deep nesting), a ValueError from int() (a 5,000-digit number) or an exponential walk (a
"billion laughs" of nested aliases). An alias shares the anchored value; its expanded size still counts
against the node limit, because validation walks it as a tree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.reader import ReaderError
from yaml.resolver import Resolver

from orchestrator.core.errors import Diagnostic

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_C_PARSER = _Loader is not yaml.SafeLoader  # libyaml reports reader errors as byte offsets
Path = tuple[str | int, ...]

# Limits. The sample district's files are a few KB, nest 5 levels and use no aliases; these leave ample room.
MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 50  # nested mappings/sequences in one document
MAX_NODES = 100_000  # nodes in one document, counting every node an alias expands to
MAX_ALIASES = 1_000  # alias uses in one document
MAX_NUMBER_CHARS = 40  # an int or float written with more characters than this is refused

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}
_MERGE = f"{_TAG}merge"
_SEQ, _MAP = f"{_TAG}seq", f"{_TAG}map"
_NUMBER_TAGS = {f"{_TAG}int", f"{_TAG}float"}
_NO_KEY = object()  # a mapping waiting for its next key
_SKIP = object()  # a mapping whose current key was refused: its value is parsed, then dropped


@dataclass
class YamlDocument:
    file: str
    line: int
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    refused: set[Path] = field(default_factory=set)  # values already reported here (now None): no echo

    def was_refused(self, path: Path) -> bool:
        """Whether `path` is at or under a value the YAML reader refused (its schema error would be noise)."""
        return any(path[:end] in self.refused for end in range(len(path) + 1))

    def line_of(self, path: Path) -> int:
        """Line of the deepest known node on `path` (a bad list item falls back to its list's line)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return self.line


# Display helpers: a diagnostic is one line, `file:line: field: message (allowed)`, whatever the input held.
_PLAIN_SEGMENT = re.compile(r"[\w-]{1,60}")
_UNPRINTABLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # controls, format, surrogates, line separators


def field_path(parts: Iterable[str | int]) -> str:
    """`targets.google_ous[0]`; a key that is not a plain word is shown quoted with \\u escapes.

    Why: a key may hold spaces, colons, emoji or line breaks; written raw, it would break the
    `file:line: field: message` form that editors and CI annotations parse.
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_SEGMENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            shown = part[:40] + ("..." if len(part) > 40 else "")
            out += '["' + "".join(ch if _PLAIN_SEGMENT.fullmatch(ch) else _escape(ch) for ch in shown) + '"]'
    return out


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str, limit: int = 400) -> str:
    """One line of at most `limit` characters: controls, line separators and lone surrogates escaped."""
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _UNPRINTABLE else ch for ch in text)


def tidy(diagnostic: Diagnostic) -> Diagnostic:
    """The same diagnostic, safe to print as one line (bounded, no line breaks or control characters)."""
    return Diagnostic(
        printable(diagnostic.file, 300),
        diagnostic.line,
        printable(diagnostic.path, 200),
        printable(diagnostic.message),
        printable(diagnostic.allowed, 600),
    )


class _Stop(Exception):
    """A limit was hit: the rest of the file is not read (its diagnostic is already recorded)."""


@dataclass
class _Frame:
    """An open mapping or sequence on the build stack."""

    value: Any
    path: Path
    line: int
    keep: bool  # False under a refused key or tag: parsed for syntax, then dropped
    refused: bool  # an unsupported tag: the node's value is None
    anchor: str | None
    nodes_before: int
    key: Any = _NO_KEY
    key_line: int = 0


class _Builder:
    def __init__(self, file: str, problems: list[Diagnostic]):
        self.file = file
        self.problems = problems
        self.constructor = SafeConstructor()
        self.resolver = Resolver()

    # -- documents ------------------------------------------------------------------------------------
    def documents(self, text: str) -> Iterator[YamlDocument]:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.DocumentStartEvent):
                self._start()
            elif isinstance(event, yaml.DocumentEndEvent):
                if self.root is not None:  # an empty document, e.g. after a trailing `---`, is skipped
                    yield YamlDocument(self.file, self.root_line, self.root, self.lines, self.refused)
            elif isinstance(event, yaml.ScalarEvent):
                self._scalar(event)
            elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                self._open(event)
            elif isinstance(event, yaml.CollectionEndEvent):
                self._close()
            elif isinstance(event, yaml.AliasEvent):
                self._alias(event)

    def _start(self) -> None:
        self.stack: list[_Frame] = []
        self.lines: dict[Path, int] = {}
        self.refused: set[Path] = set()
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.nodes = 0
        self.aliases = 0
        self.root: Any = None
        self.root_line = 1

    # -- events ---------------------------------------------------------------------------------------
    def _scalar(self, event: yaml.ScalarEvent) -> None:
        path, keep = self._place()
        self._count(1, event, path)
        value, kind = self._construct(event, path, keep)
        if event.anchor:
            self.anchors[event.anchor] = (value, 1)
        self._add(value, _line(event), path, keep, kind)

    def _open(self, event: yaml.SequenceStartEvent | yaml.MappingStartEvent) -> None:
        path, keep = self._place()
        if len(self.stack) >= MAX_DEPTH:
            self._limit(event, path, f"nesting is deeper than {MAX_DEPTH} levels", f"at most {MAX_DEPTH}")
        before = self.nodes
        self._count(1, event, path)
        is_map = isinstance(event, yaml.MappingStartEvent)
        tag = event.tag
        refused = tag not in (None, "!", _MAP if is_map else _SEQ)
        if refused:
            self._problem(keep, event, path, f"unsupported YAML tag {tag!r}", "plain YAML values only (no ! tags)")
        if event.anchor:
            self.open_anchors.add(event.anchor)
        frame = _Frame({} if is_map else [], path, _line(event), keep and not refused, refused, event.anchor, before)
        self.stack.append(frame)

    def _close(self) -> None:
        frame = self.stack.pop()
        value = None if frame.refused else frame.value
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, self.nodes - frame.nodes_before)
        _, keep = self._place()  # the parent is as it was when this node opened
        self._add(value, frame.line, frame.path, keep, "node")

    def _alias(self, event: yaml.AliasEvent) -> None:
        path, keep = self._place()
        name = event.anchor
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            self._limit(event, path, f"more than {MAX_ALIASES} alias uses in one document", f"at most {MAX_ALIASES}")
        value: Any = None
        if name in self.open_anchors:
            self._problem(keep, event, path, f"recursive alias *{name} refers to a node that contains it", "")
        elif name not in self.anchors:
            self._problem(keep, event, path, f"undefined alias *{name}", "define &" + name + " before using it")
        else:
            value, size = self.anchors[name]
            self._count(size, event, path, alias=name)
        self._add(value, _line(event), path, keep, "node")

    # -- building -------------------------------------------------------------------------------------
    def _place(self) -> tuple[Path, bool]:
        """Path of the node about to be added and whether it is kept."""
        if not self.stack:
            return (), True
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, len(top.value)), top.keep
        if top.key is _NO_KEY or top.key is _SKIP:  # a key, or the value of a refused key
            return top.path, False
        return (*top.path, top.key), top.keep

    def _add(self, value: Any, line: int, path: Path, keep: bool, kind: str) -> None:
        """Attach a finished node to its parent; `kind` is scalar, refused (already reported), merge or node."""
        if not self.stack:
            self.root, self.root_line = value, line
            self.lines[()] = line
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            if keep:
                self.lines[path] = line
            top.value.append(value)
            return
        if top.key is _NO_KEY:
            self._key(top, value, line, kind)
            return
        if top.key is not _SKIP:
            top.value[top.key] = value
            if top.keep:
                self.lines[(*top.path, top.key)] = top.key_line
        top.key = _NO_KEY

    def _key(self, top: _Frame, key: Any, line: int, kind: str) -> None:
        top.key_line = line
        top.key = _SKIP
        where = field_path(top.path)
        if kind == "merge":
            self._report(top.keep, line, where, "YAML merge keys (<<) are not supported", "write the keys out")
        elif kind == "node":
            self._report(top.keep, line, where, "a key must be plain text, not a list, mapping or alias", "text keys")
        elif kind == "scalar":
            text = key if isinstance(key, str) else str(key)
            if text in top.value:
                self._report(
                    top.keep, line, field_path((*top.path, text)), "duplicate key", "each key once per mapping"
                )
            else:
                top.key = text

    def _construct(self, event: yaml.ScalarEvent, path: Path, keep: bool) -> tuple[Any, str]:
        """The Python value of a scalar and `scalar`/`merge`, or (None, `refused`) after a diagnostic."""
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _MERGE:
            return event.value, "merge"
        if tag not in _SCALAR_TAGS:
            self._problem(keep, event, path, f"unsupported YAML tag {tag!r}", "plain YAML values only (no ! tags)")
            return None, "refused"
        if tag in _NUMBER_TAGS and len(event.value) > MAX_NUMBER_CHARS:
            self._problem(
                keep,
                event,
                path,
                f"number written with {len(event.value)} characters",
                f"numbers of at most {MAX_NUMBER_CHARS} characters",
            )
            return None, "refused"
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return SafeConstructor.yaml_constructors[tag](self.constructor, node), "scalar"
        except (ValueError, ArithmeticError, TypeError, yaml.YAMLError) as exc:
            kind = {"timestamp": "date"}.get(tag.removeprefix(_TAG), tag.removeprefix(_TAG))
            self._problem(keep, event, path, f"{event.value[:60]!r} is not a valid {kind}: {exc}", f"a real {kind}")
            return None, "refused"

    # -- limits and problems --------------------------------------------------------------------------
    def _count(self, size: int, event: yaml.Event, path: Path, alias: str | None = None) -> None:
        self.nodes += size
        if self.nodes > MAX_NODES:
            what = f"alias *{alias} expands the document" if alias else "the document has"
            self._limit(event, path, f"{what} past {MAX_NODES} nodes", f"at most {MAX_NODES} nodes, aliases expanded")

    def _limit(self, event: yaml.Event, path: Path, message: str, allowed: str) -> None:
        self._report(True, _line(event), field_path(path), message, allowed)
        raise _Stop

    def _problem(self, keep: bool, event: yaml.Event, path: Path, message: str, allowed: str) -> None:
        if keep:
            self.refused.add(path)
        self._report(keep or not self.stack or self.stack[-1].keep, _line(event), field_path(path), message, allowed)

    def _report(self, show: bool, line: int, path: str, message: str, allowed: str) -> None:
        if show:
            self.problems.append(Diagnostic(self.file, line, path, message, allowed))


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark else 1


def read_documents(file: str, text: str, problems: list[Diagnostic]) -> Iterator[YamlDocument]:
    """Yield each non-empty document of one file; syntax errors and limits become diagnostics."""
    builder = _Builder(file, problems)
    try:
        yield from builder.documents(text)
    except _Stop:
        return
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        message = str(exc.problem or exc.context or "invalid YAML")
        if exc.context and exc.context_mark and exc.problem:
            message += f" ({exc.context} on line {exc.context_mark.line + 1})"
        problems.append(Diagnostic(file, line, "", f"YAML syntax error: {message}", "valid YAML"))
    except ReaderError as exc:
        problems.append(
            Diagnostic(
                file,
                _line_at(text, exc.position),
                "",
                f"unacceptable character #x{exc.character:04x}: {exc.reason}"
                if isinstance(exc.character, int)
                else f"unreadable text: {exc.reason}",
                "printable UTF-8 text; tabs and line breaks are the only control characters",
            )
        )
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # never a traceback for bad input
        problems.append(Diagnostic(file, 1, "", f"YAML error: {type(exc).__name__}: {exc}", "valid YAML"))


def _line_at(text: str, position: int) -> int:
    """Line of a reader error; libyaml counts bytes of the UTF-8 text, the pure-Python reader characters."""
    if _C_PARSER:
        return text.encode("utf-8", "surrogatepass")[:position].count(b"\n") + 1
    return text[:position].count("\n") + 1
