"""`planner import`: networks written here in plain torch.nn, imported from their module
(`file.py:make`) and from their ONNX export, solve to PyTorch's shapes; with `--free stride,padding`
the first plan, exported and run in PyTorch, gives the model's shapes again; what planner cannot
express is an error naming the op and the node, never a silent drop and never a traceback."""

from __future__ import annotations

import functools
import importlib.util
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import planner
from planner.executor.run import LAYERS
from planner.export import export_pytorch
from planner.export.layers import EXPORTS
from planner.importer import import_spec
from planner.importer.nodes import sanitise
from planner.ops import OPS
from planner.spec.models import fields_of
from tests.conftest import no_traceback, run, write

torch = pytest.importorskip("torch")

HEADER = """\
import torch
import torch.nn.functional as F
from torch import nn


def make():
    torch.manual_seed(0)
    return Net()
"""

RESNET = """
class Bottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


def stage(inplanes, planes, blocks, stride):
    down = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * 4))
    layers = [Bottleneck(inplanes, planes, stride, down)]
    layers += [Bottleneck(planes * 4, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class Net(nn.Module):
    def __init__(self, width=4, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = stage(width, width, 2, 1)
        self.layer2 = stage(width * 4, width * 2, 2, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))
"""

DCGAN = """
class Net(nn.Module):
    def __init__(self, nz=16, ngf=4):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)
"""

UNET_BLOCK = """
class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
"""

UNET = (
    UNET_BLOCK
    + """
class Net(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        self.enc1, self.enc2, self.mid = Block(3, c), Block(c, 2 * c), Block(2 * c, 4 * c)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = Block(4 * c, 2 * c)
        self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.dec1 = Block(2 * c, c)
        self.head = nn.Conv2d(c, 2, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        m = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.head(d1)
"""
)

UNET_BILINEAR = (
    UNET_BLOCK
    + """
class Net(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        self.enc1, self.enc2, self.mid = Block(3, c), Block(c, 2 * c), Block(2 * c, 2 * c)
        self.pool = nn.MaxPool2d(2)
        self.dec2 = Block(4 * c, c)
        self.dec1 = Block(2 * c, c)
        self.head = nn.Conv2d(c, 2, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        m = self.mid(self.pool(e2))
        up2 = F.interpolate(m, size=e2.shape[2:], mode="bilinear", align_corners=False)
        d2 = self.dec2(torch.cat([up2, e2], 1))
        up1 = F.interpolate(d2, size=e1.shape[2:], mode="bilinear", align_corners=False)
        return self.head(self.dec1(torch.cat([up1, e1], 1)))
"""
)

MOBILENET = """
class SqueezeExcite(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // 4, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(c // 4, c, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.relu(self.fc1(self.avgpool(x)))))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand=4):
        super().__init__()
        hidden = cin * expand
        self.residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            SqueezeExcite(hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(inplace=True))
        self.block1 = InvertedResidual(8, 8, 1)
        self.block2 = InvertedResidual(8, 16, 2)

    def forward(self, x):
        return self.block2(self.block1(self.stem(x)))
"""

SHUFFLENET = """
def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, stride, groups=2):
        super().__init__()
        self.stride, self.groups = stride, groups
        branch = cout - cin if stride == 2 else cout
        mid = cout // 4
        self.conv1 = nn.Conv2d(cin, mid, 1, groups=groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.dwconv = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, branch, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(branch)
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = channel_shuffle(out, self.groups)
        out = self.bn3(self.conv2(self.bn2(self.dwconv(out))))
        if self.stride == 2:
            return F.relu(torch.cat([self.shortcut(x), out], 1))
        return F.relu(x + out)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.unit1 = ShuffleUnit(8, 16, 2)
        self.unit2 = ShuffleUnit(16, 16, 1)

    def forward(self, x):
        return self.unit2(self.unit1(self.maxpool(self.conv1(x))))
"""

SHUFFLENET_V2 = """
class Unit(nn.Module):
    def __init__(self, c):
        super().__init__()
        half = c // 2
        self.branch = nn.Sequential(
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False), nn.BatchNorm2d(half),
        )

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        out = torch.cat([a, self.branch(b)], 1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1)
        self.unit = Unit(16)
        self.head = nn.Conv2d(16, 12, 1)

    def forward(self, x):
        x = self.unit(self.stem(x))
        small, big = torch.split(self.head(x), [4, 8], dim=1)
        return torch.cat([big, small], 1)
"""

