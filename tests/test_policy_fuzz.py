"""Fuzz: mutated copies of the sample district never crash or hang validation (issue 10 item 11).

A seeded mutator (no extra dependency) takes the sample policies in policies/ and the sample inventory,
applies one to three mutations per case (deep nesting, huge numbers, alias bombs, emoji and control
characters in keys and values, truncation, byte flips, duplicate keys, tabs, wrong types, BOMs, very
long lines, stray YAML syntax) and loads the result the way the tool does:

- every case through `orchestrator.policy.loader.load_policies`,
- every 10th case through `orchestrator.jobs.workspace.open_workspace` with a mutated inventory too,
- every 40th case through `orchestrator validate` (click's CliRunner).

Asserted: no exception other than PolicyError (0 tracebacks), every message line in the
`file:line: field: message (allowed)` form (DIAGNOSTIC_LINE), and a generous per-case hang guard. The
slowest case is measured and printed, not asserted tightly. Reproduce one case with
`POLICY_FUZZ_ONLY=<case> pytest tests/test_policy_fuzz.py -s`; change the corpus with POLICY_FUZZ_SEED
and its size with POLICY_FUZZ_CASES.
"""

from __future__ import annotations

import os
import random
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core.errors import PolicyError
from orchestrator.inventory.devices import load_inventory
from orchestrator.jobs.workspace import open_workspace
from orchestrator.policy.loader import load_policies

REPO = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("POLICY_FUZZ_SEED", "20261011"))
CASES = int(os.environ.get("POLICY_FUZZ_CASES", "2400"))
INVENTORY_CASES = int(os.environ.get("POLICY_FUZZ_INVENTORY_CASES", "400"))
ONLY = os.environ.get("POLICY_FUZZ_ONLY")
HANG_GUARD_S = 10.0  # not a performance bound: a case this slow is a hang (the slowest is printed)

# `file:line: field: message (allowed)`; the field is absent for whole-file problems (YAML syntax, size).
# A field is dotted words and [index]/["quoted"] parts: a key with spaces, colons or emoji is \u-escaped.
DIAGNOSTIC_LINE = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+): (?:(?P<field>[\w.\[\]\"\\-]+): )?(?P<msg>\S.*)$")
SUMMARY_LINE = re.compile(r"^\d+ problem\(s\) found\.$")
# Each limit and error path the corpus must reach, so a change to the mutator cannot quietly stop testing it.
LIMIT_MESSAGES = {
    "depth": "nesting is deeper than",
    "alias expansion": "expands the document past",
    "number size": "number written with",
    "file size": "file is larger than",
    "encoding": "is not UTF-8 text",
    "control character": "unacceptable character",
    "syntax": "YAML syntax error",
    "duplicate key": "duplicate key",
    "tag": "unsupported YAML tag",
}

SAMPLES: dict[str, str] = {
    str(p.relative_to(REPO / "policies")): p.read_text() for p in sorted((REPO / "policies").rglob("*.yaml"))
}
INVENTORY = (REPO / "inventory" / "devices.csv").read_text()

ODD_CHARS = [
    "😀", "👩‍💻", "\u202e", "\u2028", "\u2029", "\ufeff", "\x00", "\x01", "\x07", "\x1b", "\x7f", "\x85",
    "\t", "\r", "\v", "\f", "é", "中", "\u200b", "\U0001f1fa\U0001f1f8", "\ud7ff", "\ue000", "\uffff",
]  # fmt: skip
YAML_JUNK = [
    "&a", "*a", "*nowhere", "!!python/object:os.system", "!custom", "<<: *a", "? ", "---", "...", "%YAML 1.1",
    "|", ">-", "[", "]", "{", "}", ",", ": ", "- ", "#", "'", '"', "!!binary", "!!set", "!!omap", "@", "`",
    "{{ x }}", "%", "\\", "&a [*a]", "!!int", "!!float", "!!timestamp",
]  # fmt: skip


Mutator = Callable[[random.Random, str], str | bytes]


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _value_spots(text: str) -> list[tuple[int, int]]:
    """(line index, column) just after `key:` on lines that have a value: where to put a new value."""
    spots = []
    for i, line in enumerate(_lines(text)):
        match = re.match(r"^(\s*(?:- )?[\w.-]+:)\s*(.*)$", line)
        if match:
            spots.append((i, len(match.group(1))))
    return spots


def _replace_value(rng: random.Random, text: str, value: str) -> str:
    lines = _lines(text)
    spots = _value_spots(text)
    if not spots:
        return text + f"\nx: {value}\n"
    i, col = rng.choice(spots)
    lines[i] = lines[i][:col] + " " + value
    return "\n".join(lines)


def deep_nesting(rng: random.Random, text: str) -> str:
    depth = rng.choice([45, 51, 100, 600, 3000, 20000])
    style = rng.randrange(3)
    if style == 0:
        value = "[" * depth + "1" + "]" * depth
    elif style == 1:
        value = "{a: " * depth + "1" + "}" * depth
    else:
        depth = min(depth, 2000)
        value = "".join("\n" + "  " * (k + 1) + "a:" for k in range(depth)) + " 1"
    return _replace_value(rng, text, value)


def huge_number(rng: random.Random, text: str) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([39, 41, 300, 4301, 5000, 50000])))
    value = rng.choice(
        [
            "1" + digits,
            "-1" + digits,
            "1." + digits,
            digits + "e" + digits[:6],
            "1e99999",
            "-.inf",
            ".nan",
            "0x" + "f" * len(digits),
            "0o" + "7" * min(len(digits), 200),
            "1:" * 30 + "1",
            "2026-" + digits[:3] + "-01",
            "2026-02-30",
            "9999-12-31T25:61:61Z",
        ]
    )
    return _replace_value(rng, text, value)


