"""Training-loader throughput: samples/s of both streams (224 crops, L = 10) with 0, 1 and 2 DataLoader
workers, on the real UCF-101 clips (extracted first with DIS fast), and its ratio to the stream's training
rate (CNN-M-2048, float32, a step of --batch-size on this machine's threads: how many loader processes a
training run needs). Needs ../shared/data/clips/ucf101.

    python benchmarks/loader.py [--json FILE] [--batches 10] [--batch-size 32]

Before/after a change: run it in a checkout of each commit, one after the other (the README's table).
"""

from __future__ import annotations

import tempfile
import time

import torch
from torch.utils.data import DataLoader

from _common import data_dir, finish, parser, table
from model import measure
from twostream.config import ModelConfig
from twostream.models import build_model
from twostream.data.datasets import TrainClips
from twostream.data.inputs import InputOptions
from twostream.models import input_convention
from twostream.data.sampling import ClassBalancedSampler
from twostream.data.splits import Sample
from twostream.extract import ExtractOptions, extract_all
from twostream.sources import find_videos


def throughput(dataset, workers: int, batches: int, batch_size: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                        sampler=ClassBalancedSampler(labels=dataset.labels, seed=0), persistent_workers=False)
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def training_rate(stream: str, channels: int, batch_size: int, threads: int) -> float:
    """Training images/s of CNN-M-2048 at 224 for ``stream`` (float32, ``threads`` threads)."""
    torch.set_num_threads(threads)
    model = build_model("cnn_m_2048", {"ucf101": 101}, channels, 224, dropout=ModelConfig.dropout,
                        temporal=stream == "temporal")
    _, train_ms = measure(model, torch.randn(batch_size, channels, 224, 224), 3, None)
    torch.set_num_threads(1)  # the loader's processes: one thread each, as DataLoader workers have
    return batch_size / train_ms * 1000


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    videos = find_videos(data_dir("clips/ucf101"))
    classes = sorted({vid.split("_")[1] for vid, _ in videos})
    samples = [Sample(vid, classes.index(vid.split("_")[1])) for vid, _ in videos]
    figures, rows = {}, []
    with tempfile.TemporaryDirectory() as cache:
        extract_all(videos, cache, ExtractOptions(flow_params={"preset": "fast"}), workers=2, progress=False)
        streams = {"spatial": TrainClips(samples, cache, InputOptions("spatial"), input_convention("cnn_m_2048")),
                   "temporal (L=10)": TrainClips(samples, cache, InputOptions("temporal", length=10)),
                   "temporal trajectory": TrainClips(samples, cache, InputOptions("temporal", length=10,
                                                                                  stacking="trajectory"))}
        for name, ds in streams.items():
            stream = ds.options.stream
            rate = training_rate(stream, ds.channels, args.batch_size, threads)
            for workers in (0, 1, 2):
                sps = throughput(ds, workers, args.batches, args.batch_size)
                figures[f"{name}/{workers}"] = {"samples_per_s": sps, "training_per_s": rate}
                rows.append([name, workers, sps, rate, sps / rate])
    finish(args, figures, table(["stream", "workers", "samples/s", "training img/s (float32)",
                                 "loader / training"], rows))


if __name__ == "__main__":
    main()
