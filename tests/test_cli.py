import pytest

from twostream import cli
from twostream.runs import RunDir


def test_a_user_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "no-run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "twostream evaluate: error:" in err and "no-run" in err
    assert cli.main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: config file not found" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    def broken(args):
        return {}["no such key"]  # a programming error, not the user's

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions[0].choices.values():
        if action.prog.endswith("info"):
            action.set_defaults(func=broken)
    with pytest.raises(KeyError, match="no such key"):
        cli.main(["info", str(tmp_path)])


def test_run_folder_layout_has_one_owner(tmp_path):
    run = RunDir(tmp_path)
    assert run.scores("ucf101", "test").parent == tmp_path
    for name in ("ucf101", "hmdb51"):
        for part in ("train", "test"):
            run.scores(name, part).write_bytes(b"")
    assert run.score_files("test") == {"hmdb51": run.scores("hmdb51", "test"), "ucf101": run.scores("ucf101", "test")}
    with pytest.raises(ValueError, match="split part must be one of train, test, fusion, got .val."):
        run.scores("ucf101", "val")


def test_train_takes_overrides_before_and_after_its_options(monkeypatch, tmp_path, capsys):
    seen = []
    monkeypatch.setattr(cli, "_cmd_train", lambda args: seen.append((args.overrides, args.run, args.quiet)) or 0)
    argv = ["train", "c.yaml", "optim.lr=0.02", "--run-dir", str(tmp_path / "r"), "optim.iterations=5",
            "--quiet", "tasks.0.fold=2"]
    assert cli.main(argv) == 0
    assert seen == [(["optim.lr=0.02", "optim.iterations=5", "tasks.0.fold=2"], str(tmp_path / "r"), True)]
    with pytest.raises(SystemExit) as exc:  # a stray word is still refused, by name
        cli.main(["train", "c.yaml", "--quiet", "optim.lr=0.02", "stray"])
    assert exc.value.code == 2 and "unrecognized arguments: stray" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # commands without overrides take no key=value
        cli.main(["evaluate", str(tmp_path), "a=b"])
