"""`planner.export.export_pytorch`: the exported file, imported and run in PyTorch, is the plan.

For every example spec (and every golden valid spec) the exported `Net` runs on
`INPUT_SHAPE` and a forward hook on each layer's attribute sees the plan's output shape.
Where it is cheap, every layer's values are also compared with the NumPy executor's kernels
on the same inputs and weights: shapes alone cannot tell a pad of (1, 0) from (0, 1).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import planner
from planner.executor import kernels as K
from planner.executor import pointwise as P
from planner.executor import resize as R
from planner.export import export_pytorch
from planner.graph import Network
from planner.plan import LayerPlan, Plan, compute_plan

torch = pytest.importorskip("torch")
nn = torch.nn

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
VALID = sorted((ROOT / "tests" / "specs" / "valid").glob("*.yaml"))
CHEAP_MACS = 5 * 10**7  # value checks in NumPy only below this many multiply-adds (the small specs)

# Pooling whose padding nn.MaxPoolNd / nn.AvgPoolNd refuse: asymmetric, larger than half the
# kernel, ceil mode's partial windows, and a last window PyTorch's ceil-mode rule drops (rows of mp_dropped).
POOLING = """
name: pooling-edge-cases
dialect: onnx
input:
  shape: [1, 2, 8, 9]
layers:
  - {name: mp_asym_ceil, op: maxpool, kernel: 3, stride: 2, padding: [[0, 1], [1, 0]], ceil_mode: true}
  - {name: mp_dilated, op: maxpool, input: input, kernel: 3, stride: 1, dilation: 2, padding: [[2, 1], 2]}
  - {name: mp_dropped, op: maxpool, input: input, kernel: 2, stride: 2, padding: [[0, 1], 0], ceil_mode: true}
  - {name: ap_exclude, op: avgpool, input: input, kernel: 3, stride: 2, padding: [[1, 0], [0, 1]],
     ceil_mode: true, count_include_pad: false}
  - {name: ap_include_ceil, op: avgpool, input: input, kernel: 3, stride: 2, padding: [[1, 0], [0, 1]],
     ceil_mode: true}
  - {name: ap_include, op: avgpool, input: input, kernel: [2, 3], stride: [2, 1], padding: [[0, 1], [1, 1]]}
  - {name: ap_large, op: avgpool, input: input, kernel: 3, stride: 1, padding: [[1, 2], 2], count_include_pad: false}
  - {name: ap_symmetric, op: avgpool, input: input, kernel: 3, stride: 2, padding: 1, ceil_mode: true,
     count_include_pad: false}
  - {name: joined, op: add, inputs: [ap_exclude, ap_include_ceil]}
