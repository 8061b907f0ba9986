"""The guide's 15 relationships and its figure vectors, over ints and over Z3 terms."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
import z3

from planner import arithmetic as ar
from planner.errors import FieldUnsupported

# Figure vectors of GUIDE.md: (figure, i, k, s, p, d, o)
DIRECT = [
    ("2.1", 4, 3, 1, 0, 1, 2),
    ("2.2", 5, 4, 1, 2, 1, 6),
    ("2.3-half", 5, 3, 1, 1, 1, 5),
    ("2.4-full", 5, 3, 1, 2, 1, 7),
    ("2.5", 5, 3, 2, 0, 1, 2),
    ("2.6-1.2", 5, 3, 2, 1, 1, 3),
    ("2.7", 6, 3, 2, 1, 1, 3),
    ("2.8a-1.1", 5, 3, 1, 0, 1, 3),
    ("2.8b-1.4", 5, 3, 2, 0, 1, 2),
    ("5.1-dilated", 7, 3, 1, 0, 2, 3),
    ("1.5-1.6-pooling", 5, 3, 1, 0, 1, 3),
]

# (figure, i, k, s, p, i', ĩ', k', s', p', a, o')
TRANSPOSED = [
    ("4.1", 4, 3, 1, 0, 2, 2, 3, 1, 2, 0, 4),
    ("4.2", 5, 4, 1, 2, 6, 6, 4, 1, 1, 0, 5),
    ("4.3", 5, 3, 1, 1, 5, 5, 3, 1, 1, 0, 5),
    ("4.4", 5, 3, 1, 2, 7, 7, 3, 1, 0, 0, 5),
    ("4.5", 5, 3, 2, 0, 2, 3, 3, 1, 2, 0, 5),
    ("4.6", 5, 3, 2, 1, 3, 5, 3, 1, 1, 0, 5),
    ("4.7", 6, 3, 2, 1, 3, 5, 3, 1, 1, 1, 6),
]


@pytest.mark.parametrize("fig,i,k,s,p,d,o", DIRECT, ids=[row[0] for row in DIRECT])
def test_direct_figures(fig, i, k, s, p, d, o):
    assert ar.conv_output(i, k, s, p, p, d) == o
    assert ar.pool_output(i, k, s, p, p, d, ceil_mode=False) == o


@pytest.mark.parametrize("fig,i,k,s,p,i_,ti_,k_,s_,p_,a,o_", TRANSPOSED, ids=[row[0] for row in TRANSPOSED])
def test_transposed_figures(fig, i, k, s, p, i_, ti_, k_, s_, p_, a, o_):
    assert ar.conv_output(i, k, s, p, p, 1) == i_  # the direct convolution being transposed
    assert ar.stretched_size(i_, s) == ti_
    assert ar.transpose_equivalent_padding(k, p, 1) == p_
    assert ar.transpose_extra_zeros(i, k, s, p) == a
    assert (k_, s_) == (k, 1)
    # the equivalent direct convolution: stretched input, p' each side plus a zeros at the end, unit stride
    assert ar.conv_output(ti_, k_, s_, p_, p_ + a, 1) == o_
    # and Relationship 14 directly, with output_padding playing a
    assert ar.conv_transpose_output(i_, k, s, p, p, 1, a) == o_ == i


SMALL = list(itertools.product(range(1, 13), range(1, 6), range(1, 4), range(0, 4), range(1, 3)))


def _cases(predicate):
    return [(i, k, s, p, d) for i, k, s, p, d in SMALL if predicate(i, k, s, p, d) and i + 2 * p >= d * (k - 1) + 1]


# Relationship number -> (precondition on (i, k, s, p, d), expected o)
RELATIONSHIPS = {
    1: (lambda i, k, s, p, d: s == 1 and p == 0 and d == 1, lambda i, k, s, p: (i - k) + 1),
    2: (lambda i, k, s, p, d: s == 1 and d == 1, lambda i, k, s, p: (i - k) + 2 * p + 1),
    3: (lambda i, k, s, p, d: k % 2 == 1 and s == 1 and p == k // 2 and d == 1, lambda i, k, s, p: i),
    4: (lambda i, k, s, p, d: s == 1 and p == k - 1 and d == 1, lambda i, k, s, p: i + (k - 1)),
    5: (lambda i, k, s, p, d: p == 0 and d == 1, lambda i, k, s, p: (i - k) // s + 1),
    6: (lambda i, k, s, p, d: d == 1, lambda i, k, s, p: (i + 2 * p - k) // s + 1),
}


@pytest.mark.parametrize("number", sorted(RELATIONSHIPS), ids=lambda n: f"relationship-{n}")
def test_direct_relationships(number):
    precondition, formula = RELATIONSHIPS[number]
    cases = _cases(precondition)
    assert cases
    for i, k, s, p, d in cases:
        assert ar.conv_output(i, k, s, p, p, d) == formula(i, k, s, p), (i, k, s, p)


def test_relationship_7_pooling():
    for i, k, s, _, _ in _cases(lambda i, k, s, p, d: p == 0 and d == 1):
        assert ar.pool_output(i, k, s, 0, 0, 1, ceil_mode=False) == (i - k) // s + 1


def test_relationship_15_dilation():
    for i, k, s, p, d in _cases(lambda *_: True):
        k_hat = k + (k - 1) * (d - 1)
        assert ar.effective_kernel(k, d) == k_hat
        assert ar.conv_output(i, k, s, p, p, d) == (i + 2 * p - k - (k - 1) * (d - 1)) // s + 1


# Transposed relationships: the transposed convolution of the direct (i, k, s, p) maps i' = o back to
# o' = i when a = (i + 2p - k) mod s (Relationship 14), with 8-13 its special cases.
TRANSPOSED_RELATIONSHIPS = {
    8: (lambda i, k, s, p: s == 1 and p == 0, lambda i_, k, s, p: i_ + (k - 1)),
    9: (lambda i, k, s, p: s == 1, lambda i_, k, s, p: i_ + (k - 1) - 2 * p),
    10: (lambda i, k, s, p: k % 2 == 1 and s == 1 and p == k // 2, lambda i_, k, s, p: i_),
    11: (lambda i, k, s, p: s == 1 and p == k - 1, lambda i_, k, s, p: i_ - (k - 1)),
    12: (lambda i, k, s, p: p == 0 and (i - k) % s == 0, lambda i_, k, s, p: s * (i_ - 1) + k),
    13: (lambda i, k, s, p: (i + 2 * p - k) % s == 0, lambda i_, k, s, p: s * (i_ - 1) + k - 2 * p),
    14: (lambda i, k, s, p: True, None),
}


@pytest.mark.parametrize("number", sorted(TRANSPOSED_RELATIONSHIPS), ids=lambda n: f"relationship-{n}")
def test_transposed_relationships(number):
    precondition, formula = TRANSPOSED_RELATIONSHIPS[number]
    cases = [
        (i, k, s, p)
        for i, k, s, p, d in _cases(lambda i, k, s, p, d: d == 1 and p <= k - 1)
        if precondition(i, k, s, p)
    ]
    assert cases
    for i, k, s, p in cases:
        i_ = ar.conv_output(i, k, s, p, p, 1)
        a = ar.transpose_extra_zeros(i, k, s, p)
        o_ = ar.conv_transpose_output(i_, k, s, p, p, 1, a)
        assert o_ == i, (i, k, s, p)  # the transposed convolution restores the direct input size
        if formula is not None:
            assert a == 0
            assert o_ == formula(i_, k, s, p), (i, k, s, p)
        # the equivalent direct convolution of the guide gives the same size
        p_ = ar.transpose_equivalent_padding(k, p, 1)
        assert ar.conv_output(ar.stretched_size(i_, s), k, 1, p_, p_ + a, 1) == o_


def test_several_inputs_share_one_output_when_strided():
    # Figures 2.6 and 2.7: i = 5 and i = 6 both give o = 3; a selects which one the transposed conv restores
    assert ar.conv_output(5, 3, 2, 1, 1, 1) == ar.conv_output(6, 3, 2, 1, 1, 1) == 3
    assert ar.conv_transpose_output(3, 3, 2, 1, 1, 1, 0) == 5
    assert ar.conv_transpose_output(3, 3, 2, 1, 1, 1, 1) == 6


@pytest.mark.parametrize("i,k,s,p,d", [(i, k, s, p, d) for i, k, s, p, d in SMALL if i > k][:400:7])
def test_same_padding(i, k, s, p, d):
    total = ar.same_padding_total(i, k, s, d)
    begin, end = ar.split_padding(total)
    assert end - begin in (0, 1)  # the extra pixel goes to the end
    assert ar.conv_output(i, k, s, begin, end, d) == -(-i // s)
    lower = ar.split_padding(total, extra_at_end=False)
    assert lower == (end, begin)


def test_ceil_mode_drops_a_window_that_starts_in_the_end_padding():
    # PyTorch: i=5, k=2, s=2, p=1 ceil mode: ceil((5+2-2)/2)+1 = 4, but the 4th window starts at 6 >= 5+1
    assert ar.pool_output(5, 2, 2, 1, 1, 1, ceil_mode=True) == 3
    assert ar.pool_output(5, 2, 2, 0, 0, 1, ceil_mode=True) == 3
    assert ar.pool_output(5, 2, 2, 0, 0, 1, ceil_mode=False) == 2


def _z3_value(expression, **values):
    solver = z3.Solver()
    for name, value in values.items():
        solver.add(z3.Int(name) == value)
    result = z3.Int("result")
    solver.add(result == expression)
    assert solver.check() == z3.sat
    return solver.model()[result].as_long()


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_the_same_functions_serve_z3_terms(ceil_mode):
    i, k, s, p, d = (z3.Int(n) for n in "iks pd".replace(" ", ""))
    conv = ar.conv_output(i, k, 2, p, p, 1)
    pool = ar.pool_output(i, k, 2, p, p, 1, ceil_mode)
    transposed = ar.conv_transpose_output(i, k, 2, p, p, d, 1)
    for iv, kv, pv in itertools.product(range(3, 9), range(1, 4), range(0, 2)):
        assert _z3_value(conv, i=iv, k=kv, p=pv) == ar.conv_output(iv, kv, 2, pv, pv, 1)
        assert _z3_value(pool, i=iv, k=kv, p=pv) == ar.pool_output(iv, kv, 2, pv, pv, 1, ceil_mode)
        assert _z3_value(transposed, i=iv, k=kv, p=pv, d=2) == ar.conv_transpose_output(iv, kv, 2, pv, pv, 2, 1)
    same = ar.same_padding_total(i, k, s, d)
    for iv, kv, sv in itertools.product(range(1, 9), range(1, 5), range(1, 4)):
        assert _z3_value(same, i=iv, k=kv, s=sv, d=1) == ar.same_padding_total(iv, kv, sv, 1)


def test_receptive_steps_through_resizing_are_exact_fractions():
    # a transposed convolution k=3, s=2 after a jump of 4: the stretched input's jump is 2
    assert ar.transpose_receptive_step(5, 4, 3, 2, 1) == (9, 2)
    assert ar.transpose_receptive_step(1, 1, 3, 2, 1) == (2, Fraction(1, 2))
    assert ar.resized_jump(Fraction(1, 2), 4, 8) == Fraction(1, 4)
    # adaptive pooling 7 -> 3 takes windows of up to ceil(7/3) = 3 cells; the jump grows by 7/3
    assert ar.adaptive_pool_bin(7, 3) == 3
    assert ar.adaptive_receptive_step(1, 1, 7, 3) == (3, Fraction(7, 3))


def test_a_jump_divided_by_a_term_is_refused():
    with pytest.raises(FieldUnsupported):
        ar.resized_jump(1, z3.Int("i"), 4)
    with pytest.raises(FieldUnsupported):
        ar.transpose_receptive_step(1, 1, 3, z3.Int("s"), 1)


def test_upsample_output_over_ints_and_terms():
    assert ar.upsample_output(7, 2) == 14
    assert _z3_value(ar.upsample_output(z3.Int("i"), 3), i=5) == 15


@pytest.mark.parametrize(
    "pb, pe, k, pytorch, onnx",
    [
        (1, 1, 2, True, True),
        (1, 0, 3, True, True),
        (2, 1, 3, False, True),
        (3, 0, 3, False, False),
    ],
    ids=str,
)
def test_pool_padding_limits(pb, pe, k, pytorch, onnx):
    assert ar.pytorch_pool_padding_fits(pb, pe, k) is pytorch
    assert ar.onnx_pool_padding_fits(pb, pe, k) is onnx


def test_windows_overhang_is_ceil_modes_extra_padding_unless_a_window_is_dropped():
    for i, k, s, p in itertools.product(range(2, 10), range(1, 4), range(1, 4), range(0, 2)):
        if 2 * p > k or ar.padded_size(i, p, p) < k:
            continue
        o = ar.pool_output(i, k, s, p, p, 1, ceil_mode=True)
        dropped = o < ar.floor_div(ar.padded_size(i, p, p) - k + s - 1, s) + 1
        overhang = ar.windows_overhang(o, i, k, s, p, p, 1)
        assert overhang == (0 if dropped else ar.ceil_mode_extra_padding(i, k, s, p, p, 1))
        assert ar.windows_overhang(ar.pool_output(i, k, s, p, p, 1, ceil_mode=False), i, k, s, p, p, 1) == 0
