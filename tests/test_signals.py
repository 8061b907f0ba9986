"""Signals end work wherever they land: in a destructor (which would swallow the exception), in a
constructor (which leaves an object half-made), inside a Z3 check, while planner's modules load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import z3

from planner import signals
from planner.deadline import Deadline
from planner.errors import GaveUp
from tests.conftest import ROOT


def busy(seconds: float) -> None:
    """Python lines, one after another, for `seconds` (a handler runs between two of them)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What Python reports as 'Exception ignored in ...', collected instead."""
    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    return reported


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


ENDINGS: dict[str, tuple[Callable[[], None], type[BaseException]]] = {
    "SIGINT": (ctrl_c, KeyboardInterrupt),
    "SIGTERM": (sigterm, signals.Signalled),
}


@pytest.mark.parametrize("ending", ENDINGS, ids=str)
def test_a_signal_that_lands_in_a_destructor_is_raised_after_it(ending: str, unraisable: list[Any]) -> None:
    send, raised = ENDINGS[ending]

    class SignalledWhileFreed:
        def __del__(self) -> None:
            send()
            busy(0.05)  # where the handler would raise first, and Python would print and drop the exception

    with pytest.raises(raised), signals.end_the_command():
        obj = SignalledWhileFreed()
        del obj
        busy(5)  # raised here, at once: not lost
    assert unraisable == []


@pytest.mark.parametrize("ending", ENDINGS, ids=str)
def test_a_signal_whose_exception_is_dropped_is_raised_again(ending: str) -> None:
    send, raised = ENDINGS[ending]
    dropped = 0
    with pytest.raises(raised), signals.end_the_command():
        try:
            send()
            busy(1)
        except BaseException:  # what a bare `except:` in a library does
            dropped += 1
        busy(5)
    assert dropped == 1


def test_a_signal_answered_is_not_raised_again() -> None:
    began = time.monotonic()
    with signals.end_the_command():
        try:
            ctrl_c()
            busy(1)
        except KeyboardInterrupt:
            signals.answered()
        busy(3 * signals.LOST_SECONDS)
    assert time.monotonic() - began < 1


def test_the_alarm_that_goes_off_in_a_destructor_is_raised_after_it(unraisable: list[Any]) -> None:
    class FreedSlowly:
        def __del__(self) -> None:
            busy(0.3)

    began = time.monotonic()
    with pytest.raises(GaveUp), signals.alarm(0.05):
        obj = FreedSlowly()
        del obj
        busy(5)
    assert time.monotonic() - began < 2
    assert unraisable == []


class HalfMade:
    def __init__(self) -> None:
        ctrl_c()
        busy(0.05)  # the handler raises in here: `ready` is never set
        self.ready = True

    def __del__(self) -> None:
        assert self.ready  # AttributeError when __init__ was cut short


def test_a_half_made_object_is_freed_quietly_after_a_signal(unraisable: list[Any]) -> None:
    caught = False
    with signals.end_the_command():
        try:
            HalfMade()
        except KeyboardInterrupt:
            caught = True
    assert caught
    assert unraisable == []


def test_without_the_watch_the_half_made_object_fails_aloud(unraisable: list[Any]) -> None:
    """The control of the test above: Python's own handling reports the destructor's failure."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    try:
        HalfMade()
    except KeyboardInterrupt:
        pass
    assert [type(u.exc_value) for u in unraisable] == [AttributeError]


def hard_for_z3(ctx: z3.Context) -> z3.Solver:
    """13 pigeons in 12 holes: minutes of search."""
    solver = z3.Solver(ctx=ctx)
    holes = 12
    sits = [[z3.Bool(f"p{i}_{j}", ctx) for j in range(holes)] for i in range(holes + 1)]
    for pigeon in sits:
        solver.add(z3.Or(pigeon))
    for j in range(holes):
        for a in range(holes + 1):
            for b in range(a + 1, holes + 1):
                solver.add(z3.Or(z3.Not(sits[a][j]), z3.Not(sits[b][j])))
    return solver


def test_ctrl_c_interrupts_a_z3_check_at_once() -> None:
    solver = hard_for_z3(z3.Context())
    threading.Timer(0.5, ctrl_c).start()
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt), signals.end_the_command():
        Deadline(60).check(solver)
    assert time.monotonic() - began < 10
    assert signals.CHECKING == set()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_commands_load_ends_with_one_line(signum: int) -> None:
    code = f"""
import os, signal, sys
import planner.cli

class SignalledWhileImporting:
    def find_spec(self, name, path=None, target=None):
        if name == "planner.commands":
            os.kill(os.getpid(), {int(signum)})
        return None

sys.meta_path.insert(0, SignalledWhileImporting())
sys.exit(planner.cli.main(["solve", "specs/dcgan_generator.yaml"]))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    name = signal.Signals(signum).name
    assert (done.returncode, done.stdout, done.stderr) == (128 + signum, "", f"planner: interrupted by {name}\n")
