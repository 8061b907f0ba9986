"""Fuzzing `planner solve` with mutated valid specs: no input breaks it.

Every spec under specs/ and tests/specs/valid/ is mutated textually (so the YAML itself can
break): a key dropped or duplicated, a value retyped, two values swapped, the text truncated,
a bare `?` inserted, a number made huge or negative, a layer reference renamed. Whatever the
mutant, `planner solve SPEC --timeout 5 --no-verify` must end with exit 0, 1 or 4; with exit 1
every line it prints is a located diagnostic `SPEC:LINE:COL: severity: message [code]` (or the
closing `SPEC: status` line) pointing inside the file; `--format json` prints one valid JSON
object whose status agrees with the exit code; never a traceback or an internal error.
"""

from __future__ import annotations

import io
import json
import random
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from planner.cli import main

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "specs").glob("*.yaml"), *(ROOT / "tests" / "specs" / "valid").glob("*.yaml")])
TEXTS = {p.name: p.read_text(encoding="utf-8") for p in SOURCES}

DIAGNOSTIC = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|note|warning): "
    r"(?P<message>.*) \[(?P<code>[a-z0-9-]+)\]$"
)
STATUSES = {"solved": 0, "infeasible": 1, "invalid": 1, "unknown": 4}
PER_RUN_LIMIT = 30.0  # --timeout 5, plus the explanation of an infeasible mutant, on a busy machine

INT = re.compile(r"[-+]?[0-9]+\Z")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RETYPED = ['"3"', "[3]", "{a: 3}", "3.5", "true", "null", '"text"', "[]", "{}", "~", "-1"]
NUMBERS = ["0", "-1", "-3", str(10**7), str(10**30), str(-(10**30)), str(2**63), str(2**64 + 1), "9" * 80]
REFERENCE_KEYS = {"input", "like"}


# --- the mutator: textual edits at the spans of the YAML nodes ---------------------------------


@dataclass(frozen=True)
class Entry:
    """One key: value pair of a mapping, as character spans of the text."""

    key_start: int
    key_end: int
    value_start: int
    value_end: int
    key_column: int
    flow: bool


@dataclass
class Nodes:
    entries: list[list[Entry]]  # per mapping
    scalars: list[tuple[int, int]]  # value scalars (not keys)
    ints: list[tuple[int, int]]
    references: list[tuple[int, int]]  # input:, like:, inputs: [...] and identifiers inside constraints


def _walk(node, nodes: Nodes, parent_key: str | None = None) -> None:
    if isinstance(node, ScalarNode):
        span = (node.start_mark.index, node.end_mark.index)
        if span[1] <= span[0]:
            return  # an empty (null) scalar has no text to edit
        nodes.scalars.append(span)
        if node.style is None and INT.match(node.value):
            nodes.ints.append(span)
        if parent_key in REFERENCE_KEYS or parent_key == "inputs":
            nodes.references.append(span)
        elif parent_key == "constraints":  # "enc2.kernel == up1.kernel": each layer name before a dot
            for m in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)\.", node.value):
                offset = 1 if node.style in ("'", '"') else 0
                nodes.references.append((span[0] + offset + m.start(1), span[0] + offset + m.end(1)))
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _walk(item, nodes, parent_key if parent_key in ("inputs", "constraints") else None)
    elif isinstance(node, MappingNode):
        entries = []
        for key, value in node.value:
            entries.append(
                Entry(
                    key.start_mark.index,
                    key.end_mark.index,
                    value.start_mark.index,
                    value.end_mark.index,
                    key.start_mark.column,
                    bool(node.flow_style),
                )
            )
            _walk(value, nodes, key.value if isinstance(key, ScalarNode) else None)
        nodes.entries.append(entries)


