import os

import numpy as np
import pytest

from twostream.cache import MANIFEST, CachedVideo, UnitWriter, is_complete, list_cached, read_manifest, unit_dir
from twostream.cache_size import cache_size
from twostream.record import ExtractionRecord


@pytest.fixture
def write(moving_frames, unit_record):
    """``write(root, vid, n=5, bidirectional=False, boom_at=None)`` -> (frames, flows) written as a unit."""

    def write_unit(root, vid, n=5, bidirectional=False, boom_at=None):
        frames = moving_frames(n, 32, 40)
        flows = np.random.default_rng(0).uniform(-10, 10, (n - 1, 32, 40, 2)).astype(np.float32)
        flows = np.round(flows)  # piecewise-flat values survive JPEG well enough to compare
        with UnitWriter(root, vid, unit_record(bidirectional)) as w:
            for t in range(n):
                if t == boom_at:
                    raise RuntimeError("killed")
                w.add_frame(frames[t])
                if t:
                    w.add_flow(flows[t - 1])
                    if bidirectional:
                        w.add_back_flow(-flows[t - 1])
            w.commit({"source": "x.mp4", "fps": 25.0})
        return frames, flows

    return write_unit


def test_random_access_to_frames_and_flow(tmp_path, write, unit_record):
    frames, flows = write(tmp_path, "cls/vid", n=6, bidirectional=True)
    video = CachedVideo(tmp_path, "cls/vid")
    assert (video.num_frames, video.num_flows, video.bidirectional) == (6, 5, True)
    for t in (4, 0, 2):  # any order; JPEG is lossy, so: close to frame t and closer to it than to the others
        errs = [np.abs(video.frame(t).astype(int) - f).mean() for f in frames]
        assert errs[t] < 6 and int(np.argmin(errs)) == t
    for t in (3, 1):
        assert np.abs(video.flow(t) - flows[t]).mean() < 0.5
        assert np.abs(video.back_flow(t) + flows[t]).mean() < 0.5
    with pytest.raises(IndexError, match="cls/vid: flow index 5"):
        video.flow(5)
    m = read_manifest(tmp_path, "cls/vid")
    assert m["codec"] == {"bound": 20.0, "quality": 95} and m["fps"] == 25.0 and m["width"] == 40
    # the extraction record reads back from the manifest as it was written
    assert ExtractionRecord.from_manifest(m) == unit_record(True) == video.record
    assert list_cached(tmp_path) == ["cls/vid"]
    assert len(list(unit_dir(tmp_path, "cls/vid").iterdir())) == 4  # a handful of files, not one per frame


def test_unit_is_there_whole_or_not_at_all(tmp_path, write):
    with pytest.raises(RuntimeError):
        write(tmp_path, "v", n=5, boom_at=3)
    assert not unit_dir(tmp_path, "v").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary left behind
    write(tmp_path, "v")
    assert is_complete(tmp_path, "v")
    # a failed overwrite leaves the old unit intact
    with pytest.raises(RuntimeError):
        write(tmp_path, "v", n=7, boom_at=5)
    assert CachedVideo(tmp_path, "v").num_frames == 5


def test_truncated_pack_is_detected(tmp_path, write):
    write(tmp_path, "v")
    pack = unit_dir(tmp_path, "v") / "flow.pack"
    pack.write_bytes(pack.read_bytes()[:-10])
    assert not is_complete(tmp_path, "v")
    with pytest.raises(ValueError, match="v: .*flow.pack is missing or truncated"):
        CachedVideo(tmp_path, "v")
    with pytest.raises(ValueError, match="nope: not in the cache"):
        read_manifest(tmp_path, "nope")
    with pytest.raises(ValueError, match="relative path"):
        unit_dir(tmp_path, "../escape")


def test_commit_refuses_missing_flow(tmp_path, moving_frames, unit_record):
    with pytest.raises(ValueError, match="3 frames need 2 flow fields"):
        with UnitWriter(tmp_path, "v", unit_record()) as w:
            for f in moving_frames(3, 16, 16):
                w.add_frame(f)
            w.commit({})
    assert not unit_dir(tmp_path, "v").exists()


def test_a_manifest_without_an_extraction_record_is_named(tmp_path, write):
    write(tmp_path, "v")
    m = read_manifest(tmp_path, "v")
    del m["codec"]
    with pytest.raises(ValueError, match="where.json: no valid extraction record .*codec"):
        ExtractionRecord.from_manifest(m, "where.json")


def test_cache_size_counts_the_packs_bytes_per_frame_and_field(tmp_path, write):
    write(tmp_path, "a", n=6, bidirectional=True)
    write(tmp_path, "b", n=4)
    size = cache_size(tmp_path)
    packs = {p.name: 0 for p in tmp_path.rglob("*.pack")}
    for p in tmp_path.rglob("*.pack"):
        packs[p.name] += p.stat().st_size
    assert (size.videos, size.frames, size.fields) == (2, 10, 5 + 5 + 3)  # a's backward fields count too
    assert size.rgb_bytes == packs["rgb.pack"] and size.flow_bytes == packs["flow.pack"] + packs["flow_back.pack"]
    assert size.per_frame == pytest.approx(sum(packs.values()) / 10)
    assert cache_size(tmp_path, ["b"]).frames == 4


def test_listing_never_enters_the_temporary_folders_a_running_extraction_renames(tmp_path, write, monkeypatch):
    # a writer renames or removes its temporary folder at any moment; walking into one raced a listing
    # (FileNotFoundError) in CI, so a listing must not look inside them at all
    write(tmp_path, "cls/vid")
    (tmp_path / "cls" / ".other.tmp-1234").mkdir()
    (tmp_path / "cls" / ".other.tmp-1234" / MANIFEST).write_text("{}")
    real_scandir = os.scandir

    def scandir(path="."):
        assert ".tmp-" not in str(path), f"entered {path}"
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert list_cached(tmp_path) == ["cls/vid"]
