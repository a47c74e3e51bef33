"""Policy strings never become templates, shell or paths: the grammars reject them, and a templating payload
that reaches Ansible as an extra var is treated as data, never evaluated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from network_fixtures import local_host_vars, write_inventory

from orchestrator.backends.network.backend import NetworkBackend
from orchestrator.backends.network.config import NetworkConfig
from orchestrator.backends.network.runner import SiteJob, run_site_job
from orchestrator.backends.network.vars import dump_unsafe_vars
from orchestrator.core.errors import PolicyError
from orchestrator.core.resources import Change, ChangeResult, ResourceId
from orchestrator.inventory.devices import parse_inventory
from orchestrator.policy.loader import load_policies

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = "{{ lookup('pipe','id') }}"


@pytest.mark.parametrize(
    "domain",
    [
        PAYLOAD,
        "{% raw %}x.com",
        "evil.com; rm -rf /",
        "$(id).example.com",
        "`id`.example.com",
        "../../etc/passwd",
        "example.com/path",
        "http://example.com",
        "exa mple.com",
        "example.com\nserver=/x/",
    ],
)
def test_webfilter_rejects_domains_that_could_inject(policy_dir, domain):
    folder = policy_dir(
        {
            "f.yaml": "kind: WebFilter\nname: f\ntargets:\n  network_sites: [lincoln]\n"
            f"blocked:\n  - {json.dumps(domain)}\n"
        }
    )
    with pytest.raises(PolicyError) as err:
        load_policies(folder)
    assert "blocked[0]" in str(err.value)


@pytest.mark.parametrize("site", ["../etc", "site;id", PAYLOAD, "site name", "/abs", "Site", "a/b"])
def test_network_sites_reject_names_that_could_inject(policy_dir, site):
    folder = policy_dir(
        {"f.yaml": f"kind: WebFilter\nname: f\ntargets:\n  network_sites: [{json.dumps(site)}]\nblocked: [a.com]\n"}
    )
    with pytest.raises(PolicyError) as err:
        load_policies(folder)
    assert "network_sites[0]" in str(err.value)


@pytest.mark.parametrize(
    "mac",
    [
        "02:00:00:00:00:01;id",
        PAYLOAD,
        "02:00:00:00:00",
        "02:00:00:00:00:zz",
        "02:00:00:00:00:01 }",
        "02:00-00:00:00:01",
    ],
)
def test_inventory_rejects_macs_that_could_inject(mac):
    text = f'serialNumber,platform,macAddress,inventoryStatus\nCB0000001,chromeos,"{mac}",lost\n'
    with pytest.raises(PolicyError) as err:
        parse_inventory("devices.csv", text)
    assert "macAddress" in str(err.value)


def test_extravars_are_written_as_unsafe_data():
    text = dump_unsafe_vars({"k12_dns_blocklist": {"blocked": [PAYLOAD], "safesearch": True, "youtube": "off"}})
    data = json.loads(text)
    assert data["k12_dns_blocklist"]["blocked"] == [{"__ansible_unsafe": PAYLOAD}]
    assert data["k12_dns_blocklist"]["youtube"] == {"__ansible_unsafe": "off"}
    assert data["k12_dns_blocklist"]["safesearch"] is True


def _local_job(tmp_path: Path, values: dict, playbook_dir: Path, playbook: str = "site.yml") -> SiteJob:
    inventory = write_inventory(
        tmp_path / "inventory.yaml",
        {
            "test-site": {
                "box": local_host_vars(
                    resolver_kind="unbound", unbound_rpz_file=str(tmp_path / "rpz.zone"), k12_resolver_reload=False
                )
            }
        },
        {"k12_dns_filters": ["box"]},
    )
    return SiteJob(
        site="test-site",
        values=values,
        check=False,
        playbook_dir=playbook_dir,
        inventory=inventory,
        artifacts_dir=tmp_path / "artifacts",
        playbook=playbook,
        timeout=60,
    )


def test_templating_payload_in_an_extravar_is_rejected_by_the_playbook_and_never_run(tmp_path):
    canary = tmp_path / "canary"
    payload = "{{ lookup('pipe', 'touch " + str(canary) + "') }}"
    run = run_site_job(
        _local_job(
            tmp_path,
            {"k12_dns_blocklist": {"blocked": ["ok.example.com", payload], "safesearch": False, "youtube": "off"}},
            REPO / "playbooks",
        )
    )
    assert run.status == "failed"
    outcome = run.outcomes["dns_blocklist"]
    assert outcome.hosts["box"].failed and "invalid blocklist input" in outcome.host_summary()["box"]
    assert not canary.exists()
    assert not (tmp_path / "rpz.zone").exists()


def test_templating_payload_in_an_extravar_is_written_literally(tmp_path):
    canary = tmp_path / "canary"
    payload = "{{ lookup('pipe', 'touch " + str(canary) + "') }}"
    project = tmp_path / "project"
    project.mkdir()
    out = tmp_path / "written.txt"
    (project / "echo.yml").write_text(
        "- name: K12 echo\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Write the value\n      ansible.builtin.copy:\n"
        f"        dest: {out}\n        content: \"{{{{ k12_value }}}}\\n{{{{ k12_list | join(',') }}}}\"\n"
        "        mode: '0600'\n"
    )
    run = run_site_job(
        _local_job(tmp_path, {"k12_value": payload, "k12_list": [payload, "b"]}, project, playbook="echo.yml")
    )
    assert run.status == "successful", run.error
    assert out.read_text() == f"{payload}\n{payload},b"
    assert not canary.exists()


def test_backend_refuses_a_tampered_change_before_running_anything(tmp_path):
    inventory = write_inventory(
        tmp_path / "inventory.yaml", {"test-site": {"box": local_host_vars()}}, {"k12_dns_filters": ["box"]}
    )
    backend = NetworkBackend(
        NetworkConfig(inventory=str(inventory)), base_dir=REPO, artifacts_dir=tmp_path / "artifacts"
    )
    bad = [
        Change(
            ResourceId("network", "dns_blocklist", "test-site"),
            "update",
            None,
            {"blocked": [PAYLOAD], "safesearch": False, "youtube": "off"},
        ),
        Change(ResourceId("network", "mac_quarantine", "test-site"), "update", None, ["02:00:00:00:00:01;id"]),
        Change(
            ResourceId("network", "dns_blocklist", "../etc"),
            "update",
            None,
            {"blocked": [], "safesearch": False, "youtube": "off"},
        ),
        Change(
            ResourceId("network", "dns_blocklist", "test-site"),
            "update",
            None,
            {"blocked": [], "safesearch": False, "youtube": PAYLOAD},
        ),
    ]
    sent: list[Change] = []
    results: list[ChangeResult] = []
    backend.apply(bad, sent.append, results.append)
    assert sent == [] and backend.runs == []
    assert [r.state for r in results] == ["failed"] * 4
    assert all(r.detail.startswith("rejected before sending") for r in results)
