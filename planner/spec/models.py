"""Pydantic v2 models of a spec file (SPEC.md section 1), `extra="forbid"` throughout.

These models check the *form* of a spec. What the forms mean (unknowns, domains,
per-axis expansion) is the business of `planner.graph`, which turns a `Spec` into a
`Network`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictFloat, StrictInt, Tag

PositiveInt = Annotated[StrictInt, Field(ge=1)]
FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]  # an int or a float; never nan, inf or a bool
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]  # usable in constraint expressions
Ref = Annotated[
    str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\[[0-9]+\])?$")
]  # a layer, or `split[i]`: one of its pieces
VarRef = Annotated[str, Field(pattern=r"^\$[A-Za-z_][A-Za-z0-9_]*$")]
UnknownMark = Literal["?"]
PaddingMode = Literal["valid", "same", "same_lower", "full"]
VALUE_FORMS = 'an int, "?", {min, max}, {one_of: [...]} or "$name"'


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(Model):
    min: StrictInt
    max: StrictInt
    multiple_of: PositiveInt | None = None


class OneOf(Model):
    one_of: Annotated[list[StrictInt], Field(min_length=1)]


class ForAll(Model):
    for_all: Range


def form_of(value: Any) -> str | None:
    """Which value form `value` is written in: int, unknown, var, mode, one_of, for_all, range or axes."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "int"
    if value == "?":
        return "unknown"
    if isinstance(value, str):
        return "var" if value.startswith("$") else ("mode" if value in get_args(PaddingMode) else None)
    if isinstance(value, (Range, OneOf, ForAll)):  # a model's own defaults, when they are serialised
        return {Range: "range", OneOf: "one_of", ForAll: "for_all"}[type(value)]
    if isinstance(value, dict):
        if "one_of" in value:
            return "one_of"
        if "for_all" in value:
            return "for_all"
        return "range"
    if isinstance(value, list):
        return "axes"
    return None


FORM_TAG = "<{}>"  # a form's tag in pydantic's error locations; never a key of the data, unlike `one_of`
FORM_KEYS = {"one_of": ("one_of",), "for_all": ("for_all",), "range": ("min", "max", "multiple_of")}


def _form_tag(value: Any) -> str | None:
    form = form_of(value)
    return None if form is None else FORM_TAG.format(form)


def _forms(expected: str) -> Discriminator:
    return Discriminator(_form_tag, custom_error_type="value_form", custom_error_message=f"expected {expected}")


def _t(form: str) -> Tag:
    return Tag(FORM_TAG.format(form))


