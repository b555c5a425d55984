"""Training, evaluation, run files and the config under hostile use (issue items 10-18)."""

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twostream.checkpoint import load_checkpoint
from twostream.cli import main
from twostream.config import ConfigError, load_config, save_config
from twostream.errors import UserError
from twostream.evaluate import evaluate
from twostream.io import atomic_write_text
from twostream.runs import RunDir
from twostream.scores import Scores, read_scores, write_scores
from twostream.train import train


def _metrics(run):
    return [json.loads(line) for line in RunDir(run).metrics.read_text().splitlines()]


def test_resume_refuses_changes_that_alter_the_run_and_records_the_safe_ones(tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_config("temporal", ["optim.iterations=3"]), run, progress=False)
    for change in (["optim.lr=0.5"], ["optim.milestones=[2]"], ["optim.batch_size=4", "optim.micro_batch=4"],
                   ["run.seed=3"], ["input.stream=spatial"]):
        with pytest.raises(UserError, match="would make the run not what it says") as err:
            train(tiny_config("temporal", ["optim.iterations=6"] + change), run, resume=True, progress=False)
        assert change[0].split("=")[0] in str(err.value)
    assert load_checkpoint(RunDir(run).checkpoint)["iteration"] == 3  # nothing happened
    with pytest.raises(UserError, match="optim.iterations: 3, but the checkpoint is at iteration 3"):
        train(tiny_config("temporal", ["optim.iterations=3"]), run, resume=True, progress=False)
    train(tiny_config("temporal", ["optim.iterations=5", "run.log_every=2"]), run, resume=True, progress=False)
    ckpt = load_checkpoint(RunDir(run).checkpoint)
    assert ckpt["iteration"] == 5
    assert ckpt["resumes"] == [{"iteration": 3, "changes": [["optim.iterations", 3, 5], ["run.log_every", 1, 2]]}]
    assert "resume at iteration 3: optim.iterations 3 -> 5" in capsys.readouterr().out