ASPP = """
def branch(cin, cout, rate):
    if rate == 1:
        conv = nn.Conv2d(cin, cout, 1, bias=False)
    else:
        conv = nn.Conv2d(cin, cout, 3, padding=rate, dilation=rate, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU())


class ASPP(nn.Module):
    def __init__(self, cin=8, cout=4, rates=(1, 6, 12, 18)):
        super().__init__()
        self.branches = nn.ModuleList(branch(cin, cout, r) for r in rates)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU())
        self.project = nn.Sequential(
            nn.Conv2d(cout * (len(rates) + 1), cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.Dropout(0.5)
        )

    def forward(self, x):
        pooled = F.interpolate(self.pool(x), size=x.shape[-2:], mode="nearest")
        return self.project(torch.cat([*(b(x) for b in self.branches), pooled], 1))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
        self.aspp = ASPP()
        self.head = nn.Conv2d(4, 3, 1)

    def forward(self, x):
        return self.head(self.aspp(self.backbone(x)))
"""


ZOO = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.ln = nn.LayerNorm([8, 16, 16])
        self.gn = nn.GroupNorm(2, 8)
        self.inorm = nn.InstanceNorm2d(8)
        self.acts = nn.Sequential(
            nn.ReLU6(), nn.Hardswish(), nn.Hardsigmoid(), nn.GELU(), nn.LeakyReLU(0.2), nn.ELU(0.5)
        )
        self.shuffle = nn.PixelShuffle(2)
        self.unshuffle = nn.PixelUnshuffle(2)
        self.pad = nn.ReflectionPad2d((1, 2, 0, 1))
        self.pool = nn.AdaptiveMaxPool2d(1)

    def forward(self, x):
        x = self.inorm(self.gn(self.ln(self.conv(x))))
        x = self.unshuffle(self.shuffle(self.acts(x)))
        x = torch.softmax(self.pad(x), dim=1)[:, 2:6, 1:]
        return x.mean((2, 3), keepdim=True) * self.pool(x)
"""
ZOO_OPS = (
    "layernorm",
    "groupnorm",
    "instancenorm",
    "relu6",
    "hardswish",
    "hardsigmoid",
    "gelu",
    "leaky_relu",
    "elu",
    "softmax",
    "pixel_shuffle",
    "pixel_unshuffle",
    "slice",
    "mean",
    "adaptive_maxpool",
    "mul",
)


def _needs(*ops: str, fields: tuple[tuple[str, str], ...] = ()) -> list:
    """A skip while planner lacks an op (or a key of one) the network needs, in the spec, the executor or
    the export; it runs once they land."""
    present = set(OPS) & set(LAYERS) & set(EXPORTS)
    missing = [op for op in ops if op not in present] + [
        f"{op}.{key}" for op, key in fields if key not in fields_of(op)
    ]
    return [pytest.mark.skipif(bool(missing), reason=f"planner has no {', '.join(missing)} yet")]


NETS = {
    "resnet_bottleneck": (RESNET, (1, 3, 64, 64), ()),
    "dcgan_generator": (DCGAN, (1, 16, 1, 1), ()),
    "unet": (UNET, (1, 3, 32, 32), ()),
    "unet_bilinear": (UNET_BILINEAR, (1, 3, 35, 35), _needs(fields=(("upsample", "mode"), ("upsample", "like")))),
    "mobilenet_se": (MOBILENET, (1, 3, 32, 32), _needs("mul", "relu6")),
    "shufflenet_unit": (SHUFFLENET, (1, 3, 32, 32), ()),
    "shufflenet_v2_chunk_split": (SHUFFLENET_V2, (1, 3, 32, 32), ()),
    "aspp": (ASPP, (1, 3, 64, 64), ()),
    "activations_and_norms": (ZOO, (1, 3, 16, 16), _needs(*ZOO_OPS, fields=(("pad", "mode"),))),
}
CASES = [pytest.param(name, marks=marks, id=name) for name, (_, _, marks) in NETS.items()]


# --- the models, their files, their shapes in PyTorch ----------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):
    """name -> (the module file, the model, its input shape), written once for this module."""
    folder = tmp_path_factory.mktemp("models")

    @functools.cache
    def get(name: str):
        body, shape, _ = NETS[name]
        path = write(folder, f"{name}.py", HEADER + textwrap.dedent(body))
        module = _load(path)
        return path, module.make().eval(), shape

    return get


@pytest.fixture(scope="module")
def onnx_files(models, tmp_path_factory: pytest.TempPathFactory):
    """name -> the model's ONNX export (the TorchScript exporter: the dynamo one needs onnxscript)."""
    pytest.importorskip("onnx")
    folder = tmp_path_factory.mktemp("onnx")

    @functools.cache
    def get(name: str) -> Path:
        _, model, shape = models(name)
        path = folder / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notice
            torch.onnx.export(model, (torch.randn(*shape),), str(path), dynamo=False)
        return path

    return get


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"test_import_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _hooked_shapes(model, shape) -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
    """Each leaf module's output shape, named as the importer names its layer (a module called k
    times gives `name`, `name_1`, ...), and the model's output shape."""
    seen: dict[str, list[tuple[int, ...]]] = {}
    handles = []
    for path, module in model.named_modules():
        if path and not list(module.children()):
            hook = functools.partial(lambda p, m, i, o: seen.setdefault(p, []).append(tuple(o.shape)), path)
            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        out = model(torch.randn(*shape))
    for h in handles:
        h.remove()
    named = {}
    for path, shapes in seen.items():
        for n, s in enumerate(shapes):
            named[sanitise(path) + (f"_{n}" if n else "")] = s
    return named, tuple(out.shape)


