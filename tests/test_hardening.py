"""No input breaks `planner`: hostile files, enormous numbers and domains, huge networks, big
directories, and `--output` that is never partly written.

Each case is bounded by the test itself. `planner` runs in a forked child of the test process
(planner is already imported there, so a case costs milliseconds, not an interpreter start)
with an address-space limit, so that a case that would eat the machine's memory ends in the
child instead; the child is killed past its time limit. `planner check` of a directory runs as
a real `python -m planner` subprocess. Every case asserts the exit status and, for a problem,
one located line `FILE:LINE:COL: error: message [code]`, never a traceback.

A case marked xfail(strict=True) states the right behaviour for a bug found here.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import resource
import select
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from planner import api
from planner.cli import main
from tests.conftest import ROOT, write

LENET = ROOT / "specs" / "lenet5.yaml"
GUIDE = ROOT / "specs" / "guide_transposed.yaml"
GIB = 1 << 30

DIAGNOSTIC = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|note|warning): "
    r"(?P<message>.*) \[(?P<code>[a-z0-9-]+)\]$"
)


# --- running planner, bounded ------------------------------------------------------------------


@dataclass
class Run:
    code: int | None  # planner's exit status; None when the child died or was killed
    out: str
    err: str
    seconds: float
    how: str = ""  # what happened to a child that did not return

    @property
    def text(self) -> str:
        return self.out + self.err

    def __str__(self) -> str:
        return (
            f"exit {self.code} {self.how} after {self.seconds:.1f} s\n"
            f"--- stdout:\n{self.out[:3000]}--- stderr:\n{self.err[:3000]}"
        )


def _vm_size() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def planner(*argv: object, limit: float = 30.0, memory: int = 3 * GIB, fsize: int | None = None) -> Run:
    """`planner ARGV` by main() in a forked child: address space limited to what it has plus `memory`,
    killed after `limit` seconds."""
    args = [str(a) for a in argv]
    read_end, write_end = os.pipe()
    start = time.monotonic()
    with warnings.catch_warnings():  # Python 3.12 warns about fork() with threads (numpy's idle BLAS threads)
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + memory, resource.RLIM_INFINITY))
            if fsize is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.RLIM_INFINITY))
            warnings.resetwarnings()  # as the real CLI: a warning is printed, not raised (pytest sets "error")
            out, err = io.StringIO(), io.StringIO()
            try:
                message = ("exit", main(args, stdout=out, stderr=err), out.getvalue(), err.getvalue())
            except BaseException as e:  # noqa: BLE001 - escaping main() is itself a bug
                message = ("escaped", repr(e)[:2000], out.getvalue(), err.getvalue())
            data = pickle.dumps(message)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)
        finally:
            os._exit(0)
    os.close(write_end)
    chunks, how = [], ""
    try:
        while True:
            left = start + limit - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                how = f"killed: still running after {limit} s"
                os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - start
    if how or not chunks:
        how = how or f"child died ({'signal ' + str(os.WTERMSIG(status)) if os.WIFSIGNALED(status) else status})"
        return Run(None, "", "", seconds, how)
    kind, code, out, err = pickle.loads(b"".join(chunks))
    if kind == "escaped":
        return Run(None, out, err, seconds, f"main() raised {code}")
    return Run(code, out, err, seconds)


def planner_process(*argv: object, timeout: float, memory: int = 4 * GIB) -> Run:
    """`python -m planner ARGV` as a real process (for `check`, which starts worker processes) in a session of
    its own, so that on timeout the process and its workers are killed together."""

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory + 2 * GIB, resource.RLIM_INFINITY))

    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "planner", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limits,
        start_new_session=True,
        cwd=ROOT,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this test started: planner and its workers
        out, err = proc.communicate()
        return Run(None, out, err, time.monotonic() - start, f"killed after {timeout} s")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # workers left behind by a planner that exited
        except ProcessLookupError:
            pass
    return Run(proc.returncode, out, err, time.monotonic() - start)


# --- what the output must look like ------------------------------------------------------------


def no_traceback(run: Run) -> None:
    assert run.code is not None, str(run)
    assert "Traceback" not in run.text and 'File "' not in run.text, str(run)
    assert "internal error" not in run.text, str(run)
    assert run.code != 3, str(run)


def in_bounds(text: str, line: int, column: int) -> bool:
    lines = re.split(r"\r\n|[\n\r\x85\u2028\u2029]", text)
    width = len(lines[line - 1]) if 1 <= line <= len(lines) else 0
    return 1 <= line <= len(lines) + 1 and 1 <= column <= width + 1


def diagnostics(run: Run, path: Path) -> list[re.Match]:
    """The located diagnostics printed for `path`; every line naming the file must be one, or `FILE: status`."""
    found = []
    for printed in run.text.splitlines():
        if not printed.startswith(f"{path}:") or re.fullmatch(re.escape(str(path)) + r": [a-z]+(, .*)?", printed):
            continue
        m = DIAGNOSTIC.match(printed)
        assert m and m["file"] == str(path), f"not a located diagnostic: {printed!r}\n{run}"
        found.append(m)
    return found


def one_located_error(run: Run, path: Path, code: str, source: str | bytes, at: tuple[int, int] | None = None) -> None:
    """Exit 1 and exactly one printed line: `path:LINE:COL: error: ... [code]`, inside the file."""
    no_traceback(run)
    assert run.code == 1, str(run)
    lines = [line for line in run.text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line\n{run}"
    m = DIAGNOSTIC.match(lines[0])
    assert m, f"not a located diagnostic\n{run}"
    assert (m["file"], m["sev"], m["code"]) == (str(path), "error", code), str(run)
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    assert in_bounds(text, int(m["line"]), int(m["col"])), str(run)
    if at is not None:
        assert (int(m["line"]), int(m["col"])) == at, str(run)


def bounded_answer(run: Run, path: Path, allowed: tuple[int, ...] = (0, 1, 4)) -> None:
    """A clear answer: solved (0), a located problem (1), or the solver gave up (4); no crash, no hang."""
    no_traceback(run)
    assert run.code in allowed, str(run)
    found = diagnostics(run, path)
    if run.code == 0:
        assert any(line.startswith(f"{path}: solved") for line in run.out.splitlines()), str(run)
        assert not any(m["sev"] == "error" for m in found), str(run)
    else:
        assert any(m["sev"] == "error" for m in found), f"no located error\n{run}"


def conv_spec(*, shape: str = "[1, 3, 32, 32]", layer: str = "kernel: 3", extra: str = "") -> str:
    return f"input:\n  shape: {shape}\nlayers:\n  - {{name: c1, op: conv, out_channels: 8, {layer}}}\n{extra}"


# --- files that are not specs ------------------------------------------------------------------


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\ninput: {shape: *a9}\nlayers: []\n"


HOSTILE = {  # name: (content, code, (line, column) or None)
    "empty": ("", "empty", (1, 1)),
    "only_comments": ("# a spec\n# that never came\n\n   # indented comment\n", "empty", (1, 1)),
    "latin1": (b"name: caf\xe9\ninput:\n  shape: [1, 3, 8, 8]\n", "encoding", (1, 10)),
    "utf16": ("input:\n  shape: [1, 3, 8, 8]\n".encode("utf-16"), "encoding", (1, 1)),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "encoding", (1, 1)),
    "nul_bytes": (b"\x00\x01\x02\x03\x04" * 200, "encoding", (1, 1)),
    "nul_in_text": (b"input:\n  shape: [1, 3\x00, 8]\n", "encoding", (2, 15)),
    "random_bytes": (bytes((i * 7919 + 13) % 256 for i in range(4000)), "encoding", None),
    "alias_bomb": (_alias_bomb(), "yaml-alias", None),
    "recursive_alias": ("input: &a {shape: [1, 3, 8, 8], more: *a}\nlayers: []\n", "yaml-alias", None),
    "nested_lists_10k": ("input:\n  shape: " + "[" * 10_000 + "]" * 10_000 + "\nlayers: []\n", "yaml-depth", None),
    "nested_maps_10k": ("input: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n", "yaml-depth", None),
    "unclosed_100k": ("[" * 100_000, "yaml-depth", None),
    "block_nesting_3k": ("".join(" " * i + f"k{i}:\n" for i in range(3000)) + " " * 3000 + "x\n", "yaml-depth", None),
    "integer_5000_digits": (conv_spec(layer="kernel: " + "7" * 5000), "yaml-number", (4, 51)),
    "two_documents": (conv_spec() + "---\n" + conv_spec(), "yaml-syntax", (5, 1)),
    "a_scalar": ("just some words\n", "type", (1, 1)),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_file_that_is_no_spec_gives_one_located_error(tmp_path: Path, name: str) -> None:
    content, code, at = HOSTILE[name]
    path = write(tmp_path, f"{name}.yaml", content)
    run = planner("solve", path, limit=20)
    one_located_error(run, path, code, content, at)
    assert run.seconds < 20


def test_dev_zero_is_refused_not_read_forever() -> None:
    """An endless input must not be read into memory."""
    run = planner("solve", "/dev/zero", limit=20, memory=GIB // 2)
    one_located_error(run, Path("/dev/zero"), "io", "", (1, 1))


def test_a_fifo_is_refused_not_waited_for(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    run = planner("solve", fifo, limit=2)
    one_located_error(run, fifo, "io", "", (1, 1))


# --- enormous numbers --------------------------------------------------------------------------

HUGE_NUMBERS = {  # name: (spec, allowed exit codes, xfail reason or None)
    "kernel_1e100": (conv_spec(layer=f"kernel: {10**100}"), (1,), None),
    "input_size_1e30_no_verify": (conv_spec(shape=f"[1, 3, {10**30}, {10**30}]"), (0, 1), None),
    "input_size_1e30": (conv_spec(shape=f"[1, 3, {10**30}, {10**30}]"), (0, 1), None),
    "input_size_40000": (conv_spec(shape="[1, 3, 40000, 40000]"), (0, 1), None),
    "out_channels_1e50": (conv_spec().replace("out_channels: 8", f"out_channels: {10**50}"), (0, 1), None),
    "in_channels_1e40": (conv_spec(shape=f"[1, {10**40}, 32, 32]"), (0, 1), None),
    "batch_1e40": (conv_spec(shape=f"[{10**40}, 3, 32, 32]"), (0, 1), None),
    "padding_1e20": (conv_spec(layer=f"kernel: 3, padding: {10**20}"), (0, 1), None),
    "stride_1e20": (conv_spec(layer=f"kernel: 3, stride: {10**20}"), (0, 1), None),
    "dilation_1e20": (conv_spec(layer=f"kernel: 3, dilation: {10**20}"), (1,), None),
    "negative_kernel": (conv_spec(layer=f"kernel: {-(10**30)}"), (1,), None),
    "one_of_huge": (conv_spec(layer=f"kernel: {{one_of: [{10**100}, 3]}}"), (0,), None),
    "expect_huge": (conv_spec(layer=f"kernel: 3, expect: [1, 8, {10**40}, 30]"), (1,), None),
}


TOO_BIG_TO_EXECUTE = {"input_size_1e30", "input_size_40000", "in_channels_1e40", "padding_1e20"}


def not_claimed_verified(run: Run, path: Path) -> None:
    """A plan too big to execute in NumPy is solved but must not be called verified: a located warning says so."""
    if run.code == 0:
        assert "verified: executed" not in run.out, str(run)
        assert any(m["sev"] == "warning" for m in diagnostics(run, path)), str(run)


def _huge_param(name: str):
    _, _, reason = HUGE_NUMBERS[name]
    return pytest.param(name, id=name, marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [])


@pytest.mark.parametrize("name", [_huge_param(n) for n in HUGE_NUMBERS])
def test_enormous_integers_get_a_clear_answer(tmp_path: Path, name: str) -> None:
    spec, allowed, _ = HUGE_NUMBERS[name]
    path = write(tmp_path, "huge.yaml", spec)
    extra = ["--no-verify"] if name.endswith("_no_verify") else []
    run = planner("solve", path, "--timeout", "5", *extra, limit=30)
    bounded_answer(run, path, allowed)
    if name in TOO_BIG_TO_EXECUTE:
        not_claimed_verified(run, path)


# --- enormous domains --------------------------------------------------------------------------

T12 = 10**12
HUGE_DOMAINS = {  # name: (spec, extra arguments, xfail reason or None)
    "kernel": (conv_spec(layer=f"kernel: {{min: 1, max: {T12}}}"), [], None),
    "kernel_count": (conv_spec(layer=f"kernel: {{min: 1, max: {T12}}}"), ["--count"], None),
    "input_size": (conv_spec(shape=f"[1, 3, {{min: 1, max: {T12}}}, 32]", layer='kernel: "?"'), [], None),
    "input_sizes_count": (
        conv_spec(shape=f"[1, 3, {{min: 1, max: {T12}}}, {{min: 1, max: {T12}}}]"),
        ["--count"],
        None,
    ),
    "unknown_size_default": (
        conv_spec(
            shape='[1, 3, "?", "?"]',
            layer=f"kernel: {{min: 1, max: {T12}}}",
            extra=f"defaults:\n  size: {{min: 1, max: {T12}}}\n",
        ),
        ["--all"],
        None,
    ),
    "stride_count": (conv_spec(layer=f"kernel: 3, stride: {{min: 1, max: {T12}}}"), ["--count"], None),
    "every_param": (
        conv_spec(
            shape='[1, 3, "?", "?"]',
            layer='kernel: "?", stride: "?", padding: "?", dilation: "?"',
            extra="defaults:\n"
            + "".join(
                f"  {k}: {{min: {lo}, max: {T12}}}\n"
                for k, lo in [("kernel", 1), ("stride", 1), ("padding", 0), ("dilation", 1), ("size", 1)]
            ),
        ),
        ["--count"],
        None,
    ),
    "padding": (conv_spec(layer=f"kernel: 3, padding: {{min: 0, max: {T12}}}"), [], None),
    "for_all": (
        conv_spec(
            shape=f"[1, 3, {{for_all: {{min: 16, max: {T12}, multiple_of: 16}}}}]",
            layer="kernel: 3, stride: 2, padding: 1",
        ),
        ["--no-verify"],
        None,
    ),
}


def _domain_param(name: str):
    _, _, reason = HUGE_DOMAINS[name]
    return pytest.param(name, id=name, marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [])


@pytest.mark.parametrize("name", [_domain_param(n) for n in HUGE_DOMAINS])
def test_enormous_domains_are_answered_in_bounded_time(tmp_path: Path, name: str) -> None:
    spec, extra, _ = HUGE_DOMAINS[name]
    path = write(tmp_path, "domain.yaml", spec)
    run = planner("solve", path, "--timeout", "1", *extra, limit=30)
    bounded_answer(run, path)
    assert run.seconds < 20, str(run)
    if name in TOO_BIG_TO_EXECUTE:
        not_claimed_verified(run, path)
    if run.code == 4:
        assert "infeasible" not in run.text, "a give-up is never reported as infeasible"


# --- thousands of layers -----------------------------------------------------------------------


def chain(layers: list[str], shape: str = "[1, 3, 32, 32]") -> str:
    return f"input:\n  shape: {shape}\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers)


MANY_LAYERS = {  # name: (spec, extra arguments, allowed exit codes)
    "relu_3000": (chain(["{op: relu}"] * 3000), [], (0, 4)),
    "conv_1000_known": (chain(["{op: conv, out_channels: 4, kernel: 3, padding: 1}"] * 1000), [], (0, 4)),
    "relu_3000_conv_1000_unknown": (
        chain(
            ["{op: relu}"] * 3000
            + ['{op: conv, out_channels: 4, kernel: "?", padding: "?"}'] * 1000
            + ["{op: relu, expect: [1, 4, 32, 32]}"]
        ),
        ["--no-verify"],
        (0, 4),
    ),
}


@pytest.mark.parametrize("name", MANY_LAYERS)
def test_thousands_of_layers_are_solved_or_given_up_in_bounded_time(tmp_path: Path, name: str) -> None:
    spec, extra, allowed = MANY_LAYERS[name]
    path = write(tmp_path, f"{name}.yaml", spec)
    run = planner("solve", path, "--timeout", "3", *extra, limit=60)
    bounded_answer(run, path, allowed)
    assert run.seconds < 60


def test_verification_memory_does_not_grow_with_depth(tmp_path: Path) -> None:
    path = write(tmp_path, "deep_relu.yaml", chain(["{op: relu}"] * 200, shape="[1, 1, 2000, 2000]"))
    run = planner("solve", path, limit=60, memory=GIB)
    bounded_answer(run, path, (0,))


def test_a_big_document_without_aliases_is_not_called_an_alias_bomb(tmp_path: Path) -> None:
    spec = conv_spec(layer="kernel: {one_of: [" + ", ".join(["3"] * 100_001) + "]}")
    path = write(tmp_path, "big.yaml", spec)
    run = planner("solve", path, limit=30)
    bounded_answer(run, path, (0, 1))
    assert "alias" not in run.text, str(run)


def test_timeout_bounds_the_whole_solve_verification_included(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "slow_to_verify.yaml",
        chain(["{op: conv, out_channels: 16, kernel: 3, padding: 1}"] * 200, shape="[1, 16, 512, 512]"),
    )
    run = planner("solve", path, "--timeout", "2", limit=4.5)  # solved in 0.3 s; killed at 4.5 s
    bounded_answer(run, path)
    if run.code == 0 and "verified: executed" not in run.out:
        not_claimed_verified(run, path)


# --- planner check of a directory --------------------------------------------------------------


def _many_specs(directory: Path, count: int) -> dict[str, set[str]]:
    """`count` small specs: two of three solve, every third fails (an unknown key, or no plan)."""
    expected = {}
    directory.mkdir()
    for i in range(count):
        size = 8 + i % 20
        if i % 3 != 2:
            layer = f'kernel: "?", padding: "?", expect: [1, 4, {size}, {size}]'
            expected[f"s{i:03d}.yaml"] = set()
        elif i % 2:
            layer = "kernal: 3"
            expected[f"s{i:03d}.yaml"] = {"unknown-key"}
        else:
            layer = f"kernel: 3, expect: [1, 4, {size + 1}, {size}]"
            expected[f"s{i:03d}.yaml"] = {"expect", "infeasible"}
        (directory / f"s{i:03d}.yaml").write_text(
            f"input:\n  shape: [1, 3, {size}, {size}]\nlayers:\n  - {{name: c, op: conv, out_channels: 4, {layer}}}\n",
            encoding="utf-8",
        )
    return expected


def test_check_a_directory_of_300_specs(tmp_path: Path) -> None:
    expected = _many_specs(tmp_path / "specs", 300)
    run = planner_process("check", tmp_path / "specs", timeout=120)
    no_traceback(run)
    assert run.seconds < 120
    assert run.code == 1, str(run)
    lines = run.out.splitlines()
    assert lines[-1] == "300 specs, 200 passed, 100 failed", str(run)
    errors: dict[str, set[str]] = {}
    for line in lines[:-1]:
        m = DIAGNOSTIC.match(line)
        if m is None:
            assert re.fullmatch(r".+\.yaml: infeasible", line), line
            continue
        name = Path(m["file"]).name
        assert in_bounds((tmp_path / "specs" / name).read_text(encoding="utf-8"), int(m["line"]), int(m["col"])), line
        if m["sev"] == "error":
            errors.setdefault(name, set()).add(m["code"])
    assert {n for n, e in expected.items() if e} == set(errors), "exactly the failing specs have errors"
    for name, codes in errors.items():
        assert expected[name] & codes, (name, codes)


def test_check_a_directory_of_hostile_files(tmp_path: Path) -> None:
    directory = tmp_path / "specs"
    directory.mkdir()
    hostile = ["empty", "only_comments", "latin1", "png", "alias_bomb", "nested_lists_10k", "integer_5000_digits"]
    for name in hostile:
        write(directory, f"{name}.yaml", HOSTILE[name][0])
    for source in (LENET, GUIDE):
        write(directory, source.name, source.read_text(encoding="utf-8"))
    (directory / "notes.txt").write_text("not a spec", encoding="utf-8")
    run = planner_process("check", directory, "--format", "json", timeout=120)
    no_traceback(run)
    assert run.code == 1, str(run)
    assert run.err.strip().splitlines()[-1] == f"{len(hostile) + 2} specs, 2 passed, {len(hostile)} failed", str(run)
    reports = json.loads(run.out)
    assert len(reports) == len(hostile) + 2
    by_name = {Path(r["spec"]).name: r for r in reports}
    for name in hostile:
        report = by_name[f"{name}.yaml"]
        assert report["status"] == "invalid", report
        (diag,) = report["diagnostics"]
        assert (diag["severity"], diag["code"], diag["line"], diag["column"]) == (
            "error",
            HOSTILE[name][1],
            *(HOSTILE[name][2] or (diag["line"], diag["column"])),
        ), diag
    assert by_name[LENET.name]["status"] == by_name[GUIDE.name]["status"] == "solved"


def test_check_reports_every_spec_even_when_one_crashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug met in one spec (simulated: api.solve raises for it) is that spec's result, not the run's end."""
    solve = api.solve

    def crashing(spec, *args, **kwargs):
        if "a_crash" in str(spec):
            raise RuntimeError("simulated bug")
        return solve(spec, *args, **kwargs)

    monkeypatch.setattr(api, "solve", crashing)  # inherited by the forked child and its forked pool workers
    directory = tmp_path / "specs"
    directory.mkdir()
    write(directory, "a_crash.yaml", GUIDE.read_text(encoding="utf-8"))
    write(directory, "b_invalid.yaml", conv_spec(layer="kernal: 3"))
    write(directory, LENET.name, LENET.read_text(encoding="utf-8"))
    run = planner("check", directory, "--jobs", "2", limit=60)
    assert run.code is not None and run.code != 0, str(run)
    assert "Traceback" not in run.text, str(run)
    lines = run.text.splitlines()
    assert (
        f"{directory / 'b_invalid.yaml'}:4:43: error: unknown key 'kernal' (did you mean 'kernel'?) "
        "[unknown-key]" in lines
    ), str(run)
    assert any("a_crash.yaml" in line and "simulated bug" in line for line in lines), "the crashing spec is named"
    assert re.search(r"^3 specs, 1 passed, ", run.out, re.M), str(run)


