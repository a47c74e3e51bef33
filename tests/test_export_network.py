"""`orchestrator export --backend network` (issue 13 item 1): each site's resolver blocklist → a WebFilter.

Real ansible-playbook through ansible-runner: playbooks/report.yml reads every site's gear in check mode and
reports through the run's events. First on `connection: local` gear whose files live in a temp folder (the
sandbox's kind), then on real Unbound and dnsmasq resolvers on loopback that reload what they are given.
Blocklists applied by the tool export to policies that plan back to no change; a file edited by hand, a
resolver that has not loaded its file and quarantine sets are named, never exported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from network_fixtures import (
    dnsmasq_resolver,
    local_host_vars,
    namespaced_router,
    namespaces_unavailable,
    unbound_resolver,
    upstream_resolver,
    write_inventory,
)

from orchestrator.backends.network.backend import NetworkBackend
from orchestrator.backends.network.compiler import compile_network
from orchestrator.backends.network.config import NetworkConfig
from orchestrator.backends.network.exporter import site_slug
from orchestrator.backends.network.inventory import report_sites
from orchestrator.backends.registry import CATALOG
from orchestrator.cli import main
from orchestrator.core.resources import Change, ResourceId
from orchestrator.engine.diff import diff
from orchestrator.inventory.devices import Inventory
from orchestrator.jobs.session import Session
from orchestrator.policy.loader import load_policies

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

POLICIES = {
    "north": ("north-elem", ["tiktok.com", "*.roblox.com"], "safe_search: true\nyoutube: moderate\n"),
    "south": ("south_high", ["discord.com", "twitch.tv"], ""),
    "west": ("west-mid", ["games.example"], ""),
}


def _write_policies(folder: Path, which: dict[str, tuple[str, list[str], str]]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, (site, blocked, extra) in which.items():
        lines = "".join(f'  - "{d}"\n' for d in blocked)
        (folder / f"{name}.yaml").write_text(
            f"kind: WebFilter\nname: {name}\ntargets:\n  network_sites:\n    - {site}\nblocked:\n{lines}{extra}"
        )
    return folder


def _apply(backend: NetworkBackend, policies: Path) -> None:
    desired = compile_network(load_policies(policies), Inventory("none", []))
    changes = diff(CATALOG, desired, {r.id: r for r in backend.observe(desired)})
    results: list = []
    backend.apply(changes, lambda _c: None, results.append)
    assert changes and all(r.state == "succeeded" for r in results), [r.detail for r in results]


def _config(root: Path, inventory: Path) -> Path:
    (root / "policies").mkdir(exist_ok=True)
    config = root / "orchestrator.yaml"
    config.write_text(
        f"journal: {root / 'journal.db'}\npolicies: policies/\n"
        f"network:\n  inventory: {inventory}\n  playbooks: {REPO / 'playbooks'}\n  timeout_seconds: 120\n"
    )
    return config


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def _plan(config: Path) -> list[str]:
    with Session.open(str(config), backends=("network",)) as session:
        plan = session.plan(("policy",))
    return sorted(f"{c.op} {c.id}" for c in plan.changes)


def test_report_playbook_passes_syntax_check_and_ansible_lint() -> None:
    syntax = subprocess.run(
        [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory.yaml", "report.yml"],
        cwd=REPO / "playbooks",
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    if not (BIN / "ansible-lint").exists():
        pytest.skip("ansible-lint is not installed")
    lint = subprocess.run(
        [str(BIN / "ansible-lint"), "--strict", "--nocolor", "--offline", "report.yml", "dns_filter.yml"],
        cwd=REPO / "playbooks",
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.fixture
def local_gear(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Four sites of `connection: local` gear with files under tmp_path/gear; the tool applied three filters."""
    gear = tmp_path / "gear"

    def resolver(name: str, kind: str = "unbound") -> dict:
        extra = {"dnsmasq_upstreams": ["10.0.0.53#53"]} if kind == "dnsmasq" else {}
        return local_host_vars(resolver_kind=kind, k12_state_dir=str(gear / name), k12_resolver_reload=False, **extra)

    inventory = write_inventory(
        tmp_path / "inventory.yaml",
        {
            "north-elem": {"n1": resolver("n1")},
            "south_high": {"s1": resolver("s1"), "s2": resolver("s2", "dnsmasq")},
            "west-mid": {"w1": resolver("w1")},
            "core": {"r1": local_host_vars(k12_nft_file=str(gear / "r1.nft"), k12_nft_load=False)},
        },
        {"k12_dns_filters": ["n1", "s1", "s2", "w1"], "k12_quarantine_routers": ["r1"]},
    )
    backend = NetworkBackend(
        NetworkConfig(inventory=str(inventory), playbooks=str(REPO / "playbooks"), timeout_seconds=120),
        base_dir=tmp_path,
        artifacts_dir=tmp_path / "artifacts",
    )
    _apply(backend, _write_policies(tmp_path / "sample", POLICIES))
    yield tmp_path, inventory


