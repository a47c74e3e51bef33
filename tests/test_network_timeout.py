"""A site job that outlives its timeout is reported as `unknown` (sent, outcome not seen), never as success."""

from __future__ import annotations

import subprocess
from pathlib import Path

from network_fixtures import local_host_vars, write_inventory

from orchestrator.backends.network.backend import NetworkBackend
from orchestrator.backends.network.config import NetworkConfig
from orchestrator.core.resources import Change, ChangeResult, ResourceId

SLOW_SITE = """\
- name: K12 mac_quarantine that hangs
  hosts: k12_quarantine_routers
  gather_facts: false
  tasks:
    - name: Wait far longer than the job timeout
      ansible.builtin.wait_for:
        timeout: 20
"""


def test_timed_out_site_job_reports_unknown_and_keeps_scrubbed_artifacts(tmp_path: Path):
    project = tmp_path / "playbooks"
    project.mkdir()
    (project / "site.yml").write_text(SLOW_SITE)
    inventory = write_inventory(
        tmp_path / "inventory.yaml", {"slow-site": {"r1": local_host_vars()}}, {"k12_quarantine_routers": ["r1"]}
    )
    config = NetworkConfig.model_construct(
        inventory=str(inventory), playbooks=str(project), parallel_sites=2, timeout_seconds=3
    )
    backend = NetworkBackend(config, base_dir=tmp_path, artifacts_dir=tmp_path / "artifacts")
    change = Change(ResourceId("network", "mac_quarantine", "slow-site"), "update", None, ["02:00:00:00:00:01"])
    sent: list[Change] = []
    results: list[ChangeResult] = []
    backend.apply([change], sent.append, results.append)
    assert sent == [change]
    [result] = results
    assert result.state == "unknown" and "timeout" in result.detail
    assert result.response["status"] == "timeout" and result.response["seconds"] >= 3
    assert (Path(result.response["artifacts"]) / "command").exists()
    leftovers = subprocess.run(["pgrep", "-f", "AnsiballZ_wait_for"], capture_output=True, text=True).stdout
    assert leftovers == "", "the timed-out job left module processes running"
    backend.close()
