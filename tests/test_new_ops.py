"""The ops real networks use (broadcasting add and mul, slice, mean, resizing by float factors and
interpolation modes, adaptive max pooling, pixel shuffles, activations, norms, padding modes), each
against PyTorch: the executor's values and shapes against torch.nn.functional, the planner's solved
shapes against what torch computes, and the exported module against torch. Then the rules: the solver
respects them with unknowns, and says what breaks when nothing can."""

from __future__ import annotations

import importlib.util
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
import z3

import planner
from planner import arithmetic as ar
from planner.draw import draw_network
from planner.executor.run import LAYERS
from planner.export import export_pytorch
from planner.export.layers import EXPORTS
from planner.ops import OPS, Call
from planner.spec.models import Concat

torch = pytest.importorskip("torch")
F = torch.nn.functional


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One layer of `op` on a random input of `shape`, and what torch computes for it."""

    name: str
    shape: tuple[int, ...]
    layer: dict[str, Any]
    torch: Callable[[Any], Any]  # x (a tensor) -> torch's output
    tolerance: float = 1e-5

    def __str__(self) -> str:
        return self.name


def _spatial(rng: random.Random, rank: int, lo: int = 1, hi: int = 9) -> tuple[int, ...]:
    return tuple(rng.randint(lo, hi) for _ in range(rank))


def _interpolation_cases(rng: random.Random) -> list[Case]:
    cases = []
    factors = [2, 3, 1.5, 0.5, 2.25, 0.75, 1 / 3, 0.7, 1.1, 2.0, 3.3]
    for mode, rank in [("nearest", 1), ("nearest", 2), ("nearest", 3), ("linear", 1), ("bilinear", 2)] + [
        ("bicubic", 2),
        ("trilinear", 3),
    ]:
        for n in range(4):
            shape = (2, 3, *_spatial(rng, rank, 2, 9 if rank < 3 else 6))
            corners = mode != "nearest" and n % 2 == 1
            if n == 3:  # a size
                size = _spatial(rng, rank, 1, 13)
                layer: dict[str, Any] = {"op": "upsample", "size": list(size), "mode": mode}
                kwargs: dict[str, Any] = {"size": size}
            else:
                f = rng.choice(factors)
                if any(math.floor(i * f) < 1 for i in shape[2:]):
                    f = 2
                layer = {"op": "upsample", "scale_factor": f, "mode": mode}
                kwargs = {"scale_factor": f}
            if mode != "nearest":
                layer["align_corners"] = corners
                kwargs["align_corners"] = corners
            name = f"upsample-{mode}-{list(shape)}-" + "-".join(f"{k}={v}" for k, v in kwargs.items())

            def reference(x, kwargs=kwargs, mode=mode):
                return F.interpolate(x, mode=mode, **kwargs)

            cases.append(Case(name, shape, layer, reference, 1e-4))
    # per-axis factors, and a float factor whose float64 product PyTorch floors below the fraction's value
    cases.append(
        Case(
            "upsample-nearest-per-axis",
            (1, 2, 5, 7),
            {"op": "upsample", "scale_factor": [2, 1.5]},
            lambda x: F.interpolate(x, scale_factor=(2, 1.5)),
        )
    )
    cases.append(
        Case(
            "upsample-nearest-1/49-of-98",
            (1, 1, 98),
            {"op": "upsample", "scale_factor": 1 / 49},
            lambda x: F.interpolate(x, scale_factor=1 / 49),
        )
    )
    return cases


def _slice_cases(rng: random.Random) -> list[Case]:
    cases = []
    for n in range(12):
        rank = rng.randint(1, 3)
        shape = (2, rng.randint(2, 7), *_spatial(rng, rank, 3, 9))
        axis = rng.choice([a for a in range(1, len(shape))] + [-1])
        size = shape[axis]
        start = rng.randint(-size - 2, size - 1)
        end = rng.choice([None, rng.randint(-size, size + 3)])
        step = rng.choice([1, 1, 2, 3])
        if len(range(size)[slice(start, end, step)]) == 0:
            start, end = 0, None
        layer = {"op": "slice", "axis": axis, "start": start, "step": step}
        if end is not None:
            layer["end"] = end
        index = (slice(None),) * (axis % len(shape)) + (slice(start, end, step),)
        cases.append(
            Case(f"slice-{n}-{list(shape)}[{axis}]{start}:{end}:{step}", shape, layer, lambda x, i=index: x[i])
        )
    return cases


def _mean_cases(rng: random.Random) -> list[Case]:
    cases = [
        Case("mean-default", (2, 3, 5, 6), {"op": "mean"}, lambda x: x.mean(dim=(2, 3))),
        Case(
            "mean-spatial-keepdim",
            (2, 3, 5, 6),
            {"op": "mean", "axes": [2, 3], "keepdim": True},
            lambda x: x.mean((2, 3), True),
        ),
        Case("mean-batch-keepdim", (3, 2, 4), {"op": "mean", "axes": [0], "keepdim": True}, lambda x: x.mean(0, True)),
    ]
    for n in range(4):
        rank = rng.randint(1, 3)
        shape = (2, rng.randint(1, 5), *_spatial(rng, rank, 1, 6))
        axes = sorted(rng.sample(range(1, len(shape)), rng.randint(1, len(shape) - 1)))
        axes = [a - len(shape) if rng.random() < 0.3 else a for a in axes]
        keep = rng.random() < 0.5
        cases.append(
            Case(
                f"mean-{n}-{list(shape)}-{axes}-{keep}",
                shape,
                {"op": "mean", "axes": axes, "keepdim": keep},
                lambda x, axes=tuple(axes), keep=keep: x.mean(dim=axes, keepdim=keep),
            )
        )
    return cases


def _pool_and_shuffle_cases(rng: random.Random) -> list[Case]:
    cases = []
    for rank in (1, 2, 3):
        pool = (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d)[rank - 1]
        for n in range(2):
            shape = (2, 3, *_spatial(rng, rank, 1, 9))
            out = _spatial(rng, rank, 1, 6)
            cases.append(
                Case(
                    f"adaptive_maxpool-{rank}d-{n}-{list(shape)}-to-{list(out)}",
                    shape,
                    {"op": "adaptive_maxpool", "output_size": list(out)},
                    lambda x, pool=pool, out=out: pool(x, out),
                )
            )
    for dims in ([0, 1, 3, 2], [0, 1, 4, 2, 3], [0, 1, -1, 2, 3], [0, 1, 2]):
        shape = (2, 3, *_spatial(rng, len(dims) - 2, 1, 6))
        cases.append(
            Case(f"permute-{dims}", shape, {"op": "permute", "dims": dims}, lambda x, d=tuple(dims): x.permute(d))
        )
    for r in (1, 2, 3):
        h, w = _spatial(rng, 2, 1, 5)
        c = r * r * rng.randint(1, 3)
        cases.append(
            Case(
                f"pixel_shuffle-{r}",
                (2, c, h, w),
                {"op": "pixel_shuffle", "upscale_factor": r},
                lambda x, r=r: F.pixel_shuffle(x, r),
            )
        )
        cases.append(
            Case(
                f"pixel_unshuffle-{r}",
                (2, 3, h * r, w * r),
                {"op": "pixel_unshuffle", "downscale_factor": r},
                lambda x, r=r: F.pixel_unshuffle(x, r),
            )
        )
    return cases


def _pointwise_cases(rng: random.Random) -> list[Case]:
    shape = (2, 6, 5, 4)
    cases = [
        Case("gelu", shape, {"op": "gelu"}, F.gelu),
        Case("gelu-tanh", shape, {"op": "gelu", "approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh")),
        Case("hardswish", shape, {"op": "hardswish"}, F.hardswish),
        Case("hardsigmoid", shape, {"op": "hardsigmoid"}, F.hardsigmoid),
        Case("relu6", shape, {"op": "relu6"}, F.relu6),
        Case("leaky_relu", shape, {"op": "leaky_relu"}, F.leaky_relu),
        Case("leaky_relu-0.2", shape, {"op": "leaky_relu", "negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2)),
        Case("elu", shape, {"op": "elu"}, F.elu),
        Case("elu-0.5", shape, {"op": "elu", "alpha": 0.5}, lambda x: F.elu(x, 0.5)),
        Case("softmax", shape, {"op": "softmax"}, lambda x: F.softmax(x, dim=1)),
        Case("softmax-last", shape, {"op": "softmax", "dim": -1}, lambda x: F.softmax(x, dim=-1)),
        Case(
            "layernorm-chw",
            shape,
            {"op": "layernorm", "normalized_shape": [6, 5, 4]},
            lambda x: F.layer_norm(x, (6, 5, 4)),
        ),
        Case("layernorm-w", shape, {"op": "layernorm", "normalized_shape": 4}, lambda x: F.layer_norm(x, (4,))),
        Case(
            "layernorm-last-two",
            (3, 2, 10),
            {"op": "layernorm", "normalized_shape": [2, 10], "eps": 1e-3, "elementwise_affine": False},
            lambda x: F.layer_norm(x, (2, 10), eps=1e-3),
        ),
        Case("groupnorm-3", shape, {"op": "groupnorm", "num_groups": 3}, lambda x: F.group_norm(x, 3)),
        Case("groupnorm-1d", (2, 4, 7), {"op": "groupnorm", "num_groups": 2}, lambda x: F.group_norm(x, 2)),
        Case("instancenorm", shape, {"op": "instancenorm"}, F.instance_norm),
        Case("instancenorm-3d", (1, 2, 3, 2, 4), {"op": "instancenorm", "affine": True}, F.instance_norm),
    ]
    for n in range(3):
        shape = (2, rng.randint(1, 4), *_spatial(rng, rng.randint(1, 3), 1, 6))
        slope = round(rng.uniform(0, 1), 3)
        cases.append(
            Case(
                f"leaky_relu-{n}-{slope}",
                shape,
                {"op": "leaky_relu", "negative_slope": slope},
                lambda x, s=slope: F.leaky_relu(x, s),
            )
        )
    return cases


def _pad_cases(rng: random.Random) -> list[Case]:
    cases = []
    for mode in ("constant", "reflect", "replicate", "circular"):
        for _ in range(3):
            rank = rng.randint(1, 3)
            spatial = _spatial(rng, rank, 2, 7)
            pads = []
            for i in spatial:
                top = i - 1 if mode == "reflect" else (i if mode == "circular" else 4)
                pads.append([rng.randint(0, top), rng.randint(0, top)])
            flat = [v for pair in reversed(pads) for v in pair]
            layer: dict[str, Any] = {"op": "pad", "padding": pads, "mode": mode}
            kwargs: dict[str, Any] = {"mode": mode}
            if mode == "constant":
                layer["value"] = kwargs["value"] = 1.5
            cases.append(
                Case(
                    f"pad-{mode}-{rank}d-{pads}",
                    (2, 3, *spatial),
                    layer,
                    lambda x, flat=flat, kwargs=kwargs: F.pad(x, flat, **kwargs),
                )
            )
    return cases


_RNG = random.Random(20240613)
CASES = [
    *_interpolation_cases(_RNG),
    *_slice_cases(_RNG),
    *_mean_cases(_RNG),
    *_pool_and_shuffle_cases(_RNG),
    *_pointwise_cases(_RNG),
    *_pad_cases(_RNG),
]
assert len({case.name for case in CASES}) == len(CASES), "every case has a name of its own"


# --------------------------------------------------------------------------- helpers


def spec_text(shape: tuple, layers: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"input": {"shape": list(shape)}, "layers": layers}, default_flow_style=None)


_SOLVED: dict[str, tuple[planner.Network, planner.Plan]] = {}


def solved(case: Case) -> tuple[planner.Network, planner.Plan]:
    """The case's one-layer network (`it`), solved and verified, once per session."""
    if case.name not in _SOLVED:
        network = planner.loads(spec_text(case.shape, [{"name": "it", **case.layer}]), "case.yaml")
        result = planner.solve(network)
        assert result.status is planner.Status.SOLVED, [str(d) for d in result.diagnostics]
        assert result.plans[0].verified, result.plans[0].verification
        _SOLVED[case.name] = network, result.plans[0]
    return _SOLVED[case.name]


