"""Search speed: planner against what people do today, side by side in one run.

Baselines, on the same domains and the same formulas:
  brute   a grid search with itertools.product over every unknown, sizes computed layer by
          layer with the guide's formula (what people write by hand);
  z3      naive Z3: one Int per unknown and per size, the output formula written directly
          (division by an unknown stride), enumeration by blocking clauses.
Chains of 1-D convolutions (kernel, stride, padding unknown) and the U-Net examples.
Prints medians (of --repeat runs) and ratios baseline/planner. A baseline that runs past
--limit seconds is stopped and shown as ">limit" (its ratio is then a lower bound).

    python benchmarks/search.py [--repeat 3] [--limit 20] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import z3

import planner
from planner import arithmetic as ar

ROOT = Path(__file__).resolve().parent.parent
K, S, P = range(1, 4), range(1, 3), range(0, 2)  # small domains, so that the baselines finish


def chain_spec(n: int, size: int, k=(1, 3), s=(1, 2), p=(0, 1), expect: int | None = None) -> str:
    layer = '  - {{name: c{}, op: conv, out_channels: 4, kernel: "?", stride: "?", padding: "?"}}'
    layers = [layer.format(i) for i in range(n)]
    if expect is not None:
        layers[-1] = layers[-1][:-1] + f", expect: [1, 4, {expect}]}}"
    return (
        f"input:\n  shape: [1, 4, {size}]\ndefaults:\n  kernel: {{min: {k[0]}, max: {k[1]}}}\n"
        f"  stride: {{min: {s[0]}, max: {s[1]}}}\n  padding: {{min: {p[0]}, max: {p[1]}}}\nlayers:\n"
        + "\n".join(layers)
        + "\n"
    )


class Limit(Exception):
    pass


def brute(n: int, size: int, first: bool, limit: float, expect: int | None = None) -> int:
    """Count (or find the first) assignment whose every layer is valid, by trying them all."""
    start, found = time.perf_counter(), 0
    per_layer = list(itertools.product(K, S, P))
    for steps, combo in enumerate(itertools.product(per_layer, repeat=n)):
        if steps % 4096 == 0 and time.perf_counter() - start > limit:
            raise Limit
        i = size
        for k, s, p in combo:
            if i + 2 * p < k:
                break
            i = ar.conv_output(i, k, s, p, p, 1)
        else:
            if expect is not None and i != expect:
                continue
            found += 1
            if first:
                return found
    return found


def naive_z3(n: int, size: int, first: bool, limit: float, expect: int | None = None) -> int:
    start = time.perf_counter()
    solver = z3.Solver()
    unknowns = []
    i = z3.IntVal(size)
    for layer in range(n):
        k, s, p, o = (z3.Int(f"{x}{layer}") for x in "kspo")
        unknowns += [k, s, p]
        solver.add(k >= K[0], k <= K[-1], s >= S[0], s <= S[-1], p >= P[0], p <= P[-1])
        solver.add(i + 2 * p >= k, o == (i + 2 * p - k) / s + 1)
        i = o
    if expect is not None:
        solver.add(i == expect)
    found = 0
    while True:
        remaining = limit - (time.perf_counter() - start)
        if remaining <= 0:
            raise Limit
        solver.set("timeout", int(remaining * 1000))
        outcome = solver.check()
        if outcome == z3.unknown:
            raise Limit
        if outcome == z3.unsat:
            return found
        found += 1
        if first:
            return found
        model = solver.model()
        solver.add(z3.Or([u != model[u] for u in unknowns]))


def timed(fn, repeat: int) -> tuple[float | None, object]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            value = fn()
        except Limit:
            return None, None
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def show(seconds: float | None, limit: float) -> str:
    return f">{limit:g}s" if seconds is None else f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def ratio(base: float | None, ours: float, limit: float) -> str:
    return f">{limit / ours:.0f}x" if base is None else f"{base / ours:.1f}x"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=float, default=20.0, help="seconds before a baseline is stopped")
    parser.add_argument("--quick", action="store_true", help="fewer and smaller cases (a smoke run)")
    args = parser.parse_args(argv)
    lengths = [2, 3, 4] if args.quick else [2, 3, 4, 6, 8, 12]
    size = 64
    target = 3
    print(f"chains of 1-D convs on size {size}; kernel 1..3, stride 1..2, padding 0..1 unknown per layer;")
    print(f"'first plan' asks for an output of size {target}, 'count all' counts every valid plan")
    print(f"{'task':<24}{'planner':>10}{'brute':>10}{'ratio':>9}{'naive z3':>10}{'ratio':>9}  result")
    for n in lengths:
        for task, first in (("first plan", True), ("count all", False)):
            expect = target if first else None
            net = planner.loads(chain_spec(n, size, expect=expect), f"chain{n}.yaml")
            ours, result = timed(
                lambda net=net, first=first: planner.solve(net, max_solutions=1, count=not first, verify=False),
                args.repeat,
            )
            answer = result.status.value if first else f"{result.count} plans"
            repeat = 1 if not first else args.repeat
            b, bv = timed(lambda n=n, first=first, expect=expect: brute(n, size, first, args.limit, expect), repeat)
            z, zv = timed(lambda n=n, first=first, expect=expect: naive_z3(n, size, first, args.limit, expect), repeat)
            for name, value in (("brute", bv), ("naive z3", zv)):
                if value is not None and not first and value != result.count:
                    sys.exit(f"{name} counted {value}, planner {result.count} for {n} layers")
            print(
                f"{f'{n} layers, {task}':<24}{show(ours, args.limit):>10}{show(b, args.limit):>10}"
                f"{ratio(b, ours, args.limit):>9}{show(z, args.limit):>10}{ratio(z, ours, args.limit):>9}  {answer}"
            )

    print("\nlong chains, wide domains (kernel 1..7, stride 1..4, padding 0..3), size 4096")
    n = 20
    spec = chain_spec(n, 4096, k=(1, 7), s=(1, 4), p=(0, 3), expect=5000)  # sizes never grow: infeasible
    net = planner.loads(spec, "chain20.yaml")
    proof, r = timed(lambda: planner.solve(net, verify=False, explain=False), args.repeat)
    assert r.status is planner.Status.INFEASIBLE
    told, r2 = timed(lambda: planner.solve(net, verify=False), 1)
    print(
        f"20 layers, prove infeasible: {show(proof, args.limit)} (with the explanation and sizes that work: "
        f"{show(told, args.limit)}: {r2.diagnostics[0].message[:70]}...)"
    )
    net = planner.loads(chain_spec(50, 4096, k=(1, 7), s=(1, 4), p=(0, 3)), "chain50.yaml")
    one, r = timed(lambda: planner.solve(net, verify=False), args.repeat)
    print(f"50 layers, one plan: {show(one, args.limit)} ({r.status.value})")

    print("\nU-Net examples")
    for name in ("unet_original", "unet_same"):
        net = planner.load(ROOT / "specs" / f"{name}.yaml")
        first, _ = timed(lambda net=net: planner.solve(net, verify=False), args.repeat)
        every, r = timed(lambda net=net: planner.solve(net, max_solutions=None, verify=False), args.repeat)
        print(f"{name}: first plan {show(first, args.limit)}, every plan ({r.count}) {show(every, args.limit)}")


if __name__ == "__main__":
    main()
