"""The command line and the API under misuse: --output, --timeout, signals, option values, API arguments.

Each test is named by the behaviour it pins. Commands run through `main(argv, stdout, stderr)`
where that is enough, and as real processes (`python -m planner`) where signals, worker
processes or the interpreter's own limits are part of the behaviour.
"""

from __future__ import annotations

import math
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import planner
from tests.conftest import ROOT, no_traceback, run, write

GUIDE = ROOT / "specs" / "guide_transposed.yaml"
LENET = ROOT / "specs" / "lenet5.yaml"
INFEASIBLE = """\
input: {shape: [1, 1, 8, 8]}
layers:
  - {name: c1, op: conv, out_channels: 1, kernel: 3, expect: [1, 1, 9, 9]}
"""
WIDE_DOMAINS = """\
input:
  shape: [1, 3, "?", "?"]
defaults:
  kernel: {min: 1, max: 64}
  stride: {min: 1, max: 1000}
  padding: {min: 0, max: 64}
  size: {min: 1, max: 100000}
layers:
"""


def unknown_convs(n: int) -> str:
    return "".join(
        f'  - {{name: c{i}, op: conv, out_channels: 8, kernel: "?", stride: "?", padding: "?"}}\n' for i in range(n)
    )


# Z3 needs minutes for this one (non-linear: stride, kernel and size unknown in wide domains)
SLOW_TO_SOLVE = WIDE_DOMAINS + unknown_convs(6) + "  - {name: last, op: relu, expect: [1, 8, 7, 3]}\n"
# minutes to count: every plan is enumerated through Z3 (the domains are too wide for the counter)
SLOW_TO_COUNT = WIDE_DOMAINS + unknown_convs(3)
# solved at once, then each of its layers takes a while to execute
SLOW_TO_VERIFY = "input: {shape: [1, 16, 384, 384]}\nlayers:\n" + (
    "  - {op: conv, out_channels: 16, kernel: 3, padding: 1}\n" * 200
)


def start(*argv: object, cwd: Path = ROOT) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "planner", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        start_new_session=True,
    )


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- version, help, option values ------------------------------------------------------------


def test_version_prints_the_installed_version() -> None:
    code, out, err = run("--version")
    assert code == 0 and err == ""
    assert out.startswith("planner ") and out.strip().split()[1][0].isdigit(), out


def test_a_bare_planner_prints_the_help() -> None:
    code, out, err = run()
    assert code == 2
    assert "usage: planner" in err and "solve" in err and "check" in err, err


@pytest.mark.parametrize("value", ["inf", "1e309", "nan", "-inf", "0", "-1", "ten", ""])
def test_a_timeout_that_is_not_a_positive_finite_number_is_a_usage_error(value: str) -> None:
    code, out, err = run("solve", GUIDE, "--timeout", value)
    assert code == 2, err
    assert out == "" and "--timeout" in err
    no_traceback(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", GUIDE, "--seed", "-1"],
        ["run", GUIDE, "--seed", "9" * 5000],
        ["solve", GUIDE, "--max-solutions", "9" * 5000],
        ["check", GUIDE, "--jobs", "0"],
        ["check", GUIDE, "--jobs", "-2"],
    ],
    ids=["negative-seed", "seed-5000-digits", "max-solutions-5000-digits", "jobs-0", "jobs-negative"],
)
def test_out_of_range_option_values_are_usage_errors(argv: list[object]) -> None:
    code, out, err = run(*argv)
    assert code == 2, err
    assert out == "" and err.startswith("planner")
    no_traceback(err)


def test_jobs_beyond_the_cores_are_capped(tmp_path: Path) -> None:
    specs = [write(tmp_path, f"s{i}.yaml", LENET.read_text()) for i in range(3)]
    code, out, err = run("check", *specs, "--jobs", str(10**6))
    assert code == 0, out + err
    assert "3 specs, 3 passed" in out


@settings(max_examples=60)
@given(
    option=st.sampled_from(["--timeout", "--max-solutions", "--format", "--output", "--seed", "--jobs"]),
    value=st.one_of(
        st.text(max_size=12),
        st.integers(-(10**30), 10**30).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
    ),
)
def test_any_option_value_gets_an_answer_never_a_crash(
    tmp_path_factory: pytest.TempPathFactory, option: str, value: str
) -> None:
    command = "run" if option == "--seed" else "check" if option == "--jobs" else "solve"
    if option == "--output":
        value = str(tmp_path_factory.mktemp("out") / (value.replace("/", "_").replace("\0", "_") or "x"))
    code, out, err = run(command, GUIDE, option, value, *(["--no-verify"] if command == "solve" else []))
    assert code in (0, 2), (code, out, err)
    no_traceback(err)
    if code == 2:
        assert err.startswith("planner"), err


