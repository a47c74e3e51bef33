"""Benchmark: load + validate 5,000 policy documents across 500 files; print wall time and peak memory.

Usage: .venv/bin/python bench/bench_policies.py [--files 500] [--docs-per-file 10]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

from orchestrator.policy.loader import load_policies

TEMPLATE = """kind: WebFilter
name: filter-{f:03d}-{d:02d}
description: generated filter {f}/{d}
targets:
  google_ous: [/Students/Bench/School-{f:03d}/Grade-{d:02d}]
  network_sites: [site-{f:03d}-{d:02d}]
blocked: [{blocked}]
allowed: [khanacademy.org, "*.pbskids.org"]
safe_search: true
youtube: strict
---
"""


def generate(folder: Path, files: int, per_file: int) -> int:
    blocked = ", ".join(f"blocked-{i}.example.com" for i in range(20))
    for f in range(files):
        text = "".join(TEMPLATE.format(f=f, d=d, blocked=blocked) for d in range(per_file))
        (folder / f"school-{f:03d}.yaml").write_text(text)
    return files * per_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--docs-per-file", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        total = generate(folder, args.files, args.docs_per_file)
        start = time.perf_counter()
        policies = load_policies(folder)
        elapsed = time.perf_counter() - start
        tracemalloc.start()  # a second, traced run: tracing slows Python down, so it is not timed
        load_policies(folder)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert len(policies.policies) == total
    print(f"policy load+validate: {total} documents in {args.files} files")
    print(f"  wall time      {elapsed:.2f} s ({total / elapsed:,.0f} documents/s)")
    print(f"  peak memory    {peak / 2**20:.1f} MiB Python allocations (tracemalloc), {rss:.0f} MiB peak RSS")


if __name__ == "__main__":
    main()
