"""The README's steps for adding an op, followed for `silu` (x * sigmoid(x)): a spec with it solves,
the executor's values equal PyTorch's, the exported module runs in PyTorch to the planned shapes,
and the network draws. If a back end misses the op, one of these fails."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import planner
from planner.draw import draw_network
from planner.executor.run import LAYERS
from planner.export import export_pytorch
from planner.ops import OPS

SPEC = """\
input: {shape: [2, 3, 9, 9]}
layers:
  - {name: conv, op: conv, out_channels: 4, kernel: 3, padding: "?", expect: [2, 4, 9, 9]}
  - {name: act, op: silu}
"""


@pytest.fixture(scope="module")
def solved() -> tuple[planner.Network, planner.Plan]:
    network = planner.loads(SPEC, "silu.yaml")
    result = planner.solve(network)
    assert result.status is planner.Status.SOLVED and result.plans[0].verified
    return network, result.plans[0]


def test_the_op_is_registered_everywhere() -> None:
    assert "silu" in OPS and "silu" in LAYERS


def test_the_plan_keeps_the_shape(solved) -> None:
    _, plan = solved
    assert plan.layer("act").output_shape == (2, 4, 9, 9) and plan.layer("act").params_count == 0


def test_the_executor_computes_what_pytorch_computes() -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 4, 9, 9)).astype(np.float32)
    layer = planner.LayerPlan("act", "silu", x.shape, x.shape, {})
    ours = LAYERS["silu"](layer, [x], np.random.default_rng(0), np.float32)
    np.testing.assert_allclose(ours, torch.nn.functional.silu(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)


def test_the_exported_module_runs_in_pytorch(tmp_path: Path, solved) -> None:
    torch = pytest.importorskip("torch")
    network, plan = solved
    path = tmp_path / "silu_net.py"
    path.write_text(export_pytorch(network, plan))
    spec = importlib.util.spec_from_file_location("silu_net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Net()
    assert isinstance(net.act, torch.nn.SiLU)
    assert tuple(net(torch.zeros(module.INPUT_SHAPE)).shape) == plan.layer("act").output_shape


def test_the_network_draws(solved) -> None:
    network, plan = solved
    svg = draw_network(network, plan)
    assert 'id="layer-act"' in svg and 'id="layer-conv"' in svg
