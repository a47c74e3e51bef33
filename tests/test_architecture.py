"""The architecture stays as docs/architecture.md draws it: import contracts and module size.

- `lint-imports` (import-linter, a dev dependency) checks the contracts in pyproject.toml
  (`[tool.importlinter]`): the layers cli → jobs → engine | backends | sandbox → inventory | schooltime →
  policy → core, core importing nothing of ours, nothing importing the command line, backends independent
  of each other. A broken contract fails this test with import-linter's report (which import, which line).
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

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "orchestrator"
MAX_LINES = 400
MARKER = re.compile(r"^Over 400 lines: *\S", re.MULTILINE)
"""A docstring line `Over 400 lines: <why this module is not split>`."""


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
