"""Plans a reviewer can read (issue 17 items 1 and 2): Terraform-like text at 80 and 160 columns, and Markdown
that GitHub renders (every row keeps its cells), grouped, capped, with destructive changes first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from rich.console import Console

from orchestrator.cli.plan_markdown import GITHUB_LIMIT, render_markdown
from orchestrator.cli.render import headline, render_text
from orchestrator.core.resources import Change, ResourceId
from orchestrator.engine.plan import HeldChange, Plan


@pytest.fixture(autouse=True)
def in_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


LONG = (
    "This device belongs to Prairie Valley School District. Please return it to any school office. "
    "Phone: +1 555 0100 200. Thank you for helping a student get their Chromebook back before the exam week."
)
APP = "ghbmnnjooekpmoecnnnilnnbdlolhkhi"


def sample_plan(tmp_path: Path, commit: str | None = "0123abc+dirty") -> Plan:
    """Sources are relative to the repository (the working folder), as the loader gives them."""
    policy = tmp_path / "policies" / "apps.yaml"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text(f"kind: AppPush\nchrome:\n  - id: {APP}   # Google Docs Offline\n")
    changes = [
        Change(
            id=ResourceId("google", "ou_policy", "/Students/Elementary|chrome.users.UrlBlocking"),
            op="update",
            before={"urlBlocklist": ["roblox.com", "discord.com"], "urlAllowlist": ["pbskids.org"]},
            after={"urlBlocklist": ["discord.com", "tiktok.com"], "urlAllowlist": ["pbskids.org"]},
            sources=("policies/webfilter-elementary.yaml:14", "policies/webfilter-elementary.yaml:22"),
        ),
        Change(
            id=ResourceId("google", "ou_policy", "/|chrome.devices.DisabledDeviceReturnInstructions"),
            op="create",
            before=None,
            after={"deviceDisabledMessage": LONG},
            sources=("policies/lost-devices.yaml:5",),
        ),
        Change(
            id=ResourceId("google", "ou_policy", "/Labs|chrome.users.Wallpaper"),
            op="delete",
            before={"wallpaperImage": "x.png"},
            after=None,
        ),
        Change(
            id=ResourceId("google", "ou_app", f"/Students|{APP}"),
            op="create",
            before=None,
            after={"appInstallType": "FORCED"},
            sources=("policies/apps.yaml:3",),
        ),
        Change(
            id=ResourceId("intune", "app_assignment", "Microsoft Word"),
            op="update",
            before=[],
            after=[{"group": "All Student Devices", "intent": "required"}],
            sources=("policies/apps.yaml:16",),
        ),
        *(
            Change(
                id=ResourceId("google", "device_status", serial),
                op="update",
                before="ACTIVE",
                after="DISABLED",
                sources=("policies/lost-devices.yaml:10", f"inventory/devices.csv:{n}"),
                meta={"school": "lincoln-elementary"},
            )
            for n, serial in ((12, "CB0000011"), (13, "CB0000012"))
        ),
        Change(
            id=ResourceId("intune", "reimage", "PF0000009|2026-audit-retire"),
            op="action",
            before=None,
            after={"action": "retire"},
            destructive=True,
            sources=("policies/reimage.yaml:7", "inventory/devices.csv:10"),
            meta={"school": "jefferson-high"},
        ),
    ]
    held = HeldChange(
        change=Change(id=ResourceId("google", "device_status", "CB0000099"), op="update", before=None, after="x"),
        reason="not found",
        detail="serial not found in google",
    )
    return Plan(
        changes=changes,
        observed={},
        backends=["google", "intune"],
        scopes=["policy", "lockdown", "maintenance"],
        policy_commit=commit,
        held=[held],
        unmanaged=["google/ou_policy//Labs|chrome.users.Printers"],
    )


def text_at(plan: Plan, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    render_text(plan, console)
    return console.export_text()


def test_the_summary_counts_settings_apps_device_actions_and_destructive_separately(tmp_path: Path) -> None:
    assert headline(sample_plan(tmp_path)) == (
        "Plan: settings 1 to set, 1 to change, 1 to remove; 2 app change(s); 3 device action(s); "
        "1 destructive (gated by maintenance windows). 1 change(s) held back (listed below)."
    )


@pytest.mark.parametrize("width", [80, 160])
def test_text_plan_is_a_block_per_resource_with_attribute_lines_and_never_cuts_a_word(
    tmp_path: Path, width: int
) -> None:
    text = text_at(sample_plan(tmp_path), width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), [line for line in lines if len(line) > width]
    # list members added and removed, not the whole lists; unchanged attributes left out
    assert re.search(r"^ +~ urlBlocklist = \(1 unchanged\)$", text, re.M)
    assert re.search(r'^ +- "roblox.com"$', text, re.M) and re.search(r'^ +\+ "tiktok.com"$', text, re.M)
    assert "urlAllowlist" not in text
    assert re.search(r'^ +~ "ACTIVE" → "DISABLED"$', text, re.M)
    assert re.search(r'^ +\+ \{"group": "All Student Devices", "intent": "required"\}$', text, re.M)
    assert re.search(r'^ +- wallpaperImage = "x.png"$', text, re.M)
    # every word of the long value, every file:line and every resource id survives whole
    words = set(text.split())
    assert set(LONG.split()) <= {w.strip('"') for w in words} | words
    for token in (
        "policies/webfilter-elementary.yaml:14,",
        "inventory/devices.csv:13",
        "google/ou_policy//Students/Elementary|chrome.users.UrlBlocking",
        "intune/reimage/PF0000009|2026-audit-retire",
    ):
        assert token in words, token
    assert "! intune/reimage/PF0000009|2026-audit-retire (destructive) will run" in " ".join(lines)
    assert f"google/ou_app//Students|{APP} (Google Docs Offline)" in " ".join(text.split())
    # held and unmanaged entries are still shown, and the summary comes last
    assert "held: google/device_status/CB0000099: serial not found in google" in " ".join(text.split())
    assert "unmanaged (not in any policy, left alone): 1 setting(s)" in " ".join(text.split())
    assert " ".join(lines[-1].split()).endswith("(listed below).") or "held back" in " ".join(lines[-2:])


def table_rows(markdown: str) -> list[tuple[int, int]]:
    """(header cells, body cells) for every row of every GFM table, as a GFM renderer sees them."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    shapes, header, cells, in_head = [], 0, 0, False
    for token in tokens:
        if token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_open":
            cells = 0
        elif token.type in ("th_open", "td_open"):
            cells += 1
        elif token.type == "tr_close":
            if in_head:
                header = cells
            else:
                shapes.append((header, cells))
    return shapes


