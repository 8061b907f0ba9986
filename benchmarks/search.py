"""Search speed: planner beside what people use today, side by side in one run.

Every task is answered by each engine in its own child process (forked, so one slow
engine cannot stall the run: it is stopped at --cap seconds and shown as "> cap"), the
engines' runs interleaved (one run of each per round) so that the load of a shared
machine falls on all of them alike:

  planner   planner.solve through the public API, from the spec's text (planner.loads
            included in the time), verify off unless --verify, explain off (the
            infeasible task also times planner with its explanation); the count tasks ask
            for the count alone (max_solutions=0), as the other engines give it;
  dp        a hand-written Python dynamic programme over the sizes between layers;
  cpsat     OR-tools CP-SAT (optional: `pip install -e .[bench]`), AddDivisionEquality;
  z3        naive Z3: the output formula written directly, blocking clauses to count;
  brute     itertools.product over every unknown (only where there are few assignments).

Tasks: chains of 1-D convolutions (kernel, stride and padding unknown in every layer, the
last layer's size given by `expect`), specs/unet_same.yaml and a for_all spec of the tests.
Each engine's answer is checked against the others' (counts equal, each plan valid under
every engine's checker, infeasibility agreed, optima equal); a disagreement exits with 1.
Per task: the median of --repeat runs (fewer when the runs so far used up --cap), the
ratio planner/engine (the median of the rounds' ratios; below 1: planner is faster) and
the target, met or missed.

    python benchmarks/search.py [--repeat 3] [--cap 60] [--verify] [--json FILE]
    python benchmarks/search.py --quick        # one run of small tasks: a smoke test (< 20 s)
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import z3

import planner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines as bl  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WIDE = {"kernel": (1, 7), "stride": (1, 4), "padding": (0, 3)}
NARROW = {"kernel": (1, 3), "stride": (1, 2), "padding": (0, 1)}
BRUTE_MAX = 10**7  # brute force runs only on tasks with at most this many assignments


# --- tasks and their specs ------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    key: str
    kind: str  # count | first | infeasible | min_params | max_rf | for_all
    chain: bl.Chain | None = None
    spec_file: str | None = None  # for_all: the spec, its hand-written model and how to read a plan
    for_all: bl.ForAll | None = None
    read_plan: Callable | None = None
    goal: tuple[str, float] | None = None  # planner's time at most this many times the engine's

    @property
    def title(self) -> str:
        if self.chain is None:
            return f"{self.kind_text}: {self.spec_file}, every plan with --count"
        c = self.chain
        where = f"{c.size} -> {c.target}" + (f", {c.channels} channels" if c.channels > 1 else "")
        domains = f"kernel {c.kernel[0]}..{c.kernel[1]}, stride {c.stride[0]}..{c.stride[1]}, "
        domains += f"padding {c.padding[0]}..{c.padding[1]}"
        return f"{self.kind_text}, {c.layers} layers, {domains}, {where}"

    @property
    def kind_text(self) -> str:
        return {
            "count": "count all plans",
            "first": "first plan",
            "infeasible": "prove infeasible",
            "min_params": "minimise params",
            "max_rf": "maximise receptive field",
            "for_all": "for_all",
        }[self.kind]


def chain_task(key: str, kind: str, layers: int, size: int, target: int, domains: dict, channels: int = 1, goal=None):
    return Task(key, kind, bl.Chain(layers, size, target, channels=channels, **domains), goal=goal)


def for_all_task(key: str, spec_file: str, problem: bl.ForAll, read_plan: Callable) -> Task:
    return Task(key, "for_all", spec_file=spec_file, for_all=problem, read_plan=read_plan)


UNET = bl.ForAll((("k", 1, 7), ("p", 0, 3), ("a", 0, 1)), tuple(range(64, 1025, 32)), bl.unet_same_axis)
FOR_ALL_1D = bl.ForAll((("down.p", 0, 3), ("up.p", 0, 3), ("up.a", 0, 3)), (16, 32, 48, 64), bl.for_all_1d_axis)


def unet_plan(plan: planner.Plan) -> tuple[int, ...]:
    up = plan.layer("up4").params
    return up["kernel"][0], up["padding"][0][0], up["output_padding"][0]


def for_all_1d_plan(plan: planner.Plan) -> tuple[int, ...]:
    down, up = plan.layer("down").params, plan.layer("up").params
    return down["padding"][0][0], up["padding"][0][0], up["output_padding"][0]


FOR_ALL_TASKS = [
    for_all_task("unet-same", "specs/unet_same.yaml", UNET, unet_plan),
    for_all_task("for-all-1d", "tests/specs/valid/for_all_1d.yaml", FOR_ALL_1D, for_all_1d_plan),
]
FULL = [
    chain_task("count-20", "count", 20, 4096, 64, WIDE, goal=("dp", 1)),
    chain_task("count-200", "count", 200, 64, 16, NARROW, goal=("dp", 1)),
    chain_task("first-200", "first", 200, 4096, 64, WIDE, goal=("cpsat", 3)),
    # kernel 1 with padding 3 grows a size by 6: 200 layers reach at most 4096 + 1200 = 5296
    chain_task("infeasible-200", "infeasible", 200, 4096, 5297, WIDE, goal=("cpsat", 3)),
    # 1000 is out of reach with kernels of 1 only: the fewest params need some kernels larger
    chain_task("min-params-50", "min_params", 50, 4096, 1000, WIDE, channels=4, goal=("cpsat", 2)),
    chain_task("max-rf-8", "max_rf", 8, 4096, 64, WIDE, goal=("dp", 1)),
    *FOR_ALL_TASKS,
]
QUICK = [
    chain_task("count-3", "count", 3, 64, 32, NARROW, goal=("dp", 1)),
    chain_task("count-12", "count", 12, 64, 16, NARROW, goal=("dp", 1)),
    chain_task("first-10", "first", 10, 4096, 64, WIDE, goal=("cpsat", 3)),
    chain_task("infeasible-8", "infeasible", 8, 256, 305, WIDE, goal=("cpsat", 3)),  # at most 256 + 48
    chain_task("min-params-6", "min_params", 6, 256, 100, WIDE, channels=4, goal=("cpsat", 2)),
    chain_task("max-rf-3", "max_rf", 3, 64, 16, NARROW, goal=("dp", 1)),
    *FOR_ALL_TASKS,
]


def chain_spec(task: Task, plan: bl.Plan | None = None) -> str:
    """The spec of a chain task; with a plan, every unknown replaced by the plan's value."""
    c = task.chain
    lines = [
        f"name: {task.key}",
        "input:",
        f"  shape: [1, {c.channels}, {c.size}]",
        "defaults:",
        *(f"  {name}: {{min: {lo}, max: {hi}}}" for name, (lo, hi) in (("kernel", c.kernel), ("stride", c.stride))),
        f"  padding: {{min: {c.padding[0]}, max: {c.padding[1]}}}",
        "layers:",
    ]
    for n in range(c.layers):
        k, s, p = plan[n] if plan is not None else ('"?"',) * 3
        expect = f", expect: [1, {c.channels}, {c.target}]" if n == c.layers - 1 else ""
        conv = f"name: c{n}, op: conv, out_channels: {c.channels}, kernel: {k}, stride: {s}, padding: {p}"
        lines.append(f"  - {{{conv}{expect}}}")
    if task.kind == "min_params":
        lines.append("objective: {minimize: params}")
    elif task.kind == "max_rf":
        lines.append("objective: {maximize: receptive_field}")
    return "\n".join(lines) + "\n"


