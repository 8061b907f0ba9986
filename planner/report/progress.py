"""Progress on a terminal: one line on standard error, rewritten in place, while a long command runs.

Shown only when the stream is a terminal (never when it is piped or redirected to a file, and the
CLI turns it off for JSON output), only once the command has run for a second, at most five times a
second, and erased before anything else is written, so it never ends up in an output or a log.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TextIO

CLEAR = "\r\033[K"  # back to the start of the line, and erase it
DELAY = 1.0  # seconds a command runs before its progress shows
EVERY = 0.2  # seconds between two writes of the line


class Progress:
    """The progress line of one command; usable as the `progress` callback of `api.solve` (plans found).

    Between calls a background thread keeps the line's clock running (`ticking`), so a long step (one plan
    executed at full width) still shows that it goes on. As a context manager it erases its line on the way
    out, whatever ends the command."""

    def __init__(
        self,
        stream: TextIO,
        *,
        enabled: bool = True,
        delay: float | None = None,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        ticking: bool = True,
    ):
        self.stream, self.clock, self.ticking = stream, clock, ticking
        self.delay = DELAY if delay is None else delay
        self.every = EVERY if every is None else every
        self.enabled = enabled and _is_terminal(stream)
        self.start = clock()
        self.text: str | None = None  # what the line says, once something was reported
        self.shown: float | None = None  # when the line was last written
        self.line = ""  # what it said
        self.dirty = False  # a line is on the terminal
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self, found: int) -> None:
        """Enumeration: `found` plans so far."""
        self.show(f"{found:,} plan{'s' if found != 1 else ''} so far")

    def verifying(self, number: int) -> None:
        """Verification: plan `number` (1-based) is being executed in NumPy."""
        self.show(f"verifying plan {number:,} in NumPy")

    def checked(self, done: int, total: int) -> None:
        """`planner check`: `done` of `total` spec files checked."""
        self.show(f"checked {done:,} of {total:,} spec files")

    def show(self, text: str) -> None:
        """Make `text` the progress line; it is written once the command has run `delay` seconds, at most
        every `every` seconds."""
        if not self.enabled:
            return
        self.text = text
        self._draw(self.clock())
        if self.ticking and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="planner-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(max(self.every, 0.05)):
            self._draw(self.clock())

    def _draw(self, now: float) -> None:
        with self._lock:
            if self._stop.is_set() or self.text is None or now - self.start < self.delay:
                return
            line = f"planner: {self.text} ({now - self.start:.0f} s)"
            if self.shown is not None and (now - self.shown < self.every * 0.9 or line == self.line):
                return  # too soon, or nothing new to say
            with contextlib.suppress(OSError, ValueError):  # a terminal gone away is no reason to fail
                self.stream.write(CLEAR + line)
                self.stream.flush()
                self.shown, self.line, self.dirty = now, line, True

    def clear(self) -> None:
        """Stop the clock and erase the progress line, if one is shown."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1)
        with self._lock:
            if self.dirty:
                with contextlib.suppress(OSError, ValueError):
                    self.stream.write(CLEAR)
                    self.stream.flush()
                self.dirty = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False
