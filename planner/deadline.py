"""One time limit for a whole command: reading the spec, solving, explaining and executing.

Every stage that can take long checks the same `Deadline` (the passes between layers, the
executor between layers, each Z3 call through `Deadline.check`), and `alarm` is the
backstop for whatever runs in between (reading the spec among them, bounded by its size
limits): at the deadline plus a grace period it raises `GaveUp` in the main thread
(planner/signals.py: never lost in a destructor). A give-up is `unknown` (exit 4), never
"infeasible".
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

from planner import signals
from planner.errors import GaveUp

MAX_Z3_TIMEOUT_MS = 2**32 - 1  # Z3's timeout parameter is an unsigned 32-bit count of milliseconds
CANCEL_MARGIN = 0.05  # seconds: a check Z3 cancels this long before its timeout was cancelled by Ctrl-C
ALARM_GRACE = 1.0  # seconds past the deadline before the backstop interrupts whatever is running


class Deadline:
    """A point in time after which work stops; `None` seconds: never."""

    def __init__(self, seconds: float | None):
        self.end = None if seconds is None else time.monotonic() + seconds

    def passed(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end

    def left(self) -> float:
        """Seconds left (infinite without a limit, never negative)."""
        return math.inf if self.end is None else max(0.0, self.end - time.monotonic())

    def ensure(self, doing: str = "timeout") -> None:
        """Raise GaveUp once the deadline has passed."""
        if self.passed():
            raise GaveUp(doing)

    def within(self, seconds: float) -> Deadline:
        """A deadline `seconds` from now, never later than this one."""
        sub = Deadline(seconds)
        if self.end is not None and sub.end is not None:
            sub.end = min(sub.end, self.end)
        return sub

    def check(self, solver: Any, *assumptions: Any) -> Any:
        """solver.check() within what is left of the deadline; raises GaveUp on unknown.

        A check cut short by Ctrl-C (by Z3's own handler, or by planner/signals.py's watcher while a
        command runs) answers unknown: that is turned back into KeyboardInterrupt, so an interrupted
        run never reads as a give-up.
        """
        import z3

        if self.end is not None:
            solver.set("timeout", max(1, min(MAX_Z3_TIMEOUT_MS, int(self.left() * 1000))))
        signals.z3_leaves_sigint_to_python(solver)
        signals.CHECKING.add(solver.ctx)
        try:
            outcome = solver.check(*assumptions)
        finally:
            signals.CHECKING.discard(solver.ctx)
        if outcome == z3.unknown:
            reason = solver.reason_unknown()
            if "interrupted" in reason or "canceled" in reason and self.left() > CANCEL_MARGIN:
                raise KeyboardInterrupt  # Z3 cancelled the check on SIGINT before its timeout could
            raise GaveUp("timeout" if self.passed() else reason)
        return outcome


def alarm_inside(error: BaseException) -> GaveUp | None:
    """The GaveUp that the alarm raised, when it went off inside a call that wrapped it in an error of its own
    (ctypes, on the way into Z3, reports it as `ArgumentError: argument 1: GaveUp: timeout`)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, GaveUp):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if type(error).__name__ == "ArgumentError" and "GaveUp: " in str(error):
        return GaveUp(str(error).split("GaveUp: ", 1)[1] or "timeout")
    return None


@contextlib.contextmanager
def alarm(deadline: Deadline, grace: float = ALARM_GRACE) -> Iterator[None]:
    """Raise GaveUp in the main thread at `deadline` plus `grace`, if the work is still running then.

    A no-op without a limit or outside the main thread (signals reach the main thread only).
    """
    if deadline.end is None:
        yield
        return
    with signals.alarm(min(deadline.left() + grace, 1e9)):
        yield