def test_metrics_stay_consistent_after_kills(tiny_config, tmp_path, monkeypatch):
    # the reference: 6 iterations, a line every 2, a checkpoint every 3 (not a multiple of 2)
    over = ["optim.iterations=6", "run.log_every=2", "run.checkpoint_every=3", "model.dropout=0.5"]
    train(tiny_config("temporal", over), tmp_path / "ref", progress=False)
    ref = _metrics(tmp_path / "ref")
    # a run that dies in its 5th step (after the line at 4, with its checkpoint at 3 inside a logging
    # window), and whose last line a kill cut short
    import twostream.train as train_module
    real_step, calls = train_module.train_step, []

    def dying_step(*args, **kw):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(*args, **kw)

    monkeypatch.setattr(train_module, "train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config("temporal", over), tmp_path / "b", progress=False)
    monkeypatch.setattr(train_module, "train_step", real_step)
    with open(RunDir(tmp_path / "b").metrics, "a") as f:
        f.write('{"iteration": 6, "lo')
    train(tiny_config("temporal", over), tmp_path / "b", resume=True, progress=False)
    got = _metrics(tmp_path / "b")
    assert [m["iteration"] for m in got] == [2, 4, 6]  # the line at 4 redone, the cut line gone
    for a, b in zip(ref, got):  # the line at 4 covers iterations 3 and 4, as in the uninterrupted run
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["accuracy"] == b["accuracy"]
    # a run killed before its first checkpoint: a fresh start does not append to its lines
    (tmp_path / "c").mkdir()
    RunDir(tmp_path / "c").metrics.write_text('{"iteration": 1, "loss": 9.0}\n{"iteration": 2, "loss"')
    train(tiny_config("temporal", over), tmp_path / "c", progress=False)
    assert [m["iteration"] for m in _metrics(tmp_path / "c")] == [2, 4, 6]


def test_a_full_disk_during_a_checkpoint_write_is_named_and_keeps_the_previous(tiny_config, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(tiny_config("temporal", ["optim.iterations=3"]), run, progress=False)
    before = RunDir(run).checkpoint.read_bytes()
    real_save = torch.save
    with open("/dev/full", "wb", buffering=0) as full:  # every write to it fails with the kernel's ENOSPC
        monkeypatch.setattr(torch, "save", lambda obj, f: real_save(obj, full))
        with pytest.raises(UserError, match="checkpoint.pt: no space left on device"):
            train(tiny_config("temporal", ["optim.iterations=6"]), run, resume=True, progress=False)
    assert RunDir(run).checkpoint.read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_atomic_writes_are_synced_and_honour_the_umask(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    assert any(p.endswith(".tmp") for p in synced) and str(tmp_path) in synced  # the file, then its folder


def test_a_yaml_alias_bomb_is_refused_in_bounded_time_and_memory(tmp_path):
    levels = [f'{chr(97 + i)}: &{chr(97 + i)} [{",".join([f"*{chr(96 + i)}"] * 9)}]' for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "\n".join(levels)
                    + "\nrun: {seed: *i}\n")
    assert bomb.stat().st_size < 400
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
            "from twostream.cli import main; sys.exit(main(['train', sys.argv[1]]))")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "alias bomb" in proc.stderr and len(proc.stderr) < 500
    assert time.perf_counter() - start < 30


@pytest.mark.parametrize("argv, message", [
    (["extract", "SRC", "OUT", "--rgb-quality", "500"], "RGB JPEG quality must be 1..100, got 500"),
    (["extract", "SRC", "FILE"], "the output is a file, not a folder"),
    (["train", "CFG", "--run-dir", "FILE"], "the run folder is a file"),
])
def test_edge_values_are_one_line_errors(argv, message, tiny_videos, tmp_path, capsys, tiny_config):
    tiny_videos("a.mp4")
    (tmp_path / "file").write_text("x")
    save_config(tiny_config(), tmp_path / "cfg.yaml")
    names = {"SRC": str(tmp_path / "videos"), "OUT": str(tmp_path / "out"), "FILE": str(tmp_path / "file"),
             "CFG": str(tmp_path / "cfg.yaml")}
    assert main([names.get(a, a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def _scores(part="test", task="t", rows=((0.6, 0.4), (0.3, 0.7))):
    return Scores(["v0", "v1"], [0, 1], ["a", "b"], np.array(rows, np.float32), {"task": task, "part": part})


def test_bad_score_files_are_refused(tmp_path, capsys):
    good = write_scores(tmp_path / "s.npz", _scores())
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:100])
    (tmp_path / "text.npz").write_text("not numpy")
    write_scores(tmp_path / "nan.npz", _scores(rows=((np.nan, np.nan), (np.nan, np.nan))))
    for name, message in (("cut.npz", "not a twostream score file"), ("text.npz", "not a twostream score file"),
                          ("nan.npz", "2 of its 2 videos have scores that are not finite")):
        with pytest.raises(UserError, match=message):
            read_scores(tmp_path / name)
    assert main(["fuse", str(good), str(good), "--no-report"]) == 2
    assert "given as both the spatial and the temporal scores" in capsys.readouterr().err
    write_scores(tmp_path / "t_train.npz", _scores(part="train"))
    assert main(["fuse", str(good), str(tmp_path / "t_train.npz"), "--no-report"]) == 2
    assert "its metadata says part 'train'" in capsys.readouterr().err


def test_a_limited_evaluation_never_replaces_the_full_one(tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_config("spatial", ["optim.iterations=2"]), run, progress=False)
    full = evaluate(run, "test", workers=0, progress=False)["synth"]
    quick = evaluate(run, "test", workers=0, limit=2, progress=False)["synth"]
    assert quick != full and len(read_scores(full).video_ids) == 8
    assert len(read_scores(quick, complete=False).video_ids) == 2
    with pytest.raises(UserError, match="a quick check of the first 2 videos"):
        read_scores(quick)
    assert main(["fuse", str(quick), str(full), "--no-report"]) == 2


def _training_kill_trials(tiny_config, tmp_path, seeds):
    over = ["optim.iterations=12", "run.checkpoint_every=2", "run.log_every=3", "model.dropout=0.5"]
    cfg = tiny_config("temporal", over)
    save_config(cfg, tmp_path / "cfg.yaml")
    train(cfg, tmp_path / "ref", progress=False)
    ref_w, ref_m = load_checkpoint(RunDir(tmp_path / "ref").checkpoint)["model"], _metrics(tmp_path / "ref")
    cmd = [sys.executable, "-m", "twostream.cli", "train", str(tmp_path / "cfg.yaml"), "--quiet", "--run-dir"]
    for seed in seeds:
        rng = random.Random(seed)
        run = tmp_path / f"k{seed}"
        for _ in range(2):  # two kills per trial, each at a random moment (checkpoint writes included)
            args = cmd + [str(run)] + (["--resume"] if RunDir(run).checkpoint.exists() else [])
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(2.0, 9.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        args = cmd + [str(run)] + (["--resume"] if RunDir(run).checkpoint.exists() else [])
        if RunDir(run).checkpoint.exists() and load_checkpoint(RunDir(run).checkpoint)["iteration"] == 12:
            pass  # the run had finished before a kill
        else:
            subprocess.run(args, check=True, capture_output=True)
        got = load_checkpoint(RunDir(run).checkpoint)
        assert got["iteration"] == 12
        for k in ref_w:
            assert torch.allclose(got["model"][k], ref_w[k], atol=1e-6), (seed, k)
        m = _metrics(run)
        assert [x["iteration"] for x in m] == [x["iteration"] for x in ref_m], seed
        assert [x["loss"] for x in m] == pytest.approx([x["loss"] for x in ref_m], rel=1e-5), seed
        assert not [p for p in run.iterdir() if p.name.endswith(".tmp")], seed
    return len(seeds)


def test_training_killed_at_random_moments_resumes_to_the_uninterrupted_run(tiny_config, tmp_path):
    assert _training_kill_trials(tiny_config, tmp_path, seeds=range(1)) == 1


@pytest.mark.slow
def test_training_kill_trials_many_seeds(tiny_config, tmp_path):
    assert _training_kill_trials(tiny_config, tmp_path, seeds=range(10, 20)) == 10


_KEYS = ["optim.lr", "optim.iterations", "optim.milestones", "run.seed", "run.log_every", "tasks.0.fold",
         "tasks.0.kind", "input.length", "input.stream", "input.bidirectional", "model.dropout", "model.arch",
         "optim.batch_size", "run.device", "tasks.1.name", "nope.key", "input", "model.pretrained_convention"]
_VALUES = st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=True), st.booleans(), st.none(),
                    st.text(max_size=12), st.lists(st.integers(-3, 10**5), max_size=4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_KEYS), _VALUES), max_size=4), st.text(max_size=30))
def test_config_fuzz_is_valid_or_one_error_naming_the_key(pairs, raw):
    overrides = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in pairs] + [raw]
    try:
        load_config(None, overrides)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc).strip()


def test_a_checkpoint_from_before_new_config_keys_resumes(tiny_config, tmp_path):
    run = tmp_path / "run"
    train(tiny_config("temporal", ["optim.iterations=2"]), run, progress=False)
    ckpt = load_checkpoint(RunDir(run).checkpoint)
    for key in ("fusion_groups", "classes", "first_classes", "extra"):  # keys this version added
        del ckpt["config"]["tasks"][0][key]
    del ckpt["config"]["model"]["pretrained_convention"]
    torch.save(ckpt, RunDir(run).checkpoint)
    train(tiny_config("temporal", ["optim.iterations=3"]), run, resume=True, progress=False)
    assert load_checkpoint(RunDir(run).checkpoint)["iteration"] == 3