def alias_bomb(rng: random.Random, text: str) -> str:
    levels, fan = rng.randint(3, 12), rng.randint(2, 10)
    bomb = [f"l0: &l0 [{', '.join(['lol'] * fan)}]"]
    bomb += [f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * fan)}]" for k in range(1, levels)]
    if rng.random() < 0.5:
        return text.rstrip("\n") + "\n" + "\n".join(bomb) + "\n"
    return _replace_value(rng, text, "{" + ", ".join(bomb) + "}")


def odd_chars(rng: random.Random, text: str) -> str:
    ch = "".join(rng.choice(ODD_CHARS) for _ in range(rng.randint(1, 4)))
    where = rng.randrange(4)
    if where == 0:  # a new key
        key = rng.choice([ch, f"a {ch}: b", f"{ch}kind", f'"{ch}"', f"'{ch}x'"])
        return text.rstrip("\n") + f"\n{key}: 1\n"
    if where == 1:  # a quoted value with escapes, including a lone surrogate
        return _replace_value(rng, text, rng.choice(['"\\ud800x"', '"a\\0b"', '"\\u2028"', '"x\\n"', f'"{ch}"']))
    pos = rng.randrange(len(text) + 1)  # raw, anywhere
    return text[:pos] + ch + text[pos:]


def truncate(rng: random.Random, text: str) -> str:
    return text[: rng.randrange(len(text) + 1)]


