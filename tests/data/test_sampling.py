import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twostream.data.sampling import (ClassBalancedSampler, bidirectional_indices, center_crop, evenly_spaced,
                                     five_crops, num_positions, random_box, random_crop, stack_indices)


@given(num_flows=st.integers(1, 400), length=st.integers(1, 20), data=st.data())
def test_stacks_are_in_range_and_contiguous(num_flows, length, data):
    n = num_positions(num_flows, length)
    start = data.draw(st.integers(0, n - 1))
    idx = stack_indices(start, length, num_flows)
    assert len(idx) == length and idx.min() >= 0 and idx.max() < num_flows
    assert set(np.diff(idx)) <= {0, 1}  # contiguous; repeats only where padded
    if num_flows >= length:
        assert list(idx) == list(range(start, start + length))  # no padding needed, none done


@given(num_flows=st.integers(1, 300), half=st.integers(1, 10), data=st.data())
def test_bidirectional_halves_meet_at_tau(num_flows, half, data):
    length = 2 * half
    p = data.draw(st.integers(0, num_positions(num_flows, length) - 1))
    fwd, bwd = bidirectional_indices(p, length, num_flows)
    assert len(fwd) == len(bwd) == half
    assert all(0 <= i < num_flows for i in (*fwd, *bwd))
    if num_flows >= length:
        tau = p + half
        assert list(fwd) == list(range(tau, tau + half)) and list(bwd) == list(range(tau - half, tau))


def test_bidirectional_hand_example():
    fwd, bwd = bidirectional_indices(0, 4, 10)  # tau = 2: forward fields 2, 3; backward fields 0, 1
    assert fwd.tolist() == [2, 3] and bwd.tolist() == [0, 1]
    with pytest.raises(ValueError, match="even"):
        bidirectional_indices(0, 5, 10)


@settings(max_examples=200)
@given(n=st.integers(1, 2000), count=st.integers(1, 50))
def test_test_positions_evenly_spread(n, count):
    pos = evenly_spaced(n, count)
    assert len(pos) == count and pos.min() >= 0 and pos.max() < n
    assert np.all(np.diff(pos) >= 0)
    if n >= count:
        gaps = np.diff(pos)
        assert len(set(pos)) == count and (count == 1 or gaps.max() - gaps.min() <= 1)  # equal spacing up to rounding
        assert pos[0] <= n / count / 2 and n - 1 - pos[-1] <= n / count / 2 + 1  # centred: balanced margins


def test_evenly_spaced_hand_example():
    assert evenly_spaced(100, 4).tolist() == [12, 37, 62, 87]
    assert evenly_spaced(3, 5).tolist() == [0, 0, 1, 2, 2]


@given(h=st.integers(224, 400), w=st.integers(224, 500), seed=st.integers(0, 10**6))
def test_crops_stay_inside(h, w, seed):
    y, x = random_crop(h, w, 224, np.random.default_rng(seed))
    assert 0 <= y <= h - 224 and 0 <= x <= w - 224
    for y, x in five_crops(h, w, 224):
        assert 0 <= y <= h - 224 and 0 <= x <= w - 224


def test_random_box_is_the_plain_crop_without_scales_and_multi_scale_with_them():
    # no scales: random_crop's box, from the same draws (seeds of earlier runs draw the same samples)
    for seed in range(5):
        plain = random_crop(128, 171, 112, np.random.default_rng(seed))
        assert random_box(128, 171, 112, [], np.random.default_rng(seed)) == (*plain, 112, 112)
    rng = np.random.default_rng(0)
    boxes = [random_box(128, 171, 112, [1.0, 0.875, 0.75, 0.66], rng) for _ in range(400)]
    sides = {128, 112, 96, 84}  # fractions of the short side 128, rounded
    assert {h for _, _, h, _ in boxes} == sides and {w for _, _, _, w in boxes} == sides
    assert any(h != w for _, _, h, w in boxes)  # height and width drawn apart: the aspect ratio varies
    assert all(0 <= y <= 128 - h and 0 <= x <= 171 - w for y, x, h, w in boxes)
    xs = [x for _, x, _, w in boxes if w == 84]  # may start anywhere in 0..87 along the long side
    assert min(xs) <= 8 and max(xs) >= 79


def test_five_crops_layout():
    assert five_crops(256, 340, 224) == [(0, 0), (0, 116), (32, 0), (32, 116), (16, 58)]
    assert center_crop(256, 340, 224) == (16, 58)
    with pytest.raises(ValueError, match="larger than the frame"):
        random_crop(100, 300, 224, np.random.default_rng(0))


def test_sampler_is_class_balanced_deterministic_and_sharded():
    labels = [0] * 90 + [1] * 10  # imbalanced videos, balanced samples
    s = ClassBalancedSampler(labels=labels, seed=3)
    it = iter(s)
    keys = [next(it) for _ in range(2000)]
    share = np.mean([labels[v] for v, _ in keys])
    assert 0.45 < share < 0.55
    it2 = iter(ClassBalancedSampler(labels=labels, seed=3, start=1500))  # resume after 1500 samples
    assert [next(it2) for _ in range(10)] == keys[1500:1510]
    ranks = [iter(ClassBalancedSampler(labels=labels, seed=3, rank=r, world_size=2)) for r in range(2)]
    merged = [next(ranks[k % 2]) for k in range(20)]
    assert merged == keys[:20]  # the ranks split one stream between them, no overlap
    assert ClassBalancedSampler(labels=labels, seed=4).key(0) != s.key(0) or ClassBalancedSampler(labels=labels, seed=4).key(1) != s.key(1)
    with pytest.raises(ValueError, match="rank"):
        ClassBalancedSampler(labels=labels, rank=2, world_size=2)