# One value of a layer parameter, shared by all axes (SPEC 1.1).
Scalar: TypeAlias = Annotated[
    Annotated[StrictInt, _t("int")]
    | Annotated[UnknownMark, _t("unknown")]
    | Annotated[Range, _t("range")]
    | Annotated[OneOf, _t("one_of")]
    | Annotated[VarRef, _t("var")],
    _forms(VALUE_FORMS),
]
# kernel, stride, dilation, output_padding: a scalar form or one per spatial axis.
ParamValue: TypeAlias = Annotated[
    Annotated[StrictInt, _t("int")]
    | Annotated[UnknownMark, _t("unknown")]
    | Annotated[Range, _t("range")]
    | Annotated[OneOf, _t("one_of")]
    | Annotated[VarRef, _t("var")]
    | Annotated[list[Scalar], Field(min_length=1), _t("axes")],
    _forms(VALUE_FORMS + " or a list with one per spatial axis"),
]
# One axis of padding: symmetric, or a [begin, end] pair.
PaddingAxis: TypeAlias = Annotated[
    Annotated[StrictInt, _t("int")]
    | Annotated[UnknownMark, _t("unknown")]
    | Annotated[Range, _t("range")]
    | Annotated[OneOf, _t("one_of")]
    | Annotated[VarRef, _t("var")]
    | Annotated[list[Scalar], Field(min_length=2, max_length=2), _t("axes")],
    _forms(VALUE_FORMS + " or a [begin, end] pair"),
]
PaddingValue: TypeAlias = Annotated[
    Annotated[PaddingMode, _t("mode")]
    | Annotated[StrictInt, _t("int")]
    | Annotated[UnknownMark, _t("unknown")]
    | Annotated[Range, _t("range")]
    | Annotated[OneOf, _t("one_of")]
    | Annotated[VarRef, _t("var")]
    | Annotated[list[PaddingAxis], Field(min_length=1), _t("axes")],
    _forms("valid, same, same_lower, full, " + VALUE_FORMS + " or a list with one per spatial axis"),
]
# A spatial size of the input (SPEC 1.2).
SizeValue: TypeAlias = Annotated[
    Annotated[PositiveInt, _t("int")]
    | Annotated[UnknownMark, _t("unknown")]
    | Annotated[Range, _t("range")]
    | Annotated[ForAll, _t("for_all")],
    _forms('an int, "?", {min, max, multiple_of} or {for_all: {min, max, multiple_of}}'),
]
# A domain in `defaults` or `variables`.
Domain: TypeAlias = Annotated[
    Annotated[StrictInt, _t("int")]
    | Annotated[UnknownMark, _t("unknown")]
    | Annotated[Range, _t("range")]
    | Annotated[OneOf, _t("one_of")],
    _forms('an int, "?", {min, max} or {one_of: [...]}'),
]
ExpectEntry: TypeAlias = Annotated[
    Annotated[NonNegativeInt, _t("int")] | Annotated[UnknownMark, _t("unknown")],
    _forms('an int or "?"'),
]
IntOrAxes = PositiveInt | Annotated[list[PositiveInt], Field(min_length=1)]


class LayerBase(Model):
    name: Name | None = None
    input: Ref | None = None
    expect: list[ExpectEntry] | None = None
    op: str  # every layer model narrows it to the Literal of the ops it serves


class Conv(LayerBase):
    op: Literal["conv"]
    out_channels: PositiveInt
    kernel: ParamValue
    stride: ParamValue = 1
    padding: PaddingValue = 0
    dilation: ParamValue = 1
    groups: PositiveInt = 1
    bias: StrictBool = True


class ConvTranspose(Conv):
    op: Literal["conv_transpose"]  # type: ignore[assignment]
    output_padding: ParamValue = 0


class MaxPool(LayerBase):
    op: Literal["maxpool"]
    kernel: ParamValue
    stride: ParamValue | None = None  # None: the kernel's value, as in PyTorch
    padding: PaddingValue = 0
    dilation: ParamValue = 1
    ceil_mode: StrictBool = False


class AvgPool(LayerBase):
    op: Literal["avgpool"]
    kernel: ParamValue
    stride: ParamValue | None = None
    padding: PaddingValue = 0
    ceil_mode: StrictBool = False
    count_include_pad: StrictBool = True


class AdaptiveAvgPool(LayerBase):
    op: Literal["adaptive_avgpool", "adaptive_maxpool"]
    output_size: IntOrAxes


PositiveFloat = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]
ScaleFactor = PositiveInt | PositiveFloat  # an int stays an int: the output is then exactly i * f


class Upsample(LayerBase):
    op: Literal["upsample"]
    scale_factor: ScaleFactor | Annotated[list[ScaleFactor], Field(min_length=1)] | None = None
    size: IntOrAxes | None = None
    like: Name | None = None  # resize to this layer's spatial size
    mode: Literal["nearest", "linear", "bilinear", "bicubic", "trilinear"] = "nearest"
    align_corners: StrictBool = False  # only for the interpolating modes


class Pad(LayerBase):
    op: Literal["pad"]
    padding: PaddingValue
    value: FiniteFloat = 0.0
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant"


class Slice(LayerBase):
    op: Literal["slice"]
    axis: StrictInt  # any axis but the batch axis; negative counts from the end
    start: StrictInt = 0
    end: StrictInt | None = None  # None: to the end
    step: PositiveInt = 1