# --- planner through its public API -----------------------------------------------------------


@dataclass(frozen=True)
class Options:
    cap: float
    repeat: int
    verify: bool
    workers: int  # CP-SAT's num_workers (0: its default, every core)


def _solve(task: Task, opts: Options, **kwargs) -> planner.SolveResult:
    spec = ROOT / task.spec_file if task.spec_file else planner.loads(chain_spec(task), f"{task.key}.yaml")
    result = planner.solve(spec, verify=opts.verify, timeout=opts.cap, **kwargs)
    if result.status is planner.Status.UNKNOWN:
        raise bl.GaveUp("cap" if "timeout" in str(result.diagnostics) else str(result.diagnostics[0].message))
    if result.status is planner.Status.INVALID:
        raise RuntimeError("; ".join(d.message for d in result.diagnostics))
    return result


def chain_plan(plan: planner.Plan) -> bl.Plan:
    return tuple((ly.params["kernel"][0], ly.params["stride"][0], ly.params["padding"][0][0]) for ly in plan.layers)


def planner_count(task: Task, opts: Options) -> int:
    """The count alone (max_solutions=0: no plan built), as the DP and CP-SAT give it."""
    return _solve(task, opts, count=True, max_solutions=0, explain=False).count


def planner_first(task: Task, opts: Options, explain: bool = False) -> bl.Plan | None:
    result = _solve(task, opts, explain=explain)
    return chain_plan(result.plans[0]) if result.plans else None