def data(case: Case) -> np.ndarray:
    rng = np.random.default_rng(abs(hash(case.name)) % 2**32)
    return rng.standard_normal(case.shape).astype(np.float32)


def imported(source: str, directory: Path, name: str) -> Any:
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def close(ours: np.ndarray, want: np.ndarray, tolerance: float) -> None:
    assert ours.shape == want.shape
    np.testing.assert_allclose(ours, want, rtol=tolerance, atol=tolerance)


# --------------------------------------------------------------------------- differential tests


def test_every_op_has_a_kernel_and_an_export() -> None:
    assert set(OPS) <= set(LAYERS) and set(OPS) <= set(EXPORTS)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_planned_shape_is_what_torch_computes(case: Case) -> None:
    _, plan = solved(case)
    want = case.torch(torch.from_numpy(data(case)))
    assert plan.layer("it").output_shape == tuple(want.shape)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_executor_computes_what_torch_computes(case: Case) -> None:
    _, plan = solved(case)
    x = data(case)
    ours = LAYERS[case.layer["op"]](plan.layer("it"), [x], np.random.default_rng(0), np.float32)
    close(ours, case.torch(torch.from_numpy(x)).numpy(), case.tolerance)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_exported_module_computes_what_torch_computes(case: Case, tmp_path: Path) -> None:
    network, plan = solved(case)
    module = imported(export_pytorch(network, plan), tmp_path, "exported")
    x = data(case)
    with torch.no_grad():
        out = module.Net().eval()(torch.from_numpy(x))
    close(out.numpy(), case.torch(torch.from_numpy(x)).numpy(), case.tolerance)