def test_check_does_not_hang_on_a_fifo(tmp_path: Path) -> None:
    directory = tmp_path / "specs"
    directory.mkdir()
    os.mkfifo(directory / "pipe.yaml")
    write(directory, GUIDE.name, GUIDE.read_text(encoding="utf-8"))
    run = planner_process("check", directory, "--timeout", "1", timeout=5)
    no_traceback(run)
    assert run.code == 1, str(run)
    assert re.search(rf"^{re.escape(str(directory / 'pipe.yaml'))}:1:1: error: .*\[io\]$", run.out, re.M), str(run)


# --- --output is never partly written ----------------------------------------------------------


def test_output_cut_short_by_the_file_size_limit_keeps_the_old_file(tmp_path: Path) -> None:
    target = write(tmp_path, "plan.json", "old contents\n")
    run = planner("solve", LENET, "--format", "json", "--output", target, fsize=64, limit=30)
    no_traceback(run)
    assert run.code not in (0, 3), str(run)
    assert run.err.startswith("planner: cannot write") and len(run.err.splitlines()) == 1, str(run)
    assert target.read_text(encoding="utf-8") == "old contents\n", "never partly written"
    assert os.listdir(tmp_path) == ["plan.json"], "no temporary file left behind"


@pytest.mark.parametrize("where", ["parent_is_a_file", "target_is_a_directory", "read_only_directory"])
def test_output_that_cannot_be_written_leaves_nothing_behind(tmp_path: Path, where: str) -> None:
    if where == "parent_is_a_file":
        write(tmp_path, "afile", "x")
        target = tmp_path / "afile" / "plan.json"
    elif where == "target_is_a_directory":
        target = tmp_path / "plan.json"
        target.mkdir()
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only directories")
        locked = tmp_path / "locked"
        locked.mkdir()
        target = locked / "plan.json"
        locked.chmod(0o500)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    run = planner("solve", GUIDE, "--format", "json", "--output", target, limit=30)
    no_traceback(run)
    assert run.code == 2, str(run)
    assert run.out == "" and len(run.err.splitlines()) == 1 and "cannot write" in run.err, str(run)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "nothing written, no temporary file"