# --- --output -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["device", "fifo", "directory"])
def test_output_that_is_not_a_regular_file_is_refused_before_any_work(tmp_path: Path, kind: str) -> None:
    if kind == "device":
        target = Path("/dev/null")
    elif kind == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
    else:
        target = tmp_path / "dir"
        target.mkdir()
    before = os.stat(target).st_mode
    code, out, err = run("solve", GUIDE, "--output", target)
    assert code == 2, err
    assert out == "" and f"cannot write {target}" in err and "regular file" in err, err
    assert os.stat(target).st_mode == before, "the target is what it was"
    if kind != "device":
        assert sorted(p.name for p in tmp_path.iterdir()) == [target.name], "no temporary file left behind"


def test_output_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    real = write(tmp_path, "real.txt", "old\n")
    link = tmp_path / "link.txt"
    link.symlink_to("real.txt")
    code, _, err = run("solve", GUIDE, "--output", link)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == "real.txt"
    assert "solved" in real.read_text()


def test_a_new_output_file_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        code, _, err = run("solve", GUIDE, "--output", tmp_path / "new.txt")
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o640


def test_a_replaced_output_file_keeps_its_mode(tmp_path: Path) -> None:
    target = write(tmp_path, "plan.txt", "old\n")
    target.chmod(0o604)
    code, _, err = run("solve", GUIDE, "--output", target)
    assert code == 0, err
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o604 and "solved" in target.read_text()


@pytest.mark.parametrize("fmt", ["text", "json", "yaml"])
def test_a_failed_solve_keeps_the_output_file_and_says_why_on_stderr(tmp_path: Path, fmt: str) -> None:
    spec = write(tmp_path, "bad.yaml", INFEASIBLE)
    target = write(tmp_path, "plan.out", "old\n")
    code, out, err = run("solve", spec, "--format", fmt, "--output", target)
    assert code == 1
    assert target.read_text() == "old\n"
    assert out == "" and "[expect]" in err and "bad.yaml:3:" in err, err


def test_a_failed_solve_to_a_new_output_path_writes_nothing(tmp_path: Path) -> None:
    spec = write(tmp_path, "bad.yaml", INFEASIBLE)
    code, _, err = run("solve", spec, "--output", tmp_path / "new.txt")
    assert code == 1 and "infeasible" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


# --- --timeout bounds the whole command ----------------------------------------------------------


def test_timeout_bounds_verification_and_the_plan_is_reported_not_verified(tmp_path: Path) -> None:
    spec = write(tmp_path, "slow.yaml", SLOW_TO_VERIFY)
    began = time.monotonic()
    code, out, err = run("solve", spec, "--timeout", "1.5", "--format", "json")
    took = time.monotonic() - began
    assert code == 0, err
    assert took < 1.5 + 2.5, f"took {took:.1f} s"
    assert '"verified": false' in out and "not-verified" in out


def test_timeout_bounds_run(tmp_path: Path) -> None:
    spec = write(tmp_path, "slow.yaml", SLOW_TO_VERIFY)
    began = time.monotonic()
    code, out, err = run("run", spec, "--timeout", "1.5")
    assert time.monotonic() - began < 1.5 + 2.5
    assert code == 4, out + err
    assert "gave up" in err and "infeasible" not in err


def test_timeout_bounds_reading_a_huge_spec(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    spec.write_text("input: {shape: [1, 1, 8]}\nlayers: [" + ", ".join(["{op: relu}"] * 700_000) + "]\n")
    began = time.monotonic()
    code, out, err = run("solve", spec, "--timeout", "0.5")
    took = time.monotonic() - began
    assert took < 0.5 + 2.5, f"took {took:.1f} s"
    assert code in (1, 4), out + err  # refused as too big, or given up while reading
    assert "infeasible" not in out + err
    no_traceback(err)


def test_check_bounds_each_spec_by_its_timeout(tmp_path: Path) -> None:
    for i in range(2):
        write(tmp_path, f"slow{i}.yaml", SLOW_TO_SOLVE)
    began = time.monotonic()
    code, out, err = run("check", tmp_path, "--timeout", "1", "--jobs", "1")
    took = time.monotonic() - began
    assert took < 2 * (1 + 2.5), f"took {took:.1f} s"
    assert code == 4, out + err
    assert "2 specs, 0 passed, 0 failed, 2 unknown" in out


# --- signals ---------------------------------------------------------------------------------


def test_ctrl_c_during_a_solve_exits_130_with_one_line(tmp_path: Path) -> None:
    spec = write(tmp_path, "slow.yaml", SLOW_TO_COUNT)
    proc = start("solve", spec, "--count", "--timeout", "60")
    time.sleep(2.5)  # well inside the enumeration (Z3 calls, one plan after another)
    assert proc.poll() is None, "still counting when interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, out + err
    assert err == "planner: interrupted by SIGINT\n", err
    assert "gave up" not in out + err and "infeasible" not in out + err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_check_ends_its_workers_at_once(tmp_path: Path, signum: int) -> None:
    for i in range(4):
        write(tmp_path, f"slow{i}.yaml", SLOW_TO_VERIFY)
    proc = start("check", tmp_path, "--timeout", "120", "--jobs", "2")
    deadline = time.monotonic() + 20
    while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = children(proc.pid)
    assert len(workers) >= 2, "the workers started"
    time.sleep(1)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 128 + signum, out + err
    assert err.strip().splitlines() == [f"planner: interrupted by {signal.Signals(signum).name}"], err
    time.sleep(0.5)
    assert not [w for w in workers if alive(w)], "every worker ended with its parent"


def test_check_counts_a_spec_named_twice_once() -> None:
    code, out, err = run("check", LENET, LENET, str(LENET).replace("/specs/", "/specs/./"))
    assert code == 0, err
    assert "1 specs, 1 passed" in out


# --- the Python API refuses misuse with its own errors ---------------------------------------------


@pytest.mark.parametrize("value", [0, -1, -(10**20)])
def test_max_solutions_below_one_is_a_value_error(value: int) -> None:
    with pytest.raises(ValueError, match="max_solutions"):
        planner.solve(str(GUIDE), max_solutions=value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": 0},
        {"timeout": math.inf},
        {"timeout": math.nan},
        {"seed": -1},
        {"max_solutions": 1.5},
        {"max_solutions": True},
    ],
)
def test_solve_refuses_bad_arguments(kwargs: dict) -> None:
    with pytest.raises((TypeError, ValueError)):
        planner.solve(str(GUIDE), **kwargs)


