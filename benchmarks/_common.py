"""Helpers shared by the benchmark scripts: the real-data location, medians, tables and --json."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from twostream.table import markdown

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_dir(sub: str) -> Path:
    path = DATA / sub
    if not path.is_dir():
        sys.exit(f"benchmark data not found at {path} (CI and the developers' machines have ../shared/data)")
    return path


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", help="also write the figures to this JSON file")
    return p


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table, ready to paste into the README."""
    fmt = [lambda v: f"{v:.3f}" if isinstance(v, float) and abs(v) < 10 else
           (f"{v:.0f}" if isinstance(v, float) else str(v))]
    return markdown(headers, [[fmt[0](v) for v in row] for row in rows])


def finish(args: argparse.Namespace, figures: dict, text: str) -> None:
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
