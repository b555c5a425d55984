"""Extraction with a PyTorch flow on a device in batches of frame pairs (run here with --device cpu)."""

import numpy as np
import pytest
import torch

from twostream.cache import CachedVideo, list_cached, read_manifest
from twostream.cli import main
from twostream.errors import UserError
from twostream.extract import ExtractOptions, VideoResult, extract_all
from twostream.extract_device import Decoded, PairBatcher, extract_on_device
from twostream.flow import BroxTorch
from twostream.record import ExtractionRecord
from twostream.sources import find_videos


class Recorder:
    """A batched 'flow' whose field says which frames it saw: x = first frame's value, y = second's."""

    device = torch.device("cpu")

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.sizes, self.fail_on_call = [], fail_on_call

    def batch(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(a))
        if len(self.sizes) == self.fail_on_call:
            raise RuntimeError("CUDA out of memory")
        return torch.stack([a, b], dim=1).float()


def _video(name: str, first: int, frames: int, size=(4, 6)) -> Decoded:
    grey = np.stack([np.full(size, first + t, np.uint8) for t in range(frames)])
    return Decoded(VideoResult(name, name, "ok"), np.repeat(grey[..., None], 3, -1), grey, {})


@pytest.mark.parametrize("bidirectional", [False, True])
def test_pairs_of_several_videos_share_a_batch_and_every_field_lands_in_its_place(bidirectional):
    flow = Recorder()
    batcher = PairBatcher(flow, 4, bidirectional)
    a, b, c = _video("a", 10, 3), _video("b", 50, 4), _video("wide", 90, 3, size=(4, 8))
    done = batcher.add(a) + batcher.add(b) + batcher.add(c)
    done += batcher.flush()
    # a (2 pairs) and b (3) share a frame size and fill a batch together; the wider video never joins them
    assert flow.sizes == ([4, 4, 4, 2] if bidirectional else [4, 1, 2])
    assert {v.result.video_id for v in done} == {"a", "b", "wide"}
    for video, first in ((a, 10), (b, 50), (c, 90)):
        t = np.arange(len(video.forward))[:, None, None]
        assert (video.forward[..., 0] == first + t).all() and (video.forward[..., 1] == first + t + 1).all()
        if bidirectional:  # backward field t maps frame t+1 to frame t
            assert (video.backward[..., 0] == first + t + 1).all() and (video.backward[..., 1] == first + t).all()
        else:
            assert video.backward is None


def test_a_batch_the_device_fails_on_fails_its_videos_only():
    flow = Recorder(fail_on_call=1)
    batcher = PairBatcher(flow, 3, False)
    a, b, c = _video("a", 0, 2), _video("b", 10, 4), _video("c", 20, 5)
    out = batcher.add(a) + batcher.add(b)  # a's pair and two of b's: the failing batch
    out += batcher.add(c) + batcher.flush()
    status = {v.result.video_id: (v.result.status, v.result.reason) for v in out}
    assert status["a"] == status["b"] == ("failed", "flow on cpu: RuntimeError: CUDA out of memory")
    assert status["c"] == ("ok", "")
    assert flow.sizes == [3, 3, 1]  # b's third pair was dropped with it; c's four pairs ran
    assert (c.forward[..., 0] == 20 + np.arange(4)[:, None, None]).all()


def test_a_video_under_two_frames_is_passed_on_for_the_writer_to_name():
    batcher = PairBatcher(Recorder(), 4, True)
    [one] = batcher.add(_video("one", 0, 1))
    assert one.forward.shape[0] == 0 and one.missing == 0


def test_extract_brox_on_device_cpu_writes_the_units_extract_writes_and_a_rerun_skips_them(tiny_videos, tmp_path, capsys):
    for i, n in enumerate((7, 11)):
        tiny_videos(f"c{i}/v{i}.mp4", frames=n, height=40, width=56, seed=i)
    tiny_videos("c0/broken.mp4").write_bytes(b"not a video")
    src, out = tmp_path / "videos", tmp_path / "device"
    args = ["extract", str(src), str(out), "--flow", "brox", "--device", "cpu", "--batch-pairs", "5",
            "--workers", "2", "--short-side", "0", "--bidirectional", "--quiet"]
    assert main(args) == 1  # the broken file is named and the others are done
    captured = capsys.readouterr()
    assert "2 extracted, 0 already complete, 1 failed" in captured.out and "broken.mp4" in captured.err
    assert list_cached(out) == ["c0/v0", "c1/v1"]
    record = ExtractionRecord.from_manifest(read_manifest(out, "c1/v1"))
    assert record.flow_method == "brox" and record.settings() == {k: v for k, v in BroxTorch().params().items()
                                                                 if k != "torch"}
    # the same units as extract's one-pair-at-a-time path with the same estimator
    videos = [v for v in find_videos(src) if "broken" not in v[0]]
    options = ExtractOptions(flow_method="brox", short_side=0, bidirectional=True)
    assert all(r.status == "ok" for r in extract_all(videos, tmp_path / "pairwise", options, progress=False))
    for vid in ("c0/v0", "c1/v1"):
        mine, theirs = CachedVideo(out, vid), CachedVideo(tmp_path / "pairwise", vid)
        assert (mine.num_frames, mine.num_flows) == (theirs.num_frames, theirs.num_flows)
        assert all((mine.frame(t) == theirs.frame(t)).all() for t in range(mine.num_frames))
        for t in range(mine.num_flows):  # quantised to 40/255 px steps: batching moves a few by one step
            assert np.abs(mine.flow(t) - theirs.flow(t)).max() <= 0.2
            assert np.abs(mine.back_flow(t) - theirs.back_flow(t)).max() <= 0.2
    assert main(args) == 1
    assert "0 extracted, 2 already complete, 1 failed" in capsys.readouterr().out
    # the device path keeps the CPU path's units (the record does not hold the device) and vice versa
    assert extract_on_device(videos, tmp_path / "pairwise", options, "cpu", progress=False)[0].status == "skipped"


def test_device_path_refuses_a_flow_it_cannot_batch_and_batch_pairs_without_device(tiny_videos, tmp_path, capsys):
    path = tiny_videos("v.mp4")
    with pytest.raises(UserError, match=r"--device needs a PyTorch flow \(brox, tvl1-torch\), got 'dis'"):
        extract_on_device([("v", path)], tmp_path / "c", ExtractOptions(), "cpu", progress=False)
    with pytest.raises(UserError, match="batch pairs must be >= 1, got 0"):
        extract_on_device([("v", path)], tmp_path / "c", ExtractOptions(flow_method="brox"), "cpu", 0, progress=False)
    assert main(["extract", str(path.parent), str(tmp_path / "c"), "--flow", "brox", "--batch-pairs", "4"]) == 2
    assert "--batch-pairs needs --device" in capsys.readouterr().err