def _broadcast_pairs(rng: random.Random, compatible: bool) -> list[tuple[tuple[int, ...], ...]]:
    pairs = []
    while len(pairs) < 12:
        rank = rng.randint(2, 5)
        full = [rng.randint(1, 5) for _ in range(rank)]
        shapes = []
        for _ in range(rng.choice([2, 2, 3])):
            shape = [1 if rng.random() < 0.4 else d for d in full]
            shapes.append(tuple(shape[rng.randint(0, 1) if rank > 2 else 0 :]))  # sometimes a lower rank
        if not compatible:
            a = rng.randrange(len(shapes))
            d = rng.randrange(len(shapes[a]))
            shapes[a] = (*shapes[a][:d], shapes[a][d] + 1 + (shapes[a][d] == 1), *shapes[a][d + 1 :])
        try:
            torch.broadcast_shapes(*shapes)
            fits = True
        except RuntimeError:
            fits = False
        if fits == compatible:
            pairs.append(tuple(shapes))
    return pairs


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("shapes", _broadcast_pairs(random.Random(1), True), ids=str)
def test_add_and_mul_broadcast_as_torch(op: str, shapes: tuple[tuple[int, ...], ...]) -> None:
    names = [f"x{n}" for n in range(len(shapes))]
    transfer = OPS[op].transfer(Call({}, Concat(op=op, inputs=names), shapes, "pytorch"))
    assert all(rule.holds is True for rule in transfer.rules)
    assert transfer.shape == tuple(torch.broadcast_shapes(*shapes))
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    layer = planner.LayerPlan("it", op, shapes[0], transfer.shape, {}, inputs=tuple(names))
    ours = LAYERS[op](layer, xs, rng, np.float32)
    want = xs[0]
    for x in xs[1:]:
        want = (torch.add if op == "add" else torch.mul)(torch.as_tensor(want), torch.from_numpy(x)).numpy()
    close(ours, want, 1e-6)