def nodes_of(text: str) -> Nodes | None:
    """The editable spans of `text`, or None when it is no longer YAML PyYAML can compose."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None
    nodes = Nodes([], [], [], [])
    if root is not None:
        _walk(root, nodes)
    nodes.entries = [e for e in nodes.entries if e]
    return nodes


def _splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _entry_text(text: str, e: Entry) -> str:
    return text[e.key_start : e.value_end].rstrip()


def mutate(text: str, nodes: Nodes | None, kind: str, rnd: random.Random) -> str:
    """Apply one mutation of `kind`, its choices made by `rnd`; a kind with nothing to act on truncates instead."""

    def pick(items: list):
        return items[rnd.randrange(len(items))]

    if nodes is None and kind not in ("truncate", "bare-question"):
        kind = "truncate"
    if kind == "drop-key" and nodes.entries:
        entries = pick(nodes.entries)
        i = rnd.randrange(len(entries))
        if i + 1 < len(entries):
            return _splice(text, entries[i].key_start, entries[i + 1].key_start, "")
        if i > 0:
            return _splice(text, entries[i - 1].value_end, entries[i].value_end, "")
        return _splice(text, entries[i].key_start, entries[i].value_end, "")
    if kind == "duplicate-key" and nodes.entries:
        entry = pick(pick(nodes.entries))
        copy = _entry_text(text, entry)
        if entry.flow:
            return _splice(text, entry.value_end, entry.value_end, ", " + copy)
        return _splice(text, entry.key_start, entry.key_start, copy + "\n" + " " * entry.key_column)
    if kind == "retype" and nodes.scalars:
        start, end = pick(nodes.ints or nodes.scalars) if rnd.random() < 0.5 else pick(nodes.scalars)
        return _splice(text, start, end, pick(RETYPED))
    if kind == "swap" and len(nodes.scalars) >= 2:
        a, b = sorted(rnd.sample(nodes.scalars, 2))
        if a[1] > b[0]:  # overlapping spans cannot happen for scalars; keep it safe anyway
            return text
        first, second = text[a[0] : a[1]], text[b[0] : b[1]]
        return text[: a[0]] + second + text[a[1] : b[0]] + first + text[b[1] :]
    if kind == "bare-question":
        if nodes is not None and nodes.scalars and rnd.random() < 0.7:
            start, end = pick(nodes.scalars)
            return _splice(text, start, end, "?")
        at = rnd.randrange(len(text) + 1)
        return _splice(text, at, at, "?")
    if kind == "number" and nodes.ints:
        start, end = pick(nodes.ints)
        return _splice(text, start, end, pick(NUMBERS))
    if kind == "rename-reference" and nodes.references:
        start, end = pick(nodes.references)
        old = text[start:end].strip("'\"")
        names = sorted(set(IDENT.findall(text)) - {old})
        new = pick([old + "x", old[:-1] or "x", "input", "nosuchlayer", *names])
        quote = text[start] if text[start] in "'\"" and text[end - 1] == text[start] else ""
        return _splice(text, start, end, quote + new + quote)
    body = re.search(r"^[^#\s]", text, re.M)  # past the leading comments: an empty file is one case, not most
    start = body.start() if body and rnd.random() < 0.8 else 0
    return text[: rnd.randrange(start, len(text) + 1)]


KINDS = ["drop-key", "duplicate-key", "retype", "swap", "truncate", "bare-question", "number", "rename-reference"]


# --- running planner and judging what it prints --------------------------------------------------


def run_bounded(argv: list[str]) -> tuple[int, str, str, float]:
    """main(argv) in a thread, so that a hang fails the test instead of blocking the suite."""
    out, err, result = io.StringIO(), io.StringIO(), {}

    def target() -> None:
        try:
            result["code"] = main(argv, stdout=out, stderr=err)
        except BaseException as e:  # noqa: BLE001 - anything escaping main() is a bug to report
            result["escaped"] = e

    start = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(PER_RUN_LIMIT)
    elapsed = time.monotonic() - start
    assert not thread.is_alive(), f"planner {' '.join(argv)} still running after {PER_RUN_LIMIT} s"
    assert "escaped" not in result, f"main() raised {result.get('escaped')!r}"
    return result["code"], out.getvalue(), err.getvalue(), elapsed


def line_count(text: str) -> int:
    return len(re.split(r"\r\n|[\n\r\x85\u2028\u2029]", text))


def assert_in_bounds(path: str, text: str, line: int, column: int, what: str) -> None:
    lines = re.split(r"\r\n|[\n\r\x85\u2028\u2029]", text)
    assert 1 <= line <= len(lines) + 1, f"line {line} outside the file ({len(lines)} lines): {what}"
    width = len(lines[line - 1]) if line <= len(lines) else 0
    assert 1 <= column <= width + 1, f"column {column} outside line {line} ({width} characters): {what}"


def check_text_output(path: str, text: str, code: int, out: str, err: str) -> None:
    errors = 0
    for printed in (out + err).splitlines():
        if code != 1 and not printed.startswith(path + ":"):
            continue  # a plan table
        if not printed.strip() or re.fullmatch(re.escape(path) + r": [a-z]+", printed):
            continue  # the closing `SPEC: infeasible` line
        m = DIAGNOSTIC.match(printed)
        assert m, f"not a located diagnostic: {printed!r}"
        assert m["file"] == path, printed
        assert_in_bounds(path, text, int(m["line"]), int(m["col"]), printed)
        errors += m["sev"] == "error"
    if code == 1:
        assert errors, f"exit 1 without an error diagnostic:\n{out}{err}"


def check_json_output(path: str, text: str, code: int, out: str, err: str) -> None:
    result = json.loads(out)
    assert isinstance(result, dict)
    assert result["status"] in STATUSES, result["status"]
    assert STATUSES[result["status"]] == code, f"status {result['status']} with exit {code}"
    if code == 1:
        assert any(d["severity"] == "error" for d in result["diagnostics"]), result["diagnostics"]
    for d in result["diagnostics"]:
        assert d["file"] == path, d
        assert d["severity"] in ("error", "note", "warning"), d
        assert re.fullmatch(r"[a-z0-9-]+", d["code"]), d
        assert "\n" not in d["message"], d
        assert_in_bounds(path, text, d["line"], d["column"], str(d))
    check_text_output(path, text, 1 if code == 1 else 0, "", err)  # the copy of the diagnostics on stderr


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_sources_solve_as_they_are(source: Path) -> None:
    """The unmutated specs are the baseline: each solves without verification, quickly."""
    code, out, err, _ = run_bounded(["solve", str(source), "--timeout", "5", "--no-verify"])
    assert code == 0, out + err
    assert nodes_of(TEXTS[source.name]) is not None


@pytest.mark.parametrize("kind", KINDS)
def test_the_mutation_changes_the_specs(kind: str) -> None:
    """The mutator itself: each kind edits most specs, and the edits differ."""
    rnd = random.Random(kind)
    mutants = {name: mutate(text, nodes_of(text), kind, rnd) for name, text in TEXTS.items()}
    changed = [name for name, mutant in mutants.items() if mutant != TEXTS[name]]
    assert len(changed) >= len(TEXTS) * 3 // 4, f"{kind} left {len(TEXTS) - len(changed)} specs unchanged"
    if kind == "duplicate-key":
        assert all(
            nodes_of(mutants[name]) is None or mutants[name].count(":") > TEXTS[name].count(":") for name in changed
        )


@settings(max_examples=100)
@given(
    source=st.sampled_from(sorted(TEXTS)),
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=2),
    fmt=st.sampled_from(["text", "text", "json"]),
    data=st.data(),
)
def test_mutated_spec_never_breaks_planner(source: str, kinds: list[str], fmt: str, data: st.DataObject) -> None:
    text = TEXTS[source]
    for kind in kinds:  # a Random drawn from hypothesis: uniform choices (integers() favours 0), still replayable
        text = mutate(text, nodes_of(text), kind, data.draw(st.randoms(use_true_random=False), label=kind))
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / source)
        Path(path).write_text(text, encoding="utf-8")
        argv = ["solve", path, "--timeout", "5", "--no-verify", "--format", fmt]
        code, out, err, elapsed = run_bounded(argv)
    shown = (
        f"planner {' '.join(argv)} -> exit {code} in {elapsed:.1f} s\n--- spec:\n{text}\n--- out:\n{out}--- err:\n{err}"
    )
    assert "Traceback" not in out + err, shown
    assert "internal error" not in out + err, shown
    assert code in (0, 1, 4), shown
    try:
        if fmt == "json":
            check_json_output(path, text, code, out, err)
        else:
            check_text_output(path, text, code, out, err)
    except (AssertionError, ValueError, KeyError) as e:
        raise AssertionError(f"{e}\n{shown}") from e
