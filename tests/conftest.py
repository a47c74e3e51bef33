"""Shared fixtures: the repository root and helpers to write policy trees into temp folders."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from lockdown_tenant import tenant  # noqa: F401  (the lockdown tenant fixture, shared by several test files)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def policy_dir(tmp_path: Path):
    """Write `{name: yaml}` into a fresh policies folder and return it."""

    def write(files: dict[str, str]) -> Path:
        folder = tmp_path / "policies"
        folder.mkdir(exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(textwrap.dedent(text).lstrip())
        return folder

    return write


@pytest.fixture
def sample_repo(tmp_path: Path) -> Path:
    """A copy of the sample district (policies, inventory, config) that a test may change."""
    target = tmp_path / "district"
    target.mkdir()
    for name in ("policies", "inventory", "playbooks"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, target / name)
    shutil.copy(REPO / "orchestrator.yaml", target / "orchestrator.yaml")
    return target