@pytest.mark.parametrize("shapes", _broadcast_pairs(random.Random(2), False), ids=str)
def test_shapes_torch_cannot_broadcast_break_a_rule(shapes: tuple[tuple[int, ...], ...]) -> None:
    names = [f"x{n}" for n in range(len(shapes))]
    transfer = OPS["mul"].transfer(Call({}, Concat(op="mul", inputs=names), shapes, "pytorch"))
    broken = [rule.message for rule in transfer.rules if not rule.holds]
    assert broken and all(message.startswith("shapes differ: ") for message in broken)


SE = """\
input: {shape: [2, 16, "?", "?"]}
layers:
  - {name: features, op: conv, out_channels: 32, kernel: 3, stride: "?", padding: 1}
  - {name: squeeze, op: mean, axes: [2, 3], keepdim: true}
  - {name: reduce, op: conv, out_channels: 8, kernel: 1}
  - {name: act, op: relu}
  - {name: expand, op: conv, out_channels: 32, kernel: 1}
  - {name: gate, op: hardsigmoid}
  - {name: scaled, op: mul, inputs: [gate, features]}
  - {name: skip, op: add, inputs: [scaled, features], expect: [2, 32, 10, 7]}
"""


def test_squeeze_and_excitation_gates_a_strided_conv(tmp_path: Path) -> None:
    """[N, C, 1, 1] * [N, C, H, W], the stride unknown: the solver finds the input sizes and stride that give
    10 x 7, and the exported module computes what the same network written in torch computes."""
    network = planner.loads(SE, "se.yaml")
    result = planner.solve(network, max_solutions=None)
    assert result.status is planner.Status.SOLVED and result.plans
    for plan in result.plans:
        assert plan.verified and plan.layer("scaled").output_shape == (2, 32, 10, 7)
        stride = plan.assignment["features.stride"]
        h, w = plan.input_shape[2:]
        assert (math.floor((h + 2 - 3) / stride) + 1, math.floor((w + 2 - 3) / stride) + 1) == (10, 7)
    plan = result.plans[0]
    module = imported(export_pytorch(network, plan), tmp_path, "se_net")
    net = module.Net().eval()
    x = torch.randn(module.INPUT_SHAPE)
    with torch.no_grad():
        features = net.features(x)
        gate = F.hardsigmoid(net.expand(F.relu(net.reduce(features.mean((2, 3), keepdim=True)))))
        assert torch.allclose(net(x), gate * features + features, atol=1e-6)
    svg = draw_network(network, plan)
    assert 'id="layer-scaled"' in svg and 'id="layer-skip"' in svg


