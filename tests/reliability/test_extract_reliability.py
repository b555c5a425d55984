"""Extraction and the cache under hostile input: bad files, tampering, kills, full disks (issue items 1-9)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from twostream.cache import CachedVideo, UnitWriter, leftovers, list_cached, read_manifest, unit_dir, verify_unit
from twostream.cli import main
from twostream.errors import UserError
from twostream.extract import ExtractOptions, extract_all
from twostream.sources import find_videos
from twostream.video import write_video

FAST = ExtractOptions(flow_params={"preset": "ultrafast"}, short_side=0)


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file of a cache, manifests in a canonical JSON form."""
    snap = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "manifest.json":
                data = json.dumps(json.loads(data), sort_keys=True).encode()
            snap[p.relative_to(root).as_posix()] = data
    return snap


def _extract(src, out, *extra):
    report = Path(str(out) + ".json")
    code = main(["extract", str(src), str(out), "--quiet", "--short-side", "0", "--preset", "ultrafast",
                 "--report", str(report), *extra])
    return code, json.loads(report.read_text())


def test_each_bad_input_is_its_own_failure_and_the_rest_is_extracted(tiny_videos, tmp_path, moving_frames, capsys):
    good = tiny_videos("ok/good one.mp4")  # spaces and unicode in names
    tiny_videos("ok/ünïcødé.mp4")
    d = good.parent.parent
    write_video(d / "odd" / "tall.mp4", np.zeros((4, 1000, 2, 3), np.uint8))  # short side 256 -> 128000 px
    write_video(d / "odd" / "tiny.mp4", np.zeros((4, 2, 2, 3), np.uint8))
    out = tmp_path / "c"
    # units a killed or buggy run could leave: a manifest without offsets, a manifest that is a list
    for vid, manifest in (("ok/good one", {"format": 1, "num_frames": 3}), ("ok/ünïcødé", [1, 2])):
        unit_dir(out, vid).mkdir(parents=True)
        (unit_dir(out, vid) / "manifest.json").write_text(json.dumps(manifest))
    code = main(["extract", str(d), str(out), "--quiet", "--report", str(tmp_path / "r.json")])
    assert code == 1
    rep = {v["video_id"]: v for v in json.loads((tmp_path / "r.json").read_text())["videos"]}
    assert rep["ok/good one"]["status"] == rep["ok/ünïcødé"]["status"] == "ok"
    assert "made again: incomplete or invalid" in rep["ok/good one"]["reason"]
    assert "over JPEG's 65500 px limit" in rep["odd/tall"]["reason"] and rep["odd/tall"]["status"] == "failed"
    # the same clip kept at its size: 2x2 is refused up front, named
    code, rep2 = _extract(d / "odd", tmp_path / "c2")
    reasons = {v["video_id"]: v["reason"] for v in rep2["videos"]}
    assert code == 1 and "tiny.mp4: frames would be 2x2, under 16 px" in reasons["tiny"]
    assert list_cached(out) == ["odd/tiny", "ok/good one", "ok/ünïcødé"]  # 2x2 at short side 256 is fine


