"""orchestrator.yaml: connection settings only, secrets by environment variable, unconfigured backends skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import is_loopback, load_config
from orchestrator.connect import open_backends
from orchestrator.errors import ConfigError


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


def test_unconfigured_or_uncredentialed_backends_are_skipped_with_a_note(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    config = load_config(write(tmp_path, "google:\n  customer_id: my_customer\nintune:\n  tenant_id: t\n"))
    connections = open_backends(config)
    assert connections.backends == {}
    notes = " ".join(connections.notes)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in notes and "intune" in notes and "network: not configured" in notes
