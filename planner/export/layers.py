"""The PyTorch source of each op's module, one function per op, registered with `@exports`.

`planner.export` looks each layer's op up in `EXPORTS`; adding an op to export is one function here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from planner import arithmetic as ar
from planner.export.source import _axes, _flat_pads, _float, _int, _tuple
from planner.plan import LayerPlan

if TYPE_CHECKING:
    from planner.export import _Exporter

Module = Callable[["_Exporter", LayerPlan], str]
EXPORTS: dict[str, Module] = {}  # op -> the source of its PyTorch module


def exports(*ops: str) -> Callable[[Module], Module]:
    """Register the function that writes the PyTorch module of these ops."""

    def register(write: Module) -> Module:
        for op in ops:
            EXPORTS[op] = write
        return write

    return register


def _rank(layer: LayerPlan) -> int:
    return len(layer.input_shape) - 2


@exports("conv")
def _direct_conv(ex: _Exporter, layer: LayerPlan) -> str:
    return _conv(ex, layer, transposed=False)


@exports("conv_transpose")
def _transposed_conv(ex: _Exporter, layer: LayerPlan) -> str:
    return _conv(ex, layer, transposed=True)


@exports("maxpool")
def _max_pool(ex: _Exporter, layer: LayerPlan) -> str:
    return _pool(ex, layer, is_max=True)


@exports("avgpool")
def _avg_pool(ex: _Exporter, layer: LayerPlan) -> str:
    return _pool(ex, layer, is_max=False)


@exports("adaptive_avgpool")
def _adaptive_avg_pool(ex: _Exporter, layer: LayerPlan) -> str:
    return f"nn.AdaptiveAvgPool{_rank(layer)}d({_axes(layer.params['output_size'])})"


@exports("adaptive_maxpool")
def _adaptive_max_pool(ex: _Exporter, layer: LayerPlan) -> str:
    return f"nn.AdaptiveMaxPool{_rank(layer)}d({_axes(layer.params['output_size'])})"


_UPSAMPLE_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear")  # written as literals from this list


@exports("upsample")
def _upsample(ex: _Exporter, layer: LayerPlan) -> str:
    p = layer.params
    if p.get("size") is not None:
        args = [f"size={_tuple(p['size'])}"]
    else:
        factors = p["scale_factor"]
        number = lambda f: _int(f) if isinstance(f, int) else _float(f)  # noqa: E731
        shown = number(factors) if not isinstance(factors, tuple) else f"({', '.join(map(number, factors))},)"
        args = [f"scale_factor={shown}"]
    mode = p.get("mode", "nearest")
    args.append(f'mode="{_UPSAMPLE_MODES[_UPSAMPLE_MODES.index(mode)]}"')
    if "align_corners" in p:
        args.append(f"align_corners={bool(p['align_corners'])}")
    return f"nn.Upsample({', '.join(args)})"


_PAD_MODULES = {"reflect": "ReflectionPad", "replicate": "ReplicationPad", "circular": "CircularPad"}


@exports("pad")
def _pad(ex: _Exporter, layer: LayerPlan) -> str:
    p = layer.params
    if p.get("mode", "constant") == "constant":
        return f"nn.ConstantPad{_rank(layer)}d({_flat_pads(p['padding'])}, {_float(p['value'])})"
    return f"nn.{_PAD_MODULES[p['mode']]}{_rank(layer)}d({_flat_pads(p['padding'])})"


@exports("crop")
def _crop(ex: _Exporter, layer: LayerPlan) -> str:
    ex.helpers.add("Crop")
    return f"Crop(offset={_tuple(layer.params['offset'])}, size={_tuple(layer.params['size'])})"


@exports("concat", "add", "mul")
def _join(ex: _Exporter, layer: LayerPlan) -> str:
    helper = layer.op.capitalize()  # the helper classes Concat, Add and Mul
    ex.helpers.add(helper)
    return f"{helper}()"


@exports("split")
def _split(ex: _Exporter, layer: LayerPlan) -> str:
    ex.helpers.add("Split")
    sizes, chunks = layer.attrs["written"]  # as written: torch cuts the pieces, a check of the plan's sizes
    cut = f"chunks={_int(chunks)}" if chunks is not None else f"sizes=[{', '.join(_int(n) for n in sizes)}]"
    return f"Split(axis={_int(layer.params['axis'])}, {cut})"


@exports("slice")
def _slice(ex: _Exporter, layer: LayerPlan) -> str:
    ex.helpers.add("Slice")
    start, end, step = layer.attrs["written"]  # as written: PyTorch reads them, a check of the plan's bounds
    shown_end = "None" if end is None else _int(end)
    return f"Slice(axis={_int(layer.params['axis'])}, start={_int(start)}, end={shown_end}, step={_int(step)})"


@exports("mean")
def _mean(ex: _Exporter, layer: LayerPlan) -> str:
    ex.helpers.add("Mean")
    return f"Mean(dims={_tuple(layer.params['axes'])}, keepdim={bool(layer.params['keepdim'])})"


@exports("reshape")
def _reshape(ex: _Exporter, layer: LayerPlan) -> str:
    ex.helpers.add("Reshape")
    return f"Reshape(shape=[{', '.join(_int(d) for d in layer.attrs['written'])}])"


@exports("permute")
def _permute(ex: _Exporter, layer: LayerPlan) -> str:
    ex.helpers.add("Permute")
    return f"Permute(dims={_tuple(layer.params['dims'])})"


@exports("pixel_shuffle")
def _pixel_shuffle(ex: _Exporter, layer: LayerPlan) -> str:
    return f"nn.PixelShuffle({_int(layer.params['upscale_factor'])})"


@exports("pixel_unshuffle")
def _pixel_unshuffle(ex: _Exporter, layer: LayerPlan) -> str:
    return f"nn.PixelUnshuffle({_int(layer.params['downscale_factor'])})"


@exports("flatten")
def _flatten(ex: _Exporter, layer: LayerPlan) -> str:
    return "nn.Flatten()"


@exports("linear")
def _linear(ex: _Exporter, layer: LayerPlan) -> str:
    bias = "" if layer.attrs["bias"] else ", bias=False"
    return f"nn.Linear({_int(layer.params['in_features'])}, {_int(layer.params['out_features'])}{bias})"


@exports("batchnorm")
def _batchnorm(ex: _Exporter, layer: LayerPlan) -> str:
    return f"nn.BatchNorm{max(1, _rank(layer))}d({_int(layer.input_shape[1])})"


@exports("dropout")
def _dropout(ex: _Exporter, layer: LayerPlan) -> str:
    rate = layer.attrs["p"]
    return "nn.Dropout()" if rate == 0.5 else f"nn.Dropout(p={_float(rate)})"


@exports("relu")
def _relu(ex: _Exporter, layer: LayerPlan) -> str:
    return "nn.ReLU()"


@exports("sigmoid")
def _sigmoid(ex: _Exporter, layer: LayerPlan) -> str:
    return "nn.Sigmoid()"


@exports("tanh")
def _tanh(ex: _Exporter, layer: LayerPlan) -> str:
    return "nn.Tanh()"


@exports("silu")
def _silu(ex: _Exporter, layer: LayerPlan) -> str:
    return "nn.SiLU()"


@exports("identity")
def _identity(ex: _Exporter, layer: LayerPlan) -> str:
    return "nn.Identity()"


@exports("hardswish", "hardsigmoid", "relu6")
def _plain_activation(ex: _Exporter, layer: LayerPlan) -> str:
    return {"hardswish": "nn.Hardswish()", "hardsigmoid": "nn.Hardsigmoid()", "relu6": "nn.ReLU6()"}[layer.op]


@exports("gelu")
def _gelu(ex: _Exporter, layer: LayerPlan) -> str:
    return 'nn.GELU(approximate="tanh")' if layer.attrs["approximate"] == "tanh" else "nn.GELU()"


@exports("leaky_relu")
def _leaky_relu(ex: _Exporter, layer: LayerPlan) -> str:
    slope = layer.attrs["negative_slope"]
    return "nn.LeakyReLU()" if slope == 0.01 else f"nn.LeakyReLU(negative_slope={_float(slope)})"


@exports("elu")
def _elu(ex: _Exporter, layer: LayerPlan) -> str:
    alpha = layer.attrs["alpha"]
    return "nn.ELU()" if alpha == 1.0 else f"nn.ELU(alpha={_float(alpha)})"


@exports("softmax")
def _softmax(ex: _Exporter, layer: LayerPlan) -> str:
    return f"nn.Softmax(dim={_int(layer.params['dim'])})"


def _norm_options(layer: LayerPlan, affine_key: str, affine_default: bool) -> str:
    options = "" if layer.attrs["eps"] == 1e-5 else f", eps={_float(layer.attrs['eps'])}"
    if layer.attrs[affine_key] != affine_default:
        options += f", {affine_key}={bool(layer.attrs[affine_key])}"
    return options


@exports("layernorm")
def _layernorm(ex: _Exporter, layer: LayerPlan) -> str:
    options = _norm_options(layer, "elementwise_affine", True)
    if not layer.attrs["bias"]:
        options += ", bias=False"
    return f"nn.LayerNorm({_tuple(layer.params['normalized_shape'])}{options})"


@exports("groupnorm")
def _groupnorm(ex: _Exporter, layer: LayerPlan) -> str:
    channels = _int(layer.input_shape[1])
    return f"nn.GroupNorm({_int(layer.params['num_groups'])}, {channels}{_norm_options(layer, 'affine', True)})"


@exports("instancenorm")
def _instancenorm(ex: _Exporter, layer: LayerPlan) -> str:
    return f"nn.InstanceNorm{_rank(layer)}d({_int(layer.input_shape[1])}{_norm_options(layer, 'affine', False)})"


def _conv(ex: _Exporter, layer: LayerPlan, transposed: bool) -> str:
    p, rank = layer.params, len(layer.input_shape) - 2
    pads = p["padding"]
    symmetric = all(b == e for b, e in pads)
    args = [_int(layer.input_shape[1]), _int(p["out_channels"]), f"kernel_size={_axes(p['kernel'])}"]
    if any(s != 1 for s in p["stride"]):
        args.append(f"stride={_axes(p['stride'])}")
    if symmetric and any(b for b, _ in pads):
        args.append(f"padding={_axes([b for b, _ in pads])}")
    if transposed and any(p["output_padding"]):
        args.append(f"output_padding={_axes(p['output_padding'])}")
    if p["groups"] != 1:
        args.append(f"groups={_int(p['groups'])}")
    if any(d != 1 for d in p["dilation"]):
        args.append(f"dilation={_axes(p['dilation'])}")
    if not layer.attrs["bias"]:
        args.append("bias=False")
    core = f"nn.{'ConvTranspose' if transposed else 'Conv'}{rank}d({', '.join(args)})"
    if symmetric:
        return core
    if not transposed:
        return f"nn.Sequential(nn.ConstantPad{rank}d({_flat_pads(pads)}, 0.0), {core})"
    # padding=0, then trim `begin` cells at the start and `end` at the end of each axis
    ex.helpers.add("Crop")
    crop = f"Crop(offset={_tuple([b for b, _ in pads])}, size={_tuple(layer.output_shape[2:])})"
    return f"nn.Sequential({core}, {crop})"


def _pool(ex: _Exporter, layer: LayerPlan, is_max: bool) -> str:
    p, rank = layer.params, len(layer.input_shape) - 2
    k, s, pads = p["kernel"], p["stride"], p["padding"]
    d = p.get("dilation", (1,) * rank)
    args = [f"kernel_size={_axes(k)}"]
    if tuple(s) != tuple(k):
        args.append(f"stride={_axes(s)}")
    # nn.*PoolNd takes the padding as it is
    if all(b == e and ar.pytorch_pool_padding_fits(b, e, kk) for (b, e), kk in zip(pads, k, strict=True)):
        if any(b for b, _ in pads):
            args.append(f"padding={_axes([b for b, _ in pads])}")
        if is_max and any(x != 1 for x in d):
            args.append(f"dilation={_axes(d)}")
        if p["ceil_mode"]:
            args.append("ceil_mode=True")
        if not is_max and not p["count_include_pad"]:
            args.append("count_include_pad=False")
        return f"nn.{'Max' if is_max else 'Avg'}Pool{rank}d({', '.join(args)})"
    # Explicit padding; ceil mode's partial last window becomes extra end padding, and the
    # output is trimmed to the plan's size where PyTorch's rule drops a window that starts in
    # the end padding.
    sizes = layer.output_shape[2:]
    extra = [
        ar.windows_overhang(o, i, kk, ss, b, e, dd)
        for o, i, kk, ss, (b, e), dd in zip(sizes, layer.input_shape[2:], k, s, pads, d, strict=True)
    ]
    windows = [
        ar.conv_output(i, kk, ss, b, e + x, dd)
        for i, (b, e), x, kk, ss, dd in zip(layer.input_shape[2:], pads, extra, k, s, d, strict=True)
    ]
    if not is_max:
        if p["count_include_pad"] and not any(extra):  # every window's divisor is the kernel's size
            parts = [f"nn.ConstantPad{rank}d({_flat_pads(pads)}, 0.0)", f"nn.AvgPool{rank}d({', '.join(args)})"]
        else:
            ex.helpers.add("PaddedAvgPool")
            return (
                f"PaddedAvgPool(kernel_size={_tuple(k)}, stride={_tuple(s)}, padding={_tuple(pads)}, "
                f"extra={_tuple(extra)}, "
                f"count_include_pad={bool(p['count_include_pad'])}, size={_tuple(sizes)})"
            )
    else:
        if any(x != 1 for x in d):
            args.append(f"dilation={_axes(d)}")
        padded = [(b, e + x) for (b, e), x in zip(pads, extra, strict=True)]
        parts = [f'nn.ConstantPad{rank}d({_flat_pads(padded)}, float("-inf"))', f"nn.MaxPool{rank}d({', '.join(args)})"]
    if list(windows) != list(sizes):
        ex.helpers.add("Crop")
        parts.append(f"Crop(offset={_tuple((0,) * rank)}, size={_tuple(sizes)})")
    return f"nn.Sequential({', '.join(parts)})"
