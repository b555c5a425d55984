import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from twostream.cache import UnitWriter
from twostream.data.datasets import TestClips, TrainClips, ValClips
from twostream.data.inputs import InputOptions
from twostream.data.sampling import ClassBalancedSampler
from twostream.data.splits import Sample
from twostream.data.transforms import batch_input, trajectory_resample
from twostream.errors import UserError
from twostream.flow.codec import FlowCodec
from twostream.record import ExtractionRecord

H, W = 40, 48
STEP = 40 / 255  # one code step of the codec at bound 20


def field_value(t: int, backward: bool = False) -> tuple[float, float]:
    """Flow field t is constant (x, y) = ((3k + 0.5), (0.5 - k)) code steps with k = t + 1 (-k backward):
    distinct per t and exactly representable (the codec's codes sit at half steps around 0)."""
    k = -(t + 1) if backward else t + 1
    return (3 * k + 0.5) * STEP, (0.5 - k) * STEP


def make_unit(root, vid, frames, bidirectional=False, fields=None):
    """A hand-made unit: frame t is grey level 8t; flow field t is constant ``field_value(t)`` (or
    ``fields[t]``, ``float32[H, W, 2]``)."""
    record = ExtractionRecord("hand-made", {}, 0, bidirectional, FlowCodec(), 95)
    with UnitWriter(root, vid, record) as w:
        for t in range(frames):
            w.add_frame(np.full((H, W, 3), 8 * t, np.uint8))
            if t:
                w.add_flow(np.broadcast_to(np.float32(field_value(t - 1)), (H, W, 2)).copy()
                           if fields is None else fields[t - 1])
                if bidirectional:
                    w.add_back_flow(np.broadcast_to(np.float32(field_value(t - 1, True)), (H, W, 2)).copy())
        w.commit({})


def temporal(**kw) -> InputOptions:
    return InputOptions("temporal", **{"crop": 32, **kw})


@pytest.fixture
def cache(tmp_path):
    make_unit(tmp_path, "a/long", 30, bidirectional=True)
    make_unit(tmp_path, "b/short", 4, bidirectional=True)
    return tmp_path


SAMPLES = [Sample("a/long", 0), Sample("b/short", 1)]


def xs_of(x):  # the x value of each field of a [2L, ...] stack (constant fields)
    return [round(float(v) / STEP / 3) for v in x[0::2, 0, 0]]


def test_temporal_train_stack_is_contiguous_with_flip_sign(cache):
    ds = TrainClips(SAMPLES, cache, temporal(length=5, mean_subtraction=False))
    seen_flip = seen_plain = False
    for seed in range(40):
        item = ds[(0, seed)]
        assert item["input"].dtype == torch.uint8  # the crop's codes: converted where the batch is used
        x = batch_input(item, "cpu").numpy()
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
    ds = ValClips(SAMPLES, cache, temporal(length=5, mean_subtraction=False))
    assert xs_of(ds[1]["input"].numpy()) == [1, 2, 3, 3, 3]  # 3 fields, padded to 5


def test_bidirectional_stack(cache):
    ds = ValClips(SAMPLES, cache, temporal(length=4, bidirectional=True, mean_subtraction=False))
    x = ds[0]["input"].numpy()  # centre position 13 of 27 -> tau = 15
    assert xs_of(x) == [16, 17, -14, -15]  # forward fields 15, 16; backward fields 13, 14
    with pytest.raises(UserError, match="trajectory"):
        temporal(length=4, bidirectional=True, stacking="trajectory")
    with pytest.raises(UserError, match="length: bi-directional stacks need an even length, got 3"):
        temporal(length=3, bidirectional=True)


def test_mean_subtraction_removes_constant_flow(cache):
    plain = ValClips(SAMPLES, cache, temporal(length=4, mean_subtraction=False))[0]["input"].numpy()
    assert np.abs(plain).min() > 0.5  # the fields are far from zero ...
    ds = ValClips(SAMPLES, cache, temporal(length=4))
    assert np.abs(ds[0]["input"].numpy()).max() < 1e-3  # ... and nothing is left of them minus their mean


