"""Open the backends orchestrator.yaml configures; list the ones it does not configure; refuse broken ones.

Fail closed (issue 10, item 4): only a backend that is absent from the config is skipped, and only when the
command did not name it. A configured real tenant without credentials, or a network section whose Ansible
inventory is missing, is an error: skipping it would make plan/drift report "in sync" for gear never looked at.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.backends.base import Backend
from orchestrator.backends.pacing import CallCounter
from orchestrator.config import Config, is_loopback
from orchestrator.errors import ConfigError

ALL_BACKENDS = ("google", "intune", "network")


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


def _not_configured(name: str) -> str:
    return f"{name}: not configured in orchestrator.yaml, skipped"


def _google_problem(config: Config) -> str | None:
    """Why the configured Google backend cannot authenticate, or None when it can."""
    g = config.google
    assert g is not None
    if is_loopback(g.directory_endpoint) and is_loopback(g.policy_endpoint):
        return None  # both APIs are a local emulator, which needs no credentials (an absent one is Google)
    key_file = os.environ.get(g.credentials_file_env)
    if not key_file:
        return (
            f"google: configured for a real tenant but ${g.credentials_file_env} is not set "
            "(path of the service-account key file)"
        )
    if not Path(key_file).is_file():
        return f"google: ${g.credentials_file_env} names {key_file}, which does not exist"
    if not g.admin_subject:
        return "google.admin_subject: required with a service account (domain-wide delegation subject)"
    return None


def _intune_problem(config: Config) -> str | None:
    """Why the configured Intune backend cannot authenticate, or None when it can."""
    i = config.intune
    assert i is not None
    if is_loopback(i.graph_endpoint):
        return None  # the local emulator needs no credentials
    missing = [key for key in ("tenant_id", "client_id") if not getattr(i, key)]
    has_secret = bool(os.environ.get(i.client_secret_env))
    has_cert = bool(i.certificate_path_env and os.environ.get(i.certificate_path_env))
    if not (has_secret or has_cert):
        cert = f" or ${i.certificate_path_env}" if i.certificate_path_env else ""
        missing.append(f"${i.client_secret_env}{cert} (not set)")
    if missing:
        return f"intune: configured for a real tenant but {', '.join(missing)} missing"
    return None


def _network_problem(config: Config) -> str | None:
    """Why the configured network backend cannot run, or None when it can."""
    n = config.network
    assert n is not None
    inventory = config.path(n.inventory)
    if not inventory.is_file():
        return f"network: Ansible inventory {n.inventory} not found (looked for {inventory.resolve()})"
    return None


_PROBLEMS = {"google": _google_problem, "intune": _intune_problem, "network": _network_problem}


def open_backends(config: Config, names: Sequence[str] = ALL_BACKENDS, *, required: bool = False) -> Connections:
    """Connect `names`. Absent from the config: skipped with a note, or an error when `required` (the user
    named them with --backend, or a saved plan was made with them). Configured but unusable: always an error.
    """
    connections = Connections()
    problems: list[str] = []
    for name in dict.fromkeys(names):
        if name not in ALL_BACKENDS:
            raise ConfigError(f"unknown backend {name!r} (known: {', '.join(ALL_BACKENDS)})")
        if getattr(config, name) is None:
            if required:
                problems.append(f"{name}: not configured in orchestrator.yaml but asked for (add a `{name}:` section)")
            else:
                connections.skipped.append(name)
                connections.notes.append(_not_configured(name))
            continue
        problem = _PROBLEMS[name](config)
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError("; ".join(problems))
    try:
        for name in dict.fromkeys(names):
            if name not in connections.skipped:
                connections.backends[name] = _connect(name, config, connections.counter)
    except BaseException:
        connections.close()
        raise
    return connections


def _connect(name: str, config: Config, counter: CallCounter) -> Backend:
    if name == "google":
        from orchestrator.backends.google import GoogleBackend

        assert config.google is not None
        return GoogleBackend(
            config.google, counter=counter, policy_reads_per_minute=config.google.policy_reads_per_minute
        )
    if name == "intune":
        from orchestrator.backends.intune import IntuneBackend

        assert config.intune is not None
        return IntuneBackend(config.intune, counter=counter)
    from orchestrator.backends.network import NetworkBackend

    assert config.network is not None
    return NetworkBackend(
        config.network, base_dir=config.base_dir, artifacts_dir=config.path(config.journal).parent / "artifacts"
    )
