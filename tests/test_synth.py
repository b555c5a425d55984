import numpy as np
import pytest

from twostream.cache import CachedVideo
from twostream.cli import main
from twostream.data.splits import ucf101_split
from twostream.flow.base import to_gray
from twostream.synth import MOTIONS, SynthOptions, class_names, render
from twostream.video import read_video

SMALL = SynthOptions(appearances=2, motions=4, videos_per_class=3, frames=10, width=96, height=64)


def test_classes_pair_every_appearance_with_every_motion():
    assert class_names(SMALL) == ["RedUp", "RedDown", "RedRotate", "RedZoom",
                                  "GreenUp", "GreenDown", "GreenRotate", "GreenZoom"]
    with pytest.raises(ValueError, match="motions"):
        SynthOptions(motions=len(MOTIONS) + 1)


def test_appearances_differ_in_colour_not_luminance():
    red, green = render(0, 0, SMALL, seed=5), render(1, 0, SMALL, seed=5)
    luma_diff = np.abs(np.stack([to_gray(f) for f in red]).astype(int) - np.stack([to_gray(f) for f in green])).max()
    colour_diff = np.abs(red.astype(int) - green).max()
    assert luma_diff <= 2 and colour_diff > 60  # flow (on luma) sees the same video; one frame does not


def test_render_is_deterministic_and_motions_share_appearance():
    assert np.array_equal(render(0, 2, SMALL, 9), render(0, 2, SMALL, 9))
    assert not np.array_equal(render(0, 2, SMALL, 9), render(0, 2, SMALL, 10))
    # the colour statistics of a video depend on its appearance, not on its motion: a frame's colours
    # cannot tell Up from Down or Zoom, and do tell Red from Green
    colour = {(a, m): render(a, m, SMALL, 9).reshape(-1, 3).mean(0) for a in (0, 1) for m in (0, 1, 3)}
    for m in (1, 3):
        assert np.abs(colour[0, m] - colour[0, 0]).max() < 1.0 and np.abs(colour[1, m] - colour[1, 0]).max() < 1.0
    assert np.abs(colour[1, 0] - colour[0, 0]).max() > 5.0


def test_generated_videos_decode_and_flow_follows_the_motion(tmp_path):
    out = tmp_path / "synth"
    assert main(["synth", str(out), "--appearances", "2", "--motions", "4", "--videos-per-class", "3",
                 "--frames", "10", "--size", "96", "64", "--quiet"]) == 0
    split = ucf101_split(out, 1)
    assert split.classes == class_names(SMALL)
    assert (len(split.train), len(split.test)) == (16, 8)
    frames, info = read_video(out / "RedUp" / "v_RedUp_g01_c01.mp4", short_side=None)
    assert frames.shape == (10, 64, 96, 3) and info.fps == 25
    cache = tmp_path / "cache"
    assert main(["extract", str(out), str(cache), "--short-side", "0", "--quiet"]) == 0
    for name, axis, sign in (("Down", 1, 1), ("Up", 1, -1)):  # image y grows downwards
        for app in ("Red", "Green"):
            v = CachedVideo(cache, f"{app}{name}/v_{app}{name}_g01_c01")
            mean = np.mean([v.flow(t)[..., axis].mean() for t in range(v.num_flows)])
            assert sign * mean > 0.05, (app, name, mean)
    rot = CachedVideo(cache, "RedRotate/v_RedRotate_g01_c01")
    assert abs(np.mean([rot.flow(t)[..., 0].mean() for t in range(rot.num_flows)])) < 0.05


def test_camera_jitter_shakes_the_whole_frame_deterministically():
    still = SynthOptions(appearances=1, motions=3, frames=6, width=64, height=48)
    shaky = SynthOptions(appearances=1, motions=3, frames=6, width=64, height=48, camera_jitter=1.5)
    a, b = render(0, 2, still, 4), render(0, 2, shaky, 4)  # "Rotate": the disc stays in place
    corner = (slice(None), slice(0, 8), slice(0, 8))  # background only
    assert np.array_equal(a[corner][0], a[corner][-1])  # a still camera: the background never moves
    assert any(not np.array_equal(b[corner][0], b[corner][t]) for t in range(1, 6))
    assert np.array_equal(b, render(0, 2, shaky, 4))