def planner_explained(task: Task, opts: Options) -> bl.Plan | None:
    return planner_first(task, opts, explain=True)


def planner_optimum(task: Task, opts: Options) -> tuple[int, bl.Plan] | None:
    result = _solve(task, opts, explain=False)
    return (result.plans[0].objective, chain_plan(result.plans[0])) if result.plans else None


def planner_for_all(task: Task, opts: Options) -> tuple[tuple[int, ...], ...]:
    result = _solve(task, opts, max_solutions=None, count=True, explain=False)
    plans = tuple(sorted(task.read_plan(p) for p in result.plans))
    if result.count != len(plans):
        raise RuntimeError(f"planner counted {result.count} plans and listed {len(plans)}")
    return plans


def planner_holds(chain: bl.Chain, plan: bl.Plan, task: Task) -> bool:
    """planner as a checker: the spec with the plan's values solves, and the plan executes in NumPy."""
    result = planner.solve(planner.loads(chain_spec(task, plan), "check.yaml"), verify=True, explain=False)
    return result.status is planner.Status.SOLVED and result.plans[0].verified is True


# --- which engine answers which task ------------------------------------------------------------


def _cpsat(fn):
    return lambda task, opts: fn(task.chain or task.for_all, opts.cap, opts.workers)


def _baseline(fn):
    return lambda task, opts: fn(task.chain or task.for_all, opts.cap)


ENGINES = {  # engine -> task kind -> how it answers (a kind left out: the engine does not answer it)
    "planner": {
        "count": planner_count,
        "first": planner_first,
        "infeasible": planner_first,
        "min_params": planner_optimum,
        "max_rf": planner_optimum,
        "for_all": planner_for_all,
    },
    "planner+explain": {"infeasible": planner_explained},
    "dp": {
        "count": _baseline(bl.dp_count),
        "first": _baseline(bl.dp_first),
        "infeasible": _baseline(bl.dp_first),
        "min_params": _baseline(bl.dp_min_params),
        "max_rf": _baseline(bl.dp_max_rf),
    },
    "cpsat": {
        "count": _cpsat(bl.cpsat_count),
        "first": _cpsat(bl.cpsat_first),
        "infeasible": _cpsat(bl.cpsat_first),
        "min_params": _cpsat(bl.cpsat_min_params),
        "max_rf": _cpsat(bl.cpsat_max_rf),
        "for_all": _cpsat(bl.cpsat_for_all),
    },
    "z3": {
        "count": _baseline(bl.z3_count),
        "first": _baseline(bl.z3_first),
        "infeasible": _baseline(bl.z3_first),
        "min_params": _baseline(bl.z3_min_params),
        "max_rf": _baseline(bl.z3_max_rf),
        "for_all": _baseline(bl.z3_for_all),
    },
    "brute": {
        "count": _baseline(bl.brute_count),
        "first": _baseline(bl.brute_first),
        "infeasible": _baseline(bl.brute_first),
        "min_params": _baseline(bl.brute_min_params),
        "max_rf": _baseline(bl.brute_max_rf),
        "for_all": _baseline(bl.brute_for_all),
    },
}
NAMES = {
    "planner": "planner",
    "planner+explain": "planner+explain",
    "dp": "Python DP",
    "cpsat": "CP-SAT",
    "z3": "naive Z3",
    "brute": "brute force",
}