def byte_flips(rng: random.Random, text: str) -> bytes:
    data = bytearray(text.encode("utf-8", "surrogatepass"))
    for _ in range(rng.randint(1, 12)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def duplicate_line(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines.insert(rng.choice([i, i + 1, len(lines)]), lines[i])
    return "\n".join(lines)


def tabs(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines[i] = rng.choice([lines[i].replace("  ", "\t"), "\t" + lines[i], lines[i] + "\t", lines[i].replace(" ", "\t")])
    return "\n".join(lines)


def wrong_type(rng: random.Random, text: str) -> str:
    value = rng.choice(
        ["[]", "{}", "~", "true", "no", "3.5", "-1", "0", "[[a]]", "{a: {b: c}}", "[1, {x: y}]", '""', "2026-01-01"]
    )
    return _replace_value(rng, text, value)


def bom(rng: random.Random, text: str) -> str | bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return "\ufeff" + text
    if choice == 1:
        pos = rng.randrange(len(text) + 1)
        return text[:pos] + "\ufeff" + text[pos:]
    if choice == 2:
        return text.encode("utf-16", "surrogatepass")
    return b"\xef\xbb\xbf\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")


def long_line(rng: random.Random, text: str) -> str:
    size = rng.choice([5_000, 200_000, 999_000, 1_100_000])
    filler = rng.choice(["x", "a.", "ab ", "é", "😀", "[", "- "])
    value = (filler * (size // len(filler) + 1))[:size]
    return _replace_value(rng, text, value) if rng.random() < 0.7 else value + text


def yaml_junk(rng: random.Random, text: str) -> str:
    pos = rng.randrange(len(text) + 1)
    return text[:pos] + rng.choice(YAML_JUNK) + text[pos:]


def tagged_value(rng: random.Random, text: str) -> str:
    """A value with a YAML tag (yaml_junk lands on a value only by chance; the loader must refuse every tag)."""
    tag = rng.choice(["!custom", "!!python/object:os.system", "!!binary", "!!set", "!!omap", "!include"])
    return _replace_value(rng, text, f"{tag} x")


def shuffle_lines(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    if rng.random() < 0.5 and len(lines) > 1:
        del lines[rng.randrange(len(lines))]
    else:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


MUTATORS: list[Mutator] = [
    deep_nesting,
    huge_number,
    alias_bomb,
    odd_chars,
    truncate,
    byte_flips,
    duplicate_line,
    tabs,
    wrong_type,
    bom,
    long_line,
    yaml_junk,
    tagged_value,
    shuffle_lines,
]


def mutate(rng: random.Random, text: str, mutators: list[Mutator]) -> tuple[bytes, list[str]]:
    """Apply 1-3 mutations (a bytes result ends the chain: later text mutations need text)."""
    applied: list[str] = []
    current: str | bytes = text
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if isinstance(current, bytes):
            break
        mutator = rng.choice(mutators)
        current = mutator(rng, current)
        applied.append(mutator.__name__)
    return (current if isinstance(current, bytes) else current.encode("utf-8", "surrogatepass")), applied


@dataclass
class Tally:
    """What the fuzz saw: reported at the end whatever the outcome."""

    cases: int = 0
    valid: int = 0
    rejected: int = 0
    lines: int = 0
    tracebacks: list[str] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
    limits_hit: set[str] = field(default_factory=set)
    slowest: tuple[float, str] = (0.0, "")
    by_mutator: dict[str, float] = field(default_factory=dict)

    def timed(self, label: str, applied: list[str], seconds: float) -> None:
        if seconds > self.slowest[0]:
            self.slowest = (seconds, label)
        for name in applied:
            self.by_mutator[name] = max(self.by_mutator.get(name, 0.0), seconds)

    def check_lines(self, label: str, lines: list[str]) -> None:
        for line in lines:
            self.lines += 1
            if DIAGNOSTIC_LINE.match(line):
                continue
            if len(self.bad_lines) < 20:
                self.bad_lines.append(f"{label}: {line[:300]!r}")

    def report(self, title: str, total: float) -> str:
        seconds, label = self.slowest
        worst = ", ".join(f"{k} {v * 1000:.0f}ms" for k, v in sorted(self.by_mutator.items(), key=lambda kv: -kv[1]))
        return (
            f"\n{title}: {self.cases} cases in {total:.1f}s ({self.valid} valid, {self.rejected} rejected, "
            f"{self.lines} message lines), {len(self.tracebacks)} tracebacks, {len(self.bad_lines)} malformed lines; "
            f"slowest {seconds * 1000:.0f}ms: {label}\n  slowest per mutator: {worst}"
        )


def _run(tally: Tally, label: str, applied: list[str], call: Callable[[], object]) -> None:
    started = time.perf_counter()
    try:
        call()
        tally.valid += 1
    except PolicyError as exc:
        tally.rejected += 1
        tally.check_lines(label, [str(d) for d in exc.diagnostics])
        tally.check_lines(label, str(exc).split("\n"))
        tally.limits_hit |= {k for k, m in LIMIT_MESSAGES.items() for d in exc.diagnostics if m in d.message}
    except Exception:  # the defect under test: any other exception is a traceback for the user
        tally.tracebacks.append(f"{label}\n{traceback.format_exc(limit=-6)}")
    tally.timed(label, applied, time.perf_counter() - started)


def _save(folder: Path, name: str, data: bytes) -> Path:
    target = folder / "policies" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def _config(folder: Path, inventory: Path) -> Path:
    config = folder / "orchestrator.yaml"
    config.write_text(f"timezone: America/Chicago\npolicies: policies/\ninventory: {inventory.name}\n")
    return config


def _cli(tally: Tally, label: str, applied: list[str], config: Path) -> None:
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["--config", str(config), "validate"])
    tally.timed(label + " [cli]", applied, time.perf_counter() - started)
    if result.exit_code not in (0, 1) or not isinstance(result.exception, SystemExit | None):
        detail = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else result.output
        tally.tracebacks.append(f"{label} [cli exit {result.exit_code}]\n{detail[-3000:]}")
        return
    if "Traceback" in result.output:
        tally.tracebacks.append(f"{label} [cli]\n{result.output[-3000:]}")
    if result.exit_code == 1:
        lines = [line for line in result.stderr.split("\n") if line and not SUMMARY_LINE.match(line)]
        tally.check_lines(label + " [cli]", lines)


def _assert_clean(tally: Tally) -> None:
    assert not tally.tracebacks, f"{len(tally.tracebacks)} tracebacks; first:\n" + "\n".join(tally.tracebacks[:3])
    assert not tally.bad_lines, "lines not in file:line: field: message form:\n" + "\n".join(tally.bad_lines)
    assert tally.slowest[0] < HANG_GUARD_S, f"a case took {tally.slowest[0]:.1f}s (hang guard): {tally.slowest[1]}"


def test_mutated_sample_policies_never_crash_or_hang(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tally = Tally()
    names = sorted(SAMPLES)
    started = time.perf_counter()
    for case in range(CASES):
        if ONLY is not None and str(case) != ONLY:
            continue
        rng = random.Random(SEED * 1_000_003 + case)
        name = rng.choice(names)
        data, applied = mutate(rng, SAMPLES[name], MUTATORS)
        label = f"case {case} ({name}: {'+'.join(applied)})"
        folder = tmp_path / f"c{case}"
        target = _save(folder, name, data)
        tally.cases += 1
        _run(tally, label, applied, lambda t=target, f=folder: load_policies(t.parent, display_root=f))
        if case % 10 == 0:  # the whole workspace: every sample policy plus a mutated inventory
            for other in names:
                if other != name:
                    _save(folder, other, SAMPLES[other].encode())
            inv_data, inv_applied = mutate(rng, INVENTORY, INVENTORY_MUTATORS)
            inventory = folder / "devices.csv"
            inventory.write_bytes(inv_data)
            config = _config(folder, inventory)
            ws_label = f"{label} + inventory {'+'.join(inv_applied)}"
            _run(tally, ws_label + " [workspace]", applied, lambda c=config: open_workspace(str(c)))
            if case % 40 == 0:
                _cli(tally, ws_label, applied, config)
        if ONLY is not None:
            print(data[:2000])
    total = time.perf_counter() - started
    with capsys.disabled():
        print(tally.report(f"policy fuzz (seed {SEED})", total))
    _assert_clean(tally)
    if ONLY is None:
        assert tally.cases >= 2000
        assert tally.limits_hit == set(LIMIT_MESSAGES), f"never reached: {set(LIMIT_MESSAGES) - tally.limits_hit}"


# Inventory CSV mutations: the loader must turn each into diagnostics, never a traceback.
def huge_field(rng: random.Random, text: str) -> str:
    size = rng.choice([131_073, 300_000, 2_000_000])
    cell = rng.choice(['"' + "A" * size + '"', "A" * size])
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines[i] = cell + "," + lines[i]
    return "\n".join(lines)


def nul_bytes(rng: random.Random, text: str) -> str:
    pos = rng.randrange(len(text) + 1)
    return text[:pos] + "\x00" * rng.randint(1, 3) + text[pos:]


def bad_encoding(rng: random.Random, text: str) -> bytes:
    return rng.choice(
        [
            text.encode("utf-16", "surrogatepass"),
            text.replace("a", "é").encode("latin-1", "replace"),
            b"\xff\xfe\x00" + text.encode("utf-8", "surrogatepass"),
            text.encode("utf-8", "surrogatepass")[:-1] + b"\xc3",
        ]
    )


def broken_quotes(rng: random.Random, text: str) -> str:
    pos = rng.randrange(len(text) + 1)
    return text[:pos] + rng.choice(['"', '""', '"a"b', "\r", "\r\n\r\n", ",,,,,,,,,,,,,,,,,,,,,"]) + text[pos:]


def odd_header(rng: random.Random, text: str) -> str:
    header, _, rest = text.partition("\n")
    columns = header.split(",")
    i = rng.randrange(len(columns))
    columns[i] = rng.choice(["", "😀 col", "serialNumber", "a:b", "\x00", columns[i] + "\u2028", "\ufeff" + columns[i]])
    return ",".join(columns) + "\n" + rest


INVENTORY_MUTATORS: list[Mutator] = [
    huge_field,
    nul_bytes,
    bad_encoding,
    broken_quotes,
    odd_header,
    odd_chars,
    truncate,
    byte_flips,
    duplicate_line,
    bom,
    long_line,
    shuffle_lines,
    tabs,
]


def test_mutated_inventory_never_crashes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tally = Tally()
    started = time.perf_counter()
    target = tmp_path / "devices.csv"
    for case in range(INVENTORY_CASES):
        rng = random.Random(SEED * 7_000_003 + case)
        data, applied = mutate(rng, INVENTORY, INVENTORY_MUTATORS)
        target.write_bytes(data)
        tally.cases += 1
        _run(tally, f"inventory case {case} ({'+'.join(applied)})", applied, lambda: load_inventory(target))
    total = time.perf_counter() - started
    with capsys.disabled():
        print(tally.report(f"inventory fuzz (seed {SEED})", total))
    _assert_clean(tally)


def test_the_mutator_covers_every_kind_of_damage() -> None:
    """Guard the corpus itself: each mutator changes the input, and the seeded run uses every one."""
    rng = random.Random(SEED)
    text = SAMPLES["apps.yaml"]
    for mutator in MUTATORS + INVENTORY_MUTATORS:
        assert any(mutator(rng, text) not in (text, text.encode()) for _ in range(5)), mutator.__name__
    used = {name for case in range(200) for name in mutate(random.Random(case), text, MUTATORS)[1]}
    assert used == {m.__name__ for m in MUTATORS}
