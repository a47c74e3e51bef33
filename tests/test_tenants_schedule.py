"""schedule --emit for every district (issue 15, item 5): each in its own time zone, with its own credentials
file, run lock and log; systemd template units, a cron block per district, an Actions matrix, CronJobs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.jobs.schedule_tenants import TenantJob, emit_tenants

TENANTS = [
    TenantJob("north", "/srv/fleet/tenants/north/orchestrator.yaml", "America/Chicago", ("NORTH_AZURE_SECRET",)),
    TenantJob("south", "/srv/fleet/tenants/south/orchestrator.yaml", "America/Denver"),
]
PYTHON = "/srv/fleet/.venv/bin/orchestrator"


def test_systemd_template_units_and_one_timer_per_district_in_its_zone() -> None:
    text = emit_tenants("systemd", TENANTS, workdir="/srv/fleet", python=PYTHON)
    assert "# ---- orchestrator-lockdown@.service ----" in text
    assert "# ---- orchestrator-maintenance@.service ----" in text
    assert "EnvironmentFile=/etc/orchestrator/tenants/%i.env" in text
    assert "--config /srv/fleet/tenants/%i/orchestrator.yaml lockdown" in text
    assert "/srv/fleet/tenants/%i/.orchestrator/run.lock" in text
    north = text.split("# ---- orchestrator-lockdown@north.timer ----")[1].split("# ----")[0]
    south = text.split("# ---- orchestrator-lockdown@south.timer ----")[1].split("# ----")[0]
    assert "OnCalendar=*-*-* 01:30:00 America/Chicago" in north and "Unit=orchestrator-lockdown@north.service" in north
    assert "OnCalendar=*-*-* 01:30:00 America/Denver" in south
    assert "systemctl enable --now orchestrator-lockdown@north.timer orchestrator-maintenance@north.timer" in text
    assert "north: NORTH_AZURE_SECRET" in text


def test_cron_has_one_marked_block_per_district_with_its_zone_lock_and_credentials() -> None:
    text = emit_tenants("cron", TENANTS, workdir="/srv/fleet", python=PYTHON)
    north = text.split("# BEGIN k12-orchestrator north")[1].split("# END k12-orchestrator north")[0]
    south = text.split("# BEGIN k12-orchestrator south")[1].split("# END k12-orchestrator south")[0]
    assert "CRON_TZ=America/Chicago" in north and "CRON_TZ=America/Denver" in south
    assert "/srv/fleet/tenants/north/.orchestrator/run.lock" in north
    assert ". /etc/orchestrator/tenants/north.env" in north and "south.env" not in north
    assert "--config /srv/fleet/tenants/south/orchestrator.yaml maintenance run" in south


def test_github_actions_runs_a_matrix_over_the_districts() -> None:
    workflow = yaml.safe_load(emit_tenants("github-actions", TENANTS, workdir="/srv/fleet", python=PYTHON))
    lockdown = workflow["jobs"]["lockdown"]
    assert lockdown["strategy"]["fail-fast"] is False
    assert lockdown["strategy"]["matrix"]["include"] == [
        {"tenant": "north", "timezone": "America/Chicago"},
        {"tenant": "south", "timezone": "America/Denver"},
    ]
    crons = {entry["cron"] for entry in workflow[True]["schedule"]}  # yaml reads `on:` as True
    assert {"30 6 * * *", "30 7 * * *", "30 8 * * *"} <= crons  # 01:30 in Chicago and Denver, summer and winter
    steps = " ".join(str(step) for step in lockdown["steps"])
    assert '"$CONFIG" lockdown' in steps and "${TENANT}.env" in steps
    assert workflow["jobs"]["maintenance"]["strategy"]["matrix"]["include"][1]["tenant"] == "south"


def test_kubernetes_cronjobs_per_district_with_time_zone_and_own_secret() -> None:
    docs = [
        d for d in yaml.safe_load_all(emit_tenants("kubernetes", TENANTS, workdir="/srv/fleet", python=PYTHON)) if d
    ]
    assert [d["metadata"]["name"] for d in docs] == [
        "orchestrator-lockdown-north",
        "orchestrator-maintenance-north",
        "orchestrator-lockdown-south",
        "orchestrator-maintenance-south",
    ]
    south = docs[2]
    assert south["kind"] == "CronJob" and south["spec"]["timeZone"] == "America/Denver"
    assert south["spec"]["schedule"] == "30 1 * * *" and south["spec"]["concurrencyPolicy"] == "Forbid"
    container = south["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "orchestrator-south"}}]
    assert container["command"][-3:] == ["--config", "/srv/fleet/tenants/south/orchestrator.yaml", "lockdown"][-3:]


def test_a_shared_credentials_file_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\{tenant\}"):
        emit_tenants("cron", TENANTS, workdir="/srv/fleet", python=PYTHON, env_file="/etc/orchestrator/all.env")


def test_schedule_all_tenants_from_the_command_line(tmp_path: Path, monkeypatch) -> None:
    for name, zone in (("north", "America/Chicago"), ("south", "America/Denver")):
        (tmp_path / "tenants" / name).mkdir(parents=True)
        (tmp_path / "tenants" / name / "orchestrator.yaml").write_text(f"timezone: {zone}\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["schedule", "--emit", "systemd", "--all-tenants", "--executable", PYTHON], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "OnCalendar=*-*-* 01:30:00 America/Denver" in result.output
    assert f"WorkingDirectory={tmp_path}/tenants/%i" in result.output
    only = CliRunner().invoke(main, ["schedule", "--emit", "kubernetes", "--tenant", "south"], catch_exceptions=False)
    assert only.exit_code == 0 and "orchestrator-lockdown-south" in only.output and "north" not in only.output
