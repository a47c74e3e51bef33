"""Load policy files into validated models, keeping file:line for every document and field.

Shared baselines (`include:` documents, per-district overrides): see `baselines`.

Every problem in a run is collected (syntax, schema, cross-references, conflicts) and raised once as a
PolicyError, so a person fixes everything in one pass. Bad input never crashes or hangs: files are size-
limited, YAML is read within limits (yamlnodes), and every diagnostic is tidied to one printable line.
"""

from __future__ import annotations

import typing
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.core.errors import Diagnostic, PolicyError
from orchestrator.policy.baselines import baseline_documents, is_include, merge, overlay
from orchestrator.policy.models import (
    KINDS,
    PolicyDoc,
)
from orchestrator.policy.references import check_conflicts, check_references, did_you_mean
from orchestrator.policy.yamlnodes import MAX_FILE_BYTES, YamlDocument, field_path, read_documents, tidy

P = TypeVar("P", bound=PolicyDoc)
MAX_PROBLEMS_PER_DOCUMENT = 50  # beyond this, one summary line: 100,000 bad list items are one mistake


@dataclass(frozen=True)
class Source:
    """Where a setting came from: shown in plans and journals."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class LoadedPolicy:
    model: PolicyDoc
    doc: YamlDocument

    @property
    def source(self) -> Source:
        return Source(self.doc.file, self.doc.line)

    def source_of(self, *path: str | int) -> Source:
        return Source(self.doc.file, self.doc.line_of(path))


@dataclass
class OverlaidPolicy(LoadedPolicy):
    """A baseline document with a district's overrides: fields the district names come from its document
    (`doc`), the others from the baseline's (`base`), each with its own file:line."""

    base: YamlDocument | None = None
    overridden: frozenset[str] = frozenset()

    def source_of(self, *path: str | int) -> Source:
        if self.base is not None and path and path[0] not in self.overridden:
            return Source(self.base.file, self.base.line_of(path))
        return Source(self.doc.file, self.doc.line_of(path))


@dataclass
class PolicySet:
    root: str
    policies: list[LoadedPolicy] = field(default_factory=list)

    def of_kind(self, kind: type[P]) -> list[tuple[P, LoadedPolicy]]:
        return [(p.model, p) for p in self.policies if isinstance(p.model, kind)]  # type: ignore[misc]

    def by_name(self, kind: type[P], name: str) -> tuple[P, LoadedPolicy] | None:
        for model, loaded in self.of_kind(kind):
            if model.name == name:
                return model, loaded
        return None

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = defaultdict(int)
        for p in self.policies:
            result[p.model.kind] += 1
        return dict(result)


def policy_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_policies(root: str | Path, *, display_root: Path | None = None) -> PolicySet:
    """Load and validate every policy under `root`; raise PolicyError listing every problem found."""
    root = Path(root)
    problems: list[Diagnostic] = []
    result = PolicySet(root=str(root))
    if not root.exists():
        raise PolicyError([Diagnostic(str(root), 0, "", "policy directory does not exist", "a folder of .yaml files")])
    base = display_root or Path.cwd()
    own: list[YamlDocument] = []
    includes: list[tuple[YamlDocument, Path]] = []
    for path in policy_files(root):
        for doc in _documents(path, base, problems):
            if is_include(doc):
                includes.append((doc, path))
            else:
                own.append(doc)
    included = baseline_documents(includes, lambda p: _documents(p, base, problems), policy_files, problems)

    def loaded(doc: YamlDocument) -> LoadedPolicy | None:
        model = _validate(doc, problems)
        return None if model is None else LoadedPolicy(model, doc)

    def overlaid(baseline: LoadedPolicy, doc: YamlDocument) -> LoadedPolicy | None:
        merged, fields = overlay(baseline.doc, doc)
        model = _validate(merged, problems)
        return None if model is None else OverlaidPolicy(model, merged, base=baseline.doc, overridden=fields)

    result.policies = merge(included, own, loaded, overlaid)
    problems += check_references(result)
    problems += check_conflicts(result)
    if problems:
        raise PolicyError([tidy(p) for p in problems])
    return result


def _documents(path: Path, base: Path, problems: list[Diagnostic]) -> list[YamlDocument]:
    shown = _display(path, base)
    text = _read(path, shown, problems)
    return [] if text is None else list(read_documents(shown, text, problems))