# --------------------------------------------------------------------------- the solver and the rules


UNKNOWN_STRIDE = """\
input: {shape: [1, 3, 32, 32]}
layers:
  - {name: c, op: conv, out_channels: 16, kernel: 3, stride: "?", padding: 1}
  - {name: down, op: pixel_unshuffle, downscale_factor: 4}
  - {name: up, op: upsample, scale_factor: 1.5, mode: bilinear}
  - {name: cut, op: slice, axis: -1, start: 1, end: -1}
  - {name: norm, op: groupnorm, num_groups: 8}
  - {name: act, op: gelu}
  - {name: back, op: upsample, like: c, mode: bicubic, align_corners: true}
  - {name: out, op: layernorm, normalized_shape: [256, 16, 16], expect: [1, 256, 16, 16]}
"""


@pytest.mark.parametrize("constraint", ["", "constraints: ['c.stride >= 1']\n"], ids=["reach", "z3"])
def test_an_unknown_stride_before_the_new_ops_solves_and_verifies(tmp_path: Path, constraint: str) -> None:
    """floor(31 / s) + 1 must be a multiple of 4 (32, 16, 8 for s = 1, 2, 4), then 1.5 x and [1:-1]; the
    layernorm's normalized_shape [256, 16, 16] leaves s = 2 alone. With a constraint the solver is Z3's,
    else the reachable-size pass over NumPy arrays: the ops' rules hold over both."""
    network = planner.loads(UNKNOWN_STRIDE + constraint, "stride.yaml")
    result = planner.solve(network, count=True, max_solutions=None)
    assert result.status is planner.Status.SOLVED and result.count == 1
    (plan,) = result.plans
    assert plan.assignment == {"c.stride": 2} and plan.verified
    assert [ly.output_shape for ly in plan.layers[1:5]] == [(1, 256, 4, 4), (1, 256, 6, 6), (1, 256, 6, 4)] + [
        (1, 256, 6, 4)
    ]
    module = imported(export_pytorch(network, plan), tmp_path, "stride_net")
    shapes = {}
    net = module.Net().eval()
    for name, child in net.named_children():
        child.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape)))
    with torch.no_grad():
        net(torch.randn(module.INPUT_SHAPE))
    assert shapes == {ly.name: ly.output_shape for ly in plan.layers}