def test_trajectory_stacking_follows_the_first_field(tmp_path):
    # field 0 moves every pixel 4 px right; field 1's y component is a ramp along x, 2 codes per column:
    # following the trajectory, field 1 is read 4 columns further right, i.e. 8 codes (1.25 px) higher
    xs = np.arange(W, dtype=np.float32)
    first = np.zeros((H, W, 2), np.float32)
    first[..., 0] = 4.0  # code 153: exactly 4 px
    ramp = np.zeros((H, W, 2), np.float32)
    ramp[..., 1] = (100 + 2 * xs) * STEP - 20  # codes 100, 102, ...
    make_unit(tmp_path, "ramp", 3, fields=[first, ramp])
    opts = dict(crop=H, length=2, mean_subtraction=False)  # centre crop: column j is pixel x = j + 4
    flow = ValClips([Sample("ramp", 0)], tmp_path, temporal(stacking="flow", **opts))[0]["input"].numpy()
    traj = ValClips([Sample("ramp", 0)], tmp_path, temporal(stacking="trajectory", **opts))[0]["input"].numpy()
    cols = np.arange(4, 28)  # away from the frame's borders (JPEG edges, the replicated border)
    assert np.allclose(flow[0], 4.0, atol=0.2) and np.allclose(traj[0], 4.0, atol=0.2)  # field 0 as is
    assert np.allclose(flow[3][:, cols], ramp[:, cols + 4, 1], atol=0.2)  # same pixel
    assert np.allclose(traj[3][:, cols], ramp[:, cols + 8, 1], atol=0.2)  # 4 px further along the motion
    # mean subtraction takes each displacement field's own mean (the paper's), not the mean of the field
    # resampled along the trajectories: here the two differ (the resampled ramp is shifted and clipped)
    centred = ValClips([Sample("ramp", 0)], tmp_path, temporal(stacking="trajectory", **{**opts, "mean_subtraction": True}))
    got = centred[0]["input"].numpy()
    fields = np.stack([centred.video(0).flow(t) for t in (0, 1)])  # the decoded displacement fields d_0, d_1
    d1_mean = float(fields[1, ..., 1].mean())
    assert abs(d1_mean - float(trajectory_resample(fields)[1, ..., 1].mean())) > 0.1  # the two means differ
    assert np.allclose(got[3], traj[3] - d1_mean, atol=1e-5)


def test_multi_scale_crops_are_resized_and_stretch_the_flow(cache):
    # the frames are 40 x 48: crop_scales [0.5] cuts 20 x 20 boxes, resized to the 32 x 32 crop, so the
    # constant fields (in pixels of the frame) read 1.6x larger; a flip still negates x
    train = TrainClips(SAMPLES, cache, temporal(length=2, mean_subtraction=False, crop_scales=[0.5]))
    signs = set()
    for seed in range(8):
        item = train[(0, seed)]
        x = batch_input(item, "cpu").numpy()
        assert x.shape == (4, 32, 32)
        for k in range(2):
            fx, fy = field_value(int(item["positions"][0]) + k)
            assert np.allclose(np.abs(x[2 * k]), 1.6 * abs(fx), atol=1e-4)
            assert np.allclose(x[2 * k + 1], 1.6 * fy, atol=1e-4)
        signs.add(float(np.sign(x[0, 0, 0])))
    assert signs == {-1.0, 1.0}  # mirrored and not
    spatial = TrainClips(SAMPLES, cache, InputOptions("spatial", crop=32, jitter=0.0, crop_scales=[1.0, 0.5]),
                         "caffe")
    assert batch_input(spatial[(1, 3)], "cpu").shape == (3, 32, 32)
    with pytest.raises(UserError, match=r"crop_scales: .* in \(0, 1\]"):
        InputOptions("spatial", crop_scales=[1.0, 1.2])


