import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from twostream.checkpoint import load_checkpoint
from twostream.config import save_config
from twostream.errors import UserError
from twostream.runs import RunDir
from twostream.train import train


def _metrics(run):
    return [json.loads(line) for line in RunDir(run).metrics.read_text().splitlines()]


@pytest.mark.parametrize("stream", ["spatial", "temporal"])
def test_tiny_training_loss_falls(synth_cache, tmp_path, stream, tiny_config):
    # by design each stream alone can tell 2 of the 4 classes apart: the loss can fall from ln 4 to ln 2
    cfg = tiny_config(stream, ["optim.iterations=40", "run.val_every=40", "optim.lr=0.005",
                                            "run.log_every=10"])
    last = train(cfg, tmp_path / "run", progress=False)
    losses = [m["loss"] for m in _metrics(tmp_path / "run")]  # each the mean over 10 steps x 8 samples
    assert len(losses) == 4
    assert losses[-1] < 0.9 * losses[0], losses
    # the logged validation accuracy is the model's: recomputed from the checkpoint on the centre crops
    from twostream.builders import load_task_split, make_clips
    from twostream.data.datasets import ValClips
    from twostream.runs import load_run
    run = load_run(tmp_path / "run")
    clips = make_clips(ValClips, cfg.tasks[0], cfg.input, load_task_split(cfg.tasks[0]).test, run.convention)
    with torch.no_grad():
        right = sum(int(run.model(clips[i]["input"][None], "synth").argmax()) == clips[i]["label"]
                    for i in range(len(clips)))
    assert last["val_accuracy/synth"] == right / len(clips)
    ckpt = load_checkpoint(RunDir(tmp_path / "run").checkpoint)
    assert ckpt["iteration"] == 40 and ckpt["classes"]["synth"][0] == "RedUp"
    assert ckpt["model_args"]["in_channels"] == (3 if stream == "spatial" else 8)
    assert RunDir(tmp_path / "run").config.exists()


def test_stopped_and_resumed_run_matches_an_uninterrupted_one(synth_cache, tmp_path, tiny_config):
    train(tiny_config("temporal", ["model.dropout=0.5", "run.workers=1"]), tmp_path / "a", progress=False)
    train(tiny_config("temporal", ["model.dropout=0.5", "optim.iterations=3"]), tmp_path / "b",
          progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny_config(), tmp_path / "b", progress=False)
    train(tiny_config("temporal", ["model.dropout=0.5"]), tmp_path / "b", resume=True, progress=False)
    a, b = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert [m["iteration"] for m in b] == [1, 2, 3, 4, 5, 6]
    for ma, mb in zip(a, b):
        assert ma["loss"] == pytest.approx(mb["loss"], rel=1e-5, abs=1e-6), (ma, mb)
    wa = load_checkpoint(RunDir(tmp_path / "a").checkpoint)["model"]
    wb = load_checkpoint(RunDir(tmp_path / "b").checkpoint)["model"]
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6), k


def test_multitask_heads_and_last_layer_only(synth_cache, tmp_path, tiny_config):
    # two tasks over the same videos, a second classifier head; pretrained trunk frozen
    from twostream.models import build_model
    rgb = build_model("cnn_m_2048", {"imagenet": 10}, 3, 64, dropout=0.5)
    torch.save(rgb.state_dict(), tmp_path / "w.pt")
    cfg = tiny_config("temporal", [
        f"tasks=[{{name: a, splits: {synth_cache['videos']}, cache: {synth_cache['cache']}}}, "
        f"{{name: b, splits: {synth_cache['videos']}, cache: {synth_cache['cache']}, weight: 0.5}}]",
        f"model.pretrained={tmp_path / 'w.pt'}", "model.train_layers=last", "optim.iterations=3"])
    train(cfg, tmp_path / "run", progress=False)
    ckpt = load_checkpoint(RunDir(tmp_path / "run").checkpoint)
    assert set(ckpt["classes"]) == {"a", "b"} and ckpt["model_args"]["num_classes"] == {"a": 4, "b": 4}
    w = ckpt["model"]
    from twostream.models import adapt_input_conv
    assert torch.allclose(w["features.0.weight"], adapt_input_conv(rgb.state_dict()["features.0.weight"], 8))
    assert torch.equal(w["pre_logits.1.weight"], rgb.state_dict()["pre_logits.1.weight"])  # frozen
    fresh = build_model(**ckpt["model_args"])
    assert not torch.equal(w["head.heads.a.weight"], fresh.state_dict()["head.heads.a.weight"])


