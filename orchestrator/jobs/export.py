"""`orchestrator export`: the consoles' current settings → policy YAML that plans back to no change.

Each connected backend whose spec has an `export` is observed exactly as a plan with no policy observes it
(`observe([])`, through the session's connections, pacers and call counter: never more reads than `plan`),
or through the spec's `export_read` where observe reads only what policies name (Intune apps, network sites),
and its exporter turns what it saw into files (orchestrator.policy.writer). Two documents of one kind with one
name (from two consoles) refuse the export before anything is written. Writing is all or nothing: when
a file already exists with other settings and `force` is not given, nothing is written and the files are
named. A file whose settings did not change is left as it is (not even its `# Read at:` line), so the
`git diff` of two exports shows only what changed in the consoles.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.core.backend import ExportInput
from orchestrator.core.errors import OrchestratorError
from orchestrator.jobs.session import Session
from orchestrator.policy.grammar import check_ou_path
from orchestrator.policy.writer import EXPORTED_BY, ExportFile, render_file, same_settings

READING = "Reading the consoles' current settings..."


@dataclass
class ExportReport:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    documents: int = 0
    left_out: list[str] = field(default_factory=list)
    """`path or ou: what` for each console setting the policy language cannot say exactly (left unmanaged)."""
    notes: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def export_files(session: Session, *, subtree: str | None = None, now: dt.datetime | None = None) -> list[ExportFile]:
    """What every exportable connected backend has, as files (nothing written); notes for the others."""
    read_at = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    files: list[ExportFile] = []
    for name in session.backends:
        spec = session.catalog.spec(name)
        if spec.export is None:
            continue
        backend = session.connections.backends[name]
        with session.status(READING):
            observed = spec.export_read(backend) if spec.export_read is not None else backend.observe([])
        section = session.workspace.config.sections.get(name)
        files += spec.export(ExportInput(observed=observed, section=section, subtree=subtree, read_at=read_at))
    files.sort(key=lambda f: f.path)
    _check_unique_names(files)
    return files


def _check_unique_names(files: list[ExportFile]) -> None:
    """Two exported documents of one kind with one name would not validate: refuse before writing anything."""
    first: dict[tuple[str, str], str] = {}
    clashes = []
    for file in files:
        for doc in file.documents:
            key = (doc.model.kind, doc.model.name)
            if key in first:
                clashes.append(f"{key[0]} {key[1]!r} in {first[key]} and {file.path}")
            first.setdefault(key, file.path)
    if clashes:
        raise OrchestratorError(
            "the consoles' settings would export to documents with the same name; nothing was written (rename "
            "one of them in its console and export again):\n" + "\n".join(f"  {c}" for c in clashes)
        )


def export_district(
    session: Session, out: Path, *, subtree: str | None = None, force: bool = False, now: dt.datetime | None = None
) -> ExportReport:
    """Export into `out`; OrchestratorError (nothing written) when a file would be overwritten without `force`."""
    started = time.monotonic()
    if subtree is not None:
        try:
            check_ou_path(subtree)
        except ValueError as exc:
            raise OrchestratorError(f"--ou {subtree!r}: {exc}") from None
    report = ExportReport()
    for name in session.backends:
        if session.catalog.spec(name).export is None:
            report.notes.append(f"{name}: export is not available for this backend yet; nothing read from it")
    report.notes += session.connections.notes
    files = export_files(session, subtree=subtree, now=now)
    planned: list[tuple[Path, str]] = []
    refused: list[str] = []
    for file in files:
        report.left_out += [f"{file.path}: {item}" for item in file.left_out]
        if not file.documents:
            continue
        report.documents += len(file.documents)
        path = out / file.path
        text = render_file(file)
        if path.exists():
            old = path.read_text(encoding="utf-8")
            if same_settings(old, text):
                report.unchanged.append(path)
                continue
            if not force:
                refused.append(str(path))
                continue
        planned.append((path, text))
    if subtree is None:
        report.notes += _gone(out, {out / f.path for f in files if f.documents}, session.backends)
    if refused:
        raise OrchestratorError(
            f"{len(refused)} file(s) already exist with other settings; nothing was written (use --force to "
            "overwrite them, or export into an empty folder):\n" + "\n".join(f"  {p}" for p in refused)
        )
    for path, text in planned:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        report.written.append(path)
    report.calls = session.api_calls()
    report.seconds = time.monotonic() - started
    return report


def _gone(out: Path, produced: set[Path], backends: list[str]) -> list[str]:
    """Files an earlier export wrote that the consoles no longer back (kept: deleting them is a review's call)."""
    notes = []
    for name in backends:
        for path in sorted((out / name).glob("*.yaml")) if (out / name).is_dir() else []:
            if path not in produced and path.read_text(encoding="utf-8").startswith(EXPORTED_BY):
                notes.append(
                    f"{path}: exported earlier, but the console no longer has its settings (delete it to leave the "
                    "console as it is; keep it and apply to set them again)"
                )
    return notes
