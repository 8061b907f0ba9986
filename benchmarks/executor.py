"""The NumPy executor beside PyTorch CPU on ResNet-50-style layers, on the same thread count.

    python benchmarks/executor.py [--threads 1] [--repeat 15] [--batch 1] [--quick]
                                  [--cpu-time] [--unset-openblas-coretype]

For each layer: the median time of the NumPy kernel and of torch (called alternately,
after a warm-up), their ratio, and the NumPy call's peak memory (tracemalloc, which
NumPy reports its buffers to: the peak above the level at entry, so the output and every
temporary count, the input and weights do not) against the bytes of input plus output.
Targets: time ratio <= 2, memory ratio <= 3. Without torch only NumPy's times print.

Thread counts must be fixed before NumPy loads its BLAS, so this script runs the
measurement in a child process of itself with OPENBLAS/OMP/MKL_NUM_THREADS set (and
threadpoolctl, when installed, to check and enforce the limit). OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE are reported, never changed, except that --unset-openblas-coretype runs
a second child without them, to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any, TextIO

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
TIME_TARGET, MEMORY_TARGET = 2.0, 3.0


# --------------------------------------------------------------------------- layers


def layers(batch: int) -> list[dict[str, Any]]:
    """The benchmarked layers: name, op, input shape (N, C, H, W) and the op's parameters."""

    def conv(name: str, c_in: int, c_out: int, size: int, k: int, s: int = 1, p: int | None = None) -> dict:
        p = k // 2 if p is None else p
        return dict(name=name, op="conv", shape=(batch, c_in, size, size), c_out=c_out, k=k, s=s, p=p)

    return [
        conv("stem 7x7/2 3->64 @224", 3, 64, 224, 7, 2, 3),
        conv("3x3 64->64 @56", 64, 64, 56, 3),
        conv("3x3 128->128 @28", 128, 128, 28, 3),
        conv("3x3 256->256 @14", 256, 256, 14, 3),
        conv("3x3 512->512 @7", 512, 512, 7, 3),
        conv("3x3/2 128->128 @56", 128, 128, 56, 3, 2),
        conv("1x1 256->64 @56", 256, 64, 56, 1),
        conv("1x1 1024->256 @14", 1024, 256, 14, 1),
        conv("1x1/2 256->512 @56", 256, 512, 56, 1, 2, 0),
        dict(name="convT 4x4/2 64->32 @56", op="conv_transpose", shape=(batch, 64, 56, 56), c_out=32, k=4, s=2, p=1),
        dict(name="maxpool 3x3/2 p1 64 @112", op="max_pool", shape=(batch, 64, 112, 112), k=3, s=2, p=1),
        dict(name="avgpool 3x3/2 p1 64 @112", op="avg_pool", shape=(batch, 64, 112, 112), k=3, s=2, p=1),
        dict(name="avgpool 2x2/2 256 @56", op="avg_pool", shape=(batch, 256, 56, 56), k=2, s=2, p=0),
        dict(name="global avgpool 2048 @7", op="adaptive_avg_pool", shape=(batch, 2048, 7, 7)),
    ]


