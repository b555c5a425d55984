"""Training of either stream, read top to bottom: ``twostream train CONFIG [key=value ...]``.

One process on a CPU or a GPU, or one process per GPU under torchrun (DistributedDataParallel; gloo on
CPUs). SGD with momentum, a step schedule, class-balanced batches, gradient accumulation up to the
configured batch size, checkpoints that resume exactly where the run stopped.
"""

from __future__ import annotations

import json
import math
import os
import time
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .builders import load_task_split, make_clips, make_model, model_args
from .cache import extraction_record
from .checkpoint import load_checkpoint, save_checkpoint
from .config import Config, config_from_dict, save_config, to_dict
from .data.datasets import TaskConcat, TrainClips, ValClips
from .data.device_input import EncodedTrainClips, collate_encoded, decode_batch, where_to_decode
from .data.sampling import MultiTaskSampler
from .data.transforms import batch_input
from .devices import pick_device
from .errors import UserError
from .io import atomic_write_text, remove_leftovers
from .models import input_convention
from .resume import check_resume
from .runs import RunDir
from .precision import CPU_BF16_FLAGS, autocast, autocast_dtype, precision_name
from .step import AllHeads, train_step


def _dist_setup() -> tuple[int, int, int]:
    """(rank, world size, local rank); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@torch.no_grad()
def validate(model: nn.Module, datasets: list, names: list[str], device: torch.device, batch: int,
             workers: int, dtype: torch.dtype | None = None) -> dict[str, float]:
    """Top-1 accuracy per task on one centre frame/stack per video (the quick check during training)."""
    was_training = model.training
    model.eval()
    out = {}
    for ds, name in zip(datasets, names):
        correct = 0
        for b in DataLoader(ds, batch_size=batch, num_workers=workers):
            with autocast(device, dtype):
                logits = model(b["input"].to(device), name)
            correct += int((logits.argmax(1).cpu() == b["label"]).sum())
        out[f"val_accuracy/{name}"] = correct / len(ds)
    model.train(was_training)
    return out


def _new_window(device: torch.device, saved: dict | None = None, main_process: bool = True) -> dict:
    """The running sums of a logging window; ``saved`` (from a checkpoint: the sums over all processes)
    continues the window a stopped run had open, so the first line after a resume is the one an
    uninterrupted run logs (the main process carries the sums; the others add their shares)."""
    window = {"loss": torch.zeros((), device=device), "correct": 0, "seen": 0, "steps": 0,
              "start": time.perf_counter()}
    if saved:
        window["seen"], window["steps"] = saved["seen"], saved["steps"]
        if main_process:
            window["loss"] += saved["loss"]
            window["correct"] = saved["correct"]
    return window


def _window_totals(window: dict, world: int) -> dict:
    """The open window's sums over all processes (every process must call it), for the checkpoint."""
    loss = window["loss"].detach().clone()
    correct = torch.as_tensor(window["correct"], device=loss.device).clone()
    if world > 1:
        dist.all_reduce(loss)
        dist.all_reduce(correct)
    return {"loss": float(loss), "correct": int(correct), "seen": window["seen"], "steps": window["steps"]}


def _check_finite(loss: float, iteration: int, checkpoint: Path) -> None:
    """Stop a diverged run before it writes NaN weights over its last good checkpoint."""
    if not math.isfinite(loss):
        # a run can diverge before its first checkpoint: then there are no weights to point at
        kept = (f"{checkpoint} holds the last finite weights" if checkpoint.exists() else
                f"it diverged before its first checkpoint, so {checkpoint} was not written")
        raise UserError(f"training diverged: the loss is {loss} by iteration {iteration}; {kept} (lower optim.lr, "
                        "or raise optim.batch_size, and train again)")


def _trim_metrics(path: Path, iteration: int) -> None:
    """On resume, drop the lines a stopped run logged after its last checkpoint (they are redone), and a
    last line a kill cut short; on a fresh start (``iteration`` 0) every line of an earlier attempt."""
    kept = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["iteration"] <= iteration:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a kill
    atomic_write_text(path, "".join(ln + "\n" for ln in kept))


