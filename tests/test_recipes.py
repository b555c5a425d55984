"""The paper's recipes, end to end, at their smallest size: trees shaped like UCF-101 and HMDB-51 made from
the real split files (every class, two listed videos per class, tiny generated videos), laid out where the
shipped configs look (data/, cache/, weights/ relative to the working folder), then extract, train with
the real ``configs/ucf101_*`` and ``multitask_*`` files (shrunk only by overrides), evaluate and fuse."""

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from twostream.cli import main
from twostream.config import load_config
from twostream.models import build_model
from twostream.runs import RunDir
from twostream.scores import read_scores

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FRAMES, SIZE = 12, 64  # L = 10 needs 11 flow fields at most positions; 64 px frames take 56 px crops
SHRINK = ["input.crop=56", "input.test_positions=2", "optim.batch_size=8", "optim.micro_batch=8",
          "optim.iterations=2", "optim.milestones=[1]", "run.workers=0", "run.log_every=1", "run.val_every=0",
          "run.checkpoint_every=2", "run.amp=false"]


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _hmdb51_tree(official: Path, data: Path) -> list[str]:
    """``data/testTrainMulti_7030_splits``: each class's split-1 file cut to its first training (1) and
    first test (2) video; returns those videos as ``class/name``."""
    out = data / "testTrainMulti_7030_splits"
    out.mkdir(parents=True)
    chosen = []
    for path in sorted(official.glob("*_test_split1.txt")):
        cls = path.name[: -len("_test_split1.txt")]
        rows = [line.split() for line in _lines(path)]
        keep = [next(r for r in rows if r[1] == tag) for tag in ("1", "2")]
        (out / path.name).write_text("".join(f"{name} {tag}\n" for name, tag in keep))
        chosen += [f"{cls}/{name}" for name, _ in keep]
    return chosen


@pytest.fixture(scope="module")
def paper_tree(tmp_path_factory, shared_data, ucf101_lists, drifting_video) -> Path:
    """A working folder as the shipped configs expect it, with both data sets extracted."""
    root = tmp_path_factory.mktemp("recipes")
    rng = np.random.default_rng(0)
    splits = shared_data / "splits"
    for kind, videos in (("ucf101", ucf101_lists(splits / "ucfTrainTestlist", root / "data" / "ucfTrainTestlist")),
                         ("hmdb51", _hmdb51_tree(splits / "testTrainMulti_7030_splits", root / "data"))):
        for rel in videos:
            drifting_video(root / "videos" / kind / rel, rng, FRAMES, SIZE)
        assert main(["extract", str(root / "videos" / kind), str(root / "cache" / kind), "--short-side", "0",
                     "--workers", "2", "--quiet"]) == 0
    # "ImageNet" weights the test makes itself, where the fine-tuning recipes look for them
    imagenet = build_model("cnn_m_2048", {"imagenet": 1000}, 3, 224, dropout=0.5)
    (root / "weights").mkdir()
    save_file({k: v.contiguous() for k, v in imagenet.state_dict().items()},
              str(root / "weights" / "cnn_m_2048_imagenet.safetensors"))
    return root


def _train_and_score(config: str, run: Path, extra: list[str] = ()) -> None:
    assert main(["train", str(CONFIGS / config), *SHRINK, *extra, "--run-dir", str(run), "--quiet"]) == 0
    for part in ("test", "train"):
        assert main(["evaluate", str(run), "--split", part, "--workers", "0", "--no-report", "--quiet"]) == 0


def test_ucf101_recipes_extract_train_evaluate_fuse_split1_shared_data(paper_tree, monkeypatch, capsys):
    monkeypatch.chdir(paper_tree)  # the configs' data/, cache/ and weights/ paths are relative to here
    spatial, temporal = paper_tree / "runs" / "spatial", paper_tree / "runs" / "temporal"
    _train_and_score("ucf101_spatial_finetune_split1.yaml", spatial)
    _train_and_score("ucf101_temporal_split1.yaml", temporal)
    ckpt = torch.load(RunDir(spatial).checkpoint, weights_only=False)
    assert len(ckpt["classes"]["ucf101"]) == 101 and ckpt["config"]["model"]["pretrained"].endswith(".safetensors")
    for run in (spatial, temporal):
        test = read_scores(RunDir(run).scores("ucf101", "test"))
        assert test.scores.shape == (101, 101) and sorted(test.labels) == list(range(101))  # every class's test video
        assert np.allclose(test.scores.sum(1), 1, atol=1e-4)
    for method in ("avg", "svm"):
        out = paper_tree / f"fused-{method}.npz"
        assert main(["fuse", str(RunDir(spatial).scores("ucf101", "test")), str(RunDir(temporal).scores("ucf101", "test")),
                     "--method", method, "--out", str(out), "--no-report"]) == 0
        assert read_scores(out).scores.shape == (101, 101)
    assert "cross-validation on the train scores" in capsys.readouterr().out  # found the runs' training scores


def test_multitask_recipe_trains_both_heads_and_scores_both_tests_split1_shared_data(paper_tree, monkeypatch):
    monkeypatch.chdir(paper_tree)
    run = paper_tree / "runs" / "multitask"
    assert main(["train", str(CONFIGS / "multitask_temporal_split1.yaml"), *SHRINK, "--run-dir", str(run),
                 "--quiet"]) == 0
    assert main(["evaluate", str(run), "--workers", "0", "--no-report", "--quiet"]) == 0
    cfg = load_config(CONFIGS / "multitask_temporal_split1.yaml")
    assert [t.name for t in cfg.tasks] == ["ucf101", "hmdb51"]
    assert read_scores(RunDir(run).scores("ucf101", "test")).scores.shape == (101, 101)
    assert read_scores(RunDir(run).scores("hmdb51", "test")).scores.shape == (51, 51)
