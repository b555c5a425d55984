"""DIS optical flow (Kroeger et al. 2016, OpenCV): the CPU default, ~100x faster than TV-L1."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import UserError

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
DEFAULT_PRESET = "medium"
# parameter -> OpenCV accessor suffix (get<X> / set<X>); a preset sets them all, any can be overridden
FIELDS = {
    "finest_scale": "FinestScale", "coarsest_scale": "CoarsestScale", "patch_size": "PatchSize",
    "patch_stride": "PatchStride", "gradient_descent_iterations": "GradientDescentIterations",
    "variational_refinement_iterations": "VariationalRefinementIterations",
    "variational_refinement_alpha": "VariationalRefinementAlpha",
    "variational_refinement_delta": "VariationalRefinementDelta",
    "variational_refinement_gamma": "VariationalRefinementGamma",
    "use_mean_normalization": "UseMeanNormalization", "use_spatial_propagation": "UseSpatialPropagation",
}


class DISFlow:
    name = "dis"

    def __init__(self, preset: str = DEFAULT_PRESET, **overrides: Any) -> None:
        if preset not in PRESETS:
            raise UserError(f"DIS preset must be one of {sorted(PRESETS)}, got {preset!r}")
        unknown = sorted(set(overrides) - set(FIELDS))
        if unknown:
            raise UserError(f"unknown DIS parameters {unknown}; allowed: preset, {', '.join(FIELDS)}")
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        for key, value in overrides.items():
            getattr(self._dis, f"set{FIELDS[key]}")(value)
        # read now: after a first calc() OpenCV reports the coarsest scale it chose, not the setting
        values = {k: getattr(self._dis, f"get{v}")() for k, v in FIELDS.items()}
        self._params = {"preset": preset, **{k: bool(v) if k.startswith("use_") else v for k, v in values.items()},
                        "opencv": cv2.__version__}

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        return self._dis.calc(prev, nxt, None)