def test_output_whose_rename_fails_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write(tmp_path, "plan.json", "old contents\n")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    out, err = io.StringIO(), io.StringIO()
    code = main(["solve", str(GUIDE), "--format", "json", "--output", str(target)], stdout=out, stderr=err)
    assert code == 2, err.getvalue()
    assert err.getvalue() == f"planner: cannot write {target}: Permission denied\n"
    assert target.read_text(encoding="utf-8") == "old contents\n"
    assert os.listdir(tmp_path) == ["plan.json"], "the temporary file is removed"


def test_output_for_a_spec_whose_name_is_not_utf8(tmp_path: Path) -> None:
    spec = os.fsdecode(os.fsencode(str(tmp_path)) + b"/\xff.yaml")
    Path(spec).write_text(GUIDE.read_text(encoding="utf-8"), encoding="utf-8")
    target = tmp_path / "plan.txt"
    run = planner("solve", spec, "--no-verify", "--output", target, limit=30)
    no_traceback(run)
    assert run.code == 0, str(run)
    assert "solved" in target.read_text(encoding="utf-8", errors="replace")


INFEASIBLE = """\
input:
  shape: [1, 3, 8, 8]
layers:
  - {name: c1, op: conv, out_channels: 4, kernel: "?"}
  - {name: c2, op: conv, out_channels: 4, kernel: 3, expect: [1, 4, 10, 10]}
"""
OUTPUT_CASES = {  # name: (spec, format, xfail reason or None)
    "infeasible_yaml": (INFEASIBLE, "yaml", None),
    "infeasible_text": (INFEASIBLE, "text", None),
    "infeasible_json": (INFEASIBLE, "json", None),
    "invalid_json": (conv_spec(layer="kernal: 3"), "json", None),
}


