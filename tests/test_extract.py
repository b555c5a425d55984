import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from twostream.cache import CachedVideo, list_cached, unit_dir
from twostream.cli import main
from twostream.errors import UserError
from twostream.extract import ExtractOptions, VideoResult, extract_all, run_pool
from twostream.sources import find_videos, parse_shard, shard, shard_from_env

FAST = ExtractOptions(flow_params={"preset": "ultrafast"}, short_side=0)


def test_find_videos_folder_and_list(tiny_videos, tmp_path):
    a = tiny_videos("walk/a.mp4")
    tiny_videos("run/b.avi")
    (a.parent / "notes.txt").write_text("not a video")
    root = a.parent.parent
    assert [v for v, _ in find_videos(root)] == ["run/b", "walk/a"]
    listing = root / "list.txt"
    listing.write_text("walk/a.mp4\n\n# comment\nrun/b.avi\n")
    assert [v for v, _ in find_videos(listing)] == ["run/b", "walk/a"]
    with pytest.raises(UserError, match="nowhere: neither a folder of videos nor a list file"):
        find_videos(tmp_path / "nowhere")


def test_shards_partition_deterministically():
    videos = [(f"c{i % 7}/v{i}", Path(f"v{i}.avi")) for i in range(200)]
    parts = [shard(videos, i, 4) for i in range(4)]
    assert sorted(sum(parts, [])) == sorted(videos)
    assert all(20 < len(p) < 80 for p in parts)
    assert shard(videos[:50], 1, 4) == [v for v in parts[1] if v in videos[:50]]  # stable under list changes
    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "x", "1/0"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def test_shard_auto_reads_the_launchers_environment(monkeypatch):
    assert shard_from_env({"RANK": "3", "WORLD_SIZE": "8"}) == (3, 8)  # torchrun
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4",
                           "SLURM_ARRAY_TASK_MIN": "2"}) == (3, 4)  # an array 2-5
    with pytest.raises(ValueError, match="--shard auto: neither RANK/WORLD_SIZE"):
        shard_from_env({})
    with pytest.raises(ValueError, match="0 <= I < N"):
        shard_from_env({"RANK": "4", "WORLD_SIZE": "4"})
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert parse_shard("auto") == (1, 3)
    videos = [(f"c/v{i}", Path(f"v{i}.avi")) for i in range(60)]  # every video in exactly one process's share
    shares = [shard(videos, *shard_from_env({"RANK": str(r), "WORLD_SIZE": "3"})) for r in range(3)]
    assert sorted(sum(shares, [])) == sorted(videos)


def test_extract_writes_flow_that_follows_the_motion(tiny_videos, tmp_path):
    path = tiny_videos("v.mp4", frames=8, dx=2.0, height=64, width=96)
    [r] = extract_all([("v", path)], tmp_path / "cache", ExtractOptions(short_side=0, bidirectional=True),
                      progress=False)
    assert (r.status, r.frames) == ("ok", 8)
    video = CachedVideo(tmp_path / "cache", "v")
    assert video.num_flows == 7
    assert video.flow(3)[16:-16, 16:-16, 0].mean() == pytest.approx(2.0, abs=0.4)
    assert video.back_flow(3)[16:-16, 16:-16, 0].mean() == pytest.approx(-2.0, abs=0.4)
    assert video.manifest["flow"]["method"] == "dis" and video.manifest["flow"]["params"]["preset"] == "medium"