"""


@functools.cache
def solved(path: Path) -> tuple[Network, Plan]:
    network = planner.load(path)
    result = planner.solve(network, verify=False)
    assert result.plans, f"{path.name} does not solve: {result.status}"
    return network, result.plans[0]


@functools.cache
def pooling_spec() -> tuple[Network, Plan]:
    network = planner.loads(POOLING, "pooling_edge_cases.yaml")
    result = planner.solve(network, verify=False)
    assert result.plans, [d.message for d in result.diagnostics]
    return network, result.plans[0]


def imported(source: str, directory: Path, stem: str) -> ModuleType:
    path = directory / f"exported_{stem}.py"
    path.write_text(source)
    py_compile.compile(str(path), doraise=True)
    spec = importlib.util.spec_from_file_location(f"exported_{stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_hooked(net: nn.Module, x: torch.Tensor, keep: bool = False) -> dict[str, tuple]:
    """Run net on x; per child: its output shape, or with `keep` (inputs, output)."""
    seen: dict[str, tuple] = {}

    def hook(name: str):
        def record(module, inputs, output):
            seen[name] = (inputs, output) if keep else tuple(output.shape)

        return record

    handles = [child.register_forward_hook(hook(name)) for name, child in net.named_children()]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def macs(plan: Plan) -> int:
    total = 0
    for layer in plan.layers:
        if layer.op in ("conv", "conv_transpose"):
            big = layer.input_shape if layer.op == "conv_transpose" else layer.output_shape
            c_other = layer.output_shape[1] if layer.op == "conv_transpose" else layer.input_shape[1]
            total += int(np.prod(big)) * c_other // layer.params["groups"] * int(np.prod(layer.params["kernel"]))
    return total


def example(path: Path) -> str:
    return path.stem if path.parent.name == "specs" else f"valid/{path.stem}"


@pytest.mark.parametrize("path", SPECS + VALID, ids=example)
def test_exported_module_gives_every_planned_shape(path: Path, tmp_path: Path) -> None:
    network, plan = solved(path)
    module = imported(export_pytorch(network, plan), tmp_path, path.stem)
    assert module.INPUT_SHAPE == plan.input_shape
    net = module.Net().eval()
    names = [name for name, _ in net.named_children()]
    assert len(names) == len(plan.layers), "one attribute per layer of the plan"
    shapes = run_hooked(net, torch.randn(module.INPUT_SHAPE))
    got = [shapes.get(name) for name in names]
    want = [layer.output_shape for layer in plan.layers]
    assert got == want, [(ly.name, g, w) for ly, g, w in zip(plan.layers, got, want, strict=True) if g != w]


FOR_ALL = [ROOT / "specs" / "unet_same.yaml", ROOT / "tests" / "specs" / "valid" / "for_all_1d.yaml"]


@pytest.mark.parametrize("path", FOR_ALL, ids=example)
def test_for_all_export_serves_other_sizes(path: Path, tmp_path: Path) -> None:
    """A for_all plan's module is not tied to INPUT_SHAPE: at two more sizes it gives that size's plan."""
    network, plan = solved(path)
    assert plan.for_all
    module = imported(export_pytorch(network, plan), tmp_path, path.stem)
    net = module.Net().eval()
    names = [name for name, _ in net.named_children()]
    assignment = {u: plan.assignment[u.name] for u in network.unknowns}
    members = [f.domain.members() for f in network.for_all]
    for pick in (1, 2):
        sizes = {f: m[min(pick, len(m) - 1)] for f, m in zip(network.for_all, members, strict=True)}
        other = compute_plan(network, {**assignment, **sizes})
        shapes = run_hooked(net, torch.randn(other.input_shape))
        assert [shapes[n] for n in names] == [layer.output_shape for layer in other.layers]


def reference(layer: LayerPlan, module: nn.Module, xs: list[np.ndarray]) -> np.ndarray | None:
    """The layer computed by the NumPy executor's kernels, with the module's weights."""
    p, x = layer.params, xs[0]
    if layer.op in ("conv", "conv_transpose"):
        conv = next(m for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd))
        w = conv.weight.detach().numpy()
        b = None if conv.bias is None else conv.bias.detach().numpy()
        common = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"], groups=p["groups"])
        if layer.op == "conv":
            return K.conv(x, w, b, **common)
        return K.conv_transpose(x, w, b, output_padding=p["output_padding"], **common)
    if layer.op == "maxpool":
        return K.max_pool(
            x,
            kernel=p["kernel"],
            stride=p["stride"],
            padding=p["padding"],
            dilation=p["dilation"],
            ceil_mode=p["ceil_mode"],
        )
    if layer.op == "avgpool":
        return K.avg_pool(
            x,
            kernel=p["kernel"],
            stride=p["stride"],
            padding=p["padding"],
            ceil_mode=p["ceil_mode"],
            count_include_pad=p["count_include_pad"],
        )
    if layer.op == "adaptive_avgpool":
        return R.adaptive_avg_pool(x, output_size=p["output_size"])
    if layer.op == "upsample":
        return R.upsample_nearest(x, scale_factor=p.get("scale_factor"), size=p.get("size"))
    if layer.op == "pad":
        return R.pad(x, padding=p["padding"], value=p["value"])
    if layer.op == "crop":
        return x[(slice(None), slice(None), *(slice(b, b + n) for b, n in zip(p["offset"], p["size"], strict=True)))]
    if layer.op == "concat":
        return np.concatenate(xs, axis=1)
    if layer.op == "add":
        return sum(xs[1:], xs[0])
    if layer.op == "flatten":
        return x.reshape(x.shape[0], -1)
    if layer.op == "linear":
        bias = None if module.bias is None else module.bias.detach().numpy()
        return P.linear(x, module.weight.detach().numpy(), bias)
    if layer.op == "batchnorm":  # eval mode with fresh running statistics (mean 0, variance 1)
        return x / np.sqrt(1 + module.eps)
    elementwise = {
        "relu": lambda v: np.maximum(v, 0),
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "tanh": np.tanh,
        "dropout": lambda v: v,
        "identity": lambda v: v,
    }
    return elementwise[layer.op](x)


@pytest.mark.parametrize("case", [*SPECS, *VALID, "pooling"], ids=lambda c: c if isinstance(c, str) else example(c))
def test_exported_module_computes_what_the_executor_computes(case: Path | str, tmp_path: Path) -> None:
    network, plan = pooling_spec() if case == "pooling" else solved(case)
    if macs(plan) >= CHEAP_MACS:
        pytest.skip(f"{network.name}: {macs(plan):.1e} multiply-adds are too many for the NumPy kernels in a unit test")
    module = imported(export_pytorch(network, plan), tmp_path, "pooling" if case == "pooling" else case.stem)
    torch.manual_seed(0)
    net = module.Net().double().eval()
    records = run_hooked(net, torch.randn(module.INPUT_SHAPE, dtype=torch.float64), keep=True)
    for (name, child), layer in zip(net.named_children(), plan.layers, strict=True):
        inputs, output = records[name]
        want = reference(layer, child, [t.numpy() for t in inputs])
        assert output.shape == want.shape, layer.name
        np.testing.assert_allclose(output.numpy(), want, rtol=1e-9, atol=1e-9, err_msg=layer.name)


def test_pooling_cases_take_the_explicit_paths() -> None:
    """The pooling spec exercises every construction: direct, padded max, padded avg, counted avg."""
    source = " ".join(export_pytorch(*pooling_spec()).split())
    assert "PaddedAvgPool(" in source and 'float("-inf")' in source and "nn.ConstantPad2d((1, 1, 0, 1), 0.0)" in source
    assert "nn.AvgPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)" in source


@pytest.mark.parametrize("path", [ROOT / "specs" / "unet_original.yaml"], ids=example)
def test_forward_keeps_only_what_later_layers_read(path: Path) -> None:
    source = export_pytorch(*solved(path))
    forward = source[source.index("def forward") :]
    assert "x = self.skip4(enc4)\n        del enc4\n        x = self.cat4(up4, x)\n        del up4" in forward
    assert forward.count(" = self.") + 1 == len(solved(path)[1].layers)  # the last layer is returned
    assert "# Solved unknowns: $up_kernel = 2, $up_stride = 2." in source


def test_exported_files_import_only_torch_and_compile(tmp_path: Path) -> None:
    paths = []
    for path in [*SPECS, *VALID]:
        source = export_pytorch(*solved(path))
        tree = ast.parse(source)
        imported_names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported_names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert imported_names and all(n == "torch" or n.startswith("torch.") for n in imported_names), imported_names
        target = tmp_path / f"{path.stem}.py"
        target.write_text(source)
        paths.append(str(target))
    subprocess.run([sys.executable, "-m", "py_compile", *paths], check=True)
    if shutil.which("ruff"):
        lint = subprocess.run(
            [
                "ruff",
                "check",
                "--isolated",
                "--select",
                "E,F,W,I,B,UP",
                "--line-length",
                "120",
                "--target-version",
                "py310",
                *paths,
            ],
            capture_output=True,
            text=True,
        )
        assert lint.returncode == 0, lint.stdout


def test_layer_names_become_safe_distinct_attributes(tmp_path: Path) -> None:
    text = """
input: {shape: [1, 2, 8]}
layers:
  - {name: train, op: conv, out_channels: 2, kernel: 3, padding: 1}
  - {name: forward, op: relu}
  - {name: x, op: identity}
  - {name: forward_2, op: add, inputs: [forward, train]}
  - {name: Crop, op: crop, size: 4}
"""
    network = planner.loads(text, "names.yaml")
    plan = planner.solve(network, verify=False).plans[0]
    module = imported(export_pytorch(network, plan), tmp_path, "names")
    net = module.Net().eval()
    names = [name for name, _ in net.named_children()]
    assert len(set(names)) == 5 and not {"train", "forward", "x", "Crop"} & set(names)
    shapes = run_hooked(net, torch.randn(module.INPUT_SHAPE))
    assert [shapes[n] for n in names] == [layer.output_shape for layer in plan.layers]