def _onnx_shapes(path: Path, shape) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape as onnxruntime computes it (each node's output made a graph output)."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = onnx.load(str(path))
    known = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in known and node.op_type != "Constant":
                model.graph.output.append(onnx.ValueInfoProto(name=name))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    import numpy as np

    feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal(shape).astype("float32")}
    names = [o.name for o in session.get_outputs()]
    return {name: tuple(value.shape) for name, value in zip(names, session.run(names, feed), strict=True)}


def _solved(text: str):
    network = planner.loads(text, "imported.yaml")
    result = planner.solve(network, timeout=120)
    assert result.status is planner.Status.SOLVED, [str(d) for d in result.diagnostics]
    return network, result.plans[0]


def _check_against_pytorch(imported, plan, model, shape) -> None:
    """Every layer's planned shape is the traced one; every layer named after a module has that
    module's output shape in PyTorch; the output is the model's."""
    hooked, out = _hooked_shapes(model, shape)
    matched = 0
    for layer in imported.layers:
        planned = plan.layer(layer.name).output_shape
        assert planned == layer.node.shape, f"{layer.name}: planned {planned}, traced {layer.node.shape}"
        if layer.name in hooked:
            assert planned == hooked[layer.name], f"{layer.name}: planned {planned}, PyTorch {hooked[layer.name]}"
            matched += 1
    sliding = [layer for layer in imported.layers if layer.fields["op"] in ("conv", "conv_transpose", "maxpool")]
    assert all(layer.name in hooked for layer in sliding), [layer.name for layer in sliding if layer.name not in hooked]
    assert matched >= len(sliding) > 0
    assert plan.layers[-1].output_shape == out


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_module_round_trip(models, name: str) -> None:
    path, model, shape = models(name)
    imported = import_spec(f"{path}:make", shape)
    network, plan = _solved(imported.text)
    assert [layer.name for layer in plan.layers] == [layer.name for layer in imported.layers]
    _check_against_pytorch(imported, plan, model, shape)


@pytest.mark.parametrize("name", CASES)
def test_onnx_round_trip(models, onnx_files, name: str) -> None:
    _, model, shape = models(name)
    path = onnx_files(name)
    imported = import_spec(str(path))
    assert imported.graph.input_shape == shape  # from the graph's static input
    assert "dialect: onnx" in imported.text
    _, plan = _solved(imported.text)
    _check_against_pytorch(imported, plan, model, shape)
    runtime = _onnx_shapes(path, shape)
    for layer in imported.layers:
        if layer.node.id in runtime:
            assert plan.layer(layer.name).output_shape == runtime[layer.node.id], layer.name


