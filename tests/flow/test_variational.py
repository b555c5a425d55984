"""tvl1-torch: known motions recovered, constant images give zero flow, a batch equals its pairs one by
one, the estimator interface and the recorded parameters; the CUDA path equals the CPU one where CUDA is."""

import cv2
import numpy as np
import pytest
import torch

from twostream.flow import build_flow
from twostream.flow.middlebury import endpoint_error
from twostream.flow.variational import TVL1Torch
from twostream.flow.variational.ops import divergence, forward_gradient

SMALL = {"inner_iterations": 20, "outer_iterations": 4, "warps": 3}  # quick, still accurate on 96 px images


def _affine(image: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` moved by the 2x3 affine ``matrix`` (about the centre) and the true flow ``float32[H, W, 2]``
    from ``image`` to it."""
    h, w = image.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    pts = np.stack([xs, ys, np.ones_like(xs)], -1) @ matrix.T.astype(np.float32)
    moved = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,  # content at p moves to matrix @ p
                           borderMode=cv2.BORDER_REFLECT)
    return moved, pts - np.stack([xs, ys], -1)


def _inner(flow: np.ndarray, margin: int = 14) -> np.ndarray:
    """Away from the borders, where content enters or leaves the frame (up to 10 px here)."""
    return flow[margin:-margin, margin:-margin]


@pytest.mark.parametrize("name, matrix, tolerance", [
    ("translation", np.float32([[1, 0, 2.5], [0, 1, -1.5]]), 0.05),  # EPE measured: 0.017
    ("rotation 3 deg", cv2.getRotationMatrix2D((48, 48), 3, 1.0), 0.1),  # 0.062
    ("zoom 4 %", cv2.getRotationMatrix2D((48, 48), 0, 1.04), 0.1),  # 0.055
    ("large translation", np.float32([[1, 0, 9.0], [0, 1, 4.0]]), 0.15),  # 0.077: the pyramid's job
])
def test_known_motions_are_recovered(name, matrix, tolerance, texture):
    image = texture(96, 96, blur=1.5)
    moved, truth = _affine(image, matrix)
    flow = TVL1Torch(**SMALL)(image, moved)
    assert flow.shape == (96, 96, 2) and flow.dtype == np.float32
    assert endpoint_error(_inner(flow), _inner(truth)) < tolerance, name


def test_a_constant_image_gives_zero_flow():
    grey = np.full((40, 56), 128, np.uint8)
    assert np.abs(TVL1Torch(**SMALL)(grey, grey)).max() == 0


def test_a_batch_gives_the_fields_of_its_pairs_one_by_one(texture, shift):
    est = TVL1Torch(**SMALL)
    image = texture(64, 80, blur=1.5)
    nxt = [shift(image, 1.0, 0.5), shift(image, -2.0, 1.0), image]  # the last pair converges at once
    batch = est.batch(np.stack([image] * 3), np.stack(nxt))
    assert batch.shape == (3, 2, 64, 80)
    for i, n in enumerate(nxt):
        single = est.batch(image, n)[0]
        assert torch.allclose(batch[i], single, atol=1e-4), i


def test_the_discrete_divergence_is_the_negative_adjoint_of_the_gradient():
    g = torch.Generator().manual_seed(0)
    u, px, py = (torch.randn(3, 7, 9, generator=g) for _ in range(3))
    gx, gy = forward_gradient(u)
    assert torch.allclose((gx * px + gy * py).sum(), -(u * divergence(px, py)).sum(), atol=1e-4)


def test_interface_and_recorded_parameters():
    est = build_flow("tvl1-torch", warps=2, lambda_=0.2)
    assert est.name == "tvl1-torch" and est.params()["warps"] == 2 and est.params()["lambda_"] == 0.2
    rebuilt = build_flow("tvl1-torch", **{k: v for k, v in est.params().items() if k != "torch"})
    assert rebuilt.params() == est.params()
    with pytest.raises(ValueError, match="scale_factor must be in"):
        TVL1Torch(scale_factor=1.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_equals_cpu(texture, shift):
    image = texture(96, 96, blur=1.5)
    moved = shift(image, 1.5, -0.5)
    cpu = TVL1Torch(**SMALL).batch(image, moved)
    gpu = TVL1Torch(**SMALL, device="cuda").batch(image, moved).cpu()
    assert (cpu - gpu).norm(dim=1).mean() < 1e-3
