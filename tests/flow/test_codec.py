import numpy as np
import pytest

from twostream.flow.codec import FlowCodec
from twostream.flow.middlebury import endpoint_error, read_flo, write_flo


def test_quantize_maps_bounds_and_round_trips_within_half_step():
    codec = FlowCodec(bound=20.0, quality=95)
    assert codec.quantize(np.float32([-20, 20, -50, 50])).tolist() == [0, 255, 0, 255]
    values = np.linspace(-20, 20, 1001, dtype=np.float32)
    back = codec.dequantize(codec.quantize(values))
    assert np.abs(back - values).max() <= 20.0 / 255 + 1e-5  # half of one step of 40/255 px


def test_jpeg_round_trip_of_smooth_flow(texture):
    codec = FlowCodec(bound=20.0, quality=95)
    flow = np.stack([texture(64, 80, 1), texture(64, 80, 2)], -1).astype(np.float32) / 255 * 30 - 15
    back = codec.decode(*codec.encode(flow))
    assert back.shape == flow.shape and back.dtype == np.float32
    assert endpoint_error(back, flow) < 0.3
    clipped = codec.decode(*codec.encode(np.full((16, 16, 2), 35.0, np.float32)))
    assert np.allclose(clipped, 20.0, atol=0.1)  # clipped to the bound, not wrapped


def test_lower_quality_costs_accuracy_and_bound_is_validated(texture):
    flow = np.stack([texture(64, 64, 5), texture(64, 64, 6)], -1).astype(np.float32) / 255 * 30 - 15
    errs = [endpoint_error(FlowCodec(20, q).decode(*FlowCodec(20, q).encode(flow)), flow) for q in (50, 95)]
    assert errs[0] > errs[1]
    with pytest.raises(ValueError, match="bound"):
        FlowCodec(bound=0)
    with pytest.raises(ValueError, match="quality"):
        FlowCodec(quality=101)


def test_flo_round_trip_and_unknown_pixels(tmp_path):
    flow = np.random.default_rng(0).normal(size=(5, 7, 2)).astype(np.float32)
    write_flo(tmp_path / "a.flo", flow)
    assert np.array_equal(read_flo(tmp_path / "a.flo"), flow)
    truth = flow.copy()
    truth[0, 0] = 1e10  # unknown: ignored by the error
    est = flow.copy()
    est[0, 0] = 100.0
    assert endpoint_error(est, truth) == 0.0
    (tmp_path / "bad.flo").write_bytes(b"PIEH" + b"\0" * 8)
    with pytest.raises(ValueError, match="bad.flo"):
        read_flo(tmp_path / "bad.flo")


def test_read_middlebury_ground_truth_shared_data(shared_data):
    import cv2
    seq = shared_data / "middlebury" / "RubberWhale"
    gt = read_flo(seq / "flow10.flo")
    img = cv2.imread(str(seq / "frame10.png"))
    assert gt.shape == img.shape[:2] + (2,)
    known = np.all(np.abs(gt) < 1e9, -1)
    assert 0.5 < known.mean() <= 1.0 and np.abs(gt[known]).max() < 50
