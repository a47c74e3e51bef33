"""One place enforces every cap, whatever the entry point (issue 18 item 4).

`max_per_run` of the LostDevicePolicy holds for `lockdown`, `plan --scope lockdown` + `apply plan.json` and
`apply --scope lockdown --yes`; a plan that holds more devices than the cap is refused at apply time.
Destructive caps (`max_devices_per_window`, `--max-destructive`) are covered through `maintenance run` and
`apply` in tests/test_maintenance_e2e.py and tests/test_gates.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

from lockdown_tenant import Tenant

CAP = 5
LOST = 12


def cli(tenant: Tenant, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(tenant.config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tenant.root,
    )


def disabled(tenant: Tenant, serials: list[str]) -> set[str]:
    return {s for s in serials if tenant.chrome_status(s) == "DISABLED"}


def test_plan_then_apply_of_the_lockdown_scope_obeys_max_per_run(tenant: Tenant) -> None:
    tenant.write(cap=CAP)
    lost = tenant.serials("chromeos", LOST)
    tenant.mark("lost", *lost)
    plan_file = tenant.root / "plan.json"
    planned = cli(tenant, "plan", "--scope", "lockdown", "--backend", "google", "--out", str(plan_file))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    saved = json.loads(plan_file.read_text())
    assert len(saved["changes"]) == CAP
    assert sum(1 for h in saved["held"] if h["reason"] == "over max_per_run") == LOST - CAP
    applied = cli(tenant, "apply", str(plan_file))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert len(disabled(tenant, lost)) == CAP, "apply of a lockdown plan went over max_per_run"


def test_apply_without_a_saved_plan_obeys_max_per_run_too(tenant: Tenant) -> None:
    tenant.write(cap=CAP)
    lost = tenant.serials("chromeos", LOST)
    tenant.mark("lost", *lost)
    applied = cli(tenant, "apply", "--scope", "lockdown", "--backend", "google", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert len(disabled(tenant, lost)) == CAP
    again = cli(tenant, "lockdown", "--backend", "google")  # the next night takes the next five
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(disabled(tenant, lost)) == 2 * CAP


def test_a_plan_over_the_cap_is_refused_at_apply_unless_overridden(tenant: Tenant) -> None:
    tenant.write(cap=1000)
    lost = tenant.serials("chromeos", LOST)
    tenant.mark("lost", *lost)
    plan_file = tenant.root / "plan.json"
    assert cli(tenant, "plan", "--scope", "lockdown", "--backend", "google", "--out", str(plan_file)).returncode == 0
    tenant.write(cap=CAP)  # the policy tightened after the plan was reviewed
    refused = cli(tenant, "apply", str(plan_file))
    assert refused.returncode == 1
    assert "allows 5 per run" in refused.stderr and disabled(tenant, lost) == set()
    forced = cli(tenant, "apply", str(plan_file), "--override-blast-radius")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert disabled(tenant, lost) == set(lost)
