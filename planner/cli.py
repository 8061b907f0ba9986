"""The `planner` command: its signal handling first, then the commands themselves (planner/commands.py).

Importing the commands takes a while (pydantic's models, Z3): a Ctrl-C then ends the command as
it would later, with one line and status 130, which needs the handlers in place before the import.
"""

from __future__ import annotations

import signal
import sys
from typing import TextIO

from planner import signals


def main(argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stderr = stderr or sys.stderr
    with signals.end_the_command():  # around the except too: what an interrupted call left is freed inside
        try:
            from planner import commands

            return commands.run(sys.argv[1:] if argv is None else argv, stdout or sys.stdout, stderr)
        except (KeyboardInterrupt, signals.Signalled) as e:
            return _ended(e, stderr)
        except Exception as e:  # while the commands load: the signal wrapped by what it interrupted
            if (ending := signals.ending_inside(e)) is None:
                raise
            return _ended(ending, stderr)


def _ended(ending: BaseException, stderr: TextIO) -> int:
    signals.answered()
    signum = ending.signum if isinstance(ending, signals.Signalled) else signal.SIGINT
    print(f"planner: interrupted by {signal.Signals(signum).name}", file=stderr)
    # CPython flags a KeyboardInterrupt that left an exec of a string (dataclasses and namedtuple
    # make their methods so) as unhandled even when caught later, and under `python -m` then
    # kills itself with SIGINT at exit instead of exiting 130. Its next such exec clears the flag.
    exec("")
    return signals.exit_status(signum)