def calls(layer: dict, np: Any, K: Any, torch: Any | None) -> tuple[Callable, Callable | None, int]:
    """(NumPy call, torch call or None, input bytes) of a layer, on float32 data."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(layer["shape"], dtype=np.float32)
    op, k, s, p = layer["op"], layer.get("k"), layer.get("s"), layer.get("p")
    window = dict(stride=(s, s), padding=((p, p), (p, p)))
    if op == "conv":
        w = rng.standard_normal((layer["c_out"], x.shape[1], k, k), dtype=np.float32) * 0.05
        ours = partial(K.conv, x, w, None, dilation=(1, 1), groups=1, **window)
        ref = "conv2d", (x, w, None), dict(stride=s, padding=p)
    elif op == "conv_transpose":
        w = rng.standard_normal((x.shape[1], layer["c_out"], k, k), dtype=np.float32) * 0.05
        b = rng.standard_normal(layer["c_out"], dtype=np.float32)
        ours = partial(K.conv_transpose, x, w, b, dilation=(1, 1), groups=1, output_padding=(0, 0), **window)
        ref = "conv_transpose2d", (x, w, b), dict(stride=s, padding=p)
    elif op == "max_pool":
        ours = partial(K.max_pool, x, kernel=(k, k), dilation=(1, 1), ceil_mode=False, **window)
        ref = "max_pool2d", (x,), dict(kernel_size=k, stride=s, padding=p)
    elif op == "avg_pool":
        ours = partial(K.avg_pool, x, kernel=(k, k), ceil_mode=False, count_include_pad=True, **window)
        ref = "avg_pool2d", (x,), dict(kernel_size=k, stride=s, padding=p)
    elif op == "adaptive_avg_pool":
        from planner.executor.resize import adaptive_avg_pool

        ours = partial(adaptive_avg_pool, x, output_size=(1, 1))
        ref = "adaptive_avg_pool2d", (x,), dict(output_size=1)
    else:
        raise ValueError(f"unknown op {op!r}")
    if torch is None:
        return ours, None, x.nbytes
    name, arrays, kwargs = ref
    tensors = [None if a is None else torch.from_numpy(a) for a in arrays]
    return ours, partial(getattr(torch.nn.functional, name), *tensors, **kwargs), x.nbytes


# ------------------------------------------------------------------ the measurement


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run every layer in this process (the child) and return the results as data."""
    import numpy as np

    from planner.executor import kernels as K

    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
    if threadpoolctl is not None:  # the environment set the limit already; this checks and enforces it
        limits = threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")  # noqa: F841 (kept alive)
    blas = [
        {key: info.get(key) for key in ("internal_api", "version", "architecture", "num_threads")}
        for info in (threadpoolctl.threadpool_info() if threadpoolctl else [])
        if info.get("user_api") == "blas"
    ]
    repeat = 3 if args.quick else args.repeat
    clock = time.process_time if args.cpu_time else time.perf_counter
    with torch.inference_mode() if torch else contextlib.nullcontext():
        rows = [
            measure_layer(*calls(layer, np, K, torch), layer["name"], repeat, clock) for layer in layers(args.batch)
        ]
    return dict(
        env={var: os.environ.get(var) for var in OPENBLAS_VARS + THREAD_VARS},
        numpy=np.__version__,
        torch=torch.__version__ if torch else None,
        torch_threads=torch.get_num_threads() if torch else None,
        blas=blas,
        repeat=repeat,
        clock="process CPU time" if args.cpu_time else "wall time",
        rows=rows,
    )


def measure_layer(
    ours: Callable, ref: Callable | None, in_bytes: int, name: str, repeat: int, clock: Callable[[], float]
) -> dict[str, Any]:
    """Median times of both calls, called alternately after a warm-up, and the NumPy call's peak memory."""
    import numpy as np

    out = ours()  # warm-up, and the output's size
    error = None
    if ref is not None:
        expected = ref().numpy()
        error = float(np.max(np.abs(out - expected)) / (np.max(np.abs(expected)) or 1.0))
    ours(), ref and ref()
    times: dict[str, list[float]] = {"numpy": [], "torch": []}
    for _ in range(repeat):  # alternate, so that a noisy neighbour hits both alike
        for key, call in (("numpy", ours), ("torch", ref)):
            if call is not None:
                start = clock()
                call()
                times[key].append(clock() - start)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        ours()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return dict(
        name=name,
        numpy_s=statistics.median(times["numpy"]),
        torch_s=statistics.median(times["torch"]) if times["torch"] else None,
        peak_bytes=peak,
        io_bytes=in_bytes + out.nbytes,
        rel_error=error,
    )


def run_child(args: argparse.Namespace, unset_coretype: bool) -> dict[str, Any]:
    """Measure in a fresh interpreter whose BLAS thread count is fixed before NumPy loads."""
    env = dict(os.environ)
    env.update({var: str(args.threads) for var in THREAD_VARS})
    # the checkout's planner, installed or not
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    if unset_coretype:
        for var in OPENBLAS_VARS:
            env.pop(var, None)
    argv = [sys.executable, os.path.abspath(__file__), "--child", f"--threads={args.threads}"]
    argv += [f"--repeat={args.repeat}", f"--batch={args.batch}"]
    argv += [flag for flag, on in (("--quick", args.quick), ("--cpu-time", args.cpu_time)) if on]
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, check=True, text=True)
    return json.loads(done.stdout)