def test_onnx_at_another_input_shape(models, onnx_files) -> None:
    """--input-shape overrides the ONNX input's static shape: shapes are inferred afresh."""
    _, model, _ = models("unet")
    imported = import_spec(str(onnx_files("unet")), (1, 3, 64, 48))
    _, plan = _solved(imported.text)
    _check_against_pytorch(imported, plan, model, (1, 3, 64, 48))


@pytest.mark.parametrize("source", ["module", "onnx"])
@pytest.mark.parametrize("name", CASES)
def test_free_stride_padding_recovers_the_model(request, models, tmp_path: Path, name: str, source: str) -> None:
    path, model, shape = models(name)
    model_source = f"{path}:make" if source == "module" else str(request.getfixturevalue("onnx_files")(name))
    imported = import_spec(model_source, shape, ("stride", "padding"))
    freed = [layer for layer in imported.layers if "expect" in layer.fields and layer.fields.get("stride") == "?"]
    assert freed, "no layer was freed"
    network, plan = _solved(imported.text)
    exported = export_pytorch(network, plan)
    module = _load(write(tmp_path, f"exported_{name}_{source}.py", exported))
    net = module.Net().eval()
    children = list(net.children())
    assert len(children) == len(plan.layers)
    seen: list[tuple[int, ...]] = []
    for child in children:
        # a split gives a tuple: its first piece is the layer's own shape
        child.register_forward_hook(lambda m, i, o: seen.append(tuple((o[0] if isinstance(o, tuple) else o).shape)))
    with torch.no_grad():
        out = net(torch.randn(*module.INPUT_SHAPE))
    assert tuple(module.INPUT_SHAPE) == shape
    assert seen == [layer.node.shape for layer in imported.layers]
    assert tuple(out.shape) == tuple(model(torch.randn(*shape)).shape)


def test_free_lists_the_alternatives(models) -> None:
    """The DCGAN generator with its strides and paddings free: every plan gives the model's shapes;
    the up-convolutions can only be stride 2, padding 1, and the first, on a 1x1 input, any stride."""
    path, _, shape = models("dcgan_generator")
    imported = import_spec(f"{path}:make", shape, ("stride", "padding"))
    result = planner.solve(planner.loads(imported.text), max_solutions=None, count=True, verify=False)
    assert result.status is planner.Status.SOLVED and result.count == len(result.plans) == 4
    for plan in result.plans:
        assert [layer.output_shape for layer in plan.layers] == [layer.node.shape for layer in imported.layers]
        ups = [layer for layer in plan.layers if layer.op == "conv_transpose"]
        assert [(tuple(u.params["stride"]), tuple(u.params["padding"])) for u in ups[1:]] == [
            ((2, 2), ((1, 1),) * 2)
        ] * 4
    assert sorted(plan.assignment["main_0.stride"] for plan in result.plans) == [1, 2, 3, 4]


def test_free_layers_limits_the_freed(models) -> None:
    path, _, shape = models("resnet_bottleneck")
    imported = import_spec(f"{path}:make", shape, ("kernel", "stride", "padding"), r"^layer2_0_conv2$")
    freed = [layer.name for layer in imported.layers if layer.fields.get("kernel") == "?"]
    assert freed == ["layer2_0_conv2"]
    assert imported.layers[-1].fields["expect"] == [1, 10]
    network, plan = _solved(imported.text)
    assert (
        plan.layer("layer2_0_conv2").output_shape
        == imported.layers[[x.name for x in imported.layers].index("layer2_0_conv2")].node.shape
    )


def test_names_keep_the_modules_and_comments_name_the_ops(models) -> None:
    path, _, shape = models("resnet_bottleneck")
    text = import_spec(f"{path}:make", shape).text
    assert "{name: layer1_0_conv1, op: conv, out_channels: 4, kernel: 1, bias: false}  # aten.conv2d.default" in text
    assert "{name: layer1_0_relu_1, op: relu}  # aten.relu_.default" in text
    assert "{name: layer1_0_downsample_0, op: conv, input: maxpool," in text  # input: only where it is not the previous
    assert "{name: layer1_0_add, op: add, inputs: [layer1_0_bn3, layer1_0_downsample_1]" in text
    assert "{name: flatten, op: flatten}  # aten.flatten.using_ints" in text


