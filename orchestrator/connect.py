"""Open the backends orchestrator.yaml configures; explain the ones it skips."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from orchestrator.backends.base import Backend
from orchestrator.backends.pacing import CallCounter
from orchestrator.config import Config, is_loopback
from orchestrator.errors import ConfigError

ALL_BACKENDS = ("google", "intune", "network")


@dataclass
class Connections:
    backends: dict[str, Backend] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    counter: CallCounter = field(default_factory=CallCounter)

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()


def _google_ready(config: Config) -> str | None:
    g = config.google
    if g is None:
        return "google: not configured in orchestrator.yaml, skipped"
    if is_loopback(g.directory_endpoint) and is_loopback(g.policy_endpoint or g.directory_endpoint):
        return None
    if not os.environ.get(g.credentials_file_env):
        return f"google: ${g.credentials_file_env} is not set (service account key file), skipped"
    return None


def _intune_ready(config: Config) -> str | None:
    i = config.intune
    if i is None:
        return "intune: not configured in orchestrator.yaml, skipped"
    if is_loopback(i.graph_endpoint):
        return None
    has_secret = bool(os.environ.get(i.client_secret_env))
    has_cert = bool(i.certificate_path_env and os.environ.get(i.certificate_path_env))
    if not (i.tenant_id and i.client_id and (has_secret or has_cert)):
        return f"intune: tenant_id/client_id or ${i.client_secret_env} missing, skipped"
    return None


def _network_ready(config: Config) -> str | None:
    n = config.network
    if n is None:
        return "network: not configured in orchestrator.yaml, skipped"
    if not config.path(n.inventory).exists():
        return f"network: Ansible inventory {n.inventory} not found, skipped"
    return None


def open_backends(config: Config, names: tuple[str, ...] | list[str] = ALL_BACKENDS) -> Connections:
    connections = Connections()
    for name in names:
        if name not in ALL_BACKENDS:
            raise ConfigError(f"unknown backend {name!r} (known: {', '.join(ALL_BACKENDS)})")
        reason = {"google": _google_ready, "intune": _intune_ready, "network": _network_ready}[name](config)
        if reason:
            connections.notes.append(reason)
            continue
        if name == "google":
            from orchestrator.backends.google import GoogleBackend

            connections.backends[name] = GoogleBackend(
                config.google,
                counter=connections.counter,
                policy_reads_per_minute=config.google.policy_reads_per_minute,
            )
        elif name == "intune":
            from orchestrator.backends.intune import IntuneBackend

            connections.backends[name] = IntuneBackend(config.intune, counter=connections.counter)
        else:
            from orchestrator.backends.network import NetworkBackend

            connections.backends[name] = NetworkBackend(
                config.network, base_dir=config.base_dir, artifacts_dir=config.path(config.journal).parent / "artifacts"
            )
    return connections
