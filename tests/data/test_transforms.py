import numpy as np
import torch

from twostream.conventions import CONVENTIONS
from twostream.data.transforms import (Planes, as_planes, flow_planes, flow_sign, flow_to_input, rgb_planes,
                                       ten_crop, trajectory_resample)


def test_flow_stacking_channel_order_and_mean_subtraction():
    fields = np.zeros((2, 2, 3, 2), np.float32)
    fields[0, ..., 0] = [[1, 2, 3], [4, 5, 6]]  # x_0
    fields[0, ..., 1] = 10  # y_0
    fields[1, ..., 0] = -1  # x_1
    fields[1, ..., 1] = [[0, 0, 0], [6, 6, 6]]  # y_1
    raw = flow_to_input(fields, mean_subtraction=False)
    assert raw.shape == (4, 2, 3)
    assert raw[0].tolist() == [[1, 2, 3], [4, 5, 6]] and (raw[1] == 10).all()
    assert (raw[2] == -1).all() and raw[3].tolist() == [[0, 0, 0], [6, 6, 6]]
    sub = flow_to_input(fields)
    assert sub[0].tolist() == [[-2.5, -1.5, -0.5], [0.5, 1.5, 2.5]]
    assert (sub[1] == 0).all() and (sub[2] == 0).all() and sub[3].tolist() == [[-3, -3, -3], [3, 3, 3]]


def test_flip_negates_every_x_channel_and_mirrors():
    x = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)  # 2 fields
    assert flow_sign(2).tolist() == [-1, 1, -1, 1]
    out = as_planes(x).crop(0, 1, 2, flip=True, sign=flow_sign(2)).full()
    # crop columns 1..2, mirror them, negate channels 0 and 2
    assert out[0].tolist() == [[-2, -1], [-5, -4]]
    assert out[1].tolist() == [[8, 7], [11, 10]]
    assert out[2].tolist() == [[-14, -13], [-17, -16]]
    rgb = as_planes(x[:3]).crop(1, 0, 1, flip=True).full()
    assert rgb[:, 0, 0].tolist() == [3, 9, 15]  # RGB: mirrored, never negated
    assert as_planes(x).crop(0, 0, 2, flip=False).full().tolist() == x[:, :2, :2].tolist()


def test_resized_planes_stretch_flow_values_with_the_image():
    # two fields' worth of channels on an 8 x 16 box; channel c is the ramp c + 2x along x
    ramp = np.arange(16, dtype=np.float32) * 2
    codes = np.stack([np.broadcast_to(c + ramp, (8, 16)) for c in range(4)]).astype(np.float32)
    planes = Planes(codes, np.float32([1, 1, 2, 2]), np.float32([0, 0, -1, -1]))
    flow = planes.resized(32, flow_sign(2))
    assert flow.codes.shape == (4, 32, 32)
    # bilinear with pixel centres aligned: output column j reads input x = j/2 - 1/4, i.e. code c + j - 1/2,
    # in channel order (channels are not mixed) and the right way round (not mirrored or transposed)
    cols = np.arange(2, 30)
    for c in range(4):
        assert np.allclose(flow.codes[c][:, cols], c + cols - 0.5, atol=1e-4)
    # flow is in pixels of the frame: x components (sign -1) stretch by 32/16, y components by 32/8
    assert flow.scale.tolist() == [2, 4, 4, 8] and flow.offset.tolist() == [0, 0, -2, -4]
    rgb = planes.resized(32)  # RGB values never change with the frame's size
    assert rgb.scale.tolist() == [1, 1, 2, 2] and rgb.offset.tolist() == [0, 0, -1, -1]
    square = Planes(codes[:, :, :8], planes.scale, planes.offset)
    assert square.resized(8) is square  # already that size: nothing to do
    one = Planes(codes[:1].astype(np.uint8), np.ones(1, np.float32), np.zeros(1, np.float32)).resized(12)
    assert one.codes.shape == (1, 12, 12) and one.codes.dtype == np.uint8  # cv2 drops a lone channel: put back


