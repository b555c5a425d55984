import json

import pytest
import torch

from twostream import precision
from twostream.models import build_model
from twostream.precision import autocast, autocast_dtype, native_bf16
from twostream.runs import load_run
from twostream.train import train

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


def test_native_bf16_is_read_from_the_cpu_flags():
    assert native_bf16("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 sse\n")
    assert native_bf16("flags\t: fpu amx_bf16 amx_tile\n")
    assert not native_bf16("flags\t: fpu avx512f avx512bw\n") and not native_bf16("")


def test_autocast_dtype_per_device(monkeypatch):
    assert autocast_dtype(CUDA, amp=True, bf16_cpu=False) == torch.float16
    assert autocast_dtype(CUDA, amp=False, bf16_cpu=True) is None
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert autocast_dtype(CPU, amp=True, bf16_cpu=True) == torch.bfloat16
    assert autocast_dtype(CPU, amp=True, bf16_cpu=False) is None  # run.amp alone never touches the CPU
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert autocast_dtype(CPU, amp=True, bf16_cpu=True) is None  # emulated bf16 is slower: never


@pytest.mark.parametrize("temporal", [False, True])
def test_bf16_forward_matches_float32_within_tolerance(temporal):
    """bfloat16 keeps 8 bits of mantissa: CNN-M's logits under CPU autocast stay within ~1.5 % of their
    spread, its softmax within 0.01 of float32's (measured: 0.004), and it picks the same class wherever
    float32's margin is clear."""
    torch.manual_seed(0)
    channels = 20 if temporal else 3
    net = build_model("cnn_m_2048", {"t": 5}, channels, 112, dropout=0.5, temporal=temporal).eval()
    with torch.no_grad():
        x = torch.randn(16, channels, 112, 112) * (1 if temporal else 60)  # flow px; RGB at the paper's scale
        ref = torch.softmax(net(x, "t"), 1)
        with autocast(CPU, torch.bfloat16):
            low = net(x, "t")
    assert low.dtype == torch.bfloat16  # autocast did run the layers in bfloat16
    probs = torch.softmax(low.float(), 1)
    assert (probs - ref).abs().max() < 0.01
    top2 = ref.topk(2, 1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.05
    assert clear.sum() >= 4 and torch.equal(probs.argmax(1)[clear], ref.argmax(1)[clear])


def test_training_with_bf16_keeps_float32_weights_and_a_finite_loss(tmp_path, tiny_config, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # the autocast runs on any CPU
    cfg = tiny_config("temporal", ["run.bf16_cpu=true", "optim.iterations=12", "run.log_every=6"])
    metrics = train(cfg, tmp_path / "run", progress=False)
    loaded = load_run(tmp_path / "run")
    assert loaded.dtype == torch.bfloat16  # evaluation and prediction follow the run's setting
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    assert torch.isfinite(torch.tensor(metrics["loss"]))


def test_a_run_records_the_precision_it_ran_in_and_a_switch_on_resume(tmp_path, tiny_config, monkeypatch,
                                                                       capsys):
    """``run.bf16_cpu`` only asks: a CPU without native bfloat16 trains in float32. The checkpoint and each
    metrics line say which ran, and a run resumed on another kind of CPU records the switch."""
    from twostream.checkpoint import load_checkpoint
    from twostream.runs import RunDir

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    asked = ["run.bf16_cpu=true", "run.log_every=2"]
    train(tiny_config("temporal", [*asked, "optim.iterations=4"]), tmp_path / "run", progress=False)
    run = RunDir(tmp_path / "run")
    assert load_checkpoint(run.checkpoint)["precision"] == "bfloat16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)  # resumed on an AVX2-only CPU
    train(tiny_config("temporal", [*asked, "optim.iterations=6"]), tmp_path / "run", resume=True, progress=False)
    out = capsys.readouterr().out
    assert "no native bfloat16" in out and "training in float32" in out  # why this run is slower than asked
    assert "resume at iteration 4: precision 'bfloat16' -> 'float32'" in out
    ckpt = load_checkpoint(run.checkpoint)
    assert ckpt["precision"] == "float32"
    assert ckpt["resumes"] == [{"iteration": 4, "changes": [["optim.iterations", 4, 6],
                                                            ["precision", "bfloat16", "float32"]]}]
    lines = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert [(m["iteration"], m["precision"]) for m in lines] == [(2, "bfloat16"), (4, "bfloat16"), (6, "float32")]
