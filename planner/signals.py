"""Signals that end work: the deadline's alarm (GaveUp), Ctrl-C (KeyboardInterrupt), SIGTERM (Signalled).

Their handlers raise in the main thread wherever it is, and four places need care:

- A destructor. Python prints an exception raised in `__del__` ("Exception ignored in ...") and
  goes on, so the signal would be lost; Z3 frees its terms in `__del__` all through a solve. A
  handler that finds a destructor on the stack raises nothing yet: the signal is sent again a
  millisecond later, until it comes outside.
- Code that drops what it catches: a bare `except:` in a library, C code that clears errors
  (importing pydantic's models, say). The command's own signals (SIGINT, SIGTERM) are watched
  until the command answers them: an exception of theirs found dropped is raised again.
- A constructor. The exception leaves an object half-made, whose destructor then fails when it
  is freed (Z3's `AstRef.__del__` reads a `ctx` its `__init__` never set). After a signal,
  destructors' failures are not printed, and the cycles among what it cut short are collected
  before the watch ends.
- A Z3 check. Z3's own SIGINT handler, set for each check, cancels it, but swallows a Ctrl-C
  that comes as the check ends anyway. While a command runs, Z3 is told to leave SIGINT to
  Python, and a thread woken by Python's wakeup file descriptor interrupts the checks running
  when a signal comes (Z3_interrupt may be called from any thread).
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import os
import re
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from planner.errors import GaveUp

RETRY_SECONDS = 0.001  # a signal that came in a destructor is sent again this much later, until it is outside
LOST_SECONDS = 0.1  # how often an unanswered signal's exception is looked for, while it is on its way up
CHECKING: set[Any] = set()  # Z3 contexts of the checks running now (Deadline.check keeps it)


def exit_status(signum: int) -> int:
    """128 plus the signal's number, as a shell reports a process the signal ended: 130 for Ctrl-C."""
    return 128 + signum


class Signalled(BaseException):
    """SIGTERM (or SIGINT) arrived: stop at once, cleaning up on the way out."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, raised by planner's handler (a class of its own, so that it can be watched on its way up)."""


def ending_inside(error: BaseException) -> BaseException | None:
    """The Ctrl-C or SIGTERM that `error` wraps, as a new exception to raise from it; None when it wraps none.

    A call the signal interrupted may report it as its own error: chained (`__set_name__` in a class
    being made wraps it in RuntimeError) or in a message (ctypes, on the way into Z3: `ArgumentError:
    argument 1: KeyboardInterrupt`)."""
    cause: BaseException | None = error
    for _ in range(32):  # a cause chain, never a loop
        if cause is None:
            break
        if isinstance(cause, Signalled):
            return Signalled(cause.signum)
        if isinstance(cause, KeyboardInterrupt):
            return KeyboardInterrupt()
        cause = cause.__cause__ or cause.__context__
    if type(error).__name__ == "ArgumentError":
        text = str(error)
        if "KeyboardInterrupt" in text:
            return KeyboardInterrupt()
        if (named := re.search(r"Signalled: (\d+)", text)) is not None:
            return Signalled(int(named.group(1)))
    return None


class _Watch:
    """While signals are watched: whether a signal's exception has been raised, the signal not answered yet
    with its exception on the way up (a weak reference: dead once the exception is dropped), who interrupts Z3."""

    depth = 0
    raised = False
    pending: tuple[signal.Signals, Callable[[], BaseException | None]] | None = None
    interrupts_z3 = False


def _not_raised() -> None:
    return None


def _raise(error: BaseException, signum: int, frame: FrameType | None, *, until_answered: bool) -> None:
    """Raise `error` for signal `signum`, unless the main thread is inside a destructor: then later.

    `until_answered`: raise it again if it is dropped before `answered()` is called."""
    signum = signal.Signals(signum)
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            _Watch.pending = (signum, _not_raised)
            _look_again(RETRY_SECONDS, signum)  # (not sent now: Python would run this handler again before it returns)
            return
        frame = frame.f_back
    _Watch.raised = True
    _Watch.pending = (signum, weakref.ref(error)) if until_answered else None
    if until_answered:
        _look_again(LOST_SECONDS, signum)
    try:
        raise error
    finally:
        del error  # no cycle through this frame: dropped, the exception is freed at once, and seen dropped