def test_channel_shuffle_is_one_identity_layer(models) -> None:
    path, _, shape = models("shufflenet_unit")
    imported = import_spec(f"{path}:make", shape)
    shuffles = [layer for layer in imported.layers if layer.fields["op"] == "identity"]
    assert [layer.name for layer in shuffles] == ["unit1_identity", "unit2_identity"]
    assert shuffles[0].node.source_op == "aten.view.default -> aten.transpose.int -> aten.view.default"
    assert not any("view" in layer.name for layer in imported.layers)


@pytest.mark.skipif("like" not in fields_of("upsample"), reason="planner's upsample has no like: yet")
def test_resize_to_the_input_takes_like(models) -> None:
    path, _, shape = models("aspp")
    imported = import_spec(f"{path}:make", shape)
    up = next(layer for layer in imported.layers if layer.fields["op"] == "upsample")
    assert up.fields["like"] == "backbone_1"


def test_sanitised_names() -> None:
    assert sanitise("layer1.0.conv1") == "layer1_0_conv1"
    assert sanitise("0.conv") == "_0_conv"
    assert sanitise("/attn/Softmax") == "attn_Softmax"


# --- the command line ---------------------------------------------------------------------------


def test_cli_import_then_solve(request, models, tmp_path: Path) -> None:
    path, _, shape = models("unet")
    out = tmp_path / "unet.yaml"
    code, stdout, stderr = run("import", f"{path}:make", "--input-shape", ",".join(map(str, shape)), "--output", out)
    assert (code, stdout, stderr) == (0, "", "")
    assert run("solve", out)[0] == 0
    free = tmp_path / "unet_free.yaml"
    onnx_files = request.getfixturevalue("onnx_files")  # skips here without onnx
    code, _, stderr = run("import", onnx_files("unet"), "--free", "stride,padding", "--output", free)
    assert code == 0, stderr
    code, stdout, _ = run("solve", free, "--max-solutions", "2")
    assert code == 0 and '"?"' in free.read_text()


UNSUPPORTED = """
class Attention(nn.Module):
    def forward(self, x):
        return torch.cumsum(x, 1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.attn = Attention()

    def forward(self, x):
        return self.attn(self.conv(x))
"""


def test_unsupported_op_names_the_op_and_the_node(tmp_path: Path) -> None:
    path = write(tmp_path, "net.py", HEADER + UNSUPPORTED)
    out = tmp_path / "out.yaml"
    code, stdout, stderr = run("import", f"{path}:make", "--input-shape", "1,3,8,8", "--output", out)
    assert code == 1 and stdout == ""
    message = "error: cannot import node 'attn.cumsum' (aten.cumsum.default): planner has no op for it"
    assert stderr == f"{path}:{HEADER.count(chr(10)) + 4}: {message} [import-unsupported-op]\n"
    assert not out.exists()
    no_traceback(stderr)


def test_unsupported_onnx_op_names_the_node(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    path = write(tmp_path, "net.py", HEADER + UNSUPPORTED)
    onnx_path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_load(path).make().eval(), (torch.randn(1, 3, 8, 8),), str(onnx_path), dynamo=False)
    code, _, stderr = run("import", onnx_path, "--output", tmp_path / "out.yaml")
    assert code == 1
    assert (
        stderr == f"{onnx_path}: error: cannot import node '/attn/CumSum' (CumSum): planner has no op for it "
        "[import-unsupported-op]\n"
    )


UNBIND = """
class Net(nn.Module):
    def forward(self, x):
        a, b, c, d = torch.unbind(x, dim=1)
        return a + b
"""
RESHAPE = """
class Net(nn.Module):
    def forward(self, x):
        return x.reshape(1, 2, -1)
"""
SPATIAL_RESHAPE = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, padding=1)

    def forward(self, x):
        return self.conv(x.flatten(2))
