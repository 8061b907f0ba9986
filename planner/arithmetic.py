"""The guide's arithmetic, written once, over Python ints and Z3 terms alike.

Every output-size relation of Dumoulin & Visin (Relationships 1-15), generalised per
axis and per side of padding, lives here. The solver calls these functions with Z3
terms, the plan calculator and the executor's checks with ints; only floor division,
max and if-then-else need to know which kind of number they hold.

Notation per axis (the guide's): input size `i`, kernel `k`, stride `s`, padding at the
beginning `pb` and at the end `pe` (the guide's `p` is `pb == pe`), dilation `d`,
`output_padding` `a` (the guide's `a` of Relationship 14).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TypeAlias

import z3

from planner.errors import FieldUnsupported

Num: TypeAlias = int | z3.ArithRef
Bool: TypeAlias = bool | z3.BoolRef

INT64_MAX = 2**63 - 1  # no framework holds a size, an integer or an element count beyond int64


def is_int(*values: object) -> bool:
    """True when every value is a plain Python int (no Z3 term among them)."""
    return all(isinstance(v, int) for v in values)


def floor_div(a: Num, b: Num) -> Num:
    """floor(a / b) for b > 0. Z3's integer division is Euclidean, which is floor for b > 0."""
    if is_int(a, b):
        return a // b
    return a / b


def ceil_div(a: Num, b: Num) -> Num:
    """ceil(a / b) for b > 0."""
    return -floor_div(-a, b)


def maximum(a: Num, b: Num) -> Num:
    if is_int(a, b):
        return max(a, b)
    return z3.If(a >= b, a, b)


def select(condition: Bool, then: Num, otherwise: Num) -> Num:
    """`then if condition else otherwise`, for a Python bool or a Z3 condition."""
    if isinstance(condition, bool):
        return then if condition else otherwise
    return z3.If(condition, then, otherwise)


def all_of(*conditions: Bool) -> Bool:
    if all(isinstance(c, bool) for c in conditions):
        return all(conditions)
    return z3.And(*conditions)


def negate(condition: Bool) -> Bool:
    return (not condition) if isinstance(condition, bool) else z3.Not(condition)


def any_of(*conditions: Bool) -> Bool:
    if all(isinstance(c, bool) for c in conditions):
        return any(conditions)
    return z3.Or(*conditions)


# --- direct convolution and pooling ------------------------------------------------


def effective_kernel(k: Num, d: Num) -> Num:
    """Relationship 15: a dilated kernel spans k + (k - 1)(d - 1) input units."""
    return d * (k - 1) + 1


def padded_size(i: Num, pb: Num, pe: Num) -> Num:
    return i + pb + pe


def conv_output(i: Num, k: Num, s: Num, pb: Num, pe: Num, d: Num) -> Num:
    """Relationships 1-7 and 15: o = floor((i + pb + pe - k_eff) / s) + 1."""
    return floor_div(padded_size(i, pb, pe) - effective_kernel(k, d), s) + 1


def pool_output(i: Num, k: Num, s: Num, pb: Num, pe: Num, d: Num, ceil_mode: bool) -> Num:
    """Relationship 7 with PyTorch's ceil_mode.

    In ceil mode the last window may run past the end padding, but it must start
    inside the input or the begin padding: if `(o - 1) s >= i + pb`, `o` drops by one.
    """
    if not ceil_mode:
        return conv_output(i, k, s, pb, pe, d)
    o = floor_div(padded_size(i, pb, pe) - effective_kernel(k, d) + s - 1, s) + 1
    return select((o - 1) * s >= i + pb, o - 1, o)


def kernel_fits(i: Num, k: Num, pb: Num, pe: Num, d: Num) -> Bool:
    """The guide leaves it unsaid: there is no output unless i + pb + pe >= k_eff."""
    return padded_size(i, pb, pe) >= effective_kernel(k, d)


# --- padding modes --------------------------------------------------------------------


def same_padding_total(i: Num, k: Num, s: Num, d: Num) -> Num:
    """Total padding that makes o = ceil(i / s) (TensorFlow/ONNX SAME; Relationship 3 when s = 1)."""
    return maximum((ceil_div(i, s) - 1) * s + effective_kernel(k, d) - i, 0)


def full_padding(k: Num, d: Num) -> Num:
    """Relationship 4: full padding, k_eff - 1 on each side."""
    return effective_kernel(k, d) - 1


def split_padding(total: Num, extra_at_end: bool = True) -> tuple[Num, Num]:
    """Split a total padding into (begin, end); an odd extra pixel goes to the end or the beginning."""
    half = floor_div(total, 2)
    return (half, total - half) if extra_at_end else (total - half, half)


# --- transposed convolution -------------------------------------------------------------


def conv_transpose_output(i: Num, k: Num, s: Num, pb: Num, pe: Num, d: Num, a: Num) -> Num:
    """Relationships 8-14: o' = s(i' - 1) + k_eff - pb - pe + a."""
    return s * (i - 1) + effective_kernel(k, d) - pb - pe + a


