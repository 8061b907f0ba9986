"""The model summary: each layer's parameter count against PyTorch's `numel` of the module export
writes, the multiply-accumulates against a count written here (fvcore's convention: one fused
multiply-add is one MAC), and the totals of JSON and text output."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

import planner
from planner.export import export_pytorch
from tests.conftest import EXAMPLES, run, solved


def macs_by_hand(layer: dict) -> int:
    """fvcore: conv = output elements x in_channels/groups x kernel volume; conv_transpose = input elements
    x out_channels/groups x kernel volume; linear = batch x in x out; nothing else counts."""
    p, inp, out = layer["params"], layer["input_shape"], layer["output_shape"]
    if layer["op"] == "conv":
        return math.prod(out) * (inp[1] // p["groups"]) * math.prod(p["kernel"])
    if layer["op"] == "conv_transpose":
        return math.prod(inp) * (p["out_channels"] // p["groups"]) * math.prod(p["kernel"])
    if layer["op"] == "linear":
        return inp[0] * p["in_features"] * p["out_features"]
    return 0


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_macs_and_totals_of_every_example(path: Path) -> None:
    code, out, err = run("solve", path, "--format", "json", "--no-verify")
    assert code == 0, err
    plan = json.loads(out)["solutions"][0]
    assert [ly["macs"] for ly in plan["layers"]] == [macs_by_hand(ly) for ly in plan["layers"]]
    totals = plan["totals"]
    assert totals["macs"] == sum(ly["macs"] for ly in plan["layers"])
    assert totals["params"] == sum(ly["params_count"] for ly in plan["layers"])
    elements = sum(math.prod(ly["output_shape"]) for ly in plan["layers"])
    assert totals["activations_mb"] == round(8 * elements / 1e6, 2)


def test_lenet5_has_its_published_size() -> None:
    _, plan = solved(EXAMPLES[0].parent / "lenet5.yaml")
    assert plan.totals["params"] == 61_706  # LeCun et al. 1998's LeNet-5 with a padded first layer
    assert plan.totals["macs"] == 416_520


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_params_count_equals_pytorch_numel(tmp_path: Path, path: Path) -> None:
    torch = pytest.importorskip("torch")
    network, plan = solved(path)
    source = tmp_path / f"net_{path.stem}.py"
    source.write_text(export_pytorch(network, plan))
    spec = importlib.util.spec_from_file_location(f"summary_{path.stem}", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.device("meta"):
        net = module.Net()
    assert plan.totals["params"] == sum(p.numel() for p in net.parameters())
    for layer in plan.layers:
        child = getattr(net, layer.name, None)
        if isinstance(child, torch.nn.Module):
            assert layer.params_count == sum(p.numel() for p in child.parameters()), layer.name


def test_text_output_ends_each_plan_with_its_totals() -> None:
    code, out, _ = run("solve", EXAMPLES[0].parent / "lenet5.yaml", "--no-verify")
    assert code == 0
    assert "  totals: 61,706 params, 416,520 MACs (FLOPs = 2 x MACs), 0.12 MB of activations" in out.splitlines()


def test_the_api_gives_each_layer_its_count() -> None:
    result = planner.solve(str(EXAMPLES[0].parent / "dcgan_generator.yaml"), verify=False)
    first = result.plans[0].layers[0]
    assert first.op == "conv_transpose" and first.params_count == first.input_shape[1] * 512 * 16 + 512  # and bias