def test_markdown_tables_keep_every_cell_on_github_and_destructive_changes_come_first(tmp_path: Path) -> None:
    plan = sample_plan(tmp_path)
    plan.changes[0].sources = ("policies/a|b.yaml:3",)  # a pipe in every kind of cell
    plan.changes[5].meta["school"] = "lincoln | east"
    markdown = render_markdown(plan)
    rows = table_rows(markdown)
    assert len(rows) >= len(plan.changes) + 2
    assert all(header == cells for header, cells in rows), rows
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "intune/reimage/PF0000009|2026-audit-retire" in html  # the id is shown whole, the pipe escaped
    assert "<code>policies/a|b.yaml:3</code>" in html
    destructive = markdown.index("#### Destructive changes and prunes")
    assert destructive < markdown.index("#### Per school and backend") < markdown.index("<details>")
    top = markdown[destructive : markdown.index("#### Per school and backend")]
    assert "PF0000009" in top and "chrome.users.Wallpaper" in top and "**prune**" in top
    assert "Policy commit `0123abc` **with uncommitted changes (dirty)**" in markdown
    assert "<summary>lincoln | east · google (1)</summary>" in markdown
    assert "<summary>district-wide · intune (1)</summary>" in markdown
    assert "(Google Docs Offline)" in markdown


def test_markdown_is_capped_under_githubs_comment_limit_with_a_note_of_what_was_left_out(tmp_path: Path) -> None:
    plan = sample_plan(tmp_path, commit="0123abc")
    plan.changes += [
        Change(
            id=ResourceId("google", "device_status", f"CB{i:07d}"),
            op="update",
            before="ACTIVE",
            after="DISABLED",
            sources=("policies/lost-devices.yaml:10", f"inventory/devices.csv:{i}"),
            meta={"school": f"school-{i % 7}"},
        )
        for i in range(3000)
    ]
    markdown = render_markdown(plan)
    assert len(markdown) < GITHUB_LIMIT
    left = int(re.search(r"… and (\d+) more change\(s\)", markdown).group(1))
    shown = (
        markdown.count("| `~` |") + markdown.count("| `+` |") + markdown.count("| `!` |") + markdown.count("| `-` |")
    )
    assert 0 < left < len(plan.changes)
    assert all(header == cells for header, cells in table_rows(markdown))
    assert "(clean)" in markdown
    assert shown >= len(plan.changes) - left  # destructive ones are listed twice (at the top and in their group)