def test_spatial_train_and_test_items(cache):
    train = TrainClips(SAMPLES, cache, InputOptions("spatial", crop=32, jitter=0.0), "caffe")
    x = batch_input(train[(0, 1)], "cpu")
    assert x.shape == (3, 32, 32)
    grey = x[0, 0, 0] + 0.485 * 255  # undo the paper's normalisation (minus the mean): 8t for frame t
    t = round(float(grey) / 8)
    assert 0 <= t < 30 and abs(float(grey) - 8 * t) < 1.5
    test = TestClips(SAMPLES, cache, InputOptions("spatial", crop=32, test_positions=25), "torchvision")
    item = test[0]
    assert item["input"].shape == (25, 3, H, W)
    assert item["positions"].tolist() == [0, 1, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 21,
                                          22, 23, 24, 25, 27, 28, 29]  # floor((i + 0.5) * 30 / 25)
    chunks = list(test.crops(item["input"], positions_per_chunk=10))
    assert [len(c) for c in chunks] == [100, 100, 50] and chunks[0].shape[1:] == (3, 32, 32)
    tt = TestClips(SAMPLES, cache, temporal(length=10, test_positions=25))
    assert tt[0]["input"].shape == (25, 20, H, W) and tt[0]["positions"].max() == 19


def test_test_crops_of_flow_negate_x_in_the_mirrored_half(cache):
    tt = TestClips(SAMPLES, cache, temporal(length=2, test_positions=1, mean_subtraction=False))
    crops = torch.cat(list(tt.crops(tt[0]["input"])))  # one position: 10 crops of constant fields
    assert crops.shape == (10, 4, 32, 32)
    x, y = crops[:, 0, 0, 0], crops[:, 1, 0, 0]
    assert torch.allclose(x[5:], -x[:5]) and x[0] > 0  # mirrored crops: x negated
    assert torch.allclose(y[5:], y[:5])  # y kept


def test_missing_videos_error_or_skip(cache):
    samples = SAMPLES + [Sample("c/gone", 2)]
    with pytest.raises(ValueError, match="1 listed videos are not in the cache .*c/gone"):
        TrainClips(samples, cache, InputOptions(), "caffe")
    with pytest.warns(UserWarning, match="skipping 1 listed videos"):
        ds = TrainClips(samples, cache, InputOptions(), "caffe", skip_missing=True)
    assert len(ds) == 2


def test_video_with_one_frame_is_an_error_naming_it(tmp_path):
    make_unit(tmp_path, "one", 1)  # extract refuses such videos; a hand-made unit can still hold one
    ValClips([Sample("one", 0)], tmp_path, InputOptions(crop=32), "caffe")  # one frame is enough for the spatial stream
    with pytest.raises(UserError, match="the spatial stream needs the model's input convention"):
        ValClips([Sample("one", 0)], tmp_path, InputOptions(crop=32))
    with pytest.raises(UserError, match="one: 1 frame"):
        ValClips([Sample("one", 0)], tmp_path, temporal())


def test_dataloader_with_workers_and_balanced_sampler(cache):
    ds = TrainClips(SAMPLES, cache, temporal(length=3))
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
    # a batch's float input is its items' one by one (per-item scale and offset: flips and means differ)
    items = [ds[sampler.key(k)] for k in range(8)]
    assert torch.allclose(batch_input(again, "cpu"), torch.stack([batch_input(i, "cpu") for i in items]))


def test_one_dataset_reads_from_two_caches(tmp_path):
    # a task drawing from two data sets: each sample names its own cache when not the task's
    make_unit(tmp_path / "hmdb", "brush_hair/a", 5)
    make_unit(tmp_path / "ucf", "Drumming/v_Drumming_g01_c01", 7)
    samples = [Sample("brush_hair/a", 0), Sample("Drumming/v_Drumming_g01_c01", 1, str(tmp_path / "ucf"))]
    ds = TestClips(samples, tmp_path / "hmdb", temporal(length=2, test_positions=2))
    assert [ds.video(i).num_frames for i in range(2)] == [5, 7]
    assert ds[1]["input"].shape == (2, 4, H, W)
    with pytest.raises(UserError, match="1 listed videos are not in the cache"):
        TestClips([Sample("Drumming/v_Drumming_g01_c01", 1)], tmp_path / "hmdb", temporal())
