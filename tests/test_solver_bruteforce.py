"""The solver against brute force on small random domains, and PyTorch as the oracle of every assignment.

Hypothesis writes small chain specs as YAML text (1-3 layers of conv, conv_transpose,
maxpool, avgpool, pad, upsample on 1 or 2 spatial axes) with a few unknowns in tiny
domains, in every value form of SPEC 1.1/1.2. Three oracles:

1. graph: the unknowns the network reports and their domains, re-derived from the spec text;
2. brute force: every assignment of `network.unknowns` through `compute_plan`; the solver
   must enumerate and count exactly that set (and every plan it returns must execute);
3. PyTorch: every assignment is also built with `torch.nn.functional` on real tensors;
   planner accepts exactly when torch runs, with torch's shapes, except where planner is
   stricter on purpose (`Reference.lenient` lists those places and why).
"""

from __future__ import annotations

import collections
import warnings
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

import planner
from planner.errors import ExecutionError, InfeasibleError, SpecError
from planner.solver.solve import Status
from tests.random_specs import (
    MAX_ASSIGNMENTS,
    MAX_ASSIGNMENTS_TORCH,
    MAX_ASSIGNMENTS_WIDE,
    axis_terms,
    bounded_only,
    brute_force,
    expected_unknowns,
    frozen,
    layer_name,
    load,
    padding_terms,
    specs,
)

PROFILE = settings(max_examples=80)  # the rest from the conftest profile

# --- oracle 1: the solver enumerates exactly the brute-force plans --------------------------------------


def quiet_verify(plan: planner.Plan) -> planner.Verification:
    """planner.verify without NumPy's RuntimeWarnings: a max-pool window wholly in the padding gives -inf (as
    torch does, e.g. dilation 3 over 2 inputs), and -inf can make NaN downstream: values, not shapes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        check = planner.verify(plan)
    if caught:
        event("verify warned: " + str(caught[0].message))
    return check


def pool_padding_reaches_kernel(plan: planner.Plan) -> bool:
    return any(
        max(pair) >= k
        for layer in plan.layers
        if layer.op in ("maxpool", "avgpool")
        for pair, k in zip(layer.params["padding"], layer.params["kernel"], strict=True)
    )


@PROFILE
@given(
    spec=specs(dialects=("pytorch", "pytorch", "onnx", "tensorflow"), max_assignments=MAX_ASSIGNMENTS), data=st.data()
)
def test_solver_enumerates_exactly_the_brute_force_plans(spec: dict, data: st.DataObject) -> None:
    check_against_brute_force(spec, data, MAX_ASSIGNMENTS)


@settings(PROFILE, max_examples=8)
@given(spec=specs(wide=True, max_assignments=MAX_ASSIGNMENTS_WIDE), data=st.data())
def test_non_linear_stride_and_dilation_enumerate_the_brute_force_plans(spec: dict, data: st.DataObject) -> None:
    check_against_brute_force(spec, data, MAX_ASSIGNMENTS_WIDE)


def check_against_brute_force(spec: dict, data: st.DataObject, max_assignments: int) -> None:
    network, spec = load(spec, data, max_assignments)
    domains = {u.name: u.domain.members() for u in network.unknowns}
    expected = expected_unknowns(spec)
    assert domains.keys() == expected.keys()
    for name in domains.keys() - bounded_only(spec):
        assert domains[name] == expected[name], name

    outcomes = brute_force(network)
    invalid = [o for o in outcomes if o.error is not None and not isinstance(o.error, InfeasibleError)]
    assert not invalid, f"a structural error depends on the assignment: {invalid[0].error}"
    plans = {frozen(o.assignment): o.plan for o in outcomes if o.plan is not None}
    event("feasible" if plans else "infeasible")

    result = planner.solve(network, max_solutions=None, count=True, verify=False)
    if not plans:
        assert result.status == Status.INFEASIBLE, result.status
        assert not result.plans and result.count == 0
        assert result.diagnostics
    else:
        assert result.status == Status.SOLVED, (result.status, [str(d) for d in result.diagnostics])
        assert result.count == len(plans)
        found = [frozen(p.assignment) for p in result.plans]
        assert len(set(found)) == len(found), "the solver returned a plan twice"
        assert set(found) == set(plans), (
            f"missing {sorted(map(sorted, set(plans) - set(found)))[:3]}, "
            f"extra {sorted(map(sorted, set(found) - set(plans)))[:3]}"
        )
    for plan in result.plans:
        assert plan.layers == plans[frozen(plan.assignment)].layers
        try:
            check = quiet_verify(plan)
        except ExecutionError:
            if spec["dialect"] != "pytorch" and pool_padding_reaches_kernel(plan):
                event("known bug: pool padding >= kernel (see test_pool_padding_beyond_the_kernel...)")
                continue
            raise
        assert check.ok, check.mismatches

    some = planner.solve(network, max_solutions=2, verify=False)
    for plan in some.plans:
        assert plan.layers == plans[frozen(plan.assignment)].layers
    assert some.status == result.status
    assert len(some.plans) == min(2, len(plans))
    assert len({frozen(p.assignment) for p in some.plans}) == len(some.plans)
    assert {frozen(p.assignment) for p in some.plans} <= set(plans)


# --- oracle 2: PyTorch on every assignment --------------------------------------------------------------


class Refused(Exception):
    """The reference refuses the assignment: torch raised, or an output size or `expect` is wrong."""


class Inexpressible(Exception):
    """PyTorch has no op with planner's meaning here; the assignment is not compared."""