"""
DATA_DEPENDENT = """
class Net(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (UNBIND, "cannot import node 'unbind' (aten.unbind.int): it has several outputs"),
        (RESHAPE, "cannot import node 'reshape' (aten.reshape.default): it reshapes [1, 4, 8, 8] to [1, 2, 128]"),
        (DATA_DEPENDENT, "torch.export cannot trace make() at input shape [1, 4, 8, 8]"),
    ],
    ids=["unbind", "reshape", "data-dependent"],
)
def test_what_planner_cannot_express_is_an_error(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, "net.py", HEADER + body)
    code, _, stderr = run("import", f"{path}:make", "--input-shape", "1,4,8,8", "--output", tmp_path / "o.yaml")
    assert code == 1 and expected in stderr, stderr
    assert stderr.startswith(f"{path}:")
    no_traceback(stderr)


@pytest.mark.parametrize(
    ("source", "expected", "status"),
    [
        ("missing.py:make", "missing.py: error: cannot read the file: No such file or directory [import-source]", 1),
        ("net.py:maek", "net.py: error: no attribute 'maek' in the file; did you mean 'make'? [import-source]", 1),
        ("net.py:LIMIT", "net.py: error: 'LIMIT' is an int, not a callable factory [import-source]", 1),
        ("net.py:numbers", "net.py: error: numbers() returned a list, not a torch.nn.Module [import-source]", 1),
        ("net.py:broken", "net.py:17: error: broken() raised ZeroDivisionError: division by zero [import-source]", 1),
        ("syntax.py:make", "syntax.py:1:10: error: invalid Python: invalid syntax [import-source]", 1),
        ("raises.py:make", "raises.py:3: error: running the file raised RuntimeError: no GPU here [import-source]", 1),
        ("net.py", "MODEL is a .onnx file or path/to/file.py:factory", 2),
    ],
    ids=[
        "missing-file",
        "misspelt",
        "not-callable",
        "not-a-module",
        "factory-raises",
        "syntax",
        "file-raises",
        "no-attr",
    ],
)
def test_bad_factory_is_a_located_error(tmp_path: Path, monkeypatch, source: str, expected: str, status: int) -> None:
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path,
        "net.py",
        HEADER + "LIMIT = 3\n\n\ndef numbers():\n    return [1]\n\n\ndef broken():\n    return 1 / 0\n",
    )
    write(tmp_path, "syntax.py", "def make(:\n    pass\n")
    write(tmp_path, "raises.py", "import torch\n\nraise RuntimeError('no GPU here')\n")
    code, stdout, stderr = run("import", source, "--input-shape", "1,3,8,8", "--output", "out.yaml")
    assert (code, stdout) == (status, "")
    assert expected in stderr, stderr
    no_traceback(stderr)
    assert not (tmp_path / "out.yaml").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--free", "strides"], "--free takes kernel, stride, padding, dilation, output_padding; not strides"),
        (["--free-layers", "conv"], "--free-layers limits --free; give --free too"),
        (["--free", "kernel", "--free-layers", "("], "--free-layers is not a regular expression"),
        (["--input-shape", "1,3"], "--input-shape is N,C and 1 to 3 spatial sizes"),
        (["--input-shape", "1,3,x"], "--input-shape: must be an integer, not 'x'"),
    ],
    ids=["free", "free-layers-alone", "regex", "rank", "not-int"],
)
def test_usage_errors(tmp_path: Path, argv: list[str], expected: str) -> None:
    path = write(tmp_path, "net.py", HEADER + DCGAN)
    argv = ["--input-shape", "1,16,1,1", *argv] if "--input-shape" not in argv else argv
    code, _, stderr = run("import", f"{path}:make", *argv, "--output", tmp_path / "o.yaml")
    assert code == 2 and expected in stderr, stderr
    no_traceback(stderr)


def test_torch_model_needs_an_input_shape(tmp_path: Path) -> None:
    path = write(tmp_path, "net.py", HEADER + DCGAN)
    code, _, stderr = run("import", f"{path}:make", "--output", tmp_path / "o.yaml")
    assert code == 2 and "needs --input-shape" in stderr


