"""Shared baselines: policy documents a district takes from the repository's `baselines/` folder.

A document holding only `include: [baselines/elementary-filter.yaml, ...]` adds the documents of those files
(or folders of .yaml files), each found beside the including file or in the nearest folder above it that
has it (the repository root, for `tenants/<name>/policies/`). A baseline cannot include others.

Precedence (docs/policies.md, "Shared baselines"): a district's own document with the same kind and name as a
baseline document overrides the top-level fields it names, each as a whole; the other fields stay the
baseline's and keep the baseline's file:line. Any other document that sets what a baseline sets on the same
target is a conflict, reported by the loader's conflict check with both file:lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.core.errors import Diagnostic
from orchestrator.policy.yamlnodes import YamlDocument

L = TypeVar("L", bound=Any)  # the loader's LoadedPolicy (a `.model` with `.kind` and `.name`)


def is_include(doc: YamlDocument) -> bool:
    """Whether `doc` is an include document (`include:` and no `kind:`)."""
    return isinstance(doc.data, dict) and "include" in doc.data and "kind" not in doc.data


def include_targets(doc: YamlDocument, path: Path, problems: list[Diagnostic]) -> list[Path]:
    """The files or folders an include document names; each problem is a diagnostic at its line."""
    data = doc.data
    extra = sorted(str(k) for k in data if k != "include")
    if extra:
        problems.append(
            Diagnostic(doc.file, doc.line, extra[0], "an include document holds only `include:`", "include: [...]")
        )
    names = data["include"]
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        problems.append(
            Diagnostic(doc.file, doc.line_of(("include",)), "include", "must be a list of paths", "[baselines/x.yaml]")
        )
        return []
    found: list[Path] = []
    for i, name in enumerate(names):
        candidates = [Path(name)] if Path(name).is_absolute() else [d / name for d in path.resolve().parents]
        target = next((c for c in candidates if c.exists()), None)
        if target is None:
            shown = name if len(name) <= 80 else name[:77] + "..."
            problems.append(
                Diagnostic(
                    doc.file,
                    doc.line_of(("include", i)),
                    f"include[{i}]",
                    f"{shown!r} not found beside this file or in any folder above it",
                    "a baselines/ file or folder",
                )
            )
        else:
            found.append(target)
    return found


def baseline_documents(
    includes: Sequence[tuple[YamlDocument, Path]],
    read: Callable[[Path], list[YamlDocument]],
    files: Callable[[Path], list[Path]],
    problems: list[Diagnostic],
) -> list[YamlDocument]:
    """The documents of every file the include documents name (each file once, in include order)."""
    seen: set[Path] = set()
    documents: list[YamlDocument] = []
    for doc, path in includes:
        for target in include_targets(doc, path, problems):
            for file in files(target):
                if file.resolve() in seen:
                    continue
                seen.add(file.resolve())
                for found in read(file):
                    if is_include(found):
                        problems.append(
                            Diagnostic(found.file, found.line, "include", "a baseline cannot include others", "")
                        )
                    else:
                        documents.append(found)
    return documents


def overlay(baseline: YamlDocument, doc: YamlDocument) -> tuple[YamlDocument, frozenset[str]]:
    """The baseline's data with the top-level fields `doc` names replaced, and the names of those fields.

    The merged document is the district's (its file, lines and refused values); fields it does not name are
    traced to the baseline by the loader's OverlaidPolicy.
    """
    overridden = frozenset(str(k) for k in doc.data if k not in ("kind", "name"))
    merged = YamlDocument(
        file=doc.file, line=doc.line, data={**baseline.data, **doc.data}, lines=doc.lines, refused=doc.refused
    )
    return merged, overridden


def merge(
    included: Sequence[YamlDocument],
    own: Sequence[YamlDocument],
    loaded: Callable[[YamlDocument], L | None],
    overlaid: Callable[[L, YamlDocument], L | None],
) -> list[L]:
    """Every policy in precedence order: baseline documents (overridden where the district names the same kind
    and name), then the district's own. Baselines come first, so a district document that sets the same thing
    on the same target is the one the conflict check reports (naming the baseline's file:line too); a second
    baseline document with a name already taken stays in, for the duplicate-name check to report."""
    baselines: dict[tuple[str, str], L] = {}
    duplicates: list[L] = []
    for doc in included:
        policy = loaded(doc)
        if policy is not None:
            key = (policy.model.kind, policy.model.name)
            if key in baselines:
                duplicates.append(policy)
            else:
                baselines[key] = policy
    result: list[L] = []
    for doc in own:
        key = _kind_and_name(doc)
        policy = overlaid(baselines.pop(key), doc) if key in baselines else loaded(doc)
        if policy is not None:
            result.append(policy)
    return [*baselines.values(), *duplicates, *result]


def _kind_and_name(doc: YamlDocument) -> tuple[str, str] | None:
    """(kind, name) when both are plain strings; a malformed document (a list, a mapping as its name) has none
    and is loaded, and rejected with its file:line, like any other."""
    if not isinstance(doc.data, dict):
        return None
    kind, name = doc.data.get("kind"), doc.data.get("name")
    return (kind, name) if isinstance(kind, str) and isinstance(name, str) else None
