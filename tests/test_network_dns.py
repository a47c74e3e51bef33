"""The DNS blocklist reaches real resolvers: Unbound (RPZ) and dnsmasq on loopback, with a separate upstream."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from network_fixtures import (
    Resolver,
    dnsmasq_resolver,
    local_host_vars,
    resolve,
    unbound_resolver,
    upstream_resolver,
    write_inventory,
)

from orchestrator.backends.network.backend import NetworkBackend
from orchestrator.backends.network.compiler import compile_network
from orchestrator.backends.network.config import NetworkConfig
from orchestrator.backends.registry import CATALOG
from orchestrator.core.errors import BackendError
from orchestrator.core.resources import Change, ChangeResult
from orchestrator.engine.diff import diff
from orchestrator.inventory.devices import Inventory
from orchestrator.policy.loader import load_policies

REPO = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(
        not (shutil.which("unbound") and shutil.which("dnsmasq")), reason="unbound/dnsmasq not installed"
    ),
]


def _policy(folder: Path, blocked: list[str], safe_search: bool, youtube: str = "off") -> Path:
    folder.mkdir(exist_ok=True)
    lines = "\n".join(f'  - "{d}"' for d in blocked)
    (folder / "webfilter.yaml").write_text(
        "kind: WebFilter\nname: test-filter\ntargets:\n  network_sites:\n    - test-site\n"
        f'blocked:\n{lines}\nsafe_search: {"true" if safe_search else "false"}\nyoutube: "{youtube}"\n'
    )
    return folder


def _backend(tmp: Path, resolver: Resolver) -> NetworkBackend:
    inventory = write_inventory(
        tmp / "inventory.yaml",
        {"test-site": {"resolver1": local_host_vars(**resolver.host_vars)}},
        {"k12_dns_filters": ["resolver1"]},
    )
    config = NetworkConfig(inventory=str(inventory), playbooks=str(REPO / "playbooks"), timeout_seconds=60)
    return NetworkBackend(config, base_dir=tmp, artifacts_dir=tmp / "artifacts")


def _plan(backend: NetworkBackend, policies: Path) -> list[Change]:
    desired = compile_network(load_policies(policies), Inventory("none", []))
    observed = backend.observe(desired)
    return diff(CATALOG, desired, {r.id: r for r in observed})


def _apply(backend: NetworkBackend, changes: list[Change]) -> list[ChangeResult]:
    sent: list[Change] = []
    results: list[ChangeResult] = []
    backend.apply(changes, sent.append, results.append)
    assert [c.key for c in sent] == [c.key for c in changes]
    assert sorted(r.change_key for r in results) == sorted(c.key for c in changes)
    return results


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[str, int]]:
    with upstream_resolver(tmp_path) as address:
        yield address


@pytest.fixture
def unbound(tmp_path: Path, upstream: tuple[str, int]) -> Iterator[Resolver]:
    with unbound_resolver(tmp_path, upstream) as resolver:
        yield resolver


@pytest.fixture
def dnsmasq(tmp_path: Path, upstream: tuple[str, int]) -> Iterator[Resolver]:
    with dnsmasq_resolver(tmp_path, upstream) as resolver:
        yield resolver


def test_unbound_rpz_blocks_domains_and_subdomains_enforces_safesearch_and_unblocks(tmp_path, unbound):
    backend = _backend(tmp_path, unbound)
    assert resolve(unbound, "tiktok.com")[0] == "NOERROR"  # the upstream answers before any policy
    policies = _policy(tmp_path / "policies", ["tiktok.com", "*.roblox.com"], safe_search=True, youtube="strict")

    changes = _plan(backend, policies)
    assert [str(c.id) for c in changes] == ["network/dns_blocklist/test-site"]
    assert changes[0].before["differs"] is True and "+tiktok.com CNAME ." in changes[0].before["diff"]
    assert resolve(unbound, "tiktok.com")[0] == "NOERROR"  # check mode changed nothing

    results = _apply(backend, changes)
    assert [r.state for r in results] == ["succeeded"], results
    assert results[0].response["seconds"] > 0
    for name in ("tiktok.com", "www.tiktok.com", "roblox.com", "games.roblox.com"):
        assert resolve(unbound, name)[0] == "NXDOMAIN", name
    assert resolve(unbound, "example.org") == ("NOERROR", ["192.0.2.20"])
    rcode, answers = resolve(unbound, "www.google.com")
    assert rcode == "NOERROR" and "forcesafesearch.google.com." in answers and "192.0.2.31" in answers
    assert "restrict.youtube.com." in resolve(unbound, "www.youtube.com")[1]

    assert _plan(backend, policies) == []  # in sync: a second plan shows no change

    _policy(policies, ["*.roblox.com"], safe_search=False)
    changes = _plan(backend, policies)
    assert len(changes) == 1 and "-tiktok.com CNAME ." in changes[0].before["diff"]
    assert [r.state for r in _apply(backend, changes)] == ["succeeded"]
    assert resolve(unbound, "tiktok.com") == ("NOERROR", ["192.0.2.10"])
    assert resolve(unbound, "games.roblox.com")[0] == "NXDOMAIN"
    assert resolve(unbound, "www.google.com") == ("NOERROR", ["192.0.2.30"])


def test_dnsmasq_blocks_domains_and_subdomains_and_unblocks(tmp_path, dnsmasq):
    backend = _backend(tmp_path, dnsmasq)
    policies = _policy(tmp_path / "policies", ["tiktok.com", "roblox.com"], safe_search=False)

    changes = _plan(backend, policies)
    assert len(changes) == 1
    assert [r.state for r in _apply(backend, changes)] == ["succeeded"]
    for name in ("tiktok.com", "www.tiktok.com", "roblox.com", "games.roblox.com"):
        assert resolve(dnsmasq, name)[0] == "NXDOMAIN", name
    assert resolve(dnsmasq, "khanacademy.org") == ("NOERROR", ["192.0.2.21"])
    assert _plan(backend, policies) == []

    _policy(policies, ["roblox.com"], safe_search=False)
    assert [r.state for r in _apply(backend, _plan(backend, policies))] == ["succeeded"]
    assert resolve(dnsmasq, "www.tiktok.com") == ("NOERROR", ["192.0.2.11"])
    assert resolve(dnsmasq, "roblox.com")[0] == "NXDOMAIN"


def test_dnsmasq_refuses_safesearch_it_cannot_enforce(tmp_path, dnsmasq):
    """A site whose check run refuses the policy is a plan error naming the site and the cause (fail closed)."""
    backend = _backend(tmp_path, dnsmasq)
    with pytest.raises(BackendError, match="need resolver_kind unbound") as refused:
        _plan(backend, _policy(tmp_path / "policies", ["tiktok.com"], safe_search=True))
    assert "site 'test-site'" in str(refused.value)
    assert resolve(dnsmasq, "tiktok.com")[0] == "NOERROR"  # nothing was written


def test_failed_reload_is_not_mistaken_for_in_sync(tmp_path, unbound):
    broken = Resolver(
        unbound.kind,
        unbound.address,
        unbound.port,
        {**unbound.host_vars, "unbound_control_conf": str(tmp_path / "missing.conf")},
    )
    backend = _backend(tmp_path, broken)
    policies = _policy(tmp_path / "policies", ["tiktok.com"], safe_search=False)
    [result] = _apply(backend, _plan(backend, policies))
    assert result.state == "failed" and "Reload unbound RPZ" in result.detail
    assert resolve(unbound, "tiktok.com")[0] == "NOERROR"  # the file is new but the resolver never loaded it

    [change] = _plan(_backend(tmp_path, unbound), policies)  # still drift, although the file is in place
    assert "has not loaded the current blocklist" in change.before["hosts"]["resolver1"]
    fixed = _backend(tmp_path, unbound)
    assert [r.state for r in _apply(fixed, [change])] == ["succeeded"]
    assert resolve(unbound, "tiktok.com")[0] == "NXDOMAIN"
    assert _plan(fixed, policies) == []
