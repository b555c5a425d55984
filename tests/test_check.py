import json

import numpy as np

from twostream.cli import main
from twostream.video import write_video


def test_check_lists_what_extract_would_refuse(tiny_videos, tmp_path, moving_frames, capsys):
    good = tiny_videos("ok/a.mp4")
    d = good.parent.parent
    (d / "bad").mkdir()
    (d / "bad" / "empty.mp4").write_bytes(b"")
    (d / "bad" / "text.avi").write_text("hello" * 50)
    write_video(d / "bad" / "one.mp4", moving_frames(1))
    write_video(d / "bad" / "tall.mp4", np.zeros((4, 1000, 2, 3), np.uint8))
    cut = d / "bad" / "cut.avi"
    write_video(cut, moving_frames(60), codec="mpeg4")
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size * 2 // 3])
    (d / "dir.mp4").mkdir()
    report = tmp_path / "r.json"
    assert main(["check", str(d), "--workers", "2", "--quiet", "--report", str(report)]) == 1
    rep = json.loads(report.read_text())
    reasons = {v["video_id"]: v["reason"] for v in rep["videos"] if v["status"] == "failed"}
    assert set(reasons) == {"bad/empty", "bad/text", "bad/one", "bad/tall", "bad/cut"}
    assert "empty file" in reasons["bad/empty"] and "flow needs at least 2" in reasons["bad/one"]
    assert "over JPEG's 65500 px limit" in reasons["bad/tall"] and "truncated" in reasons["bad/cut"]
    assert [x["reason"] for x in rep["not_videos"]] == ["a folder, not a file"]
    assert "1 readable, 5 not, 1 not videos" in capsys.readouterr().out