# --- measuring, each engine in a forked child ------------------------------------------------------


@dataclass
class Cell:
    engine: str
    status: str  # ok | capped | gave up | error | skipped | not installed
    times: list[float] = field(default_factory=list)
    answer: object = None
    note: str = ""
    versus: str = ""  # planner's median over this engine's, as shown

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.status == "ok" else None


def _serve(conn, fn: Callable, args: tuple) -> None:
    """An engine's child: one run of fn(*args) each time the parent asks, until it says stop."""
    while conn.recv():
        try:
            start = time.perf_counter()
            value = fn(*args)
            conn.send(("run", time.perf_counter() - start, value))
        except bl.GaveUp as e:
            conn.send(("capped" if str(e).startswith("cap") else "gave up", None, str(e)))
        except BaseException as e:  # noqa: BLE001 - every failure is reported, none stalls the run
            conn.send(("error", None, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}"))


class Worker:
    """An engine in a forked child, kept alive between its runs: a run past the cap is stopped by killing it."""

    def __init__(self, fn: Callable, args: tuple):
        context = multiprocessing.get_context("fork")
        gc.freeze()  # the parent's objects out of the child's collections: no copy-on-write of every page they touch
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, fn, args), daemon=True)
        self.process.start()
        theirs.close()

    def run(self, cap: float) -> tuple[str, float | None, object]:
        """One run: ("run", seconds, answer), or (status, None, note) when it failed or passed the cap."""
        self.conn.send(True)
        if not self.conn.poll(cap + 2):  # 2 s of grace: the engines' own caps end most runs first
            return "capped", None, ""
        try:
            return self.conn.recv()
        except EOFError:
            return "error", None, f"the child died (exit code {self.process.exitcode})"

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(False)
                self.process.join(1)
            except OSError:
                pass
        if self.process.is_alive():
            self.process.kill()
        self.process.join()


def in_child(engine: str, fn: Callable, args: tuple, cap: float) -> Cell:
    """One run of fn(*args) in a forked child, stopped past `cap` seconds."""
    worker = Worker(fn, args)
    try:
        cell = Cell(engine, "ok")
        record(cell, worker.run(cap))
        return cell
    finally:
        worker.stop()


def record(cell: Cell, outcome: tuple[str, float | None, object]) -> bool:
    """Add one run's outcome to the engine's cell; False once the engine is done (failed or capped)."""
    kind, took, value = outcome
    if kind == "run":
        cell.times.append(float(took or 0.0))
        cell.answer = value
        return True
    cell.status = "ok" if kind == "capped" and cell.times else kind
    cell.note = "" if cell.status == "ok" else str(value)
    return False


def unmeasured(task: Task, engine: str) -> Cell | None:
    """The cell of an engine that does not run on this task (skipped, not installed), else None."""
    if ENGINES[engine].get(task.kind) is None:
        return Cell(engine, "skipped", note="-")
    if engine == "cpsat" and bl.cp_model is None:
        return Cell(engine, "not installed", note="not installed")
    if engine == "brute" and task.chain and task.chain.assignments() > BRUTE_MAX:
        return Cell(engine, "skipped", note=f"skipped: {big(task.chain.assignments())} assignments")
    return None


