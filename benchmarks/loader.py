"""Training-loader throughput: samples/s of both streams (224 crops, L = 10) with 0, 1 and 2 DataLoader
workers, on the real UCF-101 clips (extracted first with DIS fast), and its ratio to the stream's training
rate (CNN-M-2048, float32, a step of --batch-size on this machine's threads: how many loader processes a
training run needs). Then the GPU input path (``run.decode=device``): what its workers make (samples of
JPEG bytes per second) and, where CUDA and torchvision are, the device's decoding and cropping rate
(``decode_batch``) beside the temporal net's training rate there. Needs ../shared/data/clips/ucf101.

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
from twostream.data.device_input import EncodedTrainClips, collate_encoded, decode_batch, torchvision_decoder
from twostream.data.inputs import InputOptions
from twostream.models import input_convention
from twostream.data.sampling import ClassBalancedSampler
from twostream.data.splits import Sample
from twostream.extract import ExtractOptions, extract_all
from twostream.sources import find_videos


def throughput(dataset, workers: int, batches: int, batch_size: int, collate=None, use=lambda b: b) -> float:
    """Samples/s of ``dataset`` through a DataLoader (after its first batch), each batch given to ``use``."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate,
                        sampler=ClassBalancedSampler(labels=dataset.labels, seed=0), persistent_workers=False)
    it = iter(loader)
    use(next(it))  # worker start-up (and the device's first call) is not throughput
    start = time.perf_counter()
    for _ in range(batches):
        use(next(it))
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
        device_rows = device_path(samples, cache, args, figures)
    finish(args, figures, table(["stream", "workers", "samples/s", "training img/s (float32)",
                                 "loader / training"], rows) + "\n\n" + table(
        ["GPU input path (run.decode=device)", "device", "workers", "samples/s"], device_rows))


def device_path(samples: list, cache: str, args, figures: dict) -> list[list]:
    """The workers' side of the device path on this CPU (bytes only), and the decoding on CUDA if present."""
    rows = []
    decode = torchvision_decoder()
    streams = (("spatial", InputOptions("spatial")), ("temporal (L=10)", InputOptions("temporal", length=10)))
    for name, options in streams:
        ds = EncodedTrainClips(samples, cache, options, input_convention("cnn_m_2048"))
        for workers in (0, 1, 2):
            sps = throughput(ds, workers, args.batches, args.batch_size, collate_encoded)
            figures[f"encoded {name}/{workers}"] = {"samples_per_s": sps}
            rows.append([f"{name}: JPEG bytes read by the workers", "cpu", workers, sps])
        if torch.cuda.is_available() and decode is not None:
            cuda = torch.device("cuda")
            sps = throughput(ds, 2, args.batches, args.batch_size, collate_encoded,
                             lambda b: decode_batch(b, cuda, decode).sum().item())
            figures[f"decoded on cuda {name}"] = {"samples_per_s": sps, "gpu": torch.cuda.get_device_name()}
            rows.append([f"{name}: decoded, cropped, scaled on the GPU ({torch.cuda.get_device_name()})", "cuda", 2,
                         sps])
    return rows


if __name__ == "__main__":
    main()
