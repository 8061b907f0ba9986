"""The guide's arithmetic, written once, over Python ints, Z3 terms and NumPy integer arrays.

Every output-size relation of Dumoulin & Visin (Relationships 1-15), generalised per
axis and per side of padding, lives here. The Z3 encoding calls these functions with Z3
terms, the plan calculator and the executor's checks with ints, and the reachable-size
pass (`planner.solver.reach`) with NumPy arrays that hold one layer's whole grid of input
sizes and values of its unknowns at once. Only floor division, max, if-then-else and the
boolean connectives need to know which kind of number they hold; NumPy is never imported
here (an array can only exist once the caller has imported it).

Notation per axis (the guide's): input size `i`, kernel `k`, stride `s`, padding at the
beginning `pb` and at the end `pe` (the guide's `p` is `pb == pe`), dilation `d`,
`output_padding` `a` (the guide's `a` of Relationship 14).
"""

from __future__ import annotations

import functools
import math
import sys
from fractions import Fraction
from typing import TypeAlias

import z3

from planner.errors import FieldUnsupported

Num: TypeAlias = int | z3.ArithRef
Bool: TypeAlias = bool | z3.BoolRef

INT64_MAX = 2**63 - 1  # no framework holds a size, an integer or an element count beyond int64


def is_int(*values: object) -> bool:
    """True when every value is a plain Python int (no Z3 term or array among them)."""
    for v in values:  # loops, not all(generator): these run several times per layer of every pass
        if not isinstance(v, int):
            return False
    return True


def is_term(*values: object) -> bool:
    """True when some value is a Z3 expression."""
    for v in values:
        if isinstance(v, z3.ExprRef):
            return True
    return False


def _numpy_in(*values: object):
    """The numpy module when some value is a NumPy array or scalar, else None."""
    np = sys.modules.get("numpy")
    if np is not None:
        for v in values:
            if isinstance(v, (np.ndarray, np.generic)):
                return np
    return None


def floor_div(a: Num, b: Num) -> Num:
    """floor(a / b) for b > 0. Z3's integer division is Euclidean, which is floor for b > 0."""
    return a / b if is_term(a, b) else a // b


def ceil_div(a: Num, b: Num) -> Num:
    """ceil(a / b) for b > 0."""
    return -floor_div(-a, b)


def maximum(a: Num, b: Num) -> Num:
    if is_term(a, b):
        return z3.If(a >= b, a, b)
    np = _numpy_in(a, b)
    return np.maximum(a, b) if np else max(a, b)


def minimum(a: Num, b: Num) -> Num:
    if is_term(a, b):
        return z3.If(a <= b, a, b)
    np = _numpy_in(a, b)
    return np.minimum(a, b) if np else min(a, b)


def select(condition: Bool, then: Num, otherwise: Num) -> Num:
    """`then if condition else otherwise`, for a Python bool, a Z3 condition or a boolean array."""
    if isinstance(condition, bool):
        return then if condition else otherwise
    if is_term(condition):
        return z3.If(condition, then, otherwise)
    return _numpy_in(condition).where(condition, then, otherwise)


def _all_bools(conditions: tuple) -> bool:
    for c in conditions:
        if not isinstance(c, bool):
            return False
    return True


def all_of(*conditions: Bool) -> Bool:
    if _all_bools(conditions):
        return all(conditions)
    if is_term(*conditions):
        return z3.And(*conditions)
    return functools.reduce(_numpy_in(*conditions).logical_and, conditions)


def negate(condition: Bool) -> Bool:
    if isinstance(condition, bool):
        return not condition
    return z3.Not(condition) if is_term(condition) else _numpy_in(condition).logical_not(condition)


def any_of(*conditions: Bool) -> Bool:
    if _all_bools(conditions):
        return any(conditions)
    if is_term(*conditions):
        return z3.Or(*conditions)
    return functools.reduce(_numpy_in(*conditions).logical_or, conditions)


# --- direct convolution and pooling ------------------------------------------------


def effective_kernel(k: Num, d: Num) -> Num:
    """Relationship 15: a dilated kernel spans k + (k - 1)(d - 1) input units."""
    return d * (k - 1) + 1


def padded_size(i: Num, pb: Num, pe: Num) -> Num:
    return i + (pb + pe)


def conv_output(i: Num, k: Num, s: Num, pb: Num, pe: Num, d: Num) -> Num:
    """Relationships 1-7 and 15: o = floor((i + pb + pe - k_eff) / s) + 1.

    The terms without i are summed first: over a layer's grid (`planner.solver.reach`) they
    vary with its choices only and i with its states, so only the last sums span the grid."""
    return floor_div(i + (pb + pe - effective_kernel(k, d)), s) + 1


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


def broadcastable(a: Num, b: Num) -> Bool:
    """PyTorch broadcasting of one dim: equal, or either is 1."""
    return any_of(a == b, a == 1, b == 1)


def broadcast_size(a: Num, b: Num) -> Num:
    """The dim two broadcastable dims give: the larger (the other is 1, or they are equal)."""
    return maximum(a, b)