def transpose_same_padding_total(k: Num, s: Num, d: Num, a: Num) -> Num:
    """Total padding that makes a transposed convolution's output i * s (ONNX SAME), never below 0
    (when k_eff + a < s no padding can; ONNX then gives s(i - 1) + k_eff + a)."""
    return maximum(effective_kernel(k, d) - s + a, 0)


def stretched_size(i: Num, s: Num) -> Num:
    """The guide's ĩ': s - 1 zeros inserted between the i units of the input."""
    return i + (s - 1) * (i - 1)


def transpose_equivalent_padding(k: Num, p: Num, d: Num) -> Num:
    """p' = k_eff - p - 1: padding of the direct convolution that emulates a transposed one."""
    return effective_kernel(k, d) - p - 1


def transpose_crop_fits(i: Num, k: Num, s: Num, pb: Num, pe: Num, d: Num, a: Num) -> Bool:
    """A transposed convolution's padding as PyTorch, ONNX and TensorFlow read it: a crop of the
    full output s(i' - 1) + k_eff + a, `pb` cells at the start and `pe` at the end, which must leave
    at least one cell. Padding beyond d(k - 1) is allowed; the equivalent direct convolution then
    pads by d(k - 1) - p < 0, that is, crops its stretched input."""
    return conv_transpose_output(i, k, s, pb, pe, d, a) >= 1


def transpose_extra_zeros(i: Num, k: Num, s: Num, p: Num, d: Num = 1) -> Num:
    """Relationship 14's a = (i + 2p - k_eff) mod s: which direct input size a transposed convolution restores."""
    return (i + 2 * p - effective_kernel(k, d)) % s


# --- graphs ---------------------------------------------------------------------------


def centre_crop_begin(i: Num, o: Num) -> Num:
    """Units cut at the beginning by a centre crop from i to o (the original U-Net's crop; the odd one at the end)."""
    return floor_div(i - o, 2)


# --- receptive fields -------------------------------------------------------------------


def receptive_step(r: Num, j: Num, k: Num, s: Num, d: Num) -> tuple[Num, Num]:
    """Receptive field and jump after a sliding window: r' = r + (k_eff - 1) j, j' = j s."""
    return r + (effective_kernel(k, d) - 1) * j, j * s


def windows_overhang(o: Num, i: Num, k: Num, s: Num, pb: Num, pe: Num, d: Num) -> Num:
    """Cells past the end padding that o windows reach: (o - 1) s + k_eff - (i + pb + pe), or 0 when they fit."""
    return maximum((o - 1) * s + effective_kernel(k, d) - padded_size(i, pb, pe), 0)


def ceil_mode_extra_padding(i: Num, k: Num, s: Num, pb: Num, pe: Num, d: Num) -> Num:
    """Cells past the end padding that ceil mode's last window reaches: the padded size grows to the
    next one the windows tile exactly, so ceil mode counts conv_output(i, k, s, pb, pe + extra, d)
    windows before PyTorch drops one that starts in the end padding (0 when the kernel does not fit)."""
    span = padded_size(i, pb, pe) - effective_kernel(k, d)
    return select(kernel_fits(i, k, pb, pe, d), ceil_div(span, s) * s - span, 0)


def resized_jump(j: Num | Fraction, i: Num, o: Num) -> Fraction:
    """The jump after resizing i cells to o (upsampling, adaptive pooling): j i / o, exactly.

    A fraction of Z3 terms is not linear, so over terms it is refused (FieldUnsupported)."""
    if is_int(i, o) and (is_int(j) or isinstance(j, Fraction)):
        return Fraction(j) * i / o
    raise FieldUnsupported(
        "receptive fields through transposed convolutions or upsampling are only computed "
        "for solved plans, not inside constraints"
    )


def transpose_receptive_step(
    r: Num | Fraction, j: Num | Fraction, k: Num, s: Num, d: Num
) -> tuple[Num | Fraction, Fraction]:
    """A transposed convolution is the direct one over its stretched input, whose jump is j / s."""
    jump = resized_jump(j, 1, s)
    return r + (effective_kernel(k, d) - 1) * jump, jump


def adaptive_pool_bin(i: Num, o: Num) -> Num:
    """The widest window adaptive pooling from i to o cells takes: ceil(i / o)."""
    return ceil_div(i, o)


def adaptive_receptive_step(r: Num, j: Num, i: Num, o: Num) -> tuple[Num, Fraction]:
    """Receptive field and jump after adaptive pooling from i to o cells (its widest window)."""
    return r + (adaptive_pool_bin(i, o) - 1) * j, resized_jump(j, i, o)


def upsample_output(i: Num, f: Num) -> Num:
    """Nearest-neighbour upsampling by an integer factor: o = i f."""
    return i * f


def pytorch_pool_padding_fits(pb: Num, pe: Num, k: Num) -> Bool:
    """nn.MaxPoolNd and nn.AvgPoolNd take padding of at most half the kernel on each side."""
    return all_of(2 * pb <= k, 2 * pe <= k)


def onnx_pool_padding_fits(pb: Num, pe: Num, k: Num) -> Bool:
    """ONNX and TensorFlow pooling take padding smaller than the kernel on each side."""
    return all_of(pb < k, pe < k)
