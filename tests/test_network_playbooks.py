"""The playbooks pass syntax-check and ansible-lint --strict; the sandbox district plans and applies anywhere;
ansible-runner artifacts keep no environment values (secrets)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.backends.network.backend import NetworkBackend
from orchestrator.backends.network.compiler import compile_network
from orchestrator.backends.network.config import NetworkConfig
from orchestrator.backends.network.events import parse_events, render_diff
from orchestrator.backends.network.runner import SiteJob, run_site_job
from orchestrator.backends.registry import CATALOG
from orchestrator.core.resources import ChangeResult
from orchestrator.engine.diff import diff
from orchestrator.inventory.devices import load_inventory
from orchestrator.policy.loader import load_policies

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PLAYBOOKS = [
    "site.yml",
    "dns_filter.yml",
    "mac_quarantine.yml",
    "vendor/fortigate_dns_filter.yml",
    "vendor/fortigate_quarantine.yml",
    "vendor/meraki_content_filter.yml",
]


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_passes_syntax_check(playbook):
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory.yaml", playbook],
        cwd=REPO / "playbooks",
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(
    not (BIN / "ansible-lint").exists() and not shutil.which("ansible-lint"),
    reason="ansible-lint is not installed (pip install ansible-lint)",
)
def test_playbooks_pass_ansible_lint_strict():
    lint = str(BIN / "ansible-lint") if (BIN / "ansible-lint").exists() else shutil.which("ansible-lint")
    done = subprocess.run(
        [lint, "--strict", "--nocolor", "--offline", *PLAYBOOKS], cwd=REPO / "playbooks", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_events_are_attributed_to_resource_types_by_play_name():
    events = [
        {
            "event": "runner_on_ok",
            "event_data": {
                "play": "K12 dns_blocklist on Linux resolvers",
                "host": "a",
                "task": "Write",
                "res": {"changed": True, "diff": [{"before": "x\n", "after": "y\n", "before_header": "/f"}]},
            },
        },
        {
            "event": "runner_on_ok",
            "event_data": {
                "play": "K12 dns_blocklist on Linux resolvers",
                "host": "b",
                "task": "Write",
                "res": {"changed": False},
            },
        },
        {
            "event": "runner_on_failed",
            "event_data": {
                "play": "K12 mac_quarantine on FortiGate",
                "host": "fw",
                "task": "Write",
                "res": {"msg": "denied"},
            },
        },
        {
            "event": "runner_on_failed",
            "event_data": {
                "play": "K12 mac_quarantine",
                "host": "r2",
                "task": "Probe",
                "ignore_errors": True,
                "res": {"msg": "ignored"},
            },
        },
        {
            "event": "runner_on_unreachable",
            "event_data": {"play": "K12 mac_quarantine", "host": "r3", "task": "Write", "res": {"msg": "ssh: timeout"}},
        },
        {"event": "runner_on_ok", "event_data": {"play": "Something else", "host": "z", "res": {"changed": True}}},
    ]
    outcomes = parse_events(events)
    assert set(outcomes) == {"dns_blocklist", "mac_quarantine"}
    dns = outcomes["dns_blocklist"]
    assert dns.changed and dns.ok and dns.host_summary() == {"a": "changed", "b": "ok"}
    assert "-x\n+y\n" in dns.diffs[0] and "a:/f (before)" in dns.diffs[0]
    mac = outcomes["mac_quarantine"]
    assert not mac.ok
    assert mac.host_summary() == {"fw": "failed: Write: denied", "r2": "ok", "r3": "unreachable: Write: ssh: timeout"}
    assert render_diff({"prepared": "+ line"}, "h", "t") == ["--- h: t\n+ line"]


@pytest.mark.slow
def test_sandbox_district_plans_applies_and_settles(tmp_path, monkeypatch):
    monkeypatch.setenv("K12_SANDBOX_NETWORK_DIR", str(tmp_path / "sandbox"))
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cret-never-in-artifacts")
    backend = NetworkBackend(NetworkConfig(), base_dir=REPO, artifacts_dir=tmp_path / "artifacts")
    desired = compile_network(
        load_policies(REPO / "policies", display_root=REPO), load_inventory(REPO / "inventory" / "devices.csv")
    )
    observed = backend.observe(desired)
    changes = diff(CATALOG, desired, {r.id: r for r in observed})
    assert len(changes) == 5 and all(c.before["differs"] for c in changes)
    # a saved plan is re-checked before apply: observing the same state again must give the same values
    assert [r.value for r in backend.observe(desired)] == [r.value for r in observed]
    assert not (tmp_path / "sandbox").exists()  # check mode wrote nothing

    results: list[ChangeResult] = []
    backend.apply(changes, lambda _c: None, results.append)
    assert [r.state for r in results] == ["succeeded"] * 5, [r.detail for r in results]
    assert all(r.response["seconds"] > 0 for r in results)
    rpz = (tmp_path / "sandbox" / "lincoln-elementary" / "k12-blocklist.rpz").read_text()
    assert "*.tiktok.com CNAME ." in rpz and "www.google.com CNAME forcesafesearch.google.com." in rpz
    nft = (tmp_path / "sandbox" / "district-core" / "k12_quarantine.nft").read_text()
    assert "type ether_addr" in nft and desired[-1].value[0] in nft

    assert diff(CATALOG, desired, {r.id: r for r in backend.observe(desired)}) == []

    artifacts = tmp_path / "artifacts" / "network"
    commands = list(artifacts.glob("*/command"))
    assert len(commands) == 20  # 5 sites x (check, check, apply, check)
    for command in commands:
        env = json.loads(command.read_text())["env"]
        assert set(env.values()) == {"<redacted>"} and "AZURE_CLIENT_SECRET" in env
    leaked = subprocess.run(["grep", "-rl", "s3cret-never-in-artifacts", str(artifacts)], capture_output=True)
    assert leaked.returncode == 1, leaked.stdout


def test_sandbox_skips_nft_validation_with_a_message_where_nft_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("K12_SANDBOX_NETWORK_DIR", str(tmp_path / "sandbox"))
    monkeypatch.setenv("PATH", os.pathsep.join([str(BIN), "/usr/bin", "/bin"]))  # no /usr/sbin: no nft
    if shutil.which("nft"):
        pytest.skip("nft is on /usr/bin here; cannot hide it")
    run = run_site_job(
        SiteJob(
            site="district-core",
            values={"k12_mac_quarantine": ["02:00:00:00:00:01"]},
            check=False,
            playbook_dir=REPO / "playbooks",
            inventory=REPO / "playbooks" / "inventory.yaml",
            artifacts_dir=tmp_path / "art",
        )
    )
    assert run.status == "successful", run.error
    stdout = (Path(run.artifacts) / "stdout").read_text()
    assert "sandbox: nft is unavailable or not permitted here" in stdout
    assert "02:00:00:00:00:01" in (tmp_path / "sandbox" / "district-core" / "k12_quarantine.nft").read_text()