# ------------------------------------------------------------------------ reporting


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def render(result: dict[str, Any], title: str) -> str:
    """The table of one child's results and its one-line summary."""
    env = ", ".join(f"{k}={v}" for k, v in result["env"].items() if k in OPENBLAS_VARS and v is not None)
    blas = "; ".join(
        f"{b['internal_api']} {b['version']} kernel={b['architecture']} threads={b['num_threads']}"
        for b in result["blas"]
    )
    lines = [
        f"== {title}",
        f"numpy {result['numpy']}, torch {result['torch'] or 'not installed'}"
        f" (threads {result['torch_threads']}), float32, median {result['clock']} of {result['repeat']} runs",
        f"BLAS: {blas or 'threadpoolctl not installed; limited by ' + THREAD_VARS[0]}",
        f"OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: {env or 'not set'}",
        "",
        f"{'layer':<28} {'numpy ms':>9} {'torch ms':>9} {'np/torch':>9} {'peak MB':>8} {'in+out MB':>9} "
        f"{'peak/io':>8}  {'max rel err':>11}",
    ]
    slow, heavy = [], []
    for row in result["rows"]:
        ratio = row["numpy_s"] / row["torch_s"] if row["torch_s"] else None
        mem = row["peak_bytes"] / row["io_bytes"]
        if ratio is not None and ratio > TIME_TARGET:
            slow.append(f"{row['name']} ({ratio:.2f}x)")
        if mem > MEMORY_TARGET:
            heavy.append(f"{row['name']} ({mem:.2f}x)")
        err = "-" if row["rel_error"] is None else f"{row['rel_error']:.1e}"
        lines.append(
            f"{row['name']:<28} {_ms(row['numpy_s']):>9} {_ms(row['torch_s']):>9} "
            f"{'-' if ratio is None else f'{ratio:.2f}':>9} {row['peak_bytes'] / 2**20:>8.2f} "
            f"{row['io_bytes'] / 2**20:>9.2f} {mem:>8.2f}  {err:>11}"
        )
    total_np = sum(row["numpy_s"] for row in result["rows"])
    summary = f"summary: numpy {total_np * 1e3:.1f} ms in all"
    if result["torch"]:
        total_t = sum(row["torch_s"] for row in result["rows"])
        summary += f", torch {total_t * 1e3:.1f} ms ({total_np / total_t:.2f}x);"
        summary += f" over {TIME_TARGET:g}x time: {', '.join(slow) or 'none'};"
    else:
        summary += ";"
    summary += f" over {MEMORY_TARGET:g}x memory: {', '.join(heavy) or 'none'}"
    if result["repeat"] < 5:
        summary += f" (only {result['repeat']} runs: a smoke test, not a measurement)"
    lines += ["", summary]
    return "\n".join(lines)


def main(argv: list[str] | None = None, stdout: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (default 1)")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per layer (default 15)")
    parser.add_argument("--batch", type=int, default=1, help="batch size N (default 1)")
    parser.add_argument("--quick", action="store_true", help="3 timed runs per layer: a smoke test")
    parser.add_argument(
        "--cpu-time", action="store_true", help="time with process CPU time, steadier than wall time on a busy machine"
    )
    parser.add_argument(
        "--unset-openblas-coretype",
        action="store_true",
        help="also measure with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (in the child process only)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args)), file=stdout)
        return 0
    given = run_child(args, unset_coretype=False)
    print(render(given, "environment as given"), file=stdout)
    set_vars = [var for var in OPENBLAS_VARS if var in os.environ]
    if args.unset_openblas_coretype and not set_vars:
        print("\n--unset-openblas-coretype: neither variable is set, nothing to compare", file=stdout)
    elif args.unset_openblas_coretype:
        unset = run_child(args, unset_coretype=True)
        print("\n" + render(unset, f"with {' and '.join(set_vars)} unset"), file=stdout)
        a, b = (sum(row["numpy_s"] for row in r["rows"]) for r in (given, unset))
        print(f"\nnumpy in all: {a * 1e3:.1f} ms as given, {b * 1e3:.1f} ms unset ({a / b:.2f}x)", file=stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