def test_missing_onnx_is_a_usage_error_with_the_install_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "planner.importer.onnx_graph", raising=False)
    code, _, stderr = run("import", write(tmp_path, "m.onnx", b""), "--output", tmp_path / "o.yaml")
    assert code == 2
    assert "reading an ONNX model needs onnx, which is not installed: pip install torch==2.13.0 onnx" in stderr


def test_not_an_onnx_file(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    code, _, stderr = run("import", write(tmp_path, "m.onnx", b"not a model"), "--output", tmp_path / "o.yaml")
    assert code == 1 and "m.onnx: error: not an ONNX model" in stderr
    no_traceback(stderr)


def test_onnx_reader_folds_shape_subgraphs(tmp_path: Path) -> None:
    """A hand-written ONNX graph: SAME_UPPER padding resolved per side, a Resize whose sizes come
    from Shape -> Slice -> Concat folded (and linked to the layer whose shape it read), a Slice over
    two axes as two layers, Flatten as flatten, MatMul + Add as one linear layer with a bias."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from planner.importer import read_model, simplify

    def const(name: str, value) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value), name)

    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="/stem/Relu"),
        helper.make_node("Conv", ["r", "w"], ["c"], name="/down/Conv", strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Shape", ["r"], ["shape"], name="/Shape"),
        helper.make_node("Slice", ["shape", "two", "four"], ["hw"], name="/Slice"),
        helper.make_node("Concat", ["nc", "hw"], ["sizes"], name="/Concat", axis=0),
        helper.make_node("Resize", ["c", "", "", "sizes"], ["up"], name="/up/Resize", mode="nearest"),
        helper.make_node("Slice", ["up", "starts", "ends", "axes"], ["cut"], name="/cut/Slice"),
        helper.make_node("Flatten", ["cut"], ["flat"], name="/Flatten", axis=1),
        helper.make_node("MatMul", ["flat", "w2"], ["mm"], name="/fc/MatMul"),
        helper.make_node("Add", ["mm", "b2"], ["y"], name="/fc/Add"),
    ]
    inits = [
        const("w", np.zeros((4, 4, 4, 4), np.float32)),
        const("two", [2]),
        const("four", [4]),
        const("nc", [1, 4]),
        const("starts", [1, 2]),
        const("ends", [3, 7]),
        const("axes", [1, 3]),
        const("w2", np.zeros((90, 10), np.float32)),
        const("b2", np.zeros(10, np.float32)),
    ]
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    path = tmp_path / "hand.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    read = simplify.collapse_plumbing(read_model(str(path)))
    ops = [(n.op, n.shape) for n in read.nodes]
    assert ops == [
        ("relu", (1, 4, 9, 9)),
        ("conv", (1, 4, 5, 5)),
        ("upsample", (1, 4, 9, 9)),
        ("slice", (1, 2, 9, 9)),
        ("slice", (1, 2, 9, 5)),
        ("flatten", (1, 90)),
        ("linear", (1, 10)),
    ]
    conv, up, cut1, cut2, _, fc = read.nodes[1:]
    assert conv.params["padding"] == ((1, 2), (1, 2)) and conv.params["padding_mode"] == "same"
    assert up.params == {"size": (9, 9)} and read.like == {"up": "r"}
    assert (cut1.params, cut2.params) == (
        {"axis": 1, "start": 1, "end": 3, "step": 1},
        {"axis": 3, "start": 2, "end": 7, "step": 1},
    )
    assert fc.params == {"out_features": 10, "in_features": 90, "bias": True} and fc.source_op == "MatMul + Add"
    assert read.output == "mm" and [n.scope for n in read.nodes[:2]] == ["stem", "down"]


def test_a_reshape_of_the_spatial_axes_is_imported_and_solves(tmp_path: Path) -> None:
    path = write(tmp_path, "net.py", HEADER + SPATIAL_RESHAPE)
    code, _, stderr = run("import", f"{path}:make", "--input-shape", "1,4,8,8", "--output", tmp_path / "o.yaml")
    assert code == 0, stderr
    text = (tmp_path / "o.yaml").read_text()
    assert "op: reshape, shape: [64]" in text
    _, plan = _solved(text)
    assert [layer.output_shape for layer in plan.layers] == [(1, 4, 64), (1, 6, 64)]