def _look_again(seconds: float, signum: signal.Signals) -> None:
    timer = threading.Timer(seconds, _send_if_lost, (signum,))
    timer.daemon = True
    timer.start()


def _send_if_lost(signum: signal.Signals) -> None:
    pending = _Watch.pending
    if not _Watch.depth or pending is None or pending[0] is not signum:
        return  # answered, overtaken by another signal, or the watch is over (the default handlers are back)
    if pending[1]() is None:  # not raised yet, or raised and dropped
        _thread.interrupt_main(signum)
    else:
        _look_again(LOST_SECONDS, signum)  # on its way up still


def answered() -> None:
    """The signal's exception reached the code that ends the command: it is not raised again."""
    _Watch.pending = None


def _quiet_after_a_signal(previous: Any) -> Any:
    def hook(unraisable: Any) -> None:
        if not _Watch.raised:
            previous(unraisable)
        # else: the destructor of an object the signal cut short; the work it belonged to is ending

    return hook


@contextlib.contextmanager
def watched() -> Iterator[None]:
    """Destructors' failures after a signal not printed, and their cycles collected at the end.

    Nestable. Wrap it around the `except` that catches the signal's exception too, so that what its
    traceback held is freed inside.
    """
    if _Watch.depth:
        yield
        return
    previous = sys.unraisablehook
    sys.unraisablehook = _quiet_after_a_signal(previous)
    _Watch.depth = 1
    try:
        yield
    finally:
        if _Watch.raised:
            gc.collect()  # the cycles among what the signal cut short, freed while their failures are not printed
        sys.unraisablehook = previous
        _Watch.raised, _Watch.pending, _Watch.depth = False, None, 0


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raise GaveUp("timeout") in the main thread `seconds` from now, if the work is still running then.

    A no-op outside the main thread (signals reach the main thread only).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def give_up(signum: int, frame: FrameType | None) -> None:
        _raise(GaveUp("timeout"), signum, frame, until_answered=False)  # (the stages check the deadline too)

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with watched():
            yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def end_the_command() -> Iterator[None]:
    """SIGTERM ends the command as Ctrl-C does: through the `finally`s (workers stopped, no temporary
    file left), with status 128 + the signal's number; neither is lost in a destructor or a Z3 check.
    Only the main thread can handle signals; a SIGINT ignored by the caller stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        _raise(Signalled(signum), signum, frame, until_answered=True)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        _raise(Interrupted(), signum, frame, until_answered=True)

    previous_term = signal.signal(signal.SIGTERM, stop)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupt)
    try:
        with watched(), _z3_interrupted():
            yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)


def z3_leaves_sigint_to_python(solver: Any) -> None:
    """Set on each solver before its check while a command runs (see above)."""
    if _Watch.interrupts_z3:
        solver.set("ctrl_c", False)


@contextlib.contextmanager
def _z3_interrupted() -> Iterator[None]:
    """A thread that interrupts the running Z3 checks when SIGINT or SIGTERM comes."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    try:
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except ValueError:  # not the main thread of the main interpreter
        os.close(read)
        os.close(write)
        yield
        return
    watcher = threading.Thread(target=_interrupt_checks_on_signals, args=(read,), daemon=True)
    watcher.start()
    _Watch.interrupts_z3 = True
    try:
        yield
    finally:
        _Watch.interrupts_z3 = False
        signal.set_wakeup_fd(previous)
        os.close(write)  # the watcher reads the end of the pipe and stops
        watcher.join()
        os.close(read)


def _interrupt_checks_on_signals(read: int) -> None:
    while data := os.read(read, 64):
        if signal.SIGINT in data or signal.SIGTERM in data:
            for context in list(CHECKING):
                context.interrupt()
