"""Role split (issue 15, item 6): `owners:` says who keeps which backend, and a runner that says who it is
(`--runner`, $ORCHESTRATOR_RUNNER) touches only what it keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_tenants import districts  # noqa: F401  (the two-district repository fixture)

from orchestrator.cli import main
from orchestrator.core.errors import ConfigError
from orchestrator.jobs.config import load_config, runner_backends


def _config(tmp_path: Path, text: str):
    (tmp_path / "orchestrator.yaml").write_text(text)
    return load_config(tmp_path / "orchestrator.yaml")


def test_a_runner_uses_only_the_backends_it_keeps(tmp_path: Path) -> None:
    config = _config(tmp_path, "owners: {network: provider, google: district, intune: district}\n")
    assert runner_backends(config, [], None) == ([], [])
    names, notes = runner_backends(config, [], "provider")
    assert names == ["network"]
    assert any("google: kept by district" in n for n in notes)
    assert runner_backends(config, [], "district")[0] == ["google", "intune"]
    with pytest.raises(ConfigError, match=r"google: kept by district .*not by this runner \(provider\)"):
        runner_backends(config, ["google"], "provider")
    with pytest.raises(ConfigError, match="keeps no part"):
        runner_backends(_config(tmp_path, "owners: {network: a, google: a, intune: a}\n"), [], "b")


def test_owners_must_name_backends(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"owners.netwrk: not a backend"):
        _config(tmp_path, "owners: {netwrk: provider}\n")


def test_a_providers_runner_never_touches_what_the_district_keeps(districts, monkeypatch) -> None:  # noqa: F811
    root, _ = districts
    config = root / "tenants" / "north" / "orchestrator.yaml"
    config.write_text(config.read_text() + "owners: {google: district, intune: provider}\n")
    run = CliRunner().invoke
    planned = run(main, ["--runner", "provider", "plan", "--tenant", "north", "--format", "json"])
    assert planned.exit_code == 0, planned.output
    [north] = json.loads(planned.stdout)["tenants"]
    assert north["output"]["backends"] == ["intune"]
    assert any("google: kept by district" in note for note in north["output"]["notes"])
    monkeypatch.setenv("ORCHESTRATOR_RUNNER", "provider")
    refused = run(main, ["plan", "--tenant", "north", "--backend", "google"])
    assert refused.exit_code == 1 and "google: kept by district in district 'north'" in refused.output
