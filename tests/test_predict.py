"""The Python API and ``twostream predict``: clips, frames in memory, real clips, the flow/codec guard,
timelines, live streams and one-line errors that leave the other clips done."""

import io
import json
import shutil
import struct
import warnings

import numpy as np
import pytest
import torch

from twostream import Recognizer
from twostream.cli import main
from twostream.errors import UserError
from twostream.runs import RunDir, load_run
from twostream.scores import read_scores
from twostream.stream import run_stream
from twostream.timeline import Windows
from twostream.video import read_video, write_video


@pytest.fixture(scope="module")
def rec(two_runs):
    return Recognizer.load([two_runs["spatial"], two_runs["temporal"]], device="cpu")


def _clip(synth_cache, cls="RedUp"):
    return next(iter(sorted((synth_cache["videos"] / cls).glob("*.mp4"))))




def test_predict_a_clip_matches_its_evaluation(two_runs, synth_cache, capsys):
    from twostream.predict import predict
    runs = [two_runs["spatial"], two_runs["temporal"]]
    evaluated = [read_scores(RunDir(r).scores("synth", "test")) for r in runs]
    vid = evaluated[0].video_ids[0]
    clip = synth_cache["videos"] / f"{vid}.mp4"
    classes, fused, per_run = predict(clip, runs)
    assert classes == evaluated[0].classes
    # the clip went through the cache's own extraction settings and the same protocol: same scores
    for run, ev in zip(runs, evaluated):
        assert np.allclose(per_run[str(run)], ev.scores[0], atol=1e-4)
    assert np.allclose(fused, (evaluated[0].scores[0] + evaluated[1].scores[0]) / 2, atol=1e-4)
    assert main(["predict", str(clip), *map(str, runs), "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("1. " + classes[int(np.argmax(fused))])


def test_recognizer_on_frames_in_memory_and_on_real_clips_shared_data(two_runs, synth_cache, shared_data):
    from twostream import Recognizer
    from twostream.video import read_video
    rec = Recognizer.load([two_runs["spatial"], two_runs["temporal"]], device="cpu")
    clip = next(iter(sorted((synth_cache["videos"] / "RedUp").glob("*.mp4"))))
    frames, _ = read_video(clip, short_side=None)  # the run's cache keeps the size: the same frames
    from_file, from_frames = rec.predict(clip), rec.predict(frames)
    assert np.allclose(from_file.scores, from_frames.scores, atol=1e-5)
    assert set(from_file.per_run) == {str(two_runs["spatial"]), str(two_runs["temporal"])}
    for path in sorted((shared_data / "clips" / "ucf101").iterdir()):  # real clips, every one gets a ranking
        top = rec.predict(path).top(5)
        assert len(top) == 4 and sorted(top, key=lambda x: -x[1]) == top and abs(sum(s for _, s in top) - 1) < 1e-4


def test_the_checkpoint_records_the_extraction_and_prediction_uses_it_without_the_cache(two_runs):
    loaded = load_run(two_runs["temporal"])
    assert loaded.checkpoint["extraction"]["synth"]["flow"]["method"] == "dis"
    loaded.config.tasks[0].cache = "/nonexistent/cache"  # a user's machine: the training cache is not there
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the checkpoint says how its videos were extracted
        r = Recognizer([loaded], ["t"])
    assert r.extraction[0].bidirectional and r.extraction[0].short_side == 0  # as synth_cache was made
    del loaded.checkpoint["extraction"]  # an older checkpoint, its cache gone: the defaults, said so
    with pytest.warns(UserWarning, match="t: neither its checkpoint nor its cache /nonexistent/cache says"):
        assert Recognizer([loaded], ["t"]).extraction[0].short_side == 256


def test_another_flow_or_codec_is_refused_unless_forced(two_runs, synth_cache):
    runs = [two_runs["spatial"], two_runs["temporal"]]
    with pytest.raises(UserError, match=r"temporal: trained on other flow or codec settings \(flow_method 'dis', "
                                        r"asked for 'farneback'\); --force"):
        Recognizer.load(runs, device="cpu", flow_method="farneback")
    with pytest.raises(UserError, match="bound 20.0, asked for 10"):
        Recognizer.load(runs, device="cpu", bound=10)
    forced = Recognizer.load(runs, device="cpu", force=True, flow_method="farneback")
    assert {o.flow_method for o in forced.extraction} == {"farneback"} and forced.extraction[0].flow_params == {}
    assert len(forced.predict(_clip(synth_cache)).top(2)) == 2
    same = Recognizer.load(runs, device="cpu", flow_method="dis", bound=20)  # what it was trained on: fine
    assert same.extraction[1].flow_method == "dis"
    assert main(["predict", str(_clip(synth_cache)), *map(str, runs), "--flow", "farneback"]) == 2


def test_timeline_scores_sliding_windows_and_plots_them(rec, synth_cache, tmp_path, capsys):
    clip = _clip(synth_cache)
    frames, _ = read_video(clip, short_side=None)
    long_clip = tmp_path / "long.mp4"  # 36 frames at 25 fps: windows of 0.5 s every 0.25 s
    write_video(long_clip, np.concatenate([frames, frames[::-1], frames]), fps=25)
    tl = rec.timeline(long_clip, Windows(length=0.5, stride=0.25, positions=2))
    assert tl.spans[0] == (0, 12) and tl.spans[-1][1] == 36 and len(tl.spans) == len(tl.times) == 5
    assert np.allclose(tl.scores.sum(1), 1, atol=1e-4) and tl.scores.shape == (5, 4)
    assert np.allclose(tl.times, [(a + b) / 2 / 25 for a, b in tl.spans])
    # a window that is the whole clip scores what predict scores with the same positions
    whole = rec.timeline(clip, Windows(length=10, stride=10, positions=3))
    assert len(whole.spans) == 1 and np.allclose(whole.scores[0], rec.predict(clip).scores, atol=1e-5)
    png = tmp_path / "t.png"
    runs = [str(p) for p in rec.names]
    assert main(["predict", str(long_clip), str(clip), *runs, "--timeline", str(png), "--window", "0.5",
                 "--stride", "0.25", "--window-positions", "2", "--json", "--top", "2"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png.read_bytes()[16:24])
    assert width == 800 and height == 520  # one panel per clip
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["clip"] for o in out] == [str(long_clip), str(clip)]
    assert out[0]["timeline"]["windows"] == [list(s) for s in tl.spans] and len(out[0]["timeline"]["scores"]) == 2
    best = tl.top_classes(1)[0]
    assert np.allclose(out[0]["timeline"]["scores"][tl.classes[best]], tl.scores[:, best], atol=1e-4)


def test_a_bad_clip_is_named_and_the_others_are_still_done(rec, synth_cache, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    good = _clip(synth_cache)
    assert main(["predict", str(bad), str(good), *map(str, rec.names)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"FAILED {bad}: not a readable video")
    assert f"{good}:" in captured.out and "1. " in captured.out
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(good), str(tmp_path / "empty")]) == 2  # a folder that is no run
    assert "empty: no run there" in capsys.readouterr().err
    assert main(["predict", str(good), str(tmp_path / "missing.pt")]) == 2  # a checkpoint that is not there
    assert "missing.pt: no such run folder or checkpoint file" in capsys.readouterr().err


def test_stream_mode_on_a_file_read_as_a_stream(rec, synth_cache, tmp_path):
    clip = _clip(synth_cache)
    updates = list(rec.stream(str(clip), every=3, pace=False))
    frames, _ = read_video(clip, short_side=None)
    assert [u.frame for u in updates] == list(range(len(frames)))  # unpaced: nothing dropped
    scored = [u for u in updates if u.scored]
    # the temporal run (L = 4) needs 5 frames: the first label on frame 4, then one every 3 frames
    assert [u.frame for u in scored] == list(range(4, len(frames), 3))
    assert all(u.scores is not None and abs(u.scores.sum() - 1) < 1e-4 and u.latency > 0 for u in scored)
    assert updates[0].scores is None and updates[-1].scores is not None
    # live inputs are the extracted clip's at the same positions (the newest frame; the newest stack of
    # L = 4 fields, through the same codec): the same scores but for JPEG noise (live RGB is not re-encoded)
    last = scored[-1].frame
    with rec._clips(clip) as clips:
        wanted = np.mean(list(rec._scores(clips, lambda c: c.at(0, np.array([last if c.options.stream == "spatial"
                                                                             else last - 4]))).values()), axis=0)
    assert np.abs(scored[-1].scores - wanted).max() < 0.002  # measured 0.0005; two frames off: 0.004
    out = tmp_path / "annotated.mp4"
    lines = []
    summary = run_stream(rec, str(clip), every=3, out=out, pace=False, json_lines=True, echo=lines.append)
    assert summary.frames == len(frames) and summary.labels == len(scored) and summary.dropped == 0
    assert [json.loads(x)["frame"] for x in lines] == [u.frame for u in scored]
    written, info = read_video(out, short_side=None)
    assert len(written) == len(frames) and info.width == frames.shape[2] // 2 * 2
    assert np.abs(written[-1, :20].astype(int) - frames[-1, :20]).mean() > 5  # the label is drawn on top


def test_a_slow_model_drops_frames_instead_of_queueing_them(rec, synth_cache, tmp_path, monkeypatch):
    import time

    import twostream.stream as stream

    frames, _ = read_video(_clip(synth_cache), short_side=None)
    clip = tmp_path / "paced.mp4"
    write_video(clip, np.concatenate([frames] * 4), fps=100)  # 48 frames, delivered at 100 frames/s
    real = stream.video_scores

    def slow(*a, **k):
        time.sleep(0.05)  # each score takes 5 frame intervals
        return real(*a, **k)

    monkeypatch.setattr(stream, "video_scores", slow)
    updates = list(rec.stream(str(clip), every=1, pace=True))
    assert updates[-1].dropped > 0 and len(updates) + updates[-1].dropped == 48
    assert max(np.diff([u.frame for u in updates])) > 1  # frames were skipped, in order


def test_a_truncated_checkpoint_is_one_clear_line(two_runs, synth_cache, tmp_path, capsys):
    cut = tmp_path / "cut"
    cut.mkdir()
    data = (two_runs["temporal"] / "checkpoint.pt").read_bytes()
    (cut / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    assert main(["predict", str(_clip(synth_cache)), str(cut)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(cut / "checkpoint.pt") in err[0] and "Traceback" not in err[0]


@pytest.mark.parametrize("missing", ["no-such-run", "no-such-run/", "no-such.pt"])
def test_a_missing_run_is_one_clear_line_naming_it(two_runs, synth_cache, tmp_path, capsys, missing):
    gone = f"{tmp_path}/{missing}"
    assert main(["predict", str(_clip(synth_cache)), str(two_runs["spatial"]), gone]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and gone in err[0] and "no such run" in err[0]


def test_stream_mode_on_a_url_pyav_opens(rec, synth_cache):
    # a source that is not a local path (here FFmpeg's file: protocol, as an http:// or rtsp:// one would
    # be) is live: played as it comes, labelled once L + 1 frames are in
    clip = _clip(synth_cache)
    updates = list(rec.stream(f"file:{clip}", every=2))
    assert len(updates) + updates[-1].dropped == 12 and [u for u in updates if u.scored]
    with pytest.raises(ValueError, match="nothing-here.mp4: cannot open as a video stream"):
        list(rec.stream("file:/nothing-here.mp4"))


def test_a_loaded_run_keeps_one_copy_of_its_weights_and_nothing_mapped_from_its_file(two_runs, tmp_path):
    # the checkpoint is mapped, not read (its optimizer state is never read): the model must own its
    # weights, and the metadata kept must not point into the file, which a new training run may rewrite
    path = shutil.copy(RunDir(two_runs["temporal"]).checkpoint, tmp_path / "last.pt")
    loaded = load_run(path)
    assert not {"model", "optimizer", "scheduler", "scaler", "rng"} & set(loaded.checkpoint)
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    with open(path, "r+b") as f:  # cut short in place: a view into the mapping would now fault (SIGBUS)
        f.truncate(0)
    assert all(torch.equal(before[k], v) for k, v in loaded.model.state_dict().items())
    torch.save(loaded.checkpoint, io.BytesIO())  # reads every tensor left in the metadata
