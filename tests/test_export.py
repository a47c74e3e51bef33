"""`orchestrator export` (issue 13 items 1, 3, 4): a lived-in console → policy YAML that plans back to nothing.

End to end against the Google emulator started as `sandbox --lived-in` starts it: export into an empty
policies folder, validate, plan (0 changes); edit one exported file and the plan shows exactly that change;
change a setting in the console and export again: only that file changes, by the lines that changed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from orchestrator.backends.google.exporter import ou_slug
from orchestrator.cli import main
from orchestrator.jobs.session import Session
from orchestrator.sandbox.district import LIVED_IN_GOOGLE, generate
from orchestrator.sandbox.google_emulator import GoogleEmulator

REPO = Path(__file__).resolve().parent.parent
BLOCKING = "chrome.users.UrlBlocking"


@dataclass
class Lived:
    root: Path
    emulator: GoogleEmulator

    @property
    def config(self) -> Path:
        return self.root / "orchestrator.yaml"

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.config), *args], catch_exceptions=False)

    def plan_changes(self) -> list[str]:
        with Session.open(str(self.config), backends=("google",)) as session:
            plan = session.plan(("policy",))
        return sorted(f"{c.op} {c.id}" for c in plan.changes)

    def calls(self) -> tuple[int, int]:
        """(API calls of a plan, API calls of an export into a scratch folder)."""
        with Session.open(str(self.config), backends=("google",)) as session:
            session.plan(("policy",))
            planned = sum(session.api_calls().values())
        result = self.cli("export", "--backend", "google", "--out", str(self.root / "scratch"))
        assert result.exit_code == 0, result.output
        exported = int(result.output.split(" API calls")[0].rsplit(" ", 1)[1])
        return planned, exported


@pytest.fixture
def lived(tmp_path: Path) -> Iterator[Lived]:
    shutil.copytree(REPO / "inventory", tmp_path / "inventory")
    (tmp_path / "policies").mkdir()
    emulator = GoogleEmulator(generate(devices=60)).start()
    emulator.state.set_by_hand(LIVED_IN_GOOGLE)
    (tmp_path / "orchestrator.yaml").write_text(
        f"journal: {tmp_path / 'journal.db'}\npolicies: policies/\ninventory: inventory/devices.csv\n"
        f"google:\n  directory_endpoint: {emulator.url}\n  policy_endpoint: {emulator.url}\n"
        "  policy_reads_per_minute: 60000\n  requests_per_minute: 60000\n"
    )
    try:
        yield Lived(tmp_path, emulator)
    finally:
        emulator.stop()


def test_export_validates_and_plans_back_to_no_change_then_one_edit_is_exactly_one_change(lived: Lived) -> None:
    policies = lived.root / "policies"
    result = lived.cli("export", "--backend", "google", "--out", str(policies))
    assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(policies).as_posix() for p in policies.rglob("*.yaml"))
    assert files == [
        "google/labs-jefferson.yaml",
        "google/root.yaml",
        "google/staff.yaml",
        "google/students-elementary.yaml",
        "google/students.yaml",
        "google/testing.yaml",
    ]  # not /Students/High/Jefferson: its only setting, a URL list with a path, is left out
    assert "https://chat.example/rooms/*" in result.output  # left out, and said so
    validated = lived.cli("validate")
    assert validated.exit_code == 0, validated.output
    assert lived.plan_changes() == []

    students = policies / "google" / "students.yaml"
    text = students.read_text()
    assert text.startswith("# Exported by `orchestrator export` from the Google Admin console (customer my_customer)")
    assert "org unit /Students." in text and "# Read at: " in text
    assert "@" not in "".join(p.read_text() for p in policies.rglob("*.yaml"))  # no student address, ever
    students.write_text(text.replace("  - twitch.tv\n", "  - twitch.tv\n  - youtube-games.example\n"))
    assert lived.plan_changes() == [f"update google/ou_policy//Students|{BLOCKING}"]


def test_exported_documents_are_the_inverse_of_the_compiler(lived: Lived) -> None:
    out = lived.root / "policies"
    assert lived.cli("export", "--backend", "google", "--out", str(out)).exit_code == 0
    docs = {d["name"]: d for p in out.rglob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d}
    assert docs["students-web-filter"] == {
        "kind": "WebFilter",
        "name": "students-web-filter",
        "description": "Web filter set at /Students",
        "targets": {"google_ous": ["/Students"]},
        "blocked": ["discord.com", "tiktok.com", "twitch.tv"],
        "allowed": ["khanacademy.org"],
        "safe_search": True,
        "youtube": "moderate",
    }
    assert docs["students-elementary-web-filter"]["youtube"] == "strict"
    assert "safe_search" not in docs["students-elementary-web-filter"]  # set above, inherited: not repeated
    assert docs["students-elementary-apps"]["chrome"] == [
        {"id": "mkaakpdehdafacodkgkpghoibnmamcme", "install": "force", "pinned": True}
    ]
    assert {a["install"] for a in docs["students-apps"]["chrome"]} == {"force", "blocked"}
    assert docs["staff-web-filter"]["safe_search"] is False
    assert "students-high-jefferson-web-filter" not in docs  # a URL with a path: left out, stays unmanaged


def test_export_again_after_a_console_change_is_a_minimal_diff_and_never_overwrites(lived: Lived) -> None:
    out = lived.root / "policies"
    assert lived.cli("export", "--backend", "google", "--out", str(out)).exit_code == 0
    before = {p: p.read_text() for p in out.rglob("*.yaml")}
    again = lived.cli("export", "--backend", "google", "--out", str(out))
    assert again.exit_code == 0 and "0 file(s) written" in again.output  # nothing changed: files untouched
    staff = lived.emulator.state.ou_by_ref("/Staff").id
    lived.emulator.state.policies[(staff, "chrome.users.SafeSearchRestrictedMode", "")] = {
        "forceGoogleSafeSearch": True
    }
    refused = lived.cli("export", "--backend", "google", "--out", str(out))
    assert refused.exit_code != 0 and "--force" in refused.output
    assert {p: p.read_text() for p in out.rglob("*.yaml")} == before  # all or nothing: nothing written
    forced = lived.cli("export", "--backend", "google", "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    changed = {p for p in out.rglob("*.yaml") if p.read_text() != before.get(p)}
    assert changed == {out / "google" / "staff.yaml"}
    old, new = (
        before[out / "google" / "staff.yaml"].splitlines(),
        (out / "google" / "staff.yaml").read_text().splitlines(),
    )
    diff = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert [b for _, b in diff if not b.startswith("# Read at:")] == ["safe_search: true"]


def test_ou_subtree_and_plan_reads_no_more_than_export(lived: Lived) -> None:
    out = lived.root / "policies"
    assert lived.cli("export", "--backend", "google", "--ou", "/Students", "--out", str(out)).exit_code == 0
    assert {p.name for p in out.rglob("*.yaml")} <= {
        "students.yaml",
        "students-elementary.yaml",
        "students-high-jefferson.yaml",
    }
    planned, exported = lived.calls()
    assert exported <= planned


def test_ou_slugs_are_stable_names() -> None:
    assert ou_slug("/") == "root"
    assert ou_slug("/Students/High/Jefferson") == "students-high-jefferson"
    long = ou_slug("/" + "/".join(["Very Long Org Unit Name"] * 4))
    assert len(long) + len("-web-filter") <= 63 and long == ou_slug("/" + "/".join(["Very Long Org Unit Name"] * 4))


def test_a_file_the_console_no_longer_backs_is_named_not_deleted(lived: Lived) -> None:
    out = lived.root / "policies"
    assert lived.cli("export", "--backend", "google", "--out", str(out)).exit_code == 0
    testing = lived.emulator.state.ou_by_ref("/Testing").id
    del lived.emulator.state.policies[
        (testing, "chrome.users.apps.InstallType", "chrome:felcaaldnbdncclmgdcncolpebgiejap")
    ]
    again = lived.cli("export", "--backend", "google", "--out", str(out))
    assert again.exit_code == 0, again.output
    assert "testing.yaml: exported earlier, but the console no longer has its settings" in " ".join(
        again.output.split()
    )
    assert (out / "google" / "testing.yaml").exists()
    bad = lived.cli("export", "--backend", "google", "--ou", "Students", "--out", str(out))
    assert bad.exit_code != 0 and "not an org unit path" in bad.output


def test_the_writer_never_writes_an_email_address() -> None:
    from orchestrator.policy.models import WebFilter
    from orchestrator.policy.writer import ExportedDoc, render_document

    doc = WebFilter(
        kind="WebFilter", name="x", description="ask jane.doe@district.example", targets={"google_ous": ["/"]}
    )
    with pytest.raises(ValueError, match="e-mail"):
        render_document(ExportedDoc(doc))
