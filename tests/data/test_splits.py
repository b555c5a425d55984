from pathlib import Path

import pytest

from twostream.data.splits import (Sample, available_folds, csv_split, folder_split, hmdb51_split, load_split,
                                   missing_videos, ucf101_split)

UCF_COUNTS = {1: (9537, 3783), 2: (9586, 3734), 3: (9624, 3696)}


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_ucf101_official_files_shared_data(shared_data, fold):
    split = ucf101_split(shared_data / "splits" / "ucfTrainTestlist", fold)
    assert len(split.classes) == 101
    assert (len(split.train), len(split.test)) == UCF_COUNTS[fold]
    assert split.classes[0] == "ApplyEyeMakeup" and split.classes[100] == "YoYo"
    first = {1: "g08_c01", 2: "g01_c01", 3: "g01_c01"}[fold]  # fold 1 holds out groups 1-7
    assert split.train[0] == Sample(f"ApplyEyeMakeup/v_ApplyEyeMakeup_{first}", 0)
    # the published case mismatch: class HandstandPushups, files v_HandStandPushups_*
    hs = [s for s in split.test if "HandStandPushups" in s.video_id]
    assert hs and all(split.classes[s.label] == "HandstandPushups" for s in hs)
    assert {s.video_id for s in split.train}.isdisjoint(s.video_id for s in split.test)
    assert {s.label for s in split.test} == set(range(101))


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_hmdb51_official_files_shared_data(shared_data, fold):
    split = hmdb51_split(shared_data / "splits" / "testTrainMulti_7030_splits", fold)
    assert len(split.classes) == 51 and split.classes[0] == "brush_hair"
    assert (len(split.train), len(split.test)) == (3570, 1530)
    assert split.train[0].video_id.startswith("brush_hair/") and not split.train[0].video_id.endswith(".avi")
    per_class = [sum(s.label == c for s in split.train) for c in range(51)]
    assert set(per_class) == {70}


def test_ucf101_crlf_case_and_bad_fold(tmp_path):
    (tmp_path / "classInd.txt").write_bytes(b"1 Walk\r\n2 HandstandPushups\r\n")
    (tmp_path / "trainlist01.txt").write_bytes(b"Walk/v_Walk_g01_c01.avi 1\r\nHandstandPushups/v_HandStandPushups_g01_c01.avi 2\r\n\r\n")
    (tmp_path / "testlist01.txt").write_bytes(b"HandstandPushups/v_HandStandPushups_g02_c01.avi\r\n")
    split = ucf101_split(tmp_path, 1)
    assert split.train == [Sample("Walk/v_Walk_g01_c01", 0), Sample("HandstandPushups/v_HandStandPushups_g01_c01", 1)]
    assert split.test == [Sample("HandstandPushups/v_HandStandPushups_g02_c01", 1)]
    assert available_folds("ucf101", tmp_path) == [1]
    with pytest.raises(ValueError, match="fold must be 1..3, got 4"):
        ucf101_split(tmp_path, 4)
    (tmp_path / "trainlist01.txt").write_text("Walk/v_Walk_g01_c01.avi 2\n")
    with pytest.raises(ValueError, match="has label 2 but its folder is class 1"):
        ucf101_split(tmp_path, 1)