def test_bad_inputs_are_reported_and_the_rest_extracted(tiny_videos, tmp_path, capsys, moving_frames):
    good = tiny_videos("good.mp4")
    tiny_videos("good2.avi")
    d = good.parent
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.avi").write_text("hello" * 50)
    (d / "truncated.mp4").write_bytes(good.read_bytes()[:300])
    single = d / "single.mp4"
    from twostream.video import write_video
    write_video(single, moving_frames(1))
    report = tmp_path / "report.json"
    code = main(["extract", str(d), str(tmp_path / "c"), "--quiet", "--report", str(report)])
    assert code == 1
    rep = json.loads(report.read_text())
    status = {v["video_id"]: v for v in rep["videos"]}
    assert status["good"]["status"] == status["good2"]["status"] == "ok"
    for bad in ("empty", "text", "truncated", "single"):
        assert status[bad]["status"] == "failed" and f"{bad}." in status[bad]["reason"], status[bad]
    assert rep["summary"]["ok"] == 2 and rep["summary"]["failed"] == 4
    assert list_cached(tmp_path / "c") == ["good", "good2"]
    err = capsys.readouterr().err
    assert "FAILED" in err and "empty.mp4" in err


def test_rerun_skips_complete_units_and_refuses_other_settings(tiny_videos, tmp_path):
    path = tiny_videos("a.mp4")
    out = tmp_path / "c"
    assert extract_all([("a", path)], out, FAST, progress=False)[0].status == "ok"
    before = (unit_dir(out, "a") / "manifest.json").stat().st_mtime_ns
    assert extract_all([("a", path)], out, FAST, progress=False)[0].status == "skipped"
    assert (unit_dir(out, "a") / "manifest.json").stat().st_mtime_ns == before
    other = ExtractOptions(flow_method="farneback", short_side=0)
    r = extract_all([("a", path)], out, other, progress=False)[0]
    assert r.status == "failed" and "flow" in r.reason and "--overwrite" in r.reason
    r = extract_all([("a", path)], out, other, overwrite=True, progress=False)[0]
    assert r.status == "ok" and CachedVideo(out, "a").manifest["flow"]["method"] == "farneback"


def _die_on_poison(job):
    """Stands in for a decoder that crashes its process on one file."""
    if job[0] == "poison":
        os._exit(1)
    time.sleep(0.2)
    return VideoResult(job[0], str(job[1]), "ok", frames=1)


def test_a_crashing_worker_fails_its_video_only():
    jobs = [(v, Path(f"{v}.mp4")) for v in ("a", "poison", "b", "c", "d")]
    results = {}
    run_pool(jobs, 2, lambda r: results.__setitem__(r.video_id, r), run=_die_on_poison)
    assert sorted(results) == ["a", "b", "c", "d", "poison"]
    assert results["poison"].status == "failed" and "crashed" in results["poison"].reason
    assert all(results[v].status == "ok" for v in "abcd")


def _snapshot(root: Path) -> dict[str, bytes]:
    snap = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "manifest.json":  # drop nothing but keep it comparable
                data = json.dumps(json.loads(data), sort_keys=True).encode()
            snap[p.relative_to(root).as_posix()] = data
    return snap


def test_resume_after_sigkill_gives_the_uninterrupted_cache(tiny_videos, tmp_path):
    for i in range(10):
        tiny_videos(f"c{i % 2}/v{i}.mp4", frames=60, height=96, width=128, seed=i)
    src = tmp_path / "videos"
    cmd = [sys.executable, "-m", "twostream.cli", "extract", str(src), "--quiet", "--short-side", "0"]
    subprocess.run(cmd + [str(tmp_path / "ref")], check=True, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + [str(killed), "--workers", "2"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while not list_cached(killed) and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the parent and its workers
    proc.wait()
    done = len(list_cached(killed))
    assert 1 <= done < 10, "the kill should land mid-run"
    subprocess.run(cmd + [str(killed)], check=True, capture_output=True)
    assert _snapshot(killed) == _snapshot(tmp_path / "ref")


def test_extract_real_clips_shared_data(shared_data, tmp_path):
    clips = shared_data / "clips" / "ucf101"
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in sorted(clips.iterdir())[:2]))
    results = extract_all(find_videos(listing), tmp_path / "c", FAST, workers=2, progress=False)
    assert [r.status for r in results] == ["ok", "ok"]
    v = CachedVideo(tmp_path / "c", "v_Basketball_g01_c01")
    assert v.num_frames == 141 and v.frame(140).shape == (240, 320, 3)
    assert np.abs(v.flow(70)).max() > 0.5  # the players move
