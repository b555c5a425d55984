import pytest
import torch

from twostream.checkpoint import load_checkpoint, safe_load, save_checkpoint


def test_round_trip(tmp_path):
    payload = {"model": {"w": torch.ones(2)}, "model_args": {"arch": "cnn_m_2048"}, "config": {"a": 1},
               "classes": {"t": ["x", "y"]}, "iteration": 7, "rng": {"torch": torch.get_rng_state()}}
    save_checkpoint(tmp_path / "c.pt", payload)
    back = load_checkpoint(tmp_path / "c.pt")
    assert back["iteration"] == 7 and torch.equal(back["model"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary left


class Plain:  # a harmless object: refused all the same, nothing but tensors and plain data loads
    pass


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_object_payload_is_refused(tmp_path, capsys):
    torch.save({"model": {}, "evil": Payload()}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="refusing to load .*bad.pt: it holds pickled objects"):
        safe_load(tmp_path / "bad.pt")
    assert "pickled code ran" not in capsys.readouterr().out
    torch.save({"model": Plain(), "model_args": {}, "config": {}, "classes": {}, "iteration": 0}, tmp_path / "obj.pt")
    with pytest.raises(ValueError, match="refusing to load"):
        load_checkpoint(tmp_path / "obj.pt")


def test_incomplete_payloads(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        save_checkpoint(tmp_path / "c.pt", {"model": {}})
    torch.save({"model": {}}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="not a twostream checkpoint"):
        load_checkpoint(tmp_path / "c.pt")
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="junk.pt"):
        safe_load(tmp_path / "junk.pt")