def measure(task: Task, engines: list[str], opts: Options) -> dict[str, Cell]:
    """Every engine's runs on the task, interleaved: round r runs each engine once (in turn, the order
    reversed every other round), so that a busy neighbour or a change of clock speed slows all alike.
    An engine stops after --repeat runs, when one more would pass the cap, or at its first failure."""
    cells, workers = {}, {}
    for engine in engines:
        skipped = unmeasured(task, engine)
        cells[engine] = skipped or Cell(engine, "ok")
        if skipped is None:
            workers[engine] = Worker(ENGINES[engine][task.kind], (task, opts))
    try:
        for round_ in range(opts.repeat):
            turn = list(workers) if round_ % 2 == 0 else list(workers)[::-1]
            for engine in turn:
                cell = cells[engine]
                if cell.times and sum(cell.times) + cell.times[-1] > opts.cap:  # one more run would pass the cap
                    workers.pop(engine).stop()
                elif not record(cell, workers[engine].run(opts.cap)):
                    workers.pop(engine).stop()
    finally:
        for worker in workers.values():
            worker.stop()
    return cells


# --- checking the answers against each other ------------------------------------------------------


def checkers(task: Task) -> dict[str, Callable]:
    found = {"python": bl.holds, "z3": bl.z3_holds, "planner": lambda c, p: planner_holds(c, p, task)}
    if bl.cp_model is not None:
        found["cpsat"] = bl.cpsat_holds
    return found


def _check_plans(task: Task, plans: dict[str, bl.Plan]) -> list[str]:
    """Every plan under every checker; the problems found."""
    problems = []
    for engine, plan in plans.items():
        for name, holds in checkers(task).items():
            if not holds(task.chain, plan):
                problems.append(f"{NAMES[engine]}'s plan fails the {name} checker")
    return problems


def check(task: Task, cells: list[Cell], cap: float) -> tuple[bool, str]:
    """Whether the engines that answered agree, and how that was checked."""
    answered = {c.engine: c.answer for c in cells if c.status == "ok"}
    names = ", ".join(NAMES[e] for e in answered)
    if len(answered) < 1:
        return True, "nothing to check: no engine answered"
    if task.kind in ("count", "for_all"):
        what = "counts" if task.kind == "count" else "plans"
        if len(set(map(str, answered.values()))) > 1:
            shown = "; ".join(f"{NAMES[e]} {summary(task, a)}" for e, a in answered.items())
            return False, f"{what} differ: {shown}"
        return True, f"{what} equal ({names})"
    if task.kind in ("first", "infeasible"):
        found = {e: a for e, a in answered.items() if a is not None}
        if found and len(found) < len(answered):
            none = ", ".join(NAMES[e] for e in answered if e not in found)
            return False, f"{none} found no plan; {', '.join(NAMES[e] for e in found)} found one"
        plans = found
    else:
        found = {e: a for e, a in answered.items() if a is not None}
        if found and len(found) < len(answered):
            return False, "some engines found no plan"
        values = {e: a[0] for e, a in found.items()}
        recomputed = {
            e: bl.params(task.chain, a[1]) if task.kind == "min_params" else bl.receptive_field(a[1])
            for e, a in found.items()
        }
        if len(set(values.values())) > 1 or values != recomputed:
            shown = "; ".join(f"{NAMES[e]} {values[e]} (its plan: {recomputed[e]})" for e in found)
            return False, f"optima differ: {shown}"
        plans = {e: a[1] for e, a in found.items()}
    if not plans:
        return True, f"infeasible agreed ({names})"
    cell = in_child("check", _check_plans, (task, plans), cap)
    if cell.status != "ok":
        return False, f"checking the plans: {cell.status} {cell.note}"
    if cell.answer:
        return False, "; ".join(cell.answer)
    agreed = "optima equal, " if task.kind in ("min_params", "max_rf") else ""
    return True, f"{agreed}each plan ({names}) valid under the {', '.join(checkers(task))} checkers"


# --- the table ---------------------------------------------------------------------------------------


def seconds(t: float) -> str:
    if t < 0.01:
        return f"{t * 1000:.2g} ms"
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s" if t < 10 else f"{t:.1f} s"


def times(r: float) -> str:
    return f"{r:.0f}x" if r >= 10 else f"{r:.1f}x" if r >= 1 else f"{r:.2g}x"