def _read(path: Path, shown: str, problems: list[Diagnostic]) -> str | None:
    """The file's text, or None after a diagnostic: too large, unreadable or not UTF-8 (with its line)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        problems.append(Diagnostic(shown, 1, "", f"cannot read file: {exc.strerror or exc}", "a readable file"))
        return None
    if len(data) > MAX_FILE_BYTES:
        problems.append(
            Diagnostic(shown, 1, "", f"file is larger than {MAX_FILE_BYTES} bytes", f"at most {MAX_FILE_BYTES} bytes")
        )
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.append(Diagnostic(shown, line, "", f"byte 0x{data[exc.start]:02x} is not UTF-8 text", "UTF-8 text"))
        return None


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _validate(doc: YamlDocument, problems: list[Diagnostic]) -> PolicyDoc | None:
    if not isinstance(doc.data, dict):
        problems.append(
            Diagnostic(doc.file, doc.line, "", "a policy document must be a mapping", "keys kind, name, ...")
        )
        return None
    kind = doc.data.get("kind")
    model_cls = KINDS.get(kind) if isinstance(kind, str) else None
    if model_cls is None:
        allowed = ", ".join(KINDS)
        guess = did_you_mean(str(kind), KINDS)
        shown = _short(kind)
        problems.append(
            Diagnostic(doc.file, doc.line_of(("kind",)), "kind", f"unknown kind {shown}{guess}", f"one of {allowed}")
        )
        return None
    try:
        return model_cls.model_validate(doc.data)
    except ValidationError as exc:
        errors = [
            e
            for e in exc.errors()
            if e["type"] == "extra_forbidden" or not doc.was_refused(_plain_loc(e["loc"], doc.data))
        ]
        for error in errors[:MAX_PROBLEMS_PER_DOCUMENT]:
            problems.append(_diagnostic(doc, model_cls, error))
        if len(errors) > MAX_PROBLEMS_PER_DOCUMENT:
            more = len(errors) - MAX_PROBLEMS_PER_DOCUMENT
            problems.append(
                Diagnostic(
                    doc.file, doc.line, "", f"{more} more problems in this document are not shown", "fix the above"
                )
            )
        return None


def _plain_loc(loc: tuple[str | int, ...], data: Any) -> tuple[str | int, ...]:
    """pydantic's error location without its union tags (`function-after[...]`, `[key]`).

    A part that is a key of the document is kept even if it contains `[`: a user's key `d[escription`
    is not a tag, and dropping it left an empty location (an IndexError found by the fuzz test).
    """
    plain: list[str | int] = []
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            current = current[part]
        elif isinstance(part, str) and "[" in part:
            continue
        else:
            current = None
        plain.append(part)
    return tuple(plain)


def _diagnostic(doc: YamlDocument, model_cls: type[BaseModel], error: Any) -> Diagnostic:
    loc = _plain_loc(error["loc"], doc.data)
    path = field_path(p if isinstance(p, int) else str(p) for p in loc)
    line = doc.line_of(loc)
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    allowed = ""
    if kind == "extra_forbidden" and loc:
        fields = _fields_at(model_cls, loc[:-1])
        message = f"unknown key {_short(loc[-1])}{did_you_mean(str(loc[-1]), fields)}"
        allowed = "allowed: " + ", ".join(sorted(fields)) if fields else ""
    elif kind == "missing" and loc:
        message = "required key is missing"
        fields = _fields_at(model_cls, loc[:-1])
        allowed = f"add {loc[-1]}" if fields else ""
    elif kind.endswith("_type") or kind in ("literal_error", "enum"):
        got = error.get("input")
        message = f"{message}, got {_short(got)}" if not isinstance(got, dict | list) else message
    return Diagnostic(doc.file, line, path, message, allowed)


def _short(value: Any, limit: int = 80) -> str:
    """repr() of a value, cut to `limit` characters: a 1 MB string is shown by its start."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _fields_at(model_cls: type[BaseModel], loc: tuple[str | int, ...]) -> dict[str, Any]:
    """The field names allowed at `loc`, following nested models through lists, dicts and optionals."""
    current: Any = model_cls
    for part in loc:
        if isinstance(part, int):
            continue
        model = _model_in(current)
        if model is None:
            if _dict_value(current) is not None:
                current = _dict_value(current)
                continue
            return {}
        f = model.model_fields.get(part) or next((fi for fi in model.model_fields.values() if fi.alias == part), None)
        if f is None:
            return {}
        current = f.annotation
    model = _model_in(current)
    if model is None:
        return {}
    return {(f.alias or n): f for n, f in model.model_fields.items()}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None and typing.get_origin(annotation) is not dict:
            return found
    return None


def _dict_value(annotation: Any) -> Any:
    if typing.get_origin(annotation) is dict:
        return typing.get_args(annotation)[1]
    return None
