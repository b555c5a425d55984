import numpy as np
import pytest

from twostream.flow import METHODS, build_flow, compute_flow
from twostream.flow.middlebury import endpoint_error

TRUE = (1.6, -0.7)  # sub-pixel translation in px (x, y)


@pytest.mark.parametrize("method, params, size", [
    ("dis", {"preset": "ultrafast"}, 128), ("dis", {"preset": "fast"}, 128), ("dis", {"preset": "medium"}, 128),
    ("farneback", {}, 128), ("tvl1", {"nscales": 3, "warps": 3}, 64),
])
def test_recovers_known_subpixel_translation(method, params, size, shift, texture):
    img = texture(size, size, seed=3)
    moved = shift(img, *TRUE)
    flow = build_flow(method, **params)(img, moved)
    assert flow.shape == (size, size, 2) and flow.dtype == np.float32
    m = size // 8  # borders see the reflected padding, not the translation
    inner = flow[m:-m, m:-m]
    truth = np.broadcast_to(np.float32(TRUE), inner.shape)
    assert endpoint_error(inner, truth) < 0.5
    assert np.allclose(inner.reshape(-1, 2).mean(0), TRUE, atol=0.25)


def test_params_are_recorded_and_bad_ones_named():
    for method in METHODS:
        params = build_flow(method).params()
        assert params and all(isinstance(k, str) for k in params)
    assert build_flow("dis", preset="fast").params()["preset"] == "fast"
    assert build_flow("dis", preset="fast", patch_size=12).params()["patch_size"] == 12
    for method, kw in (("dis", {"preset": "ultrafast", "finest_scale": 0}), ("farneback", {"winsize": 9}),
                       ("tvl1", {"warps": 2, "lambda_": 0.2})):
        params = build_flow(method, **kw).params()
        rebuilt = build_flow(method, **{k: v for k, v in params.items() if k != "opencv"})
        assert rebuilt.params() == params  # what the manifest records rebuilds the same estimator
    assert build_flow("farneback", winsize=21).params()["winsize"] == 21
    with pytest.raises(ValueError, match="preset"):
        build_flow("dis", preset="slow")
    with pytest.raises(ValueError, match="unknown DIS parameters"):
        build_flow("dis", patchsize=3)
    with pytest.raises(ValueError, match="flow method"):
        build_flow("raft")
    with pytest.raises(ValueError, match="farneback"):
        build_flow("farneback", window=3)


def test_compute_flow_forward_and_backward(shift, texture):
    img = texture(64, 64, seed=1)
    frames = np.stack([shift(img, 1.0 * t, 0.0) for t in range(4)])
    fwd, bwd = compute_flow(frames, build_flow("dis", preset="medium"), backward=True)
    assert fwd.shape == bwd.shape == (3, 64, 64, 2)
    inner = (slice(None), slice(12, -12), slice(12, -12))
    assert fwd[inner][..., 0].mean() == pytest.approx(1.0, abs=0.2)
    assert bwd[inner][..., 0].mean() == pytest.approx(-1.0, abs=0.2)
    with pytest.raises(ValueError, match="at least 2 frames"):
        compute_flow(frames[:1], build_flow("dis"))


def test_params_do_not_change_with_use(shift, texture):
    # OpenCV's DIS reports the coarsest scale it picked once it has run; the record must be the setting
    img = texture(64, 64, seed=2)
    for method in METHODS:
        est = build_flow(method, **({"nscales": 2, "warps": 1} if method == "tvl1" else {}))
        before = est.params()
        est(img, shift(img, 1.0, 0.0))
        assert est.params() == before, method
