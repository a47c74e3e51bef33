"""The docs cannot go stale: every command has help with an example, and the README mentions every command."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli import main


def commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found += commands(command, f"{full} ")
        else:
            found.append((full, command))
    return found


def test_every_command_has_help_with_an_example() -> None:
    missing = [name for name, command in commands(main) if "Example:" not in (command.help or "")]
    assert not missing, f"commands without an Example in their help: {missing}"


def test_the_readme_documents_every_command(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    missing = [name for name, _ in commands(main) if f"`{name}`" not in readme]
    assert not missing, f"commands missing from README.md: {missing}"


def test_the_readme_gives_the_two_setup_commands(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    assert "scripts/sandbox.sh" in readme and "scripts/test.sh" in readme
    ci = (repo_root / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci
