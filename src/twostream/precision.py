"""Which autocast a run's forward and backward passes use: float16 on CUDA (``run.amp``), bfloat16 on a
CPU that computes it natively (``run.bf16_cpu``: AVX512_BF16 or AMX; elsewhere bfloat16 is emulated and
slower than float32, so it is never turned on there)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import lru_cache
from pathlib import Path

import torch

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic


def cpu_flags(cpuinfo: str) -> list[str]:
    """The feature flags a /proc/cpuinfo text lists for its first processor."""
    return next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])


def native_bf16(cpuinfo: str) -> bool:
    """Whether a /proc/cpuinfo text lists a native bfloat16 flag on its first processor."""
    return any(f in cpu_flags(cpuinfo) for f in CPU_BF16_FLAGS)


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (False where /proc/cpuinfo is not there to say)."""
    try:
        return native_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def autocast_dtype(device: torch.device, amp: bool, bf16_cpu: bool) -> torch.dtype | None:
    """float16 on CUDA when ``amp``; bfloat16 on the CPU when ``bf16_cpu`` and the CPU has it natively;
    otherwise None (float32)."""
    if device.type == "cuda":
        return torch.float16 if amp else None
    if device.type == "cpu" and bf16_cpu and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def precision_name(dtype: torch.dtype | None) -> str:
    """What a run records of the autocast it ran under: "float32" (none), "bfloat16" or "float16". The
    config only asks (``run.bf16_cpu`` is ignored on a CPU without native bfloat16); this is what ran."""
    return str(dtype or torch.float32).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``'s type; a no-op for None."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
