"""The example specs (specs/*.yaml) end to end through the CLI, with PyTorch as the shape oracle.

Every spec must solve and verify; its `--format yaml` output must solve again to the same
plan; `--all` must count what it prints; and every layer of every printed plan, rebuilt
from the JSON alone with torch.nn.functional, must give the JSON's output shape.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from planner.cli import main
from planner.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
VALID = sorted((Path(__file__).resolve().parent / "specs" / "valid").glob("*.yaml"))


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def solve_json(*argv: str) -> dict[str, Any]:
    code, out, err = run("solve", *argv, "--format", "json")
    assert code == 0, err + out
    assert "Traceback" not in err
    return json.loads(out)


_CACHE: dict[tuple, dict[str, Any]] = {}


def solved(path: Path, *flags: str) -> dict[str, Any]:
    """The JSON of `planner solve path *flags --format json`, computed once per test session."""
    key = (str(path), flags)
    if key not in _CACHE:
        _CACHE[key] = solve_json(str(path), *flags)
    return _CACHE[key]


def layer_of(solution: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [layer for layer in solution["layers"] if layer["name"] == name]
    assert len(matches) == 1, f"no single layer named {name!r}"
    return matches[0]


def params(solution: dict[str, Any], name: str) -> dict[str, Any]:
    return layer_of(solution, name)["params"]


def test_there_are_example_specs() -> None:
    assert len(SPECS) >= 5


# --- solve, round trip through --format yaml, --all and count --------------------------------


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_solves_and_verifies(path: Path) -> None:
    result = solved(path)
    assert result["status"] == "solved"
    assert result["spec"] == str(path)
    assert result["diagnostics"] == []
    assert len(result["solutions"]) == 1
    for solution in result["solutions"]:
        assert solution["verified"] is True
        assert solution["layers"], "a solution lists every layer"
        assert solution["input_shape"] == solution["layers"][0]["input_shape"]


def _unknowns_left(value: Any, variables: dict[str, Any]) -> list[Any]:
    """Every "?", range, one_of, or "$name" whose variable is no int, left in loaded YAML data."""
    if isinstance(value, dict):
        if "for_all" in value:  # not an unknown: the plan must hold for every size in it
            return []
        if {"min", "max"} <= value.keys() or "one_of" in value:
            return [value]
        return [u for k, v in value.items() if k != "expect" for u in _unknowns_left(v, variables)]
    if isinstance(value, list):
        return [u for v in value for u in _unknowns_left(v, variables)]
    named = isinstance(value, str) and value.startswith("$")
    if value == "?" or named and not isinstance(variables.get(value[1:]), int):
        return [value]
    return []


ALL_SPECS = [*SPECS, *VALID]
ALL_IDS = [p.stem if p in SPECS else f"valid-{p.stem}" for p in ALL_SPECS]


@pytest.mark.parametrize("path", ALL_SPECS, ids=ALL_IDS)
def test_yaml_output_solves_again_to_the_same_plan(path: Path, tmp_path: Path) -> None:
    code, out, err = run("solve", path, "--format", "yaml")
    assert code == 0, err
    assert err == ""
    data = yaml.safe_load(out)
    variables = data.get("variables") or {}
    assert _unknowns_left([data["input"], data["layers"]], variables) == [], "every unknown is replaced"
    again = tmp_path / path.name
    again.write_text(out, encoding="utf-8")
    result = solve_json(str(again), "--all")
    assert result["status"] == "solved"
    assert result["count"] == 1, "the solved spec has no unknowns left: exactly one plan"
    (plan,) = result["solutions"]
    assert plan["verified"] is True
    every_plan = solved(path, "--all", "--no-verify")["solutions"]
    shapes_and_params = lambda s: (s["input_shape"], s["layers"])  # noqa: E731
    assert shapes_and_params(plan) in map(shapes_and_params, every_plan), "the YAML solves again to one of its plans"
    if len(every_plan) == 1:
        assert result["solutions"] == solved(path)["solutions"]


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_all_counts_what_it_prints(path: Path) -> None:
    result = solved(path, "--all", "--no-verify")
    assert result["status"] == "solved"
    assert result["count"] == len(result["solutions"]) >= 1
    plans = [json.dumps(s["layers"], sort_keys=True) for s in result["solutions"]]
    assert len(set(plans)) == len(plans), "--all prints each plan once"
    assert solved(path)["solutions"][0]["layers"] in [s["layers"] for s in result["solutions"]]
    assert all(s["verified"] is False for s in result["solutions"]), "--no-verify: nothing was executed"


def test_solving_twice_in_one_process_gives_the_same_first_plan() -> None:
    plans = [solve_json(str(ROOT / "specs" / "dcgan_generator.yaml"), "--no-verify")["solutions"] for _ in range(6)]
    assert all(p == plans[0] for p in plans)


# --- solved values the example specs exist to show -------------------------------------------


def test_guide_transposed_output_padding() -> None:
    (solution,) = solved(ROOT / "specs" / "guide_transposed.yaml")["solutions"]
    assert params(solution, "transposed")["output_padding"] == [1, 1]
    assert layer_of(solution, "transposed")["output_shape"] == [1, 1, 6, 6]
    assert layer_of(solution, "direct")["output_shape"] == [1, 1, 3, 3]


def test_lenet5_padding_keeps_400_features() -> None:
    result = solved(ROOT / "specs" / "lenet5.yaml", "--all", "--no-verify")
    paddings = {params(s, "c1")["padding"][0][0] for s in result["solutions"]}
    assert 2 in paddings
    for solution in result["solutions"]:
        c1 = params(solution, "c1")["padding"]
        assert c1[0] == c1[1] and c1[0][0] == c1[0][1], "c1's padding is a single symmetric unknown"
        assert layer_of(solution, "f5")["input_shape"] == [1, 400]
        assert params(solution, "f5")["in_features"] == 400


def test_dcgan_upsamples_with_stride_2_padding_1() -> None:
    result = solved(ROOT / "specs" / "dcgan_generator.yaml", "--all", "--no-verify")
    for solution in result["solutions"]:
        for name in ("up1", "up2", "up3", "rgb"):
            p = params(solution, name)
            assert p["stride"] == [2, 2], name
            assert p["padding"] == [[1, 1], [1, 1]], name
            assert p["kernel"] == [4, 4], name
        assert solution["layers"][-1]["output_shape"] == [1, 3, 64, 64]


def test_wavenet_causal_padding() -> None:
    (solution,) = solved(ROOT / "specs" / "wavenet_causal.yaml", "--all", "--no-verify")["solutions"]
    for n in range(8):
        p = params(solution, f"causal{n}")
        assert p["padding"] == [[2**n, 0]], f"causal{n}"
        assert p["dilation"] == [2**n]
        assert layer_of(solution, f"causal{n}")["output_shape"] == [1, 32, 4096]


def test_vgg_infers_in_features() -> None:
    (solution,) = solved(ROOT / "specs" / "vgg_classifier.yaml")["solutions"]
    assert params(solution, "fc1")["in_features"] == 512
    assert layer_of(solution, "fc1")["input_shape"] == [1, 512]
    assert solution["layers"][-1]["output_shape"] == [1, 10]


def test_padding_modes_resolve_as_the_spec_says() -> None:
    """SPEC 1.1: same puts the odd pixel at the end, same_lower at the beginning, full pads k_eff - 1."""
    valid = Path(__file__).resolve().parent / "specs" / "valid"
    (plan,) = solved(valid / "padding_modes.yaml")["solutions"]
    assert params(plan, "v")["padding"] == [[0, 0], [0, 0]]
    assert params(plan, "s")["padding"] == [[1, 2], [1, 2]]  # kernel 4: total 3
    assert params(plan, "sl")["padding"] == [[1, 0], [1, 0]]  # kernel 2: total 1
    assert params(plan, "f")["padding"] == [[4, 4], [4, 4]]  # kernel 3, dilation 2
    assert params(plan, "ps")["padding"] == [[1, 1], [1, 1]]
    assert params(plan, "t")["padding"] == [[2, 2], [2, 2]]
    (plan,) = solved(valid / "onnx_same.yaml")["solutions"]
    assert params(plan, "down")["padding"] == [[0, 1], [1, 1]]  # 8 -> 4 pads 1 in all, 7 -> 4 pads 2
    assert params(plan, "down_lower")["padding"] == [[1, 0], [1, 0]]
    assert params(plan, "up")["padding"] == [[0, 1], [0, 1]]  # transposed same: output = input * stride
    (plan,) = solved(valid / "tensorflow_same.yaml")["solutions"]
    assert params(plan, "c")["padding"] == [[1, 1]]
    assert params(plan, "p")["padding"] == [[0, 1]]


# --- PyTorch as the oracle --------------------------------------------------------------------


def _flat_pad(pairs: list[list[int]]) -> list[int]:
    """Per-axis [begin, end] pairs (first spatial axis first) -> F.pad's order (last axis first)."""
    return [side for pair in reversed(pairs) for side in pair]


