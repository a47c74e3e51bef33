"""`orchestrator export`: write the consoles' current settings as policy YAML (adopting an existing district)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from orchestrator.cli.app import backend_option, console, handle_errors, open_session
from orchestrator.jobs.export import export_district


@click.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the policy files in.")
@backend_option
@click.option("--ou", "subtree", help="Only this Google org unit and the ones below it (e.g. /Students); Google only.")
@click.option("--force", is_flag=True, help="Overwrite files that exist with other settings.")
@click.pass_context
@handle_errors
def export(ctx: click.Context, out: str, backends: tuple[str, ...], subtree: str | None, force: bool) -> None:
    """Write the consoles' current settings as policy YAML that plans back to no change.

    Reads no more than `plan` reads: one file per Google org unit with local settings, Intune's web filter
    profiles (intune/web-filters.yaml) and app assignments (intune/apps.yaml), and one file per network site
    whose resolvers hold a blocklist (read in check mode). What the policy language cannot say is listed and
    stays in the console, unmanaged. Never overwrites a file with other settings without --force, and leaves
    files whose settings did not change alone. Review the files, commit them, and `plan` shows nothing to
    change.

    Example: orchestrator export --out policies/exported
    """
    with open_session(ctx, backends) as session:
        report = export_district(session, Path(out), subtree=subtree, force=force)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    for path in report.written:
        console.print(f"wrote {escape(str(path))}")
    if report.left_out:
        console.print(
            f"Left out ({len(report.left_out)}; they stay in the console, unmanaged, and are listed atop their "
            "file when one is written):"
        )
        for item in report.left_out:
            console.print(f"  {escape(item)}")
    calls = sum(report.calls.values())
    console.print(
        f"Exported {report.documents} document(s): {len(report.written)} file(s) written, "
        f"{len(report.unchanged)} unchanged; {calls} API calls, {report.seconds:.1f}s.",
        soft_wrap=True,
    )