def test_truncated_clip_fails_unless_accepted_and_recorded(tmp_path, moving_frames):
    src = tmp_path / "v" / "clip.avi"
    src.parent.mkdir()
    write_video(src, moving_frames(60, 48, 64), codec="mpeg4")  # the AVI header declares 60 frames
    data = src.read_bytes()
    src.write_bytes(data[: len(data) * 2 // 3])
    code, rep = _extract(src.parent, tmp_path / "c")
    assert code == 1 and "truncated:" in rep["videos"][0]["reason"] and "of the 60" in rep["videos"][0]["reason"]
    code, rep = _extract(src.parent, tmp_path / "c", "--accept-truncated")
    m = read_manifest(tmp_path / "c", "clip")
    assert code == 0 and m["truncated"] is True and m["declared_frames"] == 60 and 1 < m["num_frames"] < 60


def test_a_replaced_source_is_extracted_again(tiny_videos, tmp_path):
    path = tiny_videos("a.mp4", seed=1)
    out = tmp_path / "c"
    assert extract_all([("a", path)], out, FAST, progress=False)[0].status == "ok"
    os.utime(path)  # touched, same bytes: still the same source
    assert extract_all([("a", path)], out, FAST, progress=False)[0].status == "skipped"
    tiny_videos("a.mp4", seed=2, frames=14)  # replaced by another video
    r = extract_all([("a", path)], out, FAST, progress=False)[0]
    assert r.status == "ok" and r.reason == "made again: its source changed"
    assert CachedVideo(out, "a").num_frames == 14


@pytest.mark.parametrize("target", ["manifest.json", "rgb.pack", "flow.pack", "flow_back.pack"])
@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_tampering_with_any_file_of_a_unit_is_seen_and_mended(tiny_videos, tmp_path, target, damage):
    path = tiny_videos("a.mp4", frames=8)
    out = tmp_path / "c"
    opts = ExtractOptions(flow_params={"preset": "ultrafast"}, short_side=0, bidirectional=True)
    extract_all([("a", path)], out, opts, progress=False)
    clean = _snapshot(out)
    f = unit_dir(out, "a") / target
    data = f.read_bytes()
    if damage == "flip":
        i = len(data) // 2
        f.write_bytes(data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:])
    elif damage == "truncate":
        f.write_bytes(data[: len(data) - 7])
    else:
        f.unlink()
    problems = verify_unit(out, "a")
    assert problems and all("a" in p for p in problems)  # seen, and the video named
    assert main(["info", str(out), "--verify"]) == 1
    r = extract_all([("a", path)], out, opts, progress=False)[0]
    assert r.status == "ok" and r.reason.startswith("made again")
    assert _snapshot(out) == clean


def test_a_corrupt_jpeg_is_named_where_training_reads_it(tiny_videos, tmp_path):
    path = tiny_videos("cls/v.mp4", frames=8)
    extract_all([("cls/v", path)], tmp_path / "c", FAST, progress=False)
    video = CachedVideo(tmp_path / "c", "cls/v")
    start, end = video._offsets["rgb"][5], video._offsets["rgb"][6]
    pack = unit_dir(tmp_path / "c", "cls/v") / "rgb.pack"
    data = bytearray(pack.read_bytes())
    data[(start + end) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    video.frame(4)  # the others still read
    with pytest.raises(UserError, match=r"cls/v: frame 5 is corrupt in .*rgb.pack \(checksum mismatch\)"):
        video.frame(5)
    m = json.loads((pack.parent / "manifest.json").read_text())
    m["num_frames"] = 12  # a manifest lying about its frames is refused when read, not an IndexError later
    (pack.parent / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match="offsets.rgb must be 13 increasing integers"):
        read_manifest(tmp_path / "c", "cls/v")


def test_leftovers_are_removed_at_the_next_run_and_reported_apart(tiny_videos, tmp_path, unit_record, capsys):
    path = tiny_videos("x[1]/clip [a].mp4")
    out = tmp_path / "c"
    vid = "x[1]/clip [a]"
    extract_all([(vid, path)], out, FAST, progress=False)
    stale = unit_dir(out, vid).with_name(".clip [a].tmp-deadbeef")
    stale.mkdir()
    (stale / "rgb.pack").write_bytes(b"half")
    assert leftovers(out) == [stale]
    assert main(["info", str(out)]) == 0
    assert "1 temporary unit folders" in capsys.readouterr().err
    assert extract_all([(vid, path)], out, FAST, progress=False)[0].status == "skipped"
    assert not stale.exists() and leftovers(out) == []
    # a full disk when the writer closes its packs: no temporary folder is left
    writer = UnitWriter(out, "y", unit_record())

    def full(*a):
        raise OSError(28, "No space left on device")

    writer.packs["rgb"].file.close = full
    with pytest.raises(OSError):
        with writer:
            pass
    assert leftovers(out) == []


def test_info_lists_every_bad_unit_and_refuses_a_missing_cache(tiny_videos, tmp_path, capsys):
    out = tmp_path / "c"
    for i in range(3):
        extract_all([(f"v{i}", tiny_videos(f"v{i}.mp4"))], out, FAST, progress=False)
    for i in (0, 2):
        (unit_dir(out, f"v{i}") / "flow.pack").write_bytes(b"")
    assert main(["info", str(out)]) == 1
    err = capsys.readouterr().err
    assert "v0:" in err and "v2:" in err
    assert main(["info", str(tmp_path / "nowhere")]) == 2
    assert "no such cache folder" in capsys.readouterr().err


def test_folders_links_and_loops_named_like_videos_are_reported(tiny_videos, tmp_path):
    good = tiny_videos("a.mp4")
    d = good.parent
    (d / "dir.mp4").mkdir()
    (d / "dangling.mp4").symlink_to(d / "missing.mp4")
    (d / "loop").symlink_to(d)  # a link loop: never followed
    (d / "self.avi").symlink_to(d / "self.avi")
    code, rep = _extract(d, tmp_path / "c")
    skipped = {Path(x["path"]).name: x["reason"] for x in rep["not_videos"]}
    assert skipped == {"dir.mp4": "a folder, not a file", "dangling.mp4": "a dangling link", "self.avi": "a link loop"}
    assert code == 0 and [v["video_id"] for v in rep["videos"]] == ["a"]


def test_rotation_metadata_is_applied(tmp_path):
    frames = np.zeros((6, 48, 64, 3), np.uint8)
    frames[:, :8, :8] = 255  # a mark in the top-left corner
    write_video(tmp_path / "v" / "phone.mp4", frames, rotation=90)
    code, _ = _extract(tmp_path / "v", tmp_path / "c")
    video = CachedVideo(tmp_path / "c", "phone")
    f = video.frame(0)
    assert code == 0 and f.shape == (64, 48, 3) and video.manifest["rotation"] == 90
    assert f[-8:, :8].mean() > 200 and f[:8, :8].mean() < 50  # turned counter-clockwise: now bottom-left


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill_trials(tiny_videos, tmp_path, seeds):
    for i in range(8):
        tiny_videos(f"c{i % 2}/v{i}.mp4", frames=40, height=64, width=96, seed=i)
    src = tmp_path / "videos"
    cmd = [sys.executable, "-m", "twostream.cli", "extract", str(src), "--quiet", "--short-side", "0"]
    subprocess.run(cmd + [str(tmp_path / "ref")], check=True, capture_output=True)
    ref = _snapshot(tmp_path / "ref")
    survived = 0
    for seed in seeds:
        rng = random.Random(seed)
        out = tmp_path / f"killed{seed}"
        proc = subprocess.Popen(cmd + [str(out), "--workers", "2"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 4.0))  # import, pool start-up, mid-video, between videos
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)  # the main process only: its workers must not stay behind
        proc.wait()
        deadline = time.time() + 15
        while any(_alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), f"seed {seed}: orphan workers {workers}"
        subprocess.run(cmd + [str(out)], check=True, capture_output=True)
        assert _snapshot(out) == ref, f"seed {seed}"
        assert leftovers(out) == []
        survived += 1
    return survived


def test_sigkill_at_random_moments_then_rerun_gives_the_uninterrupted_cache(tiny_videos, tmp_path):
    assert _kill_trials(tiny_videos, tmp_path, seeds=range(3)) == 3


@pytest.mark.slow
def test_sigkill_trials_many_seeds(tiny_videos, tmp_path):
    assert _kill_trials(tiny_videos, tmp_path, seeds=range(10, 22)) == 12


def test_find_videos_sorts_and_names_duplicates(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "a.avi").write_bytes(b"x")
    with pytest.raises(UserError, match="two videos map to the id 'a'"):
        find_videos(tmp_path)
