import re

import pytest
import yaml

from twostream.config import Config, ConfigError, load_config, save_config


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tasks:\n  - name: ucf101\n    splits: s\n    cache: c\ninput:\n  stream: temporal\n"
                    "optim:\n  lr: 0.05\n  milestones: [10, 20]\n")
    cfg = load_config(path, ["optim.lr=0.001", "tasks.0.fold=2", "input.stacking=trajectory",
                             "model.pretrained=/w.pt", "optim.milestones=[5, 9]"])
    assert cfg.optim.lr == 0.001 and cfg.tasks[0].fold == 2 and cfg.input.stacking == "trajectory"
    assert cfg.model.pretrained == "/w.pt" and cfg.optim.milestones == [5, 9]
    assert cfg.input.stream == "temporal" and cfg.optim.momentum == 0.9  # file value kept, defaults filled
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg
    assert yaml.safe_load((tmp_path / "resolved.yaml").read_text())["optim"]["lr"] == 0.001


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=0.1", "optim.lrr: unknown key; allowed: lr, momentum"),
    ("optim.lr=fast", "optim.lr: must be a number"),
    ("input.stream=audio", "input.stream: must be one of spatial, temporal; got 'audio'"),
    ("optim.iterations=1.5", "optim.iterations: must be an integer"),
    ("input.mean_subtraction=maybe", "input.mean_subtraction: must be true or false"),
    ("tasks.3.fold=1", "list index out of range"),
    ("optim.milestones=[5, 3]", "optim.milestones: must increase, got [5, 3]"),
    ("tasks.0.fold=4", "tasks.0.fold: must be 1..3, got 4"),
    ("run.log_every=0", "run.log_every: must be >= 1, got 0"),
    ("run.val_videos=-3", "run.val_videos: must be >= 0, got -3"),
    ("optim.lr=-1", "optim.lr: must be > 0, got -1.0"),
    ("optim.iterations=0", "optim.iterations: must be >= 1, got 0"),
    ("optim.milestones=[1,", "optim.milestones: the value '[1,' is not valid YAML"),
    ("model.arch=vgg", "model.arch: must be one of cnn_m_2048, resnet18"),
    ("input.length=3;input.bidirectional=true", "input.length: bi-directional stacks need an even length"),
    ("lr", "must look like key=value"),
    # found by the fuzz test: keys with a line break, which messages starting with the key must not carry
    ("0\n=\x1b", "0: the value '\\x1b' is not valid YAML"),
    ("0\n0=", "'0\\n0': not a config key"),
    ("optim.l r=1", "'optim.l r': not a config key"),
    ("model.pretrained.path=x", "model.pretrained: must be a string"),
])
def test_bad_keys_and_values_are_named(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, override.split(";"))


def test_top_level_unknown_key_in_file(tmp_path):
    (tmp_path / "c.yaml").write_text("optimiser:\n  lr: 1\n")
    with pytest.raises(ConfigError, match="optimiser: unknown key; allowed: tasks, input, model, optim, run"):
        load_config(tmp_path / "c.yaml")
    assert Config().optim.batch_size == 256


def test_unknown_key_in_file_is_shown_on_one_line(tmp_path):
    (tmp_path / "c.yaml").write_text('optim:\n  "l\\nr": 1\n  7: 2\n')
    with pytest.raises(ConfigError, match=re.escape("optim.'l\\nr': unknown key")) as exc:
        load_config(tmp_path / "c.yaml")
    assert "\n" not in str(exc.value)


def test_shipped_configs_load():
    from pathlib import Path
    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)


def test_exponents_without_a_dot_are_numbers():
    # YAML 1.1 reads 1e-3 as a string; a user writing optim.lr=1e-3 means the number
    assert load_config(None, ["optim.lr=1e-3", "optim.weight_decay=5E-4"]).optim.lr == 1e-3
