"""The README's benchmark table is generated from bench/results/*.json and matches it (issue 14 item 4)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import readme_table  # noqa: E402


def test_the_readme_table_matches_the_results_files() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme_table.BEGIN in readme
    assert readme_table.rewrite(readme, readme_table.render(readme_table.load())) == readme, (
        "run .venv/bin/python bench/readme_table.py"
    )


def test_every_figure_of_a_results_file_reaches_the_table(tmp_path: Path) -> None:
    run = {
        "name": "inventory sync",
        "wall_s": 9.26,
        "cpu_s": 4.0,
        "requests_total": 356,
        "minimum_total": 355,
        "calls_ratio": 1.003,
        "quota_floor_s": 8.4,
        "quota_floor_bound": "directory",
        "floor_ratio": 1.1,
    }
    result = {
        "schema": 1,
        "benchmark": "district-x",
        "command": "bench/x.py",
        "workload": {"devices": 7},
        "measured_at": "2026-11-24T18:00:00Z",
        "machine": {"cpus": 2, "loadavg_at_end": [1, 2, 3]},
        "peak_rss_mib": 321,
        "runs": [run],
    }
    (tmp_path / "x.json").write_text(json.dumps(result))
    (tmp_path / "other.json").write_text(json.dumps({"tenants": 3}))  # another schema: skipped
    table = readme_table.render(readme_table.load(tmp_path))
    row = "| district-x | inventory sync | 9.3 s | 8.4 s (directory) | 1.10x | 356 vs 355 (1.00x) | 4.0 s | 321 MiB |"
    assert row in table
    assert "devices=7" in table and "tenants" not in table


def test_a_figure_a_run_does_not_carry_is_a_dash(tmp_path: Path) -> None:
    result = {
        "schema": 1,
        "benchmark": "other",
        "command": "bench/other.py",
        "measured_at": "2026-11-24T18:00:00Z",
        "runs": [{"name": "alone", "wall_s": 10.04, "requests_total": 215}],
    }
    (tmp_path / "other.json").write_text(json.dumps(result))
    table = readme_table.render(readme_table.load(tmp_path))
    assert "| other | alone | 10.0 s | — | — | 215 | — | — |" in table
