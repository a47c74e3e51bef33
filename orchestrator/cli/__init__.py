"""The command line: parse, open a session, call one job, render, map errors to exit codes (presentation only).

`app` holds the `main` group, the shared options and the reconcile commands; the other modules add their
commands here.
"""

from orchestrator.cli.app import main
from orchestrator.cli.journal import journal
from orchestrator.cli.ops import register

register(main)
main.add_command(journal)

__all__ = ["main"]