def slice_bound(index: int, size: Num) -> Num:
    """Where a slice bound falls in an axis of `size`, as Python and PyTorch read it: a negative index
    counts from the end; then clipped to [0, size]."""
    return maximum(index + size, 0) if index < 0 else minimum(index, size)


def slice_length(begin: Num, end: Num, step: int) -> Num:
    """Elements of x[begin:end:step] between resolved bounds: ceil((end - begin) / step), or 0."""
    return maximum(ceil_div(end - begin, step), 0)


def chunk_sizes(size: Num, chunks: int) -> tuple[Num, ...]:
    """torch.chunk's pieces of an axis of `size`: ceil(size / chunks) each, the last what is left (which a
    size too small for `chunks` pieces leaves at 0 or below: PyTorch then returns fewer)."""
    step = ceil_div(size, chunks)
    return tuple(minimum(step, size - k * step) for k in range(chunks))


def shuffled_channels(c: Num, r: int) -> Num:
    """Pixel shuffle by r: C / r^2 channels (each r x r block of channels becomes an r x r block of pixels)."""
    return floor_div(c, r * r)


def reflect_padding_fits(i: Num, pb: Num, pe: Num) -> Bool:
    """Reflection padding mirrors without the edge, so each side takes fewer cells than the axis has."""
    return all_of(pb < i, pe < i)


def circular_padding_fits(i: Num, pb: Num, pe: Num) -> Bool:
    """Circular padding wraps around at most once: each side at most the axis's size."""
    return all_of(pb <= i, pe <= i)


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


def upsample_output(i: Num, f: int | float) -> Num:
    """Resizing by a scale factor, as PyTorch sizes it: o = i f for an int f, else floor(i * f) in float64
    (`scaled_size`)."""
    return i * f if isinstance(f, int) else scaled_size(i, f)


SCALE_DENOMINATOR_LIMIT = 2**20  # a float scale factor must be a fraction p/q with q at most this


def scale_fraction(f: int | float) -> Fraction:
    """A small fraction p/q that rounds to the float f: 0.1 -> 1/10, 0.3333333333333333 -> 1/3, 1.5 -> 3/2."""
    exact = Fraction(f)
    bound = 1
    while True:
        candidate = exact.limit_denominator(bound)  # the closest fraction with denominator <= bound
        if float(candidate) == f:
            return candidate
        bound *= 2


def scaled_size_limit(f: float) -> int:
    """The largest output `scaled_size` computes exactly for the factor f: 2**50 / q for f = p/q."""
    return 2**50 // scale_fraction(f).denominator


def scaled_size(i: Num, f: float) -> Num:
    """floor(i * f) as PyTorch computes it (`F.interpolate`: the float64 product, then floor), exactly over ints.

    With f the float nearest to p/q (`scale_fraction`), the product is floor(i p / q) (for outputs up to
    `scaled_size_limit`) except where i p / q is a whole n and the float f lies below p/q: then i * f lies
    just below n and float64 rounds it up to n, unless n sits where the float64 spacing is too fine to reach
    it (then it rounds to the float below n, whose floor is n - 1: 49 * (1/49) is 0.9999999999999999).
    The float below n is 2^(e-52) below it, with 2^e < n <= 2^(e+1); the product falls short of n by
    i (p/q - f) = n (1 - f q / p), so it rounds down when that exceeds half the spacing, 2^(e-53) (a tie
    rounds to n, whose last bit is 0)."""
    r = scale_fraction(f)
    n = floor_div(i * r.numerator, r.denominator)
    spans = [all_of(n >= first, n <= last) for first, last in _rounded_down(f)]
    return select(all_of(i % r.denominator == 0, any_of(*spans)), n - 1, n) if spans else n


@functools.cache
def _rounded_down(f: float) -> tuple[tuple[int, int], ...]:
    """The spans of whole n = i p / q that i * f rounds down from (`scaled_size`): none when f >= p/q; else
    in each binade 2^e < n <= 2^(e+1) those with n (r - s) 2^53 > r 2^e, that is n > t 2^e for
    t = r / ((r - s) 2^53) >= 1, with r = p/q and s the exact value of f."""
    r, s = scale_fraction(f), Fraction(f)
    if s >= r:
        return ()
    t = r / ((r - s) * 2**53)
    spans = []
    for e in range(-1, scaled_size_limit(f).bit_length()):
        first = max(math.floor(t * Fraction(2) ** e) + 1, 2**e + 1 if e >= 0 else 1)
        if first <= 2 ** (e + 1):
            spans.append((first, 2 ** (e + 1)))
    return tuple(spans)


def pytorch_pool_padding_fits(pb: Num, pe: Num, k: Num) -> Bool:
    """nn.MaxPoolNd and nn.AvgPoolNd take padding of at most half the kernel on each side."""
    return all_of(2 * pb <= k, 2 * pe <= k)


def onnx_pool_padding_fits(pb: Num, pe: Num, k: Num) -> Bool:
    """ONNX and TensorFlow pooling take padding smaller than the kernel on each side."""
    return all_of(pb < k, pe < k)