def test_hmdb51_tags_and_trailing_spaces(tmp_path):
    (tmp_path / "jump_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    (tmp_path / "clap_test_split1.txt").write_text("d.avi 1 \n")
    split = hmdb51_split(tmp_path, 1)
    assert split.classes == ["clap", "jump"]
    assert split.train == [Sample("clap/d", 0), Sample("jump/a", 1)] and split.test == [Sample("jump/b", 1)]
    (tmp_path / "clap_test_split1.txt").write_text("d.avi 7\n")
    with pytest.raises(ValueError, match="clap_test_split1.txt: tag must be 0, 1 or 2"):
        hmdb51_split(tmp_path, 1)


def test_folder_and_csv_splits_are_stable(tmp_path):
    for cls in ("run", "jump"):
        for i in range(20):
            (tmp_path / "vids" / cls).mkdir(parents=True, exist_ok=True)
            (tmp_path / "vids" / cls / f"{i}.mp4").write_bytes(b"")
    a = folder_split(tmp_path / "vids")
    assert a.classes == ["jump", "run"] and len(a.train) + len(a.test) == 40
    assert 4 <= len(a.test) <= 20
    assert folder_split(tmp_path / "vids") == a  # deterministic
    csv = tmp_path / "list.csv"
    csv.write_text("path,label,split\nx/1.mp4,wave,train\nx/2.mp4,clap,test\nx/3.mp4,wave,\n")
    b = csv_split(csv)
    assert b.classes == ["clap", "wave"] and Sample("x/1", 1) in b.train and b.test[0] == Sample("x/2", 0)
    assert len(b.train) + len(b.test) == 3
    csv.write_text("x/1.mp4,wave,validation\n")
    with pytest.raises(ValueError, match="row 1"):
        csv_split(csv)
    with pytest.raises(ValueError, match="split kind"):
        load_split("kinetics", tmp_path)


def test_missing_videos_are_named(tmp_path, unit_record):
    import numpy as np

    from twostream.cache import UnitWriter

    with UnitWriter(tmp_path, "a/x", unit_record()) as w:
        w.add_frame(np.zeros((8, 8, 3), np.uint8))
        w.add_frame(np.zeros((8, 8, 3), np.uint8))
        w.add_flow(np.zeros((8, 8, 2), np.float32))
        w.commit({})
    assert missing_videos([Sample("a/x", 0), Sample("a/y", 0)], tmp_path) == ["a/y"]


def test_splits_command_lists_classes_and_missing_videos(synth_cache, tmp_path, capsys):
    from twostream.cli import main
    assert main(["splits", "ucf101", str(synth_cache["videos"]), "--cache", str(synth_cache["cache"])]) == 0
    out = capsys.readouterr().out
    assert "ucf101/1: 4 classes, 16 train, 8 test" in out and "RedUp RedDown GreenUp GreenDown" in out
    assert "every test video is in" in out
    (tmp_path / "empty").mkdir()
    assert main(["splits", "ucf101", str(synth_cache["videos"]), "--cache", str(tmp_path / "empty")]) == 1
    out = capsys.readouterr().out
    assert "16 train videos missing" in out and "RedUp/v_RedUp_g01_c01" in out


def test_first_nine_ucf101_classes_are_ucf9_shared_data(shared_data, capsys):
    from twostream.cli import main
    root = shared_data / "splits" / "ucfTrainTestlist"
    for fold, (n_train, n_test) in zip((1, 2, 3), ((873, 341), (888, 326), (871, 343))):
        split = ucf101_split(root, fold)
        nine = split.restrict(split.classes[:9])
        assert (len(nine.train), len(nine.test)) == (n_train, n_test)
        assert nine.classes == split.classes[:9] and {s.label for s in nine.train} == set(range(9))
        assert all(nine.classes[s.label] == s.video_id.split("/")[0] for s in nine.train)
    assert main(["splits", "ucf101", str(root), "--fold", "1", "--first-classes", "9"]) == 0
    assert "9 classes, 873 train, 341 test" in capsys.readouterr().out


def test_hmdb51_plus_ucf101_classes_without_overlap_shared_data(shared_data, tmp_path):
    # the paper's Table 3 (c): one task drawing its training videos from two data sets (two caches)
    from twostream.builders import load_task_split
    from twostream.config import load_config
    cfg = load_config(Path(__file__).parents[2] / "configs" / "hmdb51_ucf78_temporal_split1.yaml", [
        f"tasks.0.splits={shared_data / 'splits' / 'testTrainMulti_7030_splits'}",
        f"tasks.0.extra.0.splits={shared_data / 'splits' / 'ucfTrainTestlist'}",
        f"tasks.0.extra.0.cache={tmp_path / 'ucf'}"])
    split = load_task_split(cfg.tasks[0])
    assert len(split.classes) == 51 + 78
    assert "Fencing" not in split.classes and "fencing" in split.classes and "Drumming" in split.classes
    added = [s for s in split.train if s.cache]
    assert {s.cache for s in added} == {str(tmp_path / "ucf")} and min(s.label for s in added) == 51
    assert len(split.train) - len(added) == 51 * 70 and len(split.test) == 51 * 30  # HMDB-51's own
    assert all(not s.cache for s in split.test)  # tested on HMDB-51 only
    bad = load_config(None, [f"tasks=[{{kind: hmdb51, splits: {shared_data / 'splits' / 'testTrainMulti_7030_splits'}, "
                             f"extra: [{{splits: {shared_data / 'splits' / 'ucfTrainTestlist'}, cache: c, exclude: [Fencnig]}}]}}]"])
    with pytest.raises(ValueError, match=r"extra.0.exclude: .* has no classes \['Fencnig'\]"):
        load_task_split(bad.tasks[0])