def _pool_input(F: Any, x: Any, layer: dict[str, Any], fill: float) -> tuple[Any, list[int]]:
    """PyTorch pools pad symmetrically; an asymmetric [begin, end] pair is padded beforehand (shape-exact
    without ceil_mode, where the last-window rule depends on the begin padding alone)."""
    pairs = layer["params"]["padding"]
    if all(b == e for b, e in pairs):
        return x, [b for b, _ in pairs]
    assert not layer["params"]["ceil_mode"], f"{layer['name']}: asymmetric padding with ceil_mode: {pairs}"
    return F.pad(x, _flat_pad(pairs), value=fill), [0] * len(pairs)


def torch_layer(torch: Any, layer: dict[str, Any], inputs: list[Any]) -> Any:
    """One layer rebuilt from its JSON (op, params, input shape) with torch.nn.functional."""
    F = torch.nn.functional
    op, p = layer["op"], layer["params"]
    x = inputs[0]
    rank = x.dim() - 2
    if op in ("conv", "conv_transpose"):
        groups, c_in, c_out = p["groups"], x.shape[1], p["out_channels"]
        bias = torch.randn(c_out)
        pads = p["padding"]
        if op == "conv":
            conv = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]
            weight = torch.randn(c_out, c_in // groups, *p["kernel"])
            if all(b == e for b, e in pads):
                return conv(
                    x,
                    weight,
                    bias,
                    stride=p["stride"],
                    padding=[b for b, _ in pads],
                    dilation=p["dilation"],
                    groups=groups,
                )
            return conv(
                F.pad(x, _flat_pad(pads)),
                weight,
                bias,
                stride=p["stride"],
                padding=0,
                dilation=p["dilation"],
                groups=groups,
            )
        conv_t = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
        weight = torch.randn(c_in, c_out // groups, *p["kernel"])
        y = conv_t(
            x,
            weight,
            bias,
            stride=p["stride"],
            padding=0,
            output_padding=p["output_padding"],
            groups=groups,
            dilation=p["dilation"],
        )
        crop = tuple(slice(b, y.shape[2 + a] - e) for a, (b, e) in enumerate(pads))
        return y[(slice(None), slice(None), *crop)]
    if op == "maxpool":
        pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[rank - 1]
        x, padding = _pool_input(F, x, layer, float("-inf"))
        return pool(x, p["kernel"], p["stride"], padding, p["dilation"], ceil_mode=p["ceil_mode"])
    if op == "avgpool":
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[rank - 1]
        x, padding = _pool_input(F, x, layer, 0.0)
        return pool(
            x, p["kernel"], p["stride"], padding, ceil_mode=p["ceil_mode"], count_include_pad=p["count_include_pad"]
        )
    if op == "adaptive_avgpool":
        return (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[rank - 1](x, p["output_size"])
    if op == "upsample":
        if "scale_factor" in p:
            return F.interpolate(x, scale_factor=float(p["scale_factor"]), mode="nearest")
        return F.interpolate(x, size=p["size"], mode="nearest")
    if op == "pad":
        return F.pad(x, _flat_pad(p["padding"]), value=float(p["value"]))
    if op == "flatten":
        return torch.flatten(x, 1)
    if op == "linear":
        return F.linear(x, torch.randn(p["out_features"], p["in_features"]), torch.randn(p["out_features"]))
    if op == "crop":
        crop = tuple(slice(b, b + n) for b, n in zip(p["offset"], p["size"], strict=True))
        return x[(slice(None), slice(None), *crop)]
    if op == "concat":
        return torch.cat(inputs, dim=1)
    if op == "add":
        return sum(inputs[1:], inputs[0])
    if op == "batchnorm":
        c = x.shape[1]
        return F.batch_norm(x, torch.zeros(c), torch.ones(c), training=False)
    if op == "dropout":
        return F.dropout(x, training=False)
    if op in ("relu", "sigmoid", "tanh"):
        return getattr(torch, op)(x)
    if op == "identity":
        return x
    raise AssertionError(f"the oracle does not know op {op!r}")


def spec_edges(path: Path) -> dict[str, list[str]]:
    """Which outputs each layer reads, from the spec file: the JSON lists shapes, not the graph's edges."""
    edges: dict[str, list[str]] = {}
    previous = "input"
    for index, layer in enumerate(load_spec(path).source.data["layers"]):  # blocks expanded
        name = layer.get("name") or f"{layer['op']}{index}"
        sources = list(layer["inputs"]) if "inputs" in layer else [layer.get("input", previous)]
        if "like" in layer:
            sources.append(layer["like"])
        edges[name] = sources
        previous = name
    return edges


# Above this many input elements the network runs on PyTorch's meta device: the same shape rules
# (ATen's meta functions), no arithmetic (the 572x572 U-Net takes over 10 s on two cores).
META_ABOVE = 200_000


def check_with_torch(torch: Any, solution: dict[str, Any], edges: dict[str, list[str]]) -> None:
    size = math.prod(solution["input_shape"])
    device = "meta" if size > META_ABOVE else "cpu"
    torch.set_default_device(device)
    try:
        _check_with_torch(torch, solution, edges)
    finally:
        torch.set_default_device("cpu")


def _check_with_torch(torch: Any, solution: dict[str, Any], edges: dict[str, list[str]]) -> None:
    outputs: dict[str, Any] = {"input": torch.randn(solution["input_shape"])}
    assert [layer["name"] for layer in solution["layers"]] == list(edges), "every layer, in the spec's order"
    for layer in solution["layers"]:
        sources = [outputs[name] for name in edges[layer["name"]]]
        assert list(sources[0].shape) == layer["input_shape"], f"{layer['name']}: input shape"
        y = torch_layer(torch, layer, sources)
        assert list(y.shape) == layer["output_shape"], f"{layer['name']} ({layer['op']}, {layer['params']})"
        outputs[layer["name"]] = y


@pytest.mark.parametrize("path", ALL_SPECS, ids=ALL_IDS)
def test_torch_agrees_with_every_plan(path: Path) -> None:
    torch = pytest.importorskip("torch")
    result = solved(path, "--all", "--no-verify")
    assert result["solutions"]
    torch.manual_seed(0)
    edges = spec_edges(path)
    with torch.no_grad():
        for solution in result["solutions"]:
            check_with_torch(torch, solution, edges)