def _output_param(name: str):
    _, _, reason = OUTPUT_CASES[name]
    return pytest.param(name, id=name, marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [])


@pytest.mark.parametrize("name", [_output_param(n) for n in OUTPUT_CASES])
def test_output_of_a_failed_solve_keeps_the_old_file(tmp_path: Path, name: str) -> None:
    """Without a plan there is nothing to write: FILE keeps its old content (the diagnostics go to the terminal)."""
    spec, fmt, _ = OUTPUT_CASES[name]
    path = write(tmp_path, "spec.yaml", spec)
    target = write(tmp_path, "plan.out", "old contents\n")
    run = planner("solve", path, "--format", fmt, "--output", target, limit=30)
    assert run.code not in (0, None), str(run)
    assert target.read_text(encoding="utf-8") == "old contents\n", "the file was replaced:\n" + target.read_text()
    assert sorted(os.listdir(tmp_path)) == ["plan.out", "spec.yaml"], "no temporary file left behind"
    no_traceback(run)
    assert any(DIAGNOSTIC.match(line) for line in run.text.splitlines()), "the diagnostics are still shown"


def test_output_of_a_failed_solve_to_a_new_file_creates_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "spec.yaml", INFEASIBLE)
    run = planner("solve", path, "--format", "yaml", "--output", tmp_path / "plan.yaml", limit=30)
    no_traceback(run)
    assert run.code == 1
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]