class Split(LayerBase):
    """torch.split (`sizes`) or torch.chunk (`chunks`) along `axis`: outputs `name[0]`, `name[1]`, ..."""

    op: Literal["split"]
    sizes: Annotated[list[PositiveInt], Field(min_length=2)] | None = None
    chunks: Annotated[int, Field(ge=2)] | None = None
    axis: StrictInt = 1

    @property
    def pieces(self) -> int:
        """How many outputs it has (as written: `sizes` or `chunks`)."""
        return len(self.sizes) if self.sizes is not None else (self.chunks or 0)


class Mean(LayerBase):
    op: Literal["mean"]
    axes: Annotated[list[StrictInt], Field(min_length=1)] | None = None  # None: every spatial axis
    keepdim: StrictBool = False


class Permute(LayerBase):
    op: Literal["permute"]
    dims: Annotated[list[StrictInt], Field(min_length=3)]  # a permutation of the spatial axes: N and C stay first


class Reshape(LayerBase):
    """The spatial axes reshaped (torch.reshape keeping N and C): `shape` is the new spatial shape, one
    entry may be -1 (inferred), e.g. [-1] for x.flatten(2)."""

    op: Literal["reshape"]
    shape: Annotated[list[Annotated[StrictInt, Field(ge=-1)]], Field(min_length=1, max_length=3)]


class PixelShuffle(LayerBase):
    op: Literal["pixel_shuffle"]
    upscale_factor: PositiveInt


class PixelUnshuffle(LayerBase):
    op: Literal["pixel_unshuffle"]
    downscale_factor: PositiveInt


class Flatten(LayerBase):
    op: Literal["flatten"]


class Linear(LayerBase):
    op: Literal["linear"]
    out_features: PositiveInt
    in_features: PositiveInt | None = None
    bias: StrictBool = True


class Concat(LayerBase):
    op: Literal["concat", "add", "mul"]
    inputs: Annotated[list[Ref], Field(min_length=2)]


class Crop(LayerBase):
    op: Literal["crop"]
    size: IntOrAxes | None = None
    like: Name | None = None


class Dropout(LayerBase):
    op: Literal["dropout"]
    p: Annotated[StrictFloat, Field(ge=0, le=1, allow_inf_nan=False)] = 0.5


class Elementwise(LayerBase):
    op: Literal["relu", "sigmoid", "tanh", "silu", "batchnorm", "identity", "hardswish", "hardsigmoid", "relu6"]


class Gelu(LayerBase):
    op: Literal["gelu"]
    approximate: Literal["none", "tanh"] = "none"


class LeakyRelu(LayerBase):
    op: Literal["leaky_relu"]
    negative_slope: FiniteFloat = 0.01


class Elu(LayerBase):
    op: Literal["elu"]
    alpha: FiniteFloat = 1.0


class Softmax(LayerBase):
    op: Literal["softmax"]
    dim: StrictInt = 1  # the channels; negative counts from the end


Epsilon = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]


class LayerNorm(LayerBase):
    op: Literal["layernorm"]
    normalized_shape: IntOrAxes  # the trailing dims normalised over, as nn.LayerNorm takes them
    eps: Epsilon = 1e-5
    elementwise_affine: StrictBool = True
    bias: StrictBool = True


class GroupNorm(LayerBase):
    op: Literal["groupnorm"]
    num_groups: PositiveInt
    eps: Epsilon = 1e-5
    affine: StrictBool = True


class InstanceNorm(LayerBase):
    op: Literal["instancenorm"]
    eps: Epsilon = 1e-5
    affine: StrictBool = False


LAYER_MODELS: tuple[type[LayerBase], ...] = (
    Conv,
    ConvTranspose,
    MaxPool,
    AvgPool,
    AdaptiveAvgPool,
    Upsample,
    Pad,
    Crop,
    Concat,
    Flatten,
    Linear,
    Dropout,
    Elementwise,
    Slice,
    Split,
    Mean,
    Permute,
    Reshape,
    PixelShuffle,
    PixelUnshuffle,
    Gelu,
    LeakyRelu,
    Elu,
    Softmax,
    LayerNorm,
    GroupNorm,
    InstanceNorm,
)