def test_network_export_plans_back_to_no_change_and_names_what_it_leaves_out(local_gear) -> None:
    root, inventory = local_gear
    gear = root / "gear"
    with (gear / "w1" / "k12-blocklist.rpz").open("a") as edited:
        edited.write("ads.example CNAME .\n")  # added by hand: no policy writes this line alone
    (gear / "r1.nft").write_text(
        "table inet k12_quarantine {\n set lost_macs {\n  type ether_addr\n  elements = { 02:00:00:00:be:ef }\n }\n}\n"
    )
    config = _config(root, inventory)
    policies = root / "policies"
    result = _cli(config, "export", "--backend", "network", "--out", str(policies))
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(policies).as_posix() for p in policies.rglob("*.yaml")) == [
        "network/north-elem.yaml",
        f"network/{site_slug('south_high')}.yaml",
    ]
    output = " ".join(result.output.split())
    assert "site west-mid: w1's" in output and "has lines the filter does not write" in output
    assert "site core: r1 quarantines 1 MAC(s) (02:00:00:00:be:ef): not exported" in output
    north = (policies / "network" / "north-elem.yaml").read_text()
    assert "blocked:\n  - roblox.com\n  - tiktok.com\nsafe_search: true\nyoutube: moderate\n" in north
    assert "network_sites:\n    - north-elem\n" in north
    validated = _cli(config, "validate")
    assert validated.exit_code == 0, validated.output
    assert _plan(config) == []  # west-mid is named by no policy: left as it is
    (policies / "network" / "north-elem.yaml").write_text(
        north.replace("  - tiktok.com\n", "  - tiktok.com\n  - x.example\n")
    )
    assert _plan(config) == ["update network/dns_blocklist/north-elem"]


@pytest.mark.services
@pytest.mark.skipif(not (shutil.which("unbound") and shutil.which("dnsmasq")), reason="unbound/dnsmasq not installed")
def test_real_resolvers_export_plans_back_to_no_change_and_an_unloaded_file_is_named(tmp_path: Path) -> None:
    with (
        upstream_resolver(tmp_path) as upstream,
        unbound_resolver(tmp_path, upstream) as unbound,
        dnsmasq_resolver(tmp_path, upstream) as dnsmasq,
    ):
        inventory = write_inventory(
            tmp_path / "inventory.yaml",
            {
                "north-elem": {"ub": local_host_vars(**unbound.host_vars)},
                "west-mid": {"dm": local_host_vars(**dnsmasq.host_vars)},
            },
            {"k12_dns_filters": ["ub", "dm"]},
        )
        backend = NetworkBackend(
            NetworkConfig(inventory=str(inventory), playbooks=str(REPO / "playbooks"), timeout_seconds=120),
            base_dir=tmp_path,
            artifacts_dir=tmp_path / "artifacts",
        )
        _apply(backend, _write_policies(tmp_path / "sample", {"north": POLICIES["north"], "west": POLICIES["west"]}))
        config = _config(tmp_path, inventory)
        policies = tmp_path / "policies"
        result = _cli(config, "export", "--backend", "network", "--out", str(policies))
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in (policies / "network").glob("*.yaml")) == ["north-elem.yaml", "west-mid.yaml"]
        assert _plan(config) == []

        Path(dnsmasq.host_vars["dnsmasq_servers_file"] + ".loaded").unlink()  # as if the reload had failed
        again = _cli(config, "export", "--backend", "network", "--out", str(tmp_path / "again"))
        assert again.exit_code == 0, again.output
        assert "site west-mid: dm has not loaded its current blocklist file" in " ".join(again.output.split())
        assert [p.name for p in (tmp_path / "again" / "network").glob("*.yaml")] == ["north-elem.yaml"]


@pytest.mark.services
def test_a_real_routers_quarantine_set_is_reported_from_the_live_table_and_never_exported(tmp_path: Path) -> None:
    reason = namespaces_unavailable()
    if reason:
        pytest.skip(reason)
    with namespaced_router(tmp_path) as router:
        inventory = write_inventory(
            tmp_path / "inventory.yaml", {"test-core": {"rtr": router.host_vars}}, {"k12_quarantine_routers": ["rtr"]}
        )
        backend = NetworkBackend(
            NetworkConfig(inventory=str(inventory), playbooks=str(REPO / "playbooks"), timeout_seconds=120),
            base_dir=tmp_path,
            artifacts_dir=tmp_path / "artifacts",
        )
        quarantine = Change(ResourceId("network", "mac_quarantine", "test-core"), "create", None, [router.client_mac])
        results: list = []
        backend.apply([quarantine], lambda _c: None, results.append)
        assert [r.state for r in results] == ["succeeded"], [r.detail for r in results]
        live = {r.id.type: r.meta for r in backend.report()}["mac_quarantine"]["hosts"]["rtr"]
        assert live["macs"] == live["live"] == [router.client_mac]  # the file and the live set
        router.flush_quarantine()  # the router lost its table: the file still holds the MAC, the live set none
        config = _config(tmp_path, inventory)
        result = _cli(config, "export", "--backend", "network", "--out", str(tmp_path / "policies"))
        assert result.exit_code == 0, result.output
        output = " ".join(result.output.split())
        assert f"site test-core: rtr quarantines 1 MAC(s) ({router.client_mac}): not exported" in output
        assert not list((tmp_path / "policies").rglob("*.yaml"))
        reports = {r.id.type: r.meta for r in backend.report()}
        assert reports["mac_quarantine"]["hosts"]["rtr"]["macs"] == [router.client_mac]
        assert reports["mac_quarantine"]["hosts"]["rtr"]["live"] is None  # no table: read, and said so


def test_export_reads_the_innermost_site_of_each_gear_host_not_its_parents_or_role_groups() -> None:
    sites = {
        "elementary": ["e1", "e2"],  # a parent of two sites: read as its children
        "lincoln": ["e1"],
        "washington": ["e2"],
        "core": ["r1", "fw1"],
        "k12_dns_filters": ["e1", "e2"],
        "k12_quarantine_routers": ["r1"],
        "k12_fortigates": ["fw1"],
        "printers": ["p1"],  # no gear of ours
    }
    assert report_sites(sites) == ["core", "lincoln", "washington"]