# --- every diagnostic is one line, where the problem is ----------------------------------------

ONE_LINE = {  # name: (spec, code, (line, column), xfail reason or None)
    "newline_in_op": (conv_spec(layer="kernel: 3").replace("op: conv", 'op: "con\\nv"'), "unknown-op", (4, 20), None),
    "newline_in_key": (conv_spec(layer='"ker\\nnel": 3'), "unknown-key", (4, 43), None),
    "newline_in_name": (conv_spec().replace("name: c1", 'name: "c\\n1"'), "type", (4, 12), None),
    "multi_line_constraint": (
        conv_spec(layer='kernel: "?"', extra="constraints:\n  - |\n    c1.kernel == 3 and\n    c1.kernal > 1\n"),
        "constraint",
        (6, 5),
        None,
    ),
    "variable_name": (conv_spec(extra='variables:\n  "1a": {min: 1, max: 2}\n'), "type", (6, 3), None),
}


def _one_line_param(name: str):
    reason = ONE_LINE[name][3]
    return pytest.param(name, id=name, marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [])


@pytest.mark.parametrize("name", [_one_line_param(n) for n in ONE_LINE])
def test_every_diagnostic_is_one_located_line(tmp_path: Path, name: str) -> None:
    spec, code, at, _ = ONE_LINE[name]
    path = write(tmp_path, "spec.yaml", spec)
    run = planner("solve", path, "--no-verify", limit=30)
    one_located_error(run, path, code, spec, at)
    if name == "variable_name":
        assert "'1a'" in run.text.split(": error: ", 1)[1].split("got", 1)[-1], "the message shows the bad name"


# --- exit 3: a bug, one line -------------------------------------------------------------------


def test_an_internal_error_is_one_line_and_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("an invariant broke\nover two lines")

    monkeypatch.setattr(api, "solve", broken)
    out, err = io.StringIO(), io.StringIO()
    assert main(["solve", str(GUIDE)], stdout=out, stderr=err) == 3
    assert out.getvalue() == ""
    assert err.getvalue().startswith("planner: internal error: RuntimeError: ")
    assert "Traceback" not in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert main(["--debug", "solve", str(GUIDE)], stdout=out, stderr=err) == 3
    assert "Traceback" in err.getvalue()
