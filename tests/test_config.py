"""orchestrator.yaml: connection settings only, secrets by environment variable, unconfigured backends skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.backends.endpoints import is_loopback
from orchestrator.core.errors import ConfigError
from orchestrator.jobs.config import environment_of, load_config
from orchestrator.jobs.connect import open_backends


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "orchestrator.yaml"
    path.write_text(text)
    return path


def test_a_secret_in_the_config_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write(tmp_path, "intune:\n  client_secret: s3cr3t-value\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "intune.client_secret" in str(info.value) and "s3cr3t-value" not in str(info.value)


def test_unknown_keys_and_bad_time_zones_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "timezone: Mars/Olympus\ngoogle:\n  custmer_id: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "timezone" in text and "google.custmer_id" in text


def test_an_explicit_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "journal: state/j.db\n"))
    assert config.path(config.journal) == tmp_path.resolve() / "state" / "j.db"


def test_loopback_detection() -> None:
    assert is_loopback("http://127.0.0.1:8801/") and is_loopback("http://localhost:1/")
    assert is_loopback("http://[::1]:80/")
    assert not is_loopback("https://admin.googleapis.com/") and not is_loopback(None)


# -- no silent success (issue 10, item 4) -----------------------------------------------------------------
def test_a_missing_default_config_is_an_error_naming_the_path_looked_for(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    with pytest.raises(ConfigError) as info:
        load_config()
    text = str(info.value)
    assert str(tmp_path.resolve() / "orchestrator.yaml") in text
    assert "--config" in text and "ORCHESTRATOR_CONFIG" in text


def test_a_missing_config_named_by_the_environment_is_an_error_naming_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", str(tmp_path / "elsewhere.yaml"))
    with pytest.raises(ConfigError, match=r"elsewhere\.yaml"):
        load_config()
    write(tmp_path, "timezone: America/Denver\n")
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", str(tmp_path / "orchestrator.yaml"))
    assert load_config().timezone == "America/Denver"


def _no_credentials(monkeypatch) -> None:
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERT"):
        monkeypatch.delenv(name, raising=False)


def test_unconfigured_backends_are_skipped_and_listed(tmp_path: Path, monkeypatch) -> None:
    _no_credentials(monkeypatch)
    emulator = "http://127.0.0.1:9/"
    config = load_config(write(tmp_path, f"google:\n  directory_endpoint: {emulator}\n  policy_endpoint: {emulator}\n"))
    connections = open_backends(config)
    assert set(connections.backends) == {"google"}
    assert connections.skipped == ["intune", "network"]
    notes = " ".join(connections.notes)
    assert "intune: not configured" in notes and "network: not configured" in notes
    connections.close()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("google:\n  customer_id: my_customer\n  admin_subject: a@d.example\n", "GOOGLE_APPLICATION_CREDENTIALS"),
        ("google:\n  directory_endpoint: https://proxy.district.example/\n", "GOOGLE_APPLICATION_CREDENTIALS"),
        ("google:\n  directory_endpoint: http://127.0.0.1:9/\n", "GOOGLE_APPLICATION_CREDENTIALS"),
        ("intune:\n  tenant_id: t\n  client_id: c\n", "AZURE_CLIENT_SECRET"),
        ("intune:\n  graph_endpoint: https://graph.microsoft.com/\n", "tenant_id"),
    ],
)
def test_a_configured_real_tenant_without_credentials_is_an_error_not_a_skip(
    tmp_path: Path, monkeypatch, text: str, needle: str
) -> None:
    _no_credentials(monkeypatch)
    config = load_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match=needle):
        open_backends(config)


def test_a_credentials_file_that_does_not_exist_is_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))
    config = load_config(write(tmp_path, "google:\n  admin_subject: a@d.example\n"))
    with pytest.raises(ConfigError, match=r"missing-key\.json"):
        open_backends(config)


def test_a_configured_network_whose_inventory_is_missing_is_an_error(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "network:\n  inventory: nowhere/inventory.yaml\n"))
    with pytest.raises(ConfigError, match=r"nowhere/inventory\.yaml"):
        open_backends(config, ["network"])


def test_a_backend_named_explicitly_must_be_configured(tmp_path: Path, monkeypatch) -> None:
    _no_credentials(monkeypatch)
    config = load_config(write(tmp_path, "google:\n  directory_endpoint: http://127.0.0.1:9/\n"))
    with pytest.raises(ConfigError, match="intune: not configured"):
        open_backends(config, ["google", "intune"], required=True)


def test_tenant_is_not_a_setting_and_an_environment_file_is_read_beside_the_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown setting.*tenant"):
        load_config(write(tmp_path, "tenant: north\n"))
    (tmp_path / "district.env").write_text("# district secrets\nexport A_SECRET='one'\nB_KEY=/keys/b.json\n\n")
    config = load_config(write(tmp_path, "environment_file: district.env\n"))
    assert config.tenant is None
    assert environment_of(config) == {"A_SECRET": "one", "B_KEY": "/keys/b.json"}
    (tmp_path / "district.env").write_text("not a pair\n")
    with pytest.raises(ConfigError, match=r"district.env:1: expected KEY=value"):
        environment_of(config)
