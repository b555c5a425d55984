"""The extraction record: how a cache unit was made, written into its manifest and read back from it.

One object owns these manifest entries (format 1)::

    "flow": {"method": ..., "params": {... every estimator parameter, and the library's version}},
    "short_side": 256, "bidirectional": false,
    "codec": {"bound": 20.0, "quality": 95}, "rgb_quality": 60

``extract`` builds it from its options and compares it with a unit's to decide whether the unit can be
reused; ``UnitWriter`` writes it; ``CachedVideo`` reads the codec from it; ``predict`` rebuilds the
extraction of a run's cache from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import UserError
from .flow.codec import FlowCodec

# estimator parameters that describe the library, not a setting (not constructor keywords)
LIBRARY_KEYS = ("opencv", "torch")


@dataclass(frozen=True)
class ExtractionRecord:
    flow_method: str
    flow_params: dict[str, Any]  # every parameter that determines the flow, as the estimator reports it
    short_side: int
    bidirectional: bool
    codec: FlowCodec
    rgb_quality: int

    def to_manifest(self) -> dict[str, Any]:
        """The manifest entries this record owns."""
        return {"flow": {"method": self.flow_method, "params": dict(self.flow_params)},
                "short_side": self.short_side, "codec": self.codec.to_dict(), "rgb_quality": self.rgb_quality,
                "bidirectional": self.bidirectional}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], where: str = "manifest") -> ExtractionRecord:
        """The record of a unit's manifest; ``UserError`` naming ``where`` and the key when one is missing."""
        try:
            return cls(flow_method=manifest["flow"]["method"], flow_params=dict(manifest["flow"]["params"]),
                       short_side=int(manifest["short_side"]), bidirectional=bool(manifest["bidirectional"]),
                       codec=FlowCodec(**manifest["codec"]), rgb_quality=int(manifest["rgb_quality"]))
        except (KeyError, TypeError) as exc:
            raise UserError(f"{where}: no valid extraction record ({type(exc).__name__}: {exc})") from None

    def settings(self) -> dict[str, Any]:
        """The flow parameters a user can set (constructor keywords): the record without library versions."""
        return {k: v for k, v in self.flow_params.items() if k not in LIBRARY_KEYS}

    def differences(self, other: ExtractionRecord) -> list[str]:
        """The manifest keys whose values differ between the two records, sorted."""
        mine, theirs = self.to_manifest(), other.to_manifest()
        return sorted(k for k in mine if mine[k] != theirs[k])