def big(n: int) -> str:
    """An int in a few digits: 163, 1.712e33 (exact ints can outgrow floats)."""
    digits = str(n)
    return digits if n < 10**6 else f"{digits[0]}.{digits[1:4]}e{len(digits) - 1}"


def summary(task: Task, answer) -> str:
    if task.kind == "count":
        return f"{big(answer)} plans"
    if task.kind == "for_all":
        return f"{len(answer)} plans"
    if task.kind in ("first", "infeasible"):
        return "infeasible" if answer is None else "a plan"
    if answer is None:
        return "infeasible"
    return f"{'params' if task.kind == 'min_params' else 'rf'} {answer[0]}"


def shown_time(cell: Cell, cap: float) -> str:
    if cell.status == "ok":
        return seconds(cell.median)
    if cell.status == "capped":
        return f"> {cap:g} s"
    return cell.status


def speed_ratio(ours: Cell, base: Cell) -> float:
    """planner's time over the engine's: the median of the rounds' ratios (the runs of one round were
    side by side, under the same load), over the rounds both ran."""
    return statistics.median(a / b for a, b in zip(ours.times, base.times, strict=False))


def ratio(ours: Cell, base: Cell, cap: float) -> str:
    """planner's time over the engine's: below 1, planner is faster."""
    if ours.status == "ok" and base.status == "ok":
        return times(speed_ratio(ours, base))
    if ours.status == "ok" and base.status == "capped":
        return f"< {times(ours.median / cap)}"
    if ours.status == "capped" and base.status == "ok":
        return f"> {times(cap / base.median)}"
    return ""


def goal_line(task: Task, cells: dict[str, Cell], cap: float) -> tuple[bool | None, str]:
    if task.goal is None:
        return None, ""
    engine, most = task.goal
    ours, base = cells["planner"], cells[engine]
    wanted = f"planner at most {most:g}x {NAMES[engine]}"
    if ours.status == "ok" and base.status == "ok":
        got = speed_ratio(ours, base)
        return got <= most, f"{wanted}: {times(got)}, {'met' if got <= most else 'MISSED'}"
    if ours.status == "ok" and base.status == "capped":
        return True, f"{wanted}: {NAMES[engine]} past the cap, met"
    if ours.status == "capped":
        return False, f"{wanted}: planner past the cap, MISSED"
    return None, f"{wanted}: {NAMES[engine]} {base.status}, not measured"


def run_task(task: Task, opts: Options) -> dict:
    print(f"\n{task.key}: {task.title}")
    print(f"  {'engine':<20}{'median':>10}{'runs':>6}{'planner/it':>12}  answer")
    shown = [e for e in ENGINES if e != "planner+explain" or task.kind in ENGINES[e]]  # its own row where it differs
    cells = measure(task, shown, opts)
    for engine, cell in cells.items():
        answer = summary(task, cell.answer) if cell.status == "ok" else cell.note.splitlines()[0] if cell.note else ""
        if cell.status == "capped":
            answer = cell.note.removeprefix("cap").lstrip(": ") or "stopped at the cap"
        if cell.status == "ok" and cell.median >= opts.cap:
            answer += " (at the cap: its own timeout ended it)"
        cell.versus = ratio(cells["planner"], cell, opts.cap) if not engine.startswith("planner") else ""
        print(f"  {NAMES[engine]:<20}{shown_time(cell, opts.cap):>10}{len(cell.times):>6}{cell.versus:>12}  {answer}")
    agree, how = check(task, list(cells.values()), opts.cap)
    print(f"  check: {how}" if agree else f"  check FAILED: {how}")
    met, line = goal_line(task, cells, opts.cap)
    if line:
        print(f"  target: {line}")
    return {
        "task": task.key,
        "title": task.title,
        "kind": task.kind,
        "agree": agree,
        "check": how,
        "target": line,
        "target_met": met,
        "engines": {
            e: {
                "status": c.status,
                "times_s": c.times,
                "median_s": c.median,
                "planner_over_engine": c.versus,
                "answer": summary(task, c.answer) if c.status == "ok" else None,
                "exact": str(c.answer) if c.status == "ok" and task.kind == "count" else None,
                "note": c.note,
            }
            for e, c in cells.items()
        },
    }