def train(cfg: Config, run_dir: str | Path, resume: bool = False, progress: bool = True) -> dict:
    """Train as ``cfg`` says, writing the run's config, metrics and checkpoint in ``run_dir`` (``RunDir``).
    Returns the last logged metrics."""
    run = RunDir(run_dir)
    if run.path.exists() and not run.path.is_dir():
        raise UserError(f"{run.path}: the run folder is a file")
    rank, world, local_rank = _dist_setup()
    main_process = rank == 0
    device = pick_device(cfg.run.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and pinned memory use the current device
    o = cfg.optim
    per_step = o.batch_size // world
    if o.batch_size % world or per_step % min(o.micro_batch, per_step):
        raise UserError(f"optim.batch_size {o.batch_size} must split evenly into {world} processes x "
                         f"micro-batches of {o.micro_batch}")
    micro = min(o.micro_batch, per_step)
    accumulate = per_step // micro
    ckpt, changes = None, []
    if resume:  # before any work: a refused change must cost nothing
        ckpt = load_checkpoint(run.checkpoint)
        # the checkpoint's config read as today's (keys added since then take their defaults)
        changes = check_resume(to_dict(config_from_dict(ckpt["config"])), to_dict(cfg), ckpt["iteration"])
    dtype = autocast_dtype(device, cfg.run.amp, cfg.run.bf16_cpu)
    precision = precision_name(dtype)
    if ckpt is not None and ckpt.get("precision", precision) != precision:
        # the same config on a machine without native bfloat16 (or without a GPU) runs another precision:
        # recorded like a config change, so the run says which iterations ran in which
        changes.append(("precision", ckpt["precision"], precision))
    if main_process and cfg.run.bf16_cpu and device.type == "cpu" and dtype is None:
        print(f"run.bf16_cpu: this CPU has no native bfloat16 ({' or '.join(CPU_BF16_FLAGS)}), where it would be "
              "slower than float32: training in float32")
    torch.manual_seed(cfg.run.seed)

    # data: one training set per task; validation on each task's test split
    splits = [load_task_split(t) for t in cfg.tasks]
    classes = {t.name: s.classes for t, s in zip(cfg.tasks, splits)}
    convention = input_convention(cfg.model.arch)
    # how each task's cache was made (flow method and parameters, codec, short side): prediction extracts a
    # new clip the same way, and refuses another flow or codec unless forced
    extraction = {t.name: r.to_manifest() for t in cfg.tasks if (r := extraction_record(t.cache)) is not None}
    # the workers decode the JPEGs, or (run.decode) only read them for the device to decode a batch at once
    decode = where_to_decode(cfg.run.decode, device, cfg.input)
    clips = TrainClips if decode is None else EncodedTrainClips
    train_sets = [make_clips(clips, t, cfg.input, s.train, convention) for t, s in zip(cfg.tasks, splits)]
    val_sets = []
    if cfg.run.val_every and main_process:
        limit = cfg.run.val_videos or None
        val_sets = [make_clips(ValClips, t, cfg.input, s.test[:limit], convention) for t, s in zip(cfg.tasks, splits)]

    # model and optimiser
    model, report = make_model(cfg, classes)  # same seed on every rank: same initial weights
    model.to(device)
    if world > 1:
        torch.manual_seed(cfg.run.seed + rank)  # but each rank its own dropout masks
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, o.milestones, o.gamma)
    # float16's narrow range needs the loss scaled; bfloat16 has float32's range and does not
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

    iteration, rng_state, resumes = 0, None, []
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        iteration, rng_state = ckpt["iteration"], ckpt["rng"]
        resumes = ckpt.get("resumes", []) + ([{"iteration": iteration, "changes": [list(c) for c in changes]}]
                                             if changes else [])
        for key, old, new in changes:
            print(f"resume at iteration {iteration}: {key} {old!r} -> {new!r}")
    elif main_process and run.checkpoint.exists():
        raise UserError(f"{run.path} already holds a run: pass --resume, or choose another run folder")
    if main_process:
        run.path.mkdir(parents=True, exist_ok=True)
        remove_leftovers(run.path, run.checkpoint.name)  # a checkpoint write a kill interrupted
        save_config(cfg, run.config)
        _trim_metrics(run.metrics, iteration)
        if report:
            print(f"pretrained {cfg.model.pretrained}: {len(report['loaded'])} tensors loaded, converted "
                  f"{report['converted'] or 'none'}, adapted {report['adapted'] or 'none'}, skipped "
                  f"{report['skipped'] or 'none'}")
    net: nn.Module = AllHeads(model)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)

    # class-balanced keys; sample k is a pure function of (seed, k): resuming at `iteration` skips exactly
    # the samples already used, whatever the worker count
    sampler = MultiTaskSampler(labels=[d.labels for d in train_sets], weights=[t.weight for t in cfg.tasks],
                               seed=cfg.run.seed, start=iteration * per_step, rank=rank, world_size=world)
    loader = DataLoader(TaskConcat(train_sets), batch_size=micro, sampler=sampler, num_workers=cfg.run.workers,
                        pin_memory=device.type == "cuda", drop_last=True,
                        generator=torch.Generator().manual_seed(cfg.run.seed),
                        collate_fn=None if decode is None else collate_encoded)
    to_input = batch_input if decode is None else partial(decode_batch, decode=decode)
    batches = iter(loader)
    if rng_state is not None:  # after the loader has drawn its seeds, so dropout continues as before
        _set_rng_state(rng_state)

    model.train()
    metrics_file = open(run.metrics, "a") if main_process else None
    bar = tqdm(total=o.iterations, initial=iteration, disable=not (progress and main_process),
               dynamic_ncols=True, unit="it")
    last: dict = {}
    # running sums stay on the device; they are read (a GPU sync) only when a line is logged
    window = _new_window(device, ckpt.get("window") if ckpt else None, main_process)
    try:
        while iteration < o.iterations:
            # the rows of each task in this batch, over all processes: the loss is each task's mean over it
            counts = torch.from_numpy(sampler.task_counts(iteration * o.batch_size, o.batch_size))
            stats = train_step(net, batches, accumulate, counts, optimizer, scaler, device, dtype, world, to_input)
            window["loss"] = window["loss"] + stats.loss
            window["correct"] = window["correct"] + stats.correct
            window["seen"] += stats.seen
            window["steps"] += 1
            scheduler.step()
            iteration += 1
            bar.update()

            if iteration % cfg.run.log_every == 0 or iteration == o.iterations:
                seconds = time.perf_counter() - window["start"]
                loss, correct = window["loss"], torch.as_tensor(window["correct"], device=device)
                if world > 1:  # every process holds its share of each batch's loss and accuracy
                    dist.all_reduce(loss)
                    dist.all_reduce(correct)
                last = {"iteration": iteration, "loss": float(loss) / window["steps"],
                        "accuracy": int(correct) / (window["seen"] * world), "lr": scheduler.get_last_lr()[0],
                        "samples_per_s": window["seen"] * world / seconds, "precision": precision}
                window = _new_window(device)
                _check_finite(last["loss"], iteration, run.checkpoint)
                if val_sets and (iteration % cfg.run.val_every == 0 or iteration == o.iterations):
                    last |= validate(model, val_sets, [t.name for t in cfg.tasks], device, micro, cfg.run.workers,
                                     dtype)
                bar.set_postfix(loss=f"{last['loss']:.3f}", acc=f"{last['accuracy']:.2f}", lr=f"{last['lr']:.0e}",
                                sps=f"{last['samples_per_s']:.1f}")
                if metrics_file:
                    metrics_file.write(json.dumps(last) + "\n")
                    metrics_file.flush()
            if iteration % cfg.run.checkpoint_every == 0 or iteration == o.iterations:
                totals = _window_totals(window, world)
                _check_finite(totals["loss"], iteration, run.checkpoint)  # NaN stays in the window's sum
                if main_process:
                    save_checkpoint(run.checkpoint, {
                        "model": model.state_dict(), "model_args": model_args(cfg, classes), "config": to_dict(cfg),
                        "input_convention": convention, "classes": classes, "extraction": extraction, "iteration": iteration,
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(), "rng": _rng_state(), "window": totals, "resumes": resumes,
                        "precision": precision})
        if world > 1:
            _check_in_sync(model)
    finally:
        bar.close()
        if metrics_file:
            metrics_file.close()
    return last


@torch.no_grad()
def _check_in_sync(model: nn.Module) -> None:
    """Under DDP every rank must end with the same weights; a mismatch means a broken setup."""
    total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    if dist.get_backend() == "nccl":
        total = total.cuda()
    gathered = [torch.zeros_like(total) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, total)
    if not all(torch.allclose(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"DDP ranks ended with different weights: {[float(g) for g in gathered]}")