def ops_of(model: type[LayerBase]) -> tuple[str, ...]:
    """The op names a layer model serves (its `op` Literal)."""
    return get_args(model.model_fields["op"].annotation)


OP_NAMES: tuple[str, ...] = tuple(op for m in LAYER_MODELS for op in ops_of(m))


def _op_of(value: Any) -> str | None:
    op = value.get("op") if isinstance(value, dict) else None
    return op if isinstance(op, str) and op in OP_NAMES else None


if TYPE_CHECKING:  # a union built from LAYER_MODELS; to a type checker, any layer model
    Layer: TypeAlias = LayerBase
else:
    Layer = Annotated[
        Union[tuple(Annotated[m, Tag(op)] for m in LAYER_MODELS for op in ops_of(m))],  # noqa: UP007 (from a tuple)
        Discriminator(_op_of, custom_error_type="unknown_op", custom_error_message="unknown op"),
    ]


class InputSpec(Model):
    shape: Annotated[list[SizeValue], Field(min_length=3, max_length=5)]


class Defaults(Model):
    kernel: Domain = Range(min=1, max=7)
    stride: Domain = Range(min=1, max=4)
    padding: Domain = Range(min=0, max=3)
    dilation: Domain = Range(min=1, max=4)
    output_padding: Domain = Range(min=0, max=3)
    size: Domain = Range(min=1, max=4096)


class Objective(Model):
    minimize: Literal["params", "flops", "kernel_sum"] | None = None
    maximize: Literal["receptive_field"] | None = None


BlockLayer = Annotated[
    dict[str, Any],
    Field(description='a layer or a block use, as in `layers`; any value may be a "$param" of the block'),
]


class Block(Model):
    """A named list of layers with `$param` placeholders, expanded where it is used (docs/blocks.md)."""

    params: dict[Name, Any] = Field({}, description="each parameter's default; null (~) when every use must give it")
    layers: list[BlockLayer]


class BlockUse(Model):
    """One use of a block in `layers` (or in another block): its layers, renamed `<name>_<layer>`."""

    block: Name
    name: Name | None = None
    input: Ref | None = None
    with_: dict[Name, Any] = Field({}, alias="with", description="the block's parameters for every copy")
    first: dict[Name, Any] = Field({}, description="parameters for the first copy only, over `with`")
    repeat: PositiveInt | None = Field(None, description="copies chained one after the other, named <name>_<i>")


def is_block_use(value: Any) -> bool:
    """Whether an entry of `layers` is a use of a block: a mapping with `block` and no `op`."""
    return isinstance(value, dict) and "block" in value and "op" not in value


def _layer_or_use(value: Any) -> str:
    return "<use>" if is_block_use(value) else "<layer>"


if TYPE_CHECKING:  # block uses never outlive the loader's expansion (planner/spec/blocks.py)
    SpecLayer: TypeAlias = LayerBase
else:
    SpecLayer = Annotated[
        Annotated[Layer, Tag("<layer>")] | Annotated[BlockUse, Tag("<use>")], Discriminator(_layer_or_use)
    ]


class Spec(Model):
    name: str | None = None
    dialect: Literal["pytorch", "onnx", "tensorflow"] = "pytorch"
    input: InputSpec
    defaults: Defaults = Defaults()
    variables: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], Domain] = {}
    blocks: dict[Name, Block] = {}
    layers: Annotated[list[SpecLayer], Field(min_length=1)]
    constraints: list[str] = []
    objective: Objective | None = None


_NO_DEFAULT = object()


def field_default(op: str, key: str) -> Any:
    """The value a layer of `op` takes for `key` when the spec leaves it out (a sentinel when it must be given)."""
    for model in LAYER_MODELS:
        if op in ops_of(model) and key in model.model_fields:
            field = model.model_fields[key]
            return _NO_DEFAULT if field.is_required() else field.default
    return _NO_DEFAULT


def fields_of(op: str | None) -> tuple[str, ...]:
    """The keys a layer with this op accepts (for did-you-mean hints)."""
    for model in LAYER_MODELS:
        if op in ops_of(model):
            return tuple(model.model_fields)
    return ()