def test_solve_refuses_what_is_no_spec() -> None:
    with pytest.raises(TypeError, match="spec path or a Network"):
        planner.solve(123)  # type: ignore[arg-type]


def test_loads_refuses_what_is_no_text() -> None:
    with pytest.raises(TypeError, match="YAML text"):
        planner.loads(123)  # type: ignore[arg-type]


def test_verify_refuses_what_is_no_plan() -> None:
    with pytest.raises(TypeError, match="Plan"):
        planner.verify(None)  # type: ignore[arg-type]


def test_verify_refuses_a_plan_of_another_network() -> None:
    plan = planner.solve(str(GUIDE), verify=False).plans[0]
    other = planner.load(LENET)
    with pytest.raises(planner.PlannerError, match="not a plan of the network"):
        planner.verify(plan, network=other)


def test_run_plan_refuses_a_network() -> None:
    with pytest.raises(TypeError, match="Plan"):
        planner.run_plan(planner.load(GUIDE))  # type: ignore[arg-type]


def test_solve_with_a_timeout_bounds_loading_solving_and_verifying(tmp_path: Path) -> None:
    spec = write(tmp_path, "slow.yaml", SLOW_TO_VERIFY)
    began = time.monotonic()
    result = planner.solve(str(spec), timeout=1.0)
    assert time.monotonic() - began < 1.0 + 1.5
    assert result.status is planner.Status.SOLVED
    assert [p.verified for p in result.plans] == [False]
    assert any(d.code == "not-verified" for d in result.diagnostics)


def test_the_alarm_wrapped_by_the_call_it_interrupted_is_still_a_give_up() -> None:
    """ctypes, on the way into Z3, reports an exception raised by the alarm as its own ArgumentError."""
    import ctypes

    from planner.deadline import alarm_inside
    from planner.errors import GaveUp

    wrapped = ctypes.ArgumentError("argument 1: GaveUp: timeout")
    assert isinstance(alarm_inside(wrapped), GaveUp) and alarm_inside(wrapped).reason == "timeout"
    try:
        try:
            raise GaveUp("timeout")
        except GaveUp as e:
            raise RuntimeError("while encoding") from e
    except RuntimeError as chained:
        assert alarm_inside(chained) is chained.__cause__
    assert alarm_inside(ValueError("argument 1: something else")) is None


def test_a_signal_wrapped_by_the_call_it_interrupted_is_still_that_signal() -> None:
    import ctypes

    from planner.signals import Signalled, ending_inside

    assert type(ending_inside(ctypes.ArgumentError("argument 1: KeyboardInterrupt: "))) is KeyboardInterrupt
    assert ending_inside(ctypes.ArgumentError("argument 1: Signalled: 15")).signum == 15
    for raised in (KeyboardInterrupt(), Signalled(15)):
        try:
            try:
                raise raised
            except BaseException as e:
                raise RuntimeError("Error calling __set_name__") from e  # what a class being made does
        except RuntimeError as chained:
            found = ending_inside(chained)
        assert type(found) is type(raised) and found is not raised
        assert getattr(found, "signum", None) == getattr(raised, "signum", None)
    assert ending_inside(ValueError("argument 1: GaveUp: timeout")) is None