def test_ddp_two_processes_on_cpu_step_like_one_process(synth_cache, tmp_path, tiny_config):
    # two tasks with unequal weights: the paper's loss (each task's mean over the whole batch) needs the
    # task counts over both processes; SGD with lr 1 and no momentum makes the weight change the gradient
    two_tasks = (f"tasks=[{{name: a, splits: {synth_cache['videos']}, cache: {synth_cache['cache']}}}, "
                 f"{{name: b, splits: {synth_cache['videos']}, cache: {synth_cache['cache']}, weight: 0.5}}]")
    one_step = [two_tasks, "optim.iterations=1", "optim.lr=1.0", "optim.momentum=0.0", "optim.weight_decay=0.0",
                "run.val_every=1", "run.val_videos=4"]
    cfg = tiny_config("temporal", one_step)
    save_config(cfg, tmp_path / "cfg.yaml")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
                           "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "twostream.cli",
                           "train", str(tmp_path / "cfg.yaml"), "--run-dir", str(tmp_path / "ddp"), "--quiet"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = _metrics(tmp_path / "ddp")
    assert [m["iteration"] for m in metrics] == [1]  # rank 0 logs, once per step
    assert "val_accuracy/a" in metrics[-1] and "val_accuracy/b" in metrics[-1]
    # one process, micro-batches of 1: the same step
    train(tiny_config("temporal", one_step + ["optim.micro_batch=1"]), tmp_path / "one", progress=False)
    ddp, one = (load_checkpoint(RunDir(tmp_path / r).checkpoint) for r in ("ddp", "one"))
    assert ddp["iteration"] == one["iteration"] == 1
    for k in one["model"]:  # same seed, same initial weights: equal weights after the step, equal gradients
        assert torch.allclose(ddp["model"][k], one["model"][k], atol=1e-6, rtol=1e-5), k
    assert _metrics(tmp_path / "one")[0]["loss"] == pytest.approx(metrics[0]["loss"], rel=1e-5)


def test_gradient_accumulation_equals_the_full_batch(synth_cache, tmp_path, tiny_config):
    # batch 8 in one pass vs two micro-batches of 4: the same samples, the same update (no dropout, no BN)
    train(tiny_config("spatial", ["optim.iterations=2"]), tmp_path / "full", progress=False)
    train(tiny_config("spatial", ["optim.iterations=2", "optim.micro_batch=4"]), tmp_path / "acc",
          progress=False)
    full, acc = (load_checkpoint(RunDir(tmp_path / r).checkpoint)["model"] for r in ("full", "acc"))
    for k in full:
        assert torch.allclose(full[k], acc[k], atol=1e-5), k
    assert [m["loss"] for m in _metrics(tmp_path / "full")] == pytest.approx([m["loss"] for m in _metrics(tmp_path / "acc")], rel=1e-4)
    with pytest.raises(ValueError, match="must split evenly"):
        train(tiny_config("spatial", ["optim.micro_batch=3"]), tmp_path / "bad", progress=False)


def test_fine_tuning_from_another_runs_checkpoint(synth_cache, tmp_path, tiny_config):
    # the paper's Table 3 (b): a net trained on one data set (its task "ucf101") fine-tuned on another
    # ("hmdb51"): the trunk comes from the checkpoint, the classifier is new
    train(tiny_config("temporal", ["tasks.0.name=ucf101", "optim.iterations=2"]), tmp_path / "ucf", progress=False)
    source = load_checkpoint(RunDir(tmp_path / "ucf").checkpoint)
    train(tiny_config("temporal", ["tasks.0.name=hmdb51", f"model.pretrained={RunDir(tmp_path / 'ucf').checkpoint}",
                                   "optim.iterations=1", "optim.lr=1e-12"]), tmp_path / "hmdb", progress=False)
    tuned = load_checkpoint(RunDir(tmp_path / "hmdb").checkpoint)
    assert set(tuned["classes"]) == {"hmdb51"}
    for k in ("features.0.weight", "features.8.weight", "pre_logits.4.weight"):
        assert torch.allclose(tuned["model"][k], source["model"][k], atol=1e-6), k
    assert "head.heads.hmdb51.weight" in tuned["model"] and "head.heads.ucf101.weight" not in tuned["model"]


def test_a_diverging_run_stops_with_a_clear_error_and_keeps_finite_weights(tiny_config, tmp_path):
    run = tmp_path / "run"
    cfg = tiny_config("temporal", ["optim.lr=1e8", "optim.iterations=12", "run.log_every=4", "run.checkpoint_every=1"])
    with pytest.raises(UserError, match=r"training diverged: the loss is nan by iteration \d+; .*checkpoint.pt holds"):
        train(cfg, run, progress=False)
    saved = torch.load(run / "checkpoint.pt", weights_only=False)  # the first step's, at least
    assert 1 <= saved["iteration"] < 12 and all(torch.isfinite(v).all() for v in saved["model"].values())
    # diverged before its first checkpoint: the error must not point at weights that were never written
    early = tmp_path / "early"
    cfg = tiny_config("temporal", ["optim.lr=1e8", "optim.iterations=12", "run.log_every=4", "run.checkpoint_every=12"])
    with pytest.raises(UserError, match=r"diverged before its first checkpoint, so .*checkpoint.pt was not written"):
        train(cfg, early, progress=False)
    assert not (early / "checkpoint.pt").exists()
