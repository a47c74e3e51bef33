"""Open the backends orchestrator.yaml configures; list the ones it does not configure; refuse broken ones.

Fail closed: only a backend that is absent from the config is skipped, and only when the command did not name
it. A configured section that cannot connect (a real tenant without credentials, a missing Ansible inventory:
its spec's `problem`) is an error: skipping it would make plan/drift report "in sync" for what was never seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.backends.pacing import CallCounter
from orchestrator.backends.registry import CATALOG
from orchestrator.core.backend import Backend, Catalog, OpenContext
from orchestrator.core.errors import ConfigError
from orchestrator.jobs.config import Config


@dataclass
class Connections:
    backends: dict[str, Backend] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # backends absent from the config, not observed
    # desired resources per skipped backend, filled when a plan is made: what this run could not check
    unchecked: dict[str, int] = field(default_factory=dict)
    counter: CallCounter = field(default_factory=CallCounter)

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()


def open_backends(
    config: Config, names: Sequence[str] | None = None, *, required: bool = False, catalog: Catalog = CATALOG
) -> Connections:
    """Connect `names` (default: every registered backend). Absent from the config: skipped with a note, or an
    error when `required` (named with --backend, or a saved plan was made with them). Configured but unusable:
    always an error.
    """
    wanted = list(dict.fromkeys(names or catalog.names()))
    connections = Connections()
    problems: list[str] = []
    for name in wanted:
        spec = catalog.spec(name)
        section = config.section(name)
        if section is None:
            if required:
                problems.append(f"{name}: not configured in orchestrator.yaml but asked for (add a `{name}:` section)")
            else:
                connections.skipped.append(name)
                connections.notes.append(f"{name}: not configured in orchestrator.yaml, skipped")
            continue
        problem = spec.problem(section, config.base_dir)
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError("; ".join(problems))
    state_dir = config.path(config.journal).parent
    try:
        for name in wanted:
            if name not in connections.skipped:
                context = OpenContext(
                    section=config.section(name),
                    base_dir=config.base_dir,
                    state_dir=state_dir,
                    counter=connections.counter,
                )
                connections.backends[name] = catalog.spec(name).open(context)
    except BaseException:
        connections.close()
        raise
    return connections
