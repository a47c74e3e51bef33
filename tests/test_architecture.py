"""The architecture stays as docs/architecture.md draws it: import contracts and module size.

- `lint-imports` (import-linter, a dev dependency) checks the contracts in pyproject.toml
  (`[tool.importlinter]`): the layers cli → jobs → engine | backends | sandbox → inventory | schooltime →
  policy → core, core importing nothing of ours, nothing importing the command line, backends independent
  of each other. A broken contract fails this test with import-linter's report (which import, which line).
- The engine and the jobs never spell a backend's resource type name (`"mac_quarantine"`, `"network/ou_policy/"`):
  they learn what a type is from the catalog (`ResourceType` attributes such as `scope`, `needs_device`,
  `quarantines_macs`), so a backend can rename or add a type without touching them. Docstrings and prose (the
  word "reimage" in a message) are not names; a literal that is a type name, or has one as a resource id's
  `/`-separated part, is.
- No module under orchestrator/ is over 400 lines unless its module docstring says why, on a line that
  starts with the marker `Over 400 lines:` followed by the reason. There is no allowlist here: the reason
  lives with the code, where the next reader sees it.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from orchestrator.backends.registry import CATALOG

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "orchestrator"
MAX_LINES = 400
MARKER = re.compile(r"^Over 400 lines: *\S", re.MULTILINE)
"""A docstring line `Over 400 lines: <why this module is not split>`."""
TYPE_BLIND = ("engine", "jobs")
"""Packages that learn resource types from the catalog only."""


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), f"{lint_imports} is missing: install the dev extras (pip install -e '.[dev]')"
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"import contracts broken (lint-imports):\n{result.stdout}\n{result.stderr}"
    assert "0 broken" in result.stdout, result.stdout


def long_modules() -> dict[str, int]:
    """Module path → line count, for every module under orchestrator/ longer than MAX_LINES."""
    sizes = {str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    return {path: lines for path, lines in sorted(sizes.items()) if lines > MAX_LINES}


def test_modules_over_400_lines_say_why_in_their_docstring() -> None:
    unexplained = []
    for path, lines in long_modules().items():
        docstring = ast.get_docstring(ast.parse((REPO / path).read_text(encoding="utf-8"))) or ""
        if not MARKER.search(docstring):
            unexplained.append(f"{path}: {lines} lines")
    assert unexplained == [], (
        f"modules over {MAX_LINES} lines without a reason: split them, or add a line "
        "'Over 400 lines: <why>' to the module docstring:\n  " + "\n  ".join(unexplained)
    )


def test_the_marker_is_recognised() -> None:
    assert MARKER.search("Summary.\n\nOver 400 lines: one route table, split it and the routes scatter.\n")
    assert not MARKER.search("Summary.\n\nOver 400 lines:\n")  # a marker without a reason is not one
    assert not MARKER.search("It is not over 400 lines: yet.")  # only at the start of a line


def type_names_spelled(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, literal) of every string literal in `source` that is one of `names` or holds one as a `/` part."""
    tree = ast.parse(source)
    documentation = {
        id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in documentation
        and set(node.value.strip().split("/")) & names
    ]


def test_engine_and_jobs_never_spell_a_backend_type_name() -> None:
    names = {rtype.name for rtype in CATALOG.types}
    assert "mac_quarantine" in names and "device_annotations" in names
    spelled = [
        f"{path.relative_to(REPO)}:{line}: {literal!r}"
        for package in TYPE_BLIND
        for path in sorted((PACKAGE / package).rglob("*.py"))
        for line, literal in type_names_spelled(path.read_text(encoding="utf-8"), names)
    ]
    assert spelled == [], (
        "the engine and jobs learn resource types from the catalog (a ResourceType attribute), never by name:\n  "
        + "\n  ".join(spelled)
    )


def test_a_spelled_type_name_is_found() -> None:
    names = {"mac_quarantine", "reimage"}
    source = (
        '"""Docs may say mac_quarantine."""\n'
        'if change.id.type == "mac_quarantine":\n'
        '    sites = [r for r in ids if r.startswith("network/mac_quarantine/")]\n'
        'say("Observing the reimage queue...")\n'
    )
    assert type_names_spelled(source, names) == [(2, "mac_quarantine"), (3, "network/mac_quarantine/")]
