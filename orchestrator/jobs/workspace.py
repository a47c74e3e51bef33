"""Everything a command needs from the repository: config, policies, inventory and the journal path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.core.errors import Diagnostic, PolicyError
from orchestrator.inventory.devices import Inventory, load_inventory
from orchestrator.jobs.config import Config, load_config
from orchestrator.policy.loader import PolicySet, load_policies


@dataclass
class Workspace:
    config: Config
    policies: PolicySet
    inventory: Inventory
    journal_path: Path

    @property
    def repo_root(self) -> Path:
        return self.config.base_dir


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def open_workspace(
    config_path: str | None = None, *, policies: str | None = None, journal: str | None = None
) -> Workspace:
    """Load config, policies and inventory, collecting policy and inventory problems into one PolicyError."""
    config = load_config(config_path)
    problems: list[Diagnostic] = []
    policy_set = PolicySet(root="")
    try:
        policy_set = load_policies(Path(policies) if policies else config.path(config.policies))
    except PolicyError as exc:
        problems += exc.diagnostics
    inventory = Inventory(file="", devices=[])
    inv_path = config.path(config.inventory)
    try:
        inventory = load_inventory(inv_path, display=_shown(inv_path))
    except PolicyError as exc:
        problems += exc.diagnostics
    if problems:
        raise PolicyError(problems)
    journal_path = Path(journal) if journal else config.path(config.journal)
    return Workspace(config=config, policies=policy_set, inventory=inventory, journal_path=journal_path)
