import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from twostream.cache import UnitWriter
from twostream.data.datasets import SpatialDataset, TemporalDataset, TemporalOptions
from twostream.data.sampling import ClassBalancedSampler
from twostream.data.splits import Sample
from twostream.data.transforms import ten_crop
from twostream.flow.codec import FlowCodec

H, W = 40, 48
STEP = 40 / 255  # one code step of the codec at bound 20


def field_value(t: int, backward: bool = False) -> tuple[float, float]:
    """Flow field t is constant (x, y) = ((3k + 0.5), (0.5 - k)) code steps with k = t + 1 (-k backward):
    distinct per t and exactly representable (the codec's codes sit at half steps around 0)."""
    k = -(t + 1) if backward else t + 1
    return (3 * k + 0.5) * STEP, (0.5 - k) * STEP


def make_unit(root, vid, frames, bidirectional=False):
    with UnitWriter(root, vid, FlowCodec(), bidirectional=bidirectional) as w:
        for t in range(frames):
            w.add_frame(np.full((H, W, 3), 8 * t, np.uint8))  # frame t is grey level 8t
            if t:
                w.add_flow(np.broadcast_to(np.float32(field_value(t - 1)), (H, W, 2)).copy())
                if bidirectional:
                    w.add_back_flow(np.broadcast_to(np.float32(field_value(t - 1, True)), (H, W, 2)).copy())
        w.commit({})


@pytest.fixture
def cache(tmp_path):
    make_unit(tmp_path, "a/long", 30, bidirectional=True)
    make_unit(tmp_path, "b/short", 4, bidirectional=True)
    return tmp_path


SAMPLES = [Sample("a/long", 0), Sample("b/short", 1)]


def xs_of(x):  # the x value of each field of a [2L, ...] stack (constant fields)
    return [round(float(v) / STEP / 3) for v in x[0::2, 0, 0]]


def test_temporal_train_stack_is_contiguous_with_flip_sign(cache):
    opts = TemporalOptions(length=5, mean_subtraction=False)
    ds = TemporalDataset(SAMPLES, cache, "train", crop=32, options=opts)
    seen_flip = seen_plain = False
    for seed in range(40):
        item = ds[(0, seed)]
        x = item["input"].numpy()
        assert x.shape == (10, 32, 32) and item["label"] == 0 and item["video_id"] == "a/long"
        ks = xs_of(x)
        sign = 1 if ks[0] > 0 else -1  # flipped stacks carry negated x
        ks = [sign * k for k in ks]
        assert ks == list(range(ks[0], ks[0] + 5)) and 1 <= ks[0] <= 25  # fields t..t+4, t in 0..24
        ys = np.round(0.5 - x[1::2, 0, 0] / STEP).astype(int).tolist()
        assert ys == ks  # y never changes sign
        seen_flip |= sign < 0
        seen_plain |= sign > 0
    assert seen_flip and seen_plain
    assert torch.equal(ds[(0, 7)]["input"], ds[(0, 7)]["input"])  # keyed by seed: reproducible


def test_short_video_pads_with_edge_fields(cache):
    ds = TemporalDataset(SAMPLES, cache, "val", crop=32, options=TemporalOptions(length=5, mean_subtraction=False))
    assert xs_of(ds[1]["input"].numpy()) == [1, 2, 3, 3, 3]  # 3 fields, padded to 5


def test_bidirectional_stack(cache):
    ds = TemporalDataset(SAMPLES, cache, "val", crop=32,
                         options=TemporalOptions(length=4, bidirectional=True, mean_subtraction=False))
    x = ds[0]["input"].numpy()  # centre position 13 of 27 -> tau = 15
    assert xs_of(x) == [16, 17, -14, -15]  # forward fields 15, 16; backward fields 13, 14
    with pytest.raises(ValueError, match="trajectory"):
        TemporalOptions(length=4, bidirectional=True, stacking="trajectory")


def test_mean_subtraction_and_trajectory_on_constant_flow(cache):
    ds = TemporalDataset(SAMPLES, cache, "val", crop=32, options=TemporalOptions(length=4, stacking="trajectory"))
    assert np.abs(ds[0]["input"].numpy()).max() < 1e-3  # constant fields minus their mean


def test_spatial_modes(cache):
    train = SpatialDataset(SAMPLES, cache, "train", crop=32, jitter=0.0)
    x = train[(0, 1)]["input"]
    assert x.shape == (3, 32, 32)
    grey = (x[0, 0, 0] * 0.229 + 0.485) * 255  # undo the normalisation: 8t for frame t
    t = round(float(grey) / 8)
    assert 0 <= t < 30 and abs(float(grey) - 8 * t) < 1.5
    test = SpatialDataset(SAMPLES, cache, "test", crop=32, positions=25)
    item = test[0]
    assert item["input"].shape == (25, 3, H, W)
    assert item["positions"].tolist() == [0, 1, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 21,
                                          22, 23, 24, 25, 27, 28, 29]  # floor((i + 0.5) * 30 / 25)
    assert ten_crop(item["input"], 32).shape == (250, 3, 32, 32)
    tt = TemporalDataset(SAMPLES, cache, "test", crop=32, positions=25, options=TemporalOptions(length=10))
    assert tt[0]["input"].shape == (25, 20, H, W) and tt[0]["positions"].max() == 19


def test_missing_videos_error_or_skip(cache):
    samples = SAMPLES + [Sample("c/gone", 2)]
    with pytest.raises(ValueError, match="1 listed videos are not in the cache .*c/gone"):
        SpatialDataset(samples, cache)
    with pytest.warns(UserWarning, match="skipping 1 listed videos"):
        ds = SpatialDataset(samples, cache, skip_missing=True)
    assert len(ds) == 2


def test_video_with_one_frame_is_an_error_naming_it(tmp_path):
    make_unit(tmp_path, "one", 1)  # extract refuses such videos; a hand-made unit can still hold one
    SpatialDataset([Sample("one", 0)], tmp_path)  # one frame is enough for the spatial stream
    with pytest.raises(ValueError, match="one: 1 frame"):
        TemporalDataset([Sample("one", 0)], tmp_path)


def test_dataloader_with_workers_and_balanced_sampler(cache):
    ds = TemporalDataset(SAMPLES, cache, "train", crop=32, options=TemporalOptions(length=3))
    sampler = ClassBalancedSampler(labels=ds.labels, seed=0)
    loader = DataLoader(ds, batch_size=8, sampler=sampler, num_workers=2)
    batches = []
    for i, batch in enumerate(loader):
        batches.append(batch)
        if i == 2:
            break
    assert batches[0]["input"].shape == (8, 6, 32, 32) and batches[0]["label"].shape == (8,)
    labels = torch.cat([b["label"] for b in batches])
    assert 0 < labels.float().mean() < 1
    # the same keys in a single process give the same tensors: workers change nothing
    again = next(iter(DataLoader(ds, batch_size=8, sampler=sampler, num_workers=0)))
    assert torch.equal(again["input"], batches[0]["input"])
