"""Progress on a terminal (`planner/report/progress.py`): enumeration, verification and `planner check`
show one line on standard error while they run, only when it is a terminal, never with JSON output,
and erase it before anything else is written."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time

import pytest

import planner
from planner.check import check
from planner.cli import main
from planner.executor.verify import reporting_to
from planner.report import progress as progress_module
from planner.report.progress import CLEAR, Progress
from tests.conftest import ROOT, SPECS


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nothing_shows_in_the_first_second_and_then_at_most_five_times_a_second() -> None:
    stream, clock = Terminal(), Clock()
    line = Progress(stream, clock=clock, ticking=False)
    line(3)
    assert stream.getvalue() == ""
    clock.now += 1.5
    line(4)
    assert stream.getvalue() == f"{CLEAR}planner: 4 plans so far (2 s)"
    clock.now += 0.1
    line(5)  # too soon after the last
    assert stream.getvalue().count("planner:") == 1
    clock.now += 0.2
    line.verifying(2)
    assert stream.getvalue().endswith(f"{CLEAR}planner: verifying plan 2 in NumPy (2 s)")
    line.clear()
    assert stream.getvalue().endswith(CLEAR) and not line.dirty


def test_a_line_never_shown_is_not_erased() -> None:
    stream = Terminal()
    with Progress(stream, clock=Clock(), ticking=False) as line:
        line(1)
    assert stream.getvalue() == ""


@pytest.mark.parametrize("stream,enabled", [(io.StringIO(), True), (Terminal(), False)], ids=["piped", "disabled"])
def test_nothing_shows_off_a_terminal_or_when_disabled(stream: io.StringIO, enabled: bool) -> None:
    clock = Clock()
    with Progress(stream, enabled=enabled, clock=clock, ticking=False) as line:
        clock.now += 5
        line.checked(1, 2)
    assert stream.getvalue() == ""


def test_a_terminal_gone_away_is_no_error() -> None:
    class Gone(Terminal):
        def write(self, text: str) -> int:
            raise OSError(5, "Input/output error")

    clock = Clock()
    line = Progress(Gone(), clock=clock, ticking=False)
    clock.now += 2
    line(1)
    line.clear()


def test_the_clock_keeps_running_during_a_long_step_and_stops_when_cleared() -> None:
    stream = Terminal()
    line = Progress(stream, delay=0, every=0.05)
    line.verifying(1)
    time.sleep(2.3)
    line.clear()
    written = stream.getvalue()
    for seconds in (0, 1, 2):  # rewritten as its clock moves on, once a second
        assert written.count(f"planner: verifying plan 1 in NumPy ({seconds} s)") == 1, written
    assert written.endswith(CLEAR)
    time.sleep(0.15)
    assert stream.getvalue() == written  # nothing after the line was erased


# ------------------------------------------------------------------------------ who reports


def test_verification_reports_each_plan_it_starts() -> None:
    seen: list[int] = []
    with reporting_to(seen.append):
        result = planner.solve(str(SPECS / "dcgan_generator.yaml"), max_solutions=3)
    assert len(result.plans) == 3 and all(p.verified for p in result.plans)
    assert seen == [1, 2, 3]
    planner.solve(str(SPECS / "dcgan_generator.yaml"))
    assert seen == [1, 2, 3]  # only inside the block


@pytest.mark.parametrize("jobs", [1, 2])
def test_check_reports_each_file_it_has_checked(jobs: int) -> None:
    files = [str(SPECS / "guide_transposed.yaml"), str(SPECS / "lenet5.yaml"), str(SPECS / "autoencoder.yaml")]
    seen: list[tuple[int, int]] = []
    results = check(files, jobs=jobs, progress=lambda done, total: seen.append((done, total)))
    assert [r.spec for r in results] == files  # still in the order of the files
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.fixture
def at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress from the first moment, every time: what a long run shows, in a short one."""
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    monkeypatch.setattr(progress_module, "EVERY", 0.0)


def cli(*argv: object) -> tuple[int, str, str]:
    out, err = Terminal(), Terminal()
    code = main([str(a) for a in argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_solve_shows_its_verification_and_erases_it(at_once: None) -> None:
    code, out, err = cli("solve", SPECS / "dcgan_generator.yaml", "--max-solutions", "2")
    assert code == 0
    assert "planner: verifying plan 1 in NumPy" in err and "planner: verifying plan 2 in NumPy" in err
    assert err.endswith(CLEAR) and "\r" not in out and "specs/dcgan_generator.yaml: solved" in out


@pytest.mark.parametrize("command", [["solve", "--format", "json"], ["check", "--format", "json"]], ids=" ".join)
def test_json_output_has_no_progress(at_once: None, command: list[str]) -> None:
    code, out, err = cli(command[0], SPECS / "guide_transposed.yaml", *command[1:])
    assert code == 0 and "planner:" not in err and "\r" not in out + err


def test_check_shows_the_files_checked(at_once: None) -> None:
    code, out, err = cli("check", SPECS / "guide_transposed.yaml", SPECS / "lenet5.yaml", "--jobs", "1")
    assert code == 0 and "2 specs, 2 passed, 0 failed" in out
    assert "planner: checked 2 of 2 spec files" in err and err.endswith(CLEAR)


# ------------------------------------------------------------------------------ a real terminal

RUN = (
    "import sys; import planner.report.progress as p; p.DELAY = p.EVERY = 0.0; "
    "from planner.cli import main; sys.exit(main(sys.argv[1:]))"
)


def in_terminal(*argv: str) -> tuple[int, bytes]:
    """`planner ARGV` with stdout and stderr on a pseudo-terminal: its exit status and all it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", RUN, *argv], stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=ROOT
    )
    os.close(follower)
    written = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            process.kill()
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed: the process ended
            break
        if not chunk:
            break
        written += chunk
    os.close(leader)
    return process.wait(timeout=60), written


def test_a_terminal_sees_the_line_and_then_the_output() -> None:
    code, written = in_terminal("solve", "specs/dcgan_generator.yaml", "--max-solutions", "2")
    assert code == 0
    shown = written.decode()
    assert "planner: verifying plan 2 in NumPy" in shown
    end = shown.rindex("planner: verifying plan")
    assert CLEAR in shown[end:] and shown.index("specs/dcgan_generator.yaml: solved") > end  # erased, then the output


def test_a_pipe_sees_no_progress() -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUN, "solve", "specs/dcgan_generator.yaml", "--max-solutions", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "planner: verifying" not in done.stderr and "\r" not in done.stderr