FOR_ALL = """\
input: {shape: [1, 4, {for_all: {min: 16, max: 64, multiple_of: 16}}, {for_all: {min: 16, max: 64, multiple_of: 16}}]}
layers:
  - {name: enc, op: conv, out_channels: 1, kernel: 3, stride: "?", padding: "?"}
  - {name: down, op: pixel_unshuffle, downscale_factor: 2}
  - {name: up, op: pixel_shuffle, upscale_factor: 2}
  - {name: back, op: upsample, like: input, mode: bilinear}
  - {name: mix, op: mul, inputs: [back, input]}
"""


def test_a_plan_for_every_input_size_keeps_the_unshuffle_divisible() -> None:
    """pixel_unshuffle by 2 needs the conv's output even for every multiple of 16 from 16 to 64."""
    result = planner.solve(planner.loads(FOR_ALL, "for_all.yaml"), max_solutions=None)
    assert result.status is planner.Status.SOLVED and result.plans
    for plan in result.plans:
        assert plan.verified and plan.for_all
        s, p = plan.assignment["enc.stride"], plan.assignment["enc.padding"]
        for i in range(16, 65, 16):
            assert (math.floor((i + 2 * p - 3) / s) + 1) % 2 == 0, (s, p, i)


@pytest.mark.parametrize("constraint", ["", "constraints: ['input.shape[2] >= 1']\n"], ids=["reach", "z3"])
def test_counting_plans_of_a_float_scale_factor_matches_brute_force(constraint: str) -> None:
    """Every input size from 1 to 300 whose 0.7-fold (PyTorch's floor(i * 0.7) in float64) is 21."""
    spec = "input: {shape: [1, 1, {min: 1, max: 300}]}\nlayers:\n"
    spec += "  - {op: upsample, scale_factor: 0.7, expect: [1, 1, 21]}\n"
    result = planner.solve(planner.loads(spec + constraint, "count.yaml"), count=True, max_solutions=None, verify=False)
    want = [i for i in range(1, 301) if math.floor(float(i) * 0.7) == 21]
    assert result.count == len(want) and sorted(p.input_shape[2] for p in result.plans) == want
    for i in want:
        assert F.interpolate(torch.zeros(1, 1, i), scale_factor=0.7).shape[2] == 21


@pytest.mark.parametrize("f", [0.7, 1 / 3, 1 / 49, 0.1, 1.1, 2.5, 3.3, 1 / 7, 5 / 3])
def test_scaled_size_is_pytorchs_floor_over_z3_terms_too(f: float) -> None:
    i = z3.Int("i")
    term = ar.scaled_size(i, f)
    sizes = [1, 2, 3, 7, 49, 98, 343, 1000, 4096, 12345, 10**6 + 7]
    sizes += [m * ar.scale_fraction(f).denominator for m in (1, 2, 3, 10, 1000, 2**20 + 1)]
    for n in sizes:
        value = z3.simplify(z3.substitute(term, (i, z3.IntVal(n)))).as_long()
        assert value == ar.scaled_size(n, f) == math.floor(float(n) * f), n


