"""argv -> API call -> reporter -> exit code. No logic of its own.

Exit status (SPEC 2): 0 done, 1 a problem with a spec, 2 usage, 3 internal error, 4 solver gave up;
128 + the signal's number when one ended the command (planner/cli.py).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version
from typing import TextIO

from planner import api
from planner.check import DEFAULT_TIMEOUT, check, spec_files
from planner.deadline import Deadline, alarm, alarm_inside
from planner.errors import GaveUp, SpecError, UsageError
from planner.plan import Plan
from planner.report.escape import visible
from planner.report.output import emit, writable
from planner.report.progress import Progress
from planner.report.reporters import CHECK_REPORTER_BY_NAME, SOLVE_REPORTER_BY_NAME
from planner.report.text import DEFAULT_TABLE, parse_columns
from planner.signals import ending_inside
from planner.solver.solve import SolveResult, Status

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_BUG, EXIT_UNKNOWN = 0, 1, 2, 3, 4
DEFAULT_SOLVE_TIMEOUT = 300.0  # seconds; a solve always ends, with exit 4 when it gives up
EXIT_BY_STATUS = {
    Status.SOLVED: EXIT_OK,
    Status.INFEASIBLE: EXIT_SPEC,
    Status.INVALID: EXIT_SPEC,
    Status.UNKNOWN: EXIT_UNKNOWN,
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # raise instead of exiting, so main() returns 2
        raise UsageError(f"{self.prog}: error: {message}")


def _version() -> str:
    try:
        return version("planner")
    except PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="planner", description="Solve convolution arithmetic for a network spec.")
    parser.add_argument("--version", action="version", version=f"planner {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback when planner itself fails (exit 3)")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    solve = commands.add_parser("solve", help="solve a spec for its unknowns and print the plans")
    solve.add_argument("spec")
    how_many = solve.add_mutually_exclusive_group()
    how_many.add_argument("--all", action="store_true", help="print every plan (and their count)")
    how_many.add_argument(
        "--max-solutions", type=_natural_int, default=1, metavar="N", help="print up to N plans (0 with --count: none)"
    )
    how_many.add_argument(
        "--sample", type=_positive_int, metavar="N", help="print N distinct plans drawn uniformly at random"
    )
    solve.add_argument("--count", action="store_true", help="count every plan")
    solve.add_argument("--seed", type=_natural_int, default=0, help="seed of --sample's draw (>= 0; default 0)")
    solve.add_argument("--format", choices=tuple(SOLVE_REPORTER_BY_NAME), default="text")
    solve.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    solve.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_SOLVE_TIMEOUT,
        metavar="S",
        help=f"give up after S seconds (exit 4; default {DEFAULT_SOLVE_TIMEOUT:g})",
    )
    solve.add_argument("--no-verify", action="store_true", help="do not execute the plans in NumPy")
    solve.add_argument("--verbose", action="store_true", help="text: every parameter of every layer, defaults included")
    solve.add_argument(
        "--columns",
        type=_table_columns,
        metavar="A,B,...",
        help="text: the table's columns after the layer's name, in order, from op, input_size, output_size, "
        "num_params, params_percent, kernel_size, mult_adds, receptive_field, parameters "
        f"(default {','.join(DEFAULT_TABLE)})",
    )
    solve.add_argument(
        "--full-width",
        action="store_true",
        help="verify with every channel (default: channels narrowed; spatial sizes are the same)",
    )

    check = commands.add_parser("check", help="check spec files for CI: load, solve and verify each")
    check.add_argument("paths", nargs="+", metavar="PATH", help="spec files, or directories to search for *.yaml/*.yml")
    check.add_argument("--format", choices=tuple(CHECK_REPORTER_BY_NAME), default="text")
    check.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"give up on a spec after S seconds (default {DEFAULT_TIMEOUT:g}; reported as unknown)",
    )
    check.add_argument("--jobs", type=_positive_int, metavar="N", help="specs checked at once (default: one per core)")

    draw = commands.add_parser("draw", help="an SVG picture of the solved network, or of one layer's arithmetic")
    draw.add_argument("spec")
    draw.add_argument(
        "--layer", metavar="NAME", help="draw this layer's arithmetic in the style of the guide's figures"
    )
    draw.add_argument("--output", metavar="FILE.svg", required=True, type=_svg_file, help="the SVG file to write")
    draw.add_argument("--timeout", type=_positive_float, default=DEFAULT_SOLVE_TIMEOUT, metavar="S")
    _plan_option(draw)

    export = commands.add_parser("export", help="a self-contained PyTorch nn.Module for the solved plan")
    export.add_argument("spec")
    export.add_argument("--to", choices=("pytorch",), required=True)
    export.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    export.add_argument("--timeout", type=_positive_float, default=DEFAULT_SOLVE_TIMEOUT, metavar="S")
    _plan_option(export)

    sizes = commands.add_parser("sizes", help="the input sizes the network accepts, as a closed form per axis")
    sizes.add_argument("spec")
    sizes.add_argument("--format", choices=("text", "json"), default="text")
    sizes.add_argument(
        "--max",
        type=_positive_int,
        metavar="N",
        help="sizes tried one by one: 1..N (default: the spec's defaults.size max, and twice its largest size)",
    )
    sizes.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_SOLVE_TIMEOUT,
        metavar="S",
        help=f"give up after S seconds (exit 4; default {DEFAULT_SOLVE_TIMEOUT:g})",
    )

    schema = commands.add_parser("schema", help="the JSON Schema of the spec format, for editors")
    schema.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")

    run = commands.add_parser("run", help="execute the solved network in NumPy, printing shapes and times")
    run.add_argument("spec")
    run.add_argument(
        "--seed",
        type=_natural_int,
        default=0,
        help="seed of the random input (>= 0); weights depend on their shape only",
    )
    run.add_argument("--timeout", type=_positive_float, default=DEFAULT_SOLVE_TIMEOUT, metavar="S")
    _plan_option(run)

    imports = commands.add_parser("import", help="write a spec from a PyTorch module or an ONNX model")
    imports.add_argument(
        "model", metavar="MODEL", help="a .onnx file, or path/to/file.py:factory returning an nn.Module"
    )
    imports.add_argument("--output", metavar="SPEC.yaml", required=True, help="the spec file to write")
    imports.add_argument(
        "--input-shape",
        type=_shape,
        metavar="N,C,H,...",
        help="the input to trace at (needed for PyTorch; ONNX: default the model's static input shape)",
    )
    imports.add_argument(
        "--free",
        type=_names,
        default=(),
        metavar="PARAMS",
        help='write these parameters of every conv and pooling layer as "?": kernel,stride,padding,dilation,'
        "output_padding (the traced shapes stay as expect)",
    )
    imports.add_argument("--free-layers", metavar="REGEX", help="free only the layers whose names REGEX finds")
    return parser


def _plan_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--plan",
        type=_positive_int,
        default=1,
        metavar="N",
        help="take the N-th plan, in the order of solve --max-solutions (default 1)",
    )


def _shape(text: str) -> tuple[int, ...]:
    return tuple(_positive_int(part.strip()) for part in text.split(","))


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _natural_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _int(text: str) -> int:
    if len(text) > 30:  # int() of a long digit string is slow (and Python refuses 4300+ digits)
        raise argparse.ArgumentTypeError("is too long for a number here")
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None


def _table_columns(text: str) -> tuple[str, ...]:
    try:
        return parse_columns(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _svg_file(text: str) -> str:
    """draw writes SVG only: a name that says otherwise (`net.png`, `net`) is a mistake, refused before any work."""
    if not text.lower().endswith(".svg"):
        raise argparse.ArgumentTypeError(f"draw writes SVG, so the file name must end in .svg, not {text!r}")
    return text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, not {text}")
    return value


def run(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """The command that `argv` names, run; its exit status."""
    parser = _parser()
    try:
        with contextlib.redirect_stdout(stdout):  # --help and --version print, then exit 0
            args = parser.parse_args(argv)
    except UsageError as e:
        print(e, file=stderr)
        return EXIT_USAGE
    except SystemExit as e:
        return EXIT_OK if e.code in (0, None) else EXIT_USAGE
    if args.command is None:  # a bare `planner`: what it can do (a usage error all the same)
        stderr.write("planner: error: no command given\n\n" + parser.format_help())
        return EXIT_USAGE
    try:
        commands = {
            "solve": _solve,
            "check": _check,
            "run": _run,
            "draw": _draw,
            "export": _export,
            "schema": _schema,
            "sizes": _sizes,
            "import": _import,
        }
        return commands[args.command](args, stdout, stderr)
    except UsageError as e:
        print(visible(e if str(e).startswith("planner") else f"planner: {e}"), file=stderr)
        return EXIT_USAGE
    except GaveUp as e:  # the backstop alarm, outside the API's own handling
        print(f"planner: gave up ({e.reason}); allow more time with --timeout", file=stderr)
        return EXIT_UNKNOWN
    except BrokenPipeError:  # the reader went away (`planner solve ... | head`): nothing left to say
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # a bug (InternalError or worse): one line, no traceback unless --debug
        if (ending := ending_inside(e)) is not None:  # a signal, wrapped by the call it interrupted: see cli.py
            raise ending from e
        if (gave_up := alarm_inside(e)) is not None:  # the alarm, wrapped by the call it interrupted
            print(f"planner: gave up ({gave_up.reason}); allow more time with --timeout", file=stderr)
            return EXIT_UNKNOWN
        return _internal_error(e, args.debug, stderr)


def _internal_error(e: BaseException, debug: bool, stderr: TextIO) -> int:
    if debug:
        traceback.print_exc(file=stderr)
    message = f"planner: internal error: {type(e).__name__}: {e} (run with --debug for a traceback)"
    print(visible(message), file=stderr)
    return EXIT_BUG


def _solve(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if args.columns is not None and args.format != "text":
        raise UsageError(f"planner solve: error: --columns picks the columns of text output, not of {args.format}")
    if args.max_solutions == 0 and (not args.count or args.format == "yaml"):
        needs = "--count, which counts them" if not args.count else "another --format: yaml writes a plan"
        raise UsageError(f"planner solve: error: --max-solutions 0 prints no plan; it goes with {needs}")
    writable(args.output)
    deadline = Deadline(args.timeout)
    from planner.executor.verify import reporting_to  # NumPy comes with the first solve, not with --help

    with Progress(stderr, enabled=args.format != "json") as progress, reporting_to(progress.verifying):
        with alarm(deadline):
            result = api.solve(
                args.spec,
                max_solutions=None if args.all else args.max_solutions,
                count=args.count or args.all,
                sample=args.sample,
                seed=args.seed,
                deadline=deadline,
                verify=not args.no_verify,
                full_width=args.full_width,
                progress=progress,
            )
    with_count = args.count or args.all
    status = EXIT_BY_STATUS[result.status]
    if result.status is not Status.SOLVED and (args.output is not None or args.format == "yaml"):
        # no plan to write: FILE keeps what it had, and the diagnostics go where errors go
        stderr.write(SOLVE_REPORTER_BY_NAME["text"](result, with_count, False))
        return status
    output = SOLVE_REPORTER_BY_NAME[args.format](result, with_count, args.verbose, table=args.columns)
    if written := _write(output, args.output, stdout, stderr):
        return written
    if args.format == "json" and result.status is not Status.SOLVED:
        stderr.write("".join(f"{d}\n" for d in result.diagnostics))
    return status


def _check(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    files, path_problems = spec_files(args.paths)
    with Progress(stderr, enabled=args.format == "text") as progress:
        results = check(args.paths, timeout=args.timeout, jobs=args.jobs, progress=progress.checked)
    out, err = CHECK_REPORTER_BY_NAME[args.format](results, path_problems)
    stdout.write(out)
    stderr.write(err)
    if not files:
        print("planner: no spec files found", file=stderr)
        return EXIT_SPEC
    if any(d.code == "internal" for r in results for d in r.diagnostics):
        return EXIT_BUG
    if any(r.status in (Status.INVALID, Status.INFEASIBLE) for r in results):
        return EXIT_SPEC
    return EXIT_UNKNOWN if any(r.status is Status.UNKNOWN for r in results) else EXIT_OK


def _sizes(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from planner.report.sizes import render_sizes
    from planner.sizes import accepted_sizes, default_max

    deadline = Deadline(args.timeout)
    with alarm(deadline):
        try:
            network = api.load(args.spec)
        except SpecError as e:
            stderr.write("".join(f"{d}\n" for d in e.diagnostics))
            return EXIT_SPEC
        answer = accepted_sizes(network, args.max or default_max(network), deadline)
    stdout.write(render_sizes(answer, args.format))
    return EXIT_OK if all(g.form.below or g.form.residues for g in answer.groups) else EXIT_SPEC


def _schema(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from planner import schema

    writable(args.output)
    return _write(schema.render(), args.output, stdout, stderr)


def _solved(args: argparse.Namespace, stderr: TextIO) -> tuple[SolveResult, Plan | None, int]:
    """The spec's `--plan` N-th plan (as `solve --max-solutions N` orders them), or the exit status that
    says why there is none."""
    deadline = Deadline(args.timeout)
    with alarm(deadline):
        result = api.solve(args.spec, max_solutions=args.plan, deadline=deadline, verify=False)
    if result.status is not Status.SOLVED:
        stderr.write(SOLVE_REPORTER_BY_NAME["text"](result, False, False))
        return result, None, EXIT_BY_STATUS[result.status]
    if len(result.plans) < args.plan:
        raise UsageError(
            f"planner: --plan {args.plan}: {visible(result.spec)} has only {len(result.plans)} "
            f"plan{'s' if len(result.plans) > 1 else ''}"
        )
    return result, result.plans[args.plan - 1], EXIT_OK


def _draw(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    writable(args.output)
    result, plan, status = _solved(args, stderr)
    if plan is None:
        return status
    assert result.network is not None  # a solved result carries its network
    from planner import draw

    if args.layer is None:
        svg = draw.draw_network(result.network, plan)
    else:
        svg = draw.draw_layer(result.network, plan, args.layer)
    return _write(svg, args.output, stdout, stderr)


def _export(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    writable(args.output)
    result, plan, status = _solved(args, stderr)
    if plan is None:
        return status
    assert result.network is not None  # a solved result carries its network
    from planner import export

    return _write(export.export_pytorch(result.network, plan), args.output, stdout, stderr)


def _run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    deadline = Deadline(args.timeout)
    result, plan, status = _solved(args, stderr)
    if plan is None:
        return status
    with alarm(deadline):
        from planner.executor.run import run_plan

        runs = run_plan(plan, seed=args.seed, deadline=deadline)
    width = max(len(visible(r.name)) for r in runs)
    stdout.write(visible(f"{result.spec}: executed in NumPy, seed {args.seed}, input {list(plan.input_shape)}") + "\n")
    for layer, r in zip(plan.layers, runs, strict=True):
        flag = "" if r.shape == layer.output_shape else f"  MISMATCH: planned {list(layer.output_shape)}"
        row = f"  {visible(r.name).ljust(width)}  {r.op:<16} {str(list(r.shape)):<22} {r.seconds * 1000:9.2f} ms{flag}"
        stdout.write(row + "\n")
    total = sum(r.seconds for r in runs)
    stdout.write(f"  total {total * 1000:.2f} ms\n")
    if any(r.shape != layer.output_shape for layer, r in zip(plan.layers, runs, strict=True)):
        print("planner: internal error: execution disagrees with the plan", file=stderr)
        return EXIT_BUG
    return EXIT_OK


def _import(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from planner.importer import ImportFailed, import_model

    writable(args.output)
    try:
        text = import_model(args.model, args.input_shape, args.free, args.free_layers)
    except ImportFailed as e:  # a model planner cannot read or express
        print(e, file=stderr)
        return EXIT_SPEC
    return _write(text, args.output, stdout, stderr)


# --- --output FILE: a regular file or a new path, replaced whole or not at all -------------------


def _write(output: str, path: str | None, stdout: TextIO, stderr: TextIO) -> int:
    try:
        emit(output, path, stdout)
    except OSError as e:
        print(visible(f"planner: cannot write {path}: {e.strerror or e}"), file=stderr)
        return EXIT_USAGE
    return EXIT_OK
