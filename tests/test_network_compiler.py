"""compile_network: policies + inventory → per-site dns_blocklist and mac_quarantine resources (pure)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.backends.network.compiler import compile_network
from orchestrator.core.resources import ResourceId
from orchestrator.inventory.devices import Inventory, load_inventory, parse_inventory
from orchestrator.policy.loader import load_policies

REPO = Path(__file__).resolve().parent.parent

FILTER_A = """\
kind: WebFilter
name: filter-a
targets:
  network_sites: [site-one, site-two]
blocked:
  - "*.tiktok.com"
  - tiktok.com
  - Roblox.COM
safe_search: true
youtube: moderate
"""
FILTER_B = """\
kind: WebFilter
name: filter-b
targets:
  network_sites: [site-two]
allowed:
  - khanacademy.org
"""
LOST = """\
kind: LostDevicePolicy
name: lost-devices
message: Please return this device.
schools: [lincoln-elementary]
network:
  sites: [core, annex]
"""
DEVICES = """\
serialNumber,platform,macAddress,school,inventoryStatus
CB0000001,chromeos,02:00:00:00:00:0A,lincoln-elementary,lost
CB0000002,chromeos,02-00-00-00-00-0b,lincoln-elementary,stolen
CB0000003,chromeos,02:00:00:00:00:0c,lincoln-elementary,found
CB0000004,chromeos,02:00:00:00:00:0d,jefferson-high,lost
CB0000005,chromeos,,lincoln-elementary,lost
CB0000006,chromeos,02:00:00:00:00:0e,lincoln-elementary,active
"""


def _compile(policy_dir, files: dict[str, str], devices: str = DEVICES):
    folder = policy_dir(files)
    return {
        r.id: r
        for r in compile_network(
            load_policies(folder, display_root=folder.parent), parse_inventory("devices.csv", devices)
        )
    }


def test_dns_blocklist_normalises_wildcards_and_names_its_sources(policy_dir):
    resources = _compile(policy_dir, {"a.yaml": FILTER_A})
    one = resources[ResourceId("network", "dns_blocklist", "site-one")]
    assert one.value == {"blocked": ["roblox.com", "tiktok.com"], "safesearch": True, "youtube": "moderate"}
    assert one.policy == "filter-a"
    assert one.sources and all(s.startswith("policies/a.yaml:") for s in one.sources)
    assert "policies/a.yaml:4" in one.sources  # the site's line under targets.network_sites
    assert resources[ResourceId("network", "dns_blocklist", "site-two")].value == one.value


def test_dns_blocklist_is_the_union_of_documents_for_a_site(policy_dir):
    resources = _compile(policy_dir, {"a.yaml": FILTER_A, "b.yaml": FILTER_B})
    two = resources[ResourceId("network", "dns_blocklist", "site-two")]
    assert two.value["blocked"] == ["roblox.com", "tiktok.com"]
    assert two.policy == "filter-a,filter-b"
    assert any(s.startswith("policies/b.yaml:") for s in two.sources)


def test_quarantine_lists_lost_and_stolen_macs_of_the_policy_schools_per_site(policy_dir):
    resources = _compile(policy_dir, {"lost.yaml": LOST})
    core = resources[ResourceId("network", "mac_quarantine", "core")]
    assert core.value == ["02:00:00:00:00:0a", "02:00:00:00:00:0b"]  # found, other school, no MAC: absent
    assert core.meta["serials"] == {"02:00:00:00:00:0a": "CB0000001", "02:00:00:00:00:0b": "CB0000002"}
    assert core.policy == "lost-devices"
    assert all(s.startswith("policies/lost.yaml:") for s in core.sources)
    assert resources[ResourceId("network", "mac_quarantine", "annex")].value == core.value


def test_found_devices_leave_an_empty_quarantine_that_releases_them(policy_dir):
    devices = DEVICES.replace(",lost\n", ",found\n").replace(",stolen\n", ",found\n")
    resources = _compile(policy_dir, {"lost.yaml": LOST}, devices)
    assert resources[ResourceId("network", "mac_quarantine", "core")].value == []


def test_found_devices_stay_quarantined_when_the_policy_keeps_them(policy_dir):
    keep = LOST + "on_found:\n  release_quarantine: false\n"
    resources = _compile(policy_dir, {"lost.yaml": keep})
    core = resources[ResourceId("network", "mac_quarantine", "core")]
    assert core.value == ["02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"]


def test_quarantine_off_compiles_nothing(policy_dir):
    resources = _compile(policy_dir, {"lost.yaml": LOST + "  quarantine: false\n"})
    assert not [rid for rid in resources if rid.type == "mac_quarantine"]


def test_sample_district_compiles_every_sandbox_site():
    policies = load_policies(REPO / "policies", display_root=REPO)
    resources = compile_network(policies, load_inventory(REPO / "inventory" / "devices.csv"))
    assert sorted(str(r.id) for r in resources) == [
        "network/dns_blocklist/jefferson-high",
        "network/dns_blocklist/lincoln-elementary",
        "network/dns_blocklist/roosevelt-middle",
        "network/dns_blocklist/washington-elementary",
        "network/mac_quarantine/district-core",
    ]
    assert compile_network(policies, Inventory("empty", []))[-1].value == []