def print_summary(results: list[dict], cap: float) -> None:
    """One line per task: each engine's median, and the ratio planner/engine in brackets."""
    engines = [e for e in ENGINES if e != "planner+explain"]
    print("\nsummary: median (planner/engine)")
    print(f"{'task':<16}" + "".join(f"{NAMES[e]:>20}" for e in engines) + "  target")
    for r in results:
        line = f"{r['task']:<16}"
        for e in engines:
            c = r["engines"][e]
            text = {"ok": "", "capped": f"> {cap:g} s", "skipped": "-"}.get(c["status"], c["status"])
            if c["status"] == "ok":
                text = seconds(c["median_s"]) + (f" ({c['planner_over_engine']})" if c["planner_over_engine"] else "")
            line += f"{text:>20}"
        verdict = {True: "met", False: "MISSED", None: "-"}[r["target_met"]] if r["target"] else ""
        print(line + f"  {verdict}" + ("" if r["agree"] else "  ANSWERS DISAGREE"))


def header(opts: Options, quick: bool) -> str:
    cpsat = "not installed" if bl.cp_model is None else _version("ortools")
    workers = "its default (every core)" if opts.workers == 0 else str(opts.workers)
    return (
        f"{'quick smoke run' if quick else 'search benchmark'}: median of up to {opts.repeat} run(s), "
        f"cap {opts.cap:g} s per engine per task, planner verify {'on' if opts.verify else 'off'}\n"
        f"{os.cpu_count()} cores, Python {platform.python_version()}, z3 {z3.get_version_string()}, "
        f"ortools {cpsat} (CP-SAT workers: {workers}; 1 when enumerating), planner {_version('planner')}"
    )


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def warm_up() -> None:
    """Import, before the children fork, what each engine loads on first use (planner names its modules
    lazily, so that `planner --help` stays light): a run measures the search, not the imports."""
    import numpy  # noqa: F401

    import planner.api  # noqa: F401
    import planner.solver.reach  # noqa: F401
    import planner.solver.solve  # noqa: F401

    planner.solve(planner.loads(WARM_SPEC, "warm.yaml"), verify=False)


WARM_SPEC = 'input: {shape: [1, 1, 8]}\nlayers:\n  - {op: conv, out_channels: 1, kernel: "?"}\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine per task; the median is shown")
    parser.add_argument("--cap", type=float, default=60.0, help="seconds before an engine is stopped")
    parser.add_argument("--quick", action="store_true", help="one run of small tasks with a 2 s cap")
    parser.add_argument("--verify", action="store_true", help="planner executes each plan in NumPy (off by default)")
    parser.add_argument("--cpsat-workers", type=int, default=0, help="CP-SAT num_workers (0: its default)")
    parser.add_argument("--only", nargs="*", metavar="TASK", help="run only these tasks (by key)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the measurements to FILE")
    args = parser.parse_args(argv)
    opts = Options(args.cap, args.repeat, args.verify, args.cpsat_workers)
    if args.quick:
        opts = replace(opts, repeat=1, cap=min(args.cap, 2.0))
    tasks = [t for t in (QUICK if args.quick else FULL) if not args.only or t.key in args.only]
    warm_up()
    start = time.perf_counter()
    print(header(opts, args.quick))
    results = [run_task(task, opts) for task in tasks]
    print_summary(results, opts.cap)
    met, targets = sum(r["target_met"] is True for r in results), sum(bool(r["target"]) for r in results)
    agreed = sum(r["agree"] for r in results)
    print(f"targets met: {met} of {targets}; answers agree on {agreed} of {len(results)} tasks")
    print(f"{seconds(time.perf_counter() - start)} in all")
    if args.json:
        data = {"header": header(opts, args.quick), "options": vars(opts), "tasks": results}
        args.json.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return 0 if all(r["agree"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
