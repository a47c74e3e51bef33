"""A site whose check run fails is an error for that site, never a pending "would change" (issue 10 item 5).

Real ansible-runner jobs on this machine: a play that uses a module from a collection that is not installed,
a host that cannot be reached (ssh to a closed loopback port), and a task that fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from network_fixtures import free_port, local_host_vars, write_inventory

from orchestrator.backends.network.backend import NetworkBackend
from orchestrator.backends.network.config import NetworkConfig
from orchestrator.core.errors import BackendError
from orchestrator.core.resources import Resource, ResourceId

BLOCKLIST = {"blocked": ["tiktok.com"], "safesearch": True, "youtube": "strict"}

MISSING_COLLECTION = """\
- name: K12 dns_blocklist on vendor gear
  hosts: all
  gather_facts: false
  tasks:
    - name: Push the URL filter
      k12missing.vendorgear.url_filter:
        entries: "{{ k12_dns_blocklist.blocked }}"
"""

FAILING_TASK = """\
- name: K12 dns_blocklist on the resolver
  hosts: all
  gather_facts: false
  tasks:
    - name: Validate the resolver configuration
      ansible.builtin.fail:
        msg: "unbound-checkconf: syntax error in rpz.k12 line 3"
"""

CHANGING = """\
- name: K12 dns_blocklist on the resolver
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the blocklist
      ansible.builtin.copy:
        content: "{{ k12_dns_blocklist.blocked | join('\\n') }}\\n"
        dest: "{{ k12_out }}/blocklist.txt"
"""


def backend_for(tmp_path: Path, play: str, hosts: dict[str, dict[str, dict]]) -> NetworkBackend:
    project = tmp_path / "playbooks"
    project.mkdir(exist_ok=True)
    (project / "site.yml").write_text(play)
    inventory = write_inventory(tmp_path / "inventory.yaml", hosts, {})
    config = NetworkConfig.model_construct(
        inventory=str(inventory), playbooks=str(project), parallel_sites=2, timeout_seconds=60
    )
    return NetworkBackend(config, base_dir=tmp_path, artifacts_dir=tmp_path / "artifacts")


def blocklist(site: str) -> Resource:
    return Resource(ResourceId("network", "dns_blocklist", site), BLOCKLIST, sources=("policies/web.yaml:9",))


def test_missing_collection_is_an_error_naming_the_site_and_the_module(tmp_path: Path) -> None:
    backend = backend_for(tmp_path, MISSING_COLLECTION, {"north-site": {"fw1": local_host_vars()}})
    with pytest.raises(BackendError) as caught:
        backend.observe([blocklist("north-site")])
    message = str(caught.value)
    assert "north-site" in message
    assert "k12missing.vendorgear.url_filter" in message
    assert "would change" not in message and "differs" not in message


def test_unreachable_host_is_an_error_naming_the_site_and_the_host(tmp_path: Path) -> None:
    closed = free_port("127.0.0.1")
    unreachable = {
        "ansible_connection": "ssh",
        "ansible_host": "127.0.0.1",
        "ansible_port": closed,
        "ansible_user": "nobody",
        "ansible_ssh_common_args": "-o ConnectTimeout=3 -o StrictHostKeyChecking=no -o BatchMode=yes",
    }
    play = FAILING_TASK.replace("ansible.builtin.fail:", "ansible.builtin.ping:").replace(
        'msg: "unbound-checkconf: syntax error in rpz.k12 line 3"', "data: pong"
    )
    backend = backend_for(tmp_path, play, {"south-site": {"rtr1": unreachable}})
    with pytest.raises(BackendError) as caught:
        backend.observe([blocklist("south-site")])
    message = str(caught.value)
    assert "south-site" in message and "rtr1" in message and "unreachable" in message
    assert "Connection refused" in message or "port" in message


def test_failed_task_is_an_error_with_the_task_message_and_other_sites_still_observe(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    play = CHANGING + "\n" + FAILING_TASK.replace("hosts: all", "hosts: broken-site")
    play = play.replace("hosts: all", "hosts: good-site")
    backend = backend_for(
        tmp_path,
        play,
        {"good-site": {"dns1": local_host_vars(k12_out=str(out))}, "broken-site": {"dns2": local_host_vars()}},
    )
    with pytest.raises(BackendError) as caught:
        backend.observe([blocklist("good-site"), blocklist("broken-site")])
    message = str(caught.value)
    assert "broken-site" in message and "unbound-checkconf: syntax error in rpz.k12 line 3" in message
    assert "good-site" not in message
    # the healthy site on its own is a pending change, as before
    [observed] = backend.observe([blocklist("good-site")])
    assert observed.value["differs"] is True and "+tiktok.com" in observed.value["diff"]


def test_plan_and_drift_exit_1_naming_the_site_and_the_cause(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from orchestrator.cli import main

    backend_for(tmp_path, MISSING_COLLECTION, {"north-site": {"fw1": local_host_vars()}})
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "web.yaml").write_text(
        "kind: WebFilter\nname: north\ntargets:\n  network_sites: [north-site]\nblocked: [tiktok.com]\n"
    )
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "devices.csv").write_text("serialNumber,platform\n")
    (tmp_path / "orchestrator.yaml").write_text(
        "journal: .orchestrator/journal.db\nnetwork:\n  inventory: inventory.yaml\n  playbooks: playbooks\n"
        "  timeout_seconds: 60\n"
    )
    monkeypatch.chdir(tmp_path)
    for command in ("plan", "drift"):
        result = CliRunner().invoke(main, [command, "--backend", "network"], catch_exceptions=False)
        assert result.exit_code == 1, result.output
        assert "north-site" in result.output and "k12missing.vendorgear.url_filter" in result.output
        assert "would change" not in result.output and "in sync" not in result.output
