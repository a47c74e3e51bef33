"""The command line: parse, open a session, call one job, render, map errors to exit codes (presentation only).

`app` holds the `main` group, the consoles, the shared options and the session helper; the commands live in
`reconcile` (validate, schema, plan, drift, apply), `ops` (lockdown, maintenance, windows, calendar, schedule),
`inventory`, `journal` and `sandbox`, and are added to `main` here. Nothing outside this package imports it.
"""

from orchestrator.cli.app import main
from orchestrator.cli.export import export
from orchestrator.cli.inventory import inventory
from orchestrator.cli.journal import journal
from orchestrator.cli.ops import calendar_group, lockdown, maintenance, schedule, windows
from orchestrator.cli.reconcile import apply, drift, plan, schema, validate
from orchestrator.cli.sandbox import sandbox
from orchestrator.cli.site import report
from orchestrator.cli.tenants import tenant_worker

COMMANDS = (validate, schema, plan, drift, apply, export, lockdown, maintenance, windows, calendar_group, schedule)
for _command in (*COMMANDS, report, inventory, journal, sandbox, tenant_worker):
    main.add_command(_command)

__all__ = ["main"]