def test_trajectory_stacking_follows_the_motion():
    h, w = 6, 8
    fields = np.zeros((3, h, w, 2), np.float32)
    fields[0, ..., 0] = 1.0  # field 0 moves every point one px right
    fields[1, ..., 0] = np.arange(w, dtype=np.float32)[None, :]  # field 1's x value = the column
    fields[2, ..., 1] = np.arange(w, dtype=np.float32)[None, :] * 0.5
    out = trajectory_resample(fields)
    assert np.array_equal(out[0], fields[0])
    # p_2 = p + (1, 0): field 1 is read one column to the right (clamped at the border)
    assert out[1][2, :, 0].tolist() == [1, 2, 3, 4, 5, 6, 7, 7]
    # p_3 = p_2 + d_1(p_2) = x + 1 + (x + 1) = 2x + 2: field 2 read there, i.e. 0.5 * min(2x + 2, 7)
    assert out[2][3, :, 1].tolist() == [1.0, 2.0, 3.0, 3.5, 3.5, 3.5, 3.5, 3.5]
    # constant flow: trajectory stacking == flow stacking
    const = np.full((4, h, w, 2), 0.7, np.float32)
    assert np.allclose(trajectory_resample(const), const)


def test_ten_crop_layout_and_flip_sign():
    p, c, h, w = 2, 4, 6, 8
    x = torch.arange(p * c * h * w, dtype=torch.float32).reshape(p, c, h, w)
    out = ten_crop(x, 4, sign=flow_sign(2))
    assert out.shape == (20, 4, 4, 4)
    boxes = [(0, 0), (0, 4), (2, 0), (2, 4), (1, 2)]
    for pos in range(p):
        for k, (y0, x0) in enumerate(boxes):
            crop = x[pos, :, y0:y0 + 4, x0:x0 + 4]
            assert torch.equal(out[pos * 10 + k], crop)
            flipped = crop.flip(-1) * torch.tensor([-1.0, 1, -1, 1]).view(-1, 1, 1)
            assert torch.equal(out[pos * 10 + 5 + k], flipped)
    assert torch.equal(ten_crop(x[:, :3], 4)[5], x[0, :3, 0:4, 0:4].flip(-1))  # RGB: no sign


def test_rgb_normalisation_in_each_convention_and_jitter():
    frame = np.full((4, 4, 3), 128, np.uint8)
    frame[..., 2] = 10
    x = rgb_planes(frame, CONVENTIONS["torchvision"]).full()
    assert x.shape == (3, 4, 4) and x.dtype == np.float32
    expected = (np.float32([128, 128, 10]) / 255 - np.float32([0.485, 0.456, 0.406])) / np.float32([0.229, 0.224, 0.225])
    assert np.allclose(x[:, 0, 0], expected)
    caffe = rgb_planes(frame, CONVENTIONS["caffe"]).full()  # the paper's: 0-255 minus the mean
    assert np.allclose(caffe[:, 0, 0], np.float32([128, 128, 10]) - 255 * np.float32([0.485, 0.456, 0.406]), atol=1e-4)
    assert np.allclose(rgb_planes(frame, CONVENTIONS["caffe_bgr"]).full(), caffe[::-1])
    j = rgb_planes(frame, CONVENTIONS["torchvision"], 0.1, np.random.default_rng(0)).full()
    shift = (j - x).reshape(3, -1)
    assert np.allclose(shift, shift[:, :1]) and np.abs(shift).max() > 1e-4  # one colour shift per frame
    jc = rgb_planes(frame, CONVENTIONS["caffe"], 0.1, np.random.default_rng(0)).full()  # the same shift in pixels
    assert np.allclose((jc - caffe)[:, 0, 0], shift[:, 0] * 255 * np.float32([0.229, 0.224, 0.225]), atol=1e-3)


def test_planes_crop_the_codes_and_equal_converting_whole_frames_first():
    # the loader keeps uint8 codes until the crop is cut; the result is the float path's, cropped
    from twostream.flow.codec import FlowCodec

    rng = np.random.default_rng(0)
    codec = FlowCodec(bound=20, quality=95)
    codes = rng.integers(0, 256, (6, 9, 11), dtype=np.uint8)  # 3 fields, x and y
    fields = codec.dequantize(codes.reshape(3, 2, 9, 11).transpose(0, 2, 3, 1))
    sign = flow_sign(3)
    for mean_subtraction in (False, True):
        planes = flow_planes(codes, codec, mean_subtraction)
        assert planes.codes.dtype == np.uint8
        whole = flow_to_input(fields, mean_subtraction)
        assert np.allclose(planes.full(), whole, atol=1e-4)
        flipped = planes.crop(2, 3, 5, flip=True, sign=sign).full()
        assert np.allclose(flipped, whole[:, 2:7, 3:8][:, :, ::-1] * sign[:, None, None], atol=1e-4)
    frame = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    for name, conv in CONVENTIONS.items():
        whole = conv.normalize(frame.astype(np.float32))
        assert np.allclose(rgb_planes(frame, conv).crop(1, 2, 6, flip=True).full(), whole[:, 1:7, 2:8][:, :, ::-1],
                           atol=1e-4), name