@pytest.mark.parametrize(
    "mode, allowed, refused",
    [("reflect", [0, 1, 2], [3]), ("circular", [0, 1, 2, 3], []), ("replicate", [0, 1, 2, 3], [])],
)
def test_pad_modes_restrict_the_solved_padding_as_pytorch(mode: str, allowed: list[int], refused: list[int]) -> None:
    spec = f'input: {{shape: [1, 2, 3, 5]}}\nlayers:\n  - {{name: p, op: pad, padding: "?", mode: {mode}}}\n'
    result = planner.solve(planner.loads(spec, "pad.yaml"), max_solutions=None)
    assert sorted(p.assignment["p.padding"] for p in result.plans) == allowed
    assert all(p.verified for p in result.plans)
    for amount in refused:
        with pytest.raises((RuntimeError, ValueError)):
            F.pad(torch.zeros(1, 2, 3, 5), (amount,) * 4, mode=mode)


def _diagnostics(spec: str) -> list[str]:
    result = planner.solve(planner.loads(spec, "rules.yaml"), verify=False)
    assert result.status in (planner.Status.INFEASIBLE, planner.Status.INVALID), result.status
    return [d.message for d in result.diagnostics]


@pytest.mark.parametrize(
    "layer, message",
    [
        ("{op: groupnorm, num_groups: 4}", "groupnorm needs channels divisible by num_groups (4), but its input has 6"),
        ("{op: pixel_shuffle, upscale_factor: 2}", "pixel_shuffle by 2 needs channels divisible by 4"),
        ("{op: pixel_unshuffle, downscale_factor: 2}", "pixel_unshuffle by 2 needs spatial sizes divisible by it"),
        ("{op: slice, axis: 2, start: 5}", "the slice [5::1] of axis 2 (size 5) is empty"),
        ("{op: slice, axis: 0, end: 1}", "slice cuts a channel or spatial axis, not the batch axis"),
        ("{op: mean, axes: [0, 2]}", "mean over the batch axis (0) must keep it: set keepdim: true"),
        ("{op: layernorm, normalized_shape: [5, 5]}", "normalized_shape [5, 5] must be the input's last dims"),
        ("{op: pad, padding: 5, mode: reflect}", "reflect padding must be smaller than the input size"),
        ("{op: pad, padding: 6, mode: circular}", "circular padding can wrap around at most once"),
        ("{op: pad, padding: 1, mode: reflect, value: 2}", "'value' applies to mode constant only"),
        ("{op: upsample, scale_factor: 2, align_corners: true}", "align_corners applies to the interpolating modes"),
        ("{op: upsample, scale_factor: 2, mode: bilinear}", "mode 'bilinear' takes 2 spatial axes in PyTorch"),
        ("{op: upsample, scale_factor: 0.123456789}", "scale_factor 0.123456789 is no fraction p/q"),
        ("{op: upsample, size: 4, like: input}", "exactly one of 'scale_factor' and 'size'"),
        ("{op: softmax, dim: 4}", "'dim' is 4, but the input has 4 dims"),
        ("{op: permute, dims: [1, 0, 2, 3]}", "dims [1, 0, 2, 3] must reorder the 2 spatial axes of the input"),
        ("{op: permute, dims: [0, 1, 2]}", "dims [0, 1, 2] must reorder the 2 spatial axes"),
    ],
)
def test_what_pytorch_refuses_is_diagnosed(layer: str, message: str) -> None:
    shape = "[1, 6, 5, 4]" if "bilinear" not in layer else "[1, 6, 5]"
    messages = _diagnostics(f"input: {{shape: {shape}}}\nlayers:\n  - {layer}\n")
    assert any(message in m for m in messages), messages


def test_instancenorm_needs_more_than_one_cell_and_the_solver_avoids_one() -> None:
    spec = 'input: {shape: [1, 2, "?"]}\nlayers:\n  - {name: n, op: instancenorm}\n'
    sizes = [p.input_shape[2] for p in planner.solve(planner.loads(spec, "n.yaml"), max_solutions=3).plans]
    assert sizes and 1 not in sizes
    with pytest.raises(ValueError):
        F.instance_norm(torch.zeros(1, 2, 1))
    assert any("instancenorm needs more than one spatial cell" in m for m in _diagnostics(spec.replace('"?"', "1")))