@dataclass
class Reference:
    shapes: list[tuple[int, ...]] | None
    error: str | None
    paddings: dict[str, tuple]  # layer -> per-axis (begin, end), modes resolved by SPEC 1.1's definitions
    # (layer, rule code) where planner may refuse what torch runs, each a documented choice:
    #   padding       conv_transpose padding outside 0..d(k-1) per side (planner's rule (a));
    #   padding-same  padding same/same_lower with stride > 1 in the pytorch dialect (rule (c));
    #   kernel-size   a ceil-mode pool whose window is larger than the padded input: torch gives
    #                 one window, SPEC 1.3 says "kernel never larger than the padded input";
    #   pool-padding  asymmetric explicit pool padding: torch has none, planner holds each side
    #                 to PyTorch's "at most half the kernel".
    lenient: set[tuple[str, str]] = field(default_factory=set)


def resolve_mode(mode: str, op: str, i: int, k: int, s: int, d: int, a: int) -> tuple[int, int]:
    """SPEC 1.1's padding modes, written from the spec's text."""
    k_eff = d * (k - 1) + 1
    if mode == "valid":
        return 0, 0
    if mode == "full":
        return k_eff - 1, k_eff - 1
    if op == "conv_transpose":  # output = input * stride
        total = k_eff - s + a
    else:  # output = ceil(input / stride)
        total = max((-(-i // s) - 1) * s + k_eff - i, 0)
    small, large = total // 2, total - total // 2
    return (small, large) if mode == "same" else (large, small)


def flat_pad(pairs) -> list[int]:
    """Per-axis (begin, end) pairs as F.pad's flat list, last axis first."""
    return [v for pair in reversed(pairs) for v in pair]


def sliding_params(layer: dict, name: str, spatial: list[int], value) -> tuple:
    """kernel, stride, dilation, output_padding per axis, the padding mode (or None) and per-axis (begin, end)."""
    rank, op = len(spatial), layer["op"]

    def axis(key: str, default: Any) -> list[int]:
        return [value(f, u) for f, u in axis_terms(layer.get(key, default), key, name, rank)]

    k = axis("kernel", 1)
    s = axis("stride", 1) if op.startswith("conv") or "stride" in layer else k
    d = axis("dilation", 1) if op != "avgpool" else [1] * rank
    a = axis("output_padding", 0)
    terms = padding_terms(layer.get("padding", 0), name, rank)
    if isinstance(terms, str):
        return k, s, d, a, terms, [resolve_mode(terms, op, *args) for args in zip(spatial, k, s, d, a, strict=True)]
    return k, s, d, a, None, [tuple(value(f, u) for f, u in pair) for pair in terms]


def torch_reference(torch, spec: dict, values: dict[str, int]) -> Reference:
    """Build and run the spec's layers in torch.nn.functional under one assignment."""
    F = torch.nn.functional
    rank = len(spec["input"]["shape"]) - 2
    declared = spec.get("variables", {})
    pytorch = spec["dialect"] == "pytorch"

    def value(form: Any, name: str) -> int:
        if isinstance(form, int):
            return form
        if isinstance(form, str) and form.startswith("$"):
            return declared[form[1:]] if isinstance(declared.get(form[1:]), int) else values[form]
        return values[name]

    ref = Reference(None, None, {})
    shapes: list[tuple[int, ...]] = []
    sizes = [value(v, f"input.shape[{a}]") for a, v in enumerate(spec["input"]["shape"][2:], start=2)]
    x = torch.zeros(1, spec["input"]["shape"][1], *sizes)
    try:
        for index, layer in enumerate(spec["layers"]):
            name, op = layer_name(layer, index), layer["op"]
            spatial = list(x.shape[2:])

            if op in ("conv", "conv_transpose", "maxpool", "avgpool"):
                k, s, d, a, mode, pairs = sliding_params(layer, name, spatial, value)
                ref.paddings[name] = tuple(pairs)
                if pytorch and mode in ("same", "same_lower") and any(v > 1 for v in s):
                    ref.lenient.add((name, "padding-same"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if op == "conv":
                    w = torch.zeros(layer["out_channels"], x.shape[1], *k)
                    conv = getattr(F, f"conv{rank}d")
                    if all(pb == pe for pb, pe in pairs):
                        y = conv(x, w, stride=s, padding=[pb for pb, _ in pairs], dilation=d)
                    else:
                        y = conv(F.pad(x, flat_pad(pairs)), w, stride=s, dilation=d)
                    if mode == "same" and all(v == 1 for v in s):  # torch's own 'same' agrees with SPEC's
                        assert conv(x, w, padding="same", dilation=d).shape == y.shape
                elif op == "conv_transpose":
                    w = torch.zeros(x.shape[1], layer["out_channels"], *k)
                    conv = getattr(F, f"conv_transpose{rank}d")
                    for (pb, pe), kx, dx in zip(pairs, k, d, strict=True):
                        if not (0 <= pb <= dx * (kx - 1) and 0 <= pe <= dx * (kx - 1)):
                            ref.lenient.add((name, "padding"))
                        if pb < 0 or pe < 0:
                            raise Inexpressible("negative transposed padding")
                    if all(pb == pe for pb, pe in pairs):
                        y = conv(x, w, stride=s, padding=[pb for pb, _ in pairs], output_padding=a, dilation=d)
                    else:  # torch pads both sides alike: pad nothing, then crop each side
                        y = conv(x, w, stride=s, output_padding=a, dilation=d)
                        if any(n - pb - pe < 1 for n, (pb, pe) in zip(y.shape[2:], pairs, strict=True)):
                            raise Refused(f"cropped output {list(y.shape[2:])} by {pairs}")
                        y = y[(..., *(slice(pb, n - pe) for n, (pb, pe) in zip(y.shape[2:], pairs, strict=True)))]
                elif op in ("maxpool", "avgpool"):
                    ceil = layer["ceil_mode"]
                    if op == "maxpool":
                        pool = getattr(F, f"max_pool{rank}d")
                        extra = {"dilation": d}
                    else:
                        pool = getattr(F, f"avg_pool{rank}d")
                        extra = {"count_include_pad": layer.get("count_include_pad", True)}
                    for i, (pb, pe), kx, dx in zip(spatial, pairs, k, d, strict=True):
                        if ceil and i + pb + pe < dx * (kx - 1) + 1:
                            ref.lenient.add((name, "kernel-size"))
                        if mode is None and pb != pe and 2 * max(pb, pe) > kx:
                            ref.lenient.add((name, "pool-padding"))
                    if mode in (None, "valid") and all(pb == pe for pb, pe in pairs):
                        y = pool(x, k, s, padding=[pb for pb, _ in pairs], ceil_mode=ceil, **extra)
                    elif not ceil:  # padding is only room for windows: pad first
                        y = pool(F.pad(x, flat_pad(pairs)), k, s, ceil_mode=ceil, **extra)
                    elif all(pb >= pe and 2 * pe <= kx for (pb, pe), kx in zip(pairs, k, strict=True)):
                        # in ceil mode, a window may not start in the end padding: pad only the
                        # begin's excess, let torch pad the end (and as much of the begin)
                        base = [(pb - pe, 0) for pb, pe in pairs]
                        y = pool(
                            F.pad(x, flat_pad(base)), k, s, padding=[pe for _, pe in pairs], ceil_mode=ceil, **extra
                        )
                    else:
                        raise Inexpressible("ceil-mode pooling with more padding at the end than torch allows")
                elif op == "pad":
                    terms = padding_terms(layer["padding"], name, rank)
                    pairs = [tuple(value(f, u) for f, u in pair) for pair in terms]
                    ref.paddings[name] = tuple(pairs)
                    y = F.pad(x, flat_pad(pairs))
                elif op == "upsample":
                    if "size" in layer:
                        size = layer["size"] if isinstance(layer["size"], list) else [layer["size"]] * rank
                        y = F.interpolate(x, size=size, mode="nearest")
                    else:
                        y = F.interpolate(x, scale_factor=float(layer["scale_factor"]), mode="nearest")
            if any(n < 1 for n in y.shape[2:]):
                raise Refused(f"{name}: output {tuple(y.shape)}")
            x = y
            shapes.append(tuple(y.shape))
            want = layer.get("expect")
            if want is not None and any(w != "?" and w != n for w, n in zip(want, y.shape, strict=True)):
                raise Refused(f"{name}: expect {want}, torch gives {tuple(y.shape)}")
    except (RuntimeError, ValueError, Refused) as e:
        ref.error = f"{type(e).__name__}: {e}".splitlines()[0]
        return ref
    ref.shapes = shapes
    return ref


@pytest.fixture(scope="module")
def torch():
    """The torch module; the PyTorch oracle skips cleanly when torch is not installed."""
    return pytest.importorskip("torch")


@PROFILE
@given(spec=specs(), data=st.data())
def test_every_assignment_agrees_with_pytorch(torch, spec: dict, data: st.DataObject) -> None:
    network, spec = load(spec, data, MAX_ASSIGNMENTS_TORCH)
    stats: collections.Counter = collections.Counter()
    for outcome in brute_force(network):
        where = f"with {outcome.assignment}"
        try:
            ref = torch_reference(torch, spec, outcome.assignment)
        except Inexpressible:
            stats["not expressible in torch"] += 1
            continue
        if outcome.plan is not None:
            assert ref.shapes is not None, f"{where}: planner accepts, torch refuses: {ref.error}"
            assert ref.shapes == [layer.output_shape for layer in outcome.plan.layers], where
            planned = {
                layer.name: layer.params["padding"] for layer in outcome.plan.layers if "padding" in layer.params
            }
            assert planned == ref.paddings, where
            stats["both accept"] += 1
        elif ref.shapes is None:
            stats["both refuse"] += 1
        else:
            broken = {(d.layer, d.code) for d in outcome.error.diagnostics}
            assert broken <= ref.lenient, f"{where}: planner refuses ({outcome.error}) but torch runs to {ref.shapes}"
            stats.update(f"planner stricter: {code}" for _, code in broken)
    for key, n in stats.items():
        event(key)
        note(f"{key}: {n}")


# --- where planner and PyTorch differ on purpose, beyond the brief's three, with a minimal spec ------------


def test_ceil_mode_window_larger_than_the_padded_input_torch_runs_planner_refuses(torch) -> None:
    """SPEC 1.3: "kernel never larger than the padded input". PyTorch's ceil mode lets the one window hang
    past the end (max_pool1d of 1 input, kernel 3, stride 3 gives 1 output); planner refuses it."""
    assert torch.nn.functional.max_pool1d(torch.zeros(1, 1, 1), 3, 3, ceil_mode=True).shape == (1, 1, 1)
    result = planner.solve(
        planner.loads(
            """
input: {shape: [1, 1, 1]}
layers:
  - {op: maxpool, kernel: 3, ceil_mode: true}
""",
            "ceil_window.yaml",
        )
    )
    assert result.status == Status.INFEASIBLE
    assert "kernel" in result.diagnostics[0].message


# --- bugs found by the oracles above, each with a minimal spec ----------------------------------------------


def test_variable_of_two_kinds_takes_only_shared_default_values() -> None:
    network = planner.loads(
        """
input: {shape: [1, 1, 4]}
defaults: {stride: {one_of: [1, 3]}, padding: {min: 0, max: 2}}
layers:
  - {op: conv, out_channels: 1, kernel: 1, stride: $b}
  - {op: pad, padding: $b}
""",
        "two_kinds.yaml",
    )
    (b,) = network.unknowns
    assert b.domain.members() == [1]  # stride 2 is not among the strides the defaults allow


@pytest.mark.parametrize(
    "use", ["kernel: $v", "kernel: 2, stride: $v", "kernel: 2, dilation: $v"], ids=["kernel", "stride", "dilation"]
)
def test_variable_declared_as_int_below_the_lower_bound_is_an_error(use: str) -> None:
    """Found by the PyTorch oracle (kernel 0 was planned) and the brute force (stride 0 divided by zero)."""
    with pytest.raises(SpecError, match="at least 1"):
        planner.loads(
            f"""
input: {{shape: [1, 1, 4]}}
variables: {{v: 0}}
layers:
  - {{op: conv, out_channels: 1, {use}}}
""",
            "zero.yaml",
        )


def test_variable_domain_below_a_lower_bound_is_treated_alike_for_every_kind() -> None:
    def loads_ok(first_use: str) -> bool:
        try:
            planner.loads(
                f"""
input: {{shape: [1, 1, 4]}}
variables: {{v: {{min: 0, max: 2}}}}
layers:
  - {{op: conv, out_channels: 1, kernel: 1, {first_use}: $v}}
  - {{op: pad, padding: $v}}
""",
                "lower_bound.yaml",
            )
        except SpecError:
            return False
        return True

    assert loads_ok("stride") == loads_ok("kernel")  # ["padding", "stride"] loads, ["kernel", "padding"] does not


@pytest.mark.parametrize(
    "pool",
    ["{op: avgpool, kernel: 1, padding: 1, count_include_pad: false}", "{op: maxpool, kernel: 1, padding: 2}"],
    ids=["avgpool", "maxpool"],
)
def test_pool_padding_beyond_the_kernel_gives_no_plan_that_fails_to_execute(pool: str) -> None:
    result = planner.solve(
        planner.loads(
            f"""
dialect: onnx
input: {{shape: [1, 1, 1]}}
layers:
  - {pool}
  - {{op: conv, out_channels: 1, kernel: 2}}
""",
            "pool_pad.yaml",
        )
    )  # verify=True: each plan is executed
    assert all(plan.verified for plan in result.plans)