def test_a_slice_of_channels_past_the_narrowed_width_verifies_at_full_width() -> None:
    spec = """\
input: {shape: [1, 3, 8, 8]}
layers:
  - {name: wide, op: conv, out_channels: 256, kernel: 3, padding: 1}
  - {name: tail, op: slice, axis: 1, start: 200}
  - {name: norm, op: groupnorm, num_groups: 8}
"""
    plan = planner.solve(planner.loads(spec, "narrow.yaml")).plans[0]
    assert plan.verified and "full width" in plan.verification
    assert plan.layer("tail").output_shape == (1, 56, 8, 8)


def test_groupnorm_keeps_its_groups_when_channels_are_narrowed() -> None:
    spec = """\
input: {shape: [1, 3, 8, 8]}
layers:
  - {name: wide, op: conv, out_channels: 512, kernel: 3, padding: 1}
  - {name: norm, op: groupnorm, num_groups: 32}
  - {name: up, op: pixel_shuffle, upscale_factor: 4}
"""
    plan = planner.solve(planner.loads(spec, "groups.yaml")).plans[0]
    assert plan.verified and "narrowed" in plan.verification


def test_receptive_fields_through_the_new_ops() -> None:
    """A 3x3 conv sees 3; bilinear resizing reads one more cell (of the input's jump 1); a kept mean sees the
    whole axis; pixel_unshuffle by 2 is a 2x2 window on jump 1/2 (after the 2x bilinear)."""
    spec = """\
input: {shape: [1, 4, 8, 8]}
layers:
  - {name: c, op: conv, out_channels: 4, kernel: 3}
  - {name: up, op: upsample, scale_factor: 2, mode: bilinear}
  - {name: un, op: pixel_unshuffle, downscale_factor: 2}
  - {name: m, op: mean, keepdim: true}
"""
    from planner.receptive import plan_fields

    fields = plan_fields(planner.solve(planner.loads(spec, "rf.yaml"), verify=False).plans[0])
    assert fields["c"][0] == (3, 3) and fields["up"][0] == (4, 4)
    assert fields["un"][0] == (4.5, 4.5) and fields["un"][1] == (1, 1)
    assert fields["m"][0] == (9.5, 9.5)


EVERY_OP = """\
input: {shape: [1, 16, {min: 1, max: 40}, {min: 1, max: 40}]}
layers:
  - {name: features, op: conv, out_channels: 32, kernel: 3, stride: "?", padding: 1}
  - {name: squeeze, op: mean, axes: [2, 3], keepdim: true}
  - {name: gate, op: hardsigmoid}
  - {name: scaled, op: mul, inputs: [gate, features]}
  - {name: skip, op: add, inputs: [scaled, features], expect: [1, 32, 10, 7]}
  - {op: upsample, scale_factor: 0.75, mode: bicubic}
  - {op: pad, padding: "?", mode: reflect}
  - {op: slice, axis: 3, start: 1}
  - {op: layernorm, normalized_shape: [9, 6]}
  - {op: instancenorm}
  - {op: permute, dims: [0, 1, 3, 2]}
  - {op: pixel_unshuffle, downscale_factor: 1}
  - {op: adaptive_maxpool, output_size: 2}
  - {op: softmax}
  - {op: mean}
"""


def test_the_reachable_size_pass_and_z3_find_the_same_plans() -> None:
    """The ops' rules over NumPy arrays (the pass) and over Z3 terms (a constraint sends the spec to Z3)."""
    by_pass = planner.solve(planner.loads(EVERY_OP, "every.yaml"), count=True, max_solutions=None, verify=False)
    constrained = EVERY_OP + "constraints: ['input.shape[2] >= 1']\n"
    by_z3 = planner.solve(planner.loads(constrained, "every.yaml"), count=True, max_solutions=None, verify=False)
    plans = [sorted(tuple(sorted(p.assignment.items())) for p in r.plans) for r in (by_pass, by_z3)]
    assert by_pass.count == by_z3.count == len(plans[0]) > 0 and plans[0] == plans[1]
    for plan in by_pass.plans[:5]:
        assert planner.verify(plan, network=planner.loads(EVERY_OP, "every.yaml")).ok
