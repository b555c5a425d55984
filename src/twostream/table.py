"""The paper's Table 4 layout over splits 1-3: spatial, temporal, fusion by averaging, fusion by SVM."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import UserError
from .fusion import fuse
from .metrics import top_k_accuracy
from .config import load_config
from .runs import RunDir
from .scores import Scores, read_scores


def run_scores(run: str | Path, part: str, task: str | None = None, evaluate_missing: bool = True,
               **evaluate_kw) -> Scores:
    """The score file of ``run`` for ``part`` (test/train), evaluating the run first if it is missing."""
    found = RunDir(run).score_files(part)
    if task is not None:
        found = {t: p for t, p in found.items() if t == task}
    if not found and evaluate_missing:
        from .evaluate import evaluate

        found = evaluate(run, part, **evaluate_kw)
        found = {task: found[task]} if task else found
    if not found:
        raise UserError(f"{run}: no {part} scores{f' of task {task}' if task else ''} (run `twostream evaluate "
                        f"{run} --split {part}`)")
    if len(found) > 1:
        raise UserError(f"{run}: several tasks ({', '.join(found)}); name one with --task")
    return read_scores(next(iter(found.values())))


HELD_OUT_ROW = "Fusion by SVM (fitted on held-out groups)"


def _fold(run: str | Path, task: str | None) -> int:
    """The split (fold) the run's task (its only one where ``task`` is None) was trained on."""
    tasks = load_config(RunDir(run).config).tasks
    return next(t.fold for t in tasks if task is None or t.name == task)


def holds_out_groups(run: str | Path) -> bool:
    """Whether the run's tasks hold training groups out of the streams' training to fit the fusion on."""
    return any(t.fusion_groups for t in load_config(RunDir(run).config).tasks)


def splits_table(spatial: list[str | Path], temporal: list[str | Path], task: str | None = None,
                 evaluate_missing: bool = True, metric: Callable[[np.ndarray, np.ndarray], float] = top_k_accuracy,
                 **evaluate_kw) -> tuple[list[str], list[list[str]], dict]:
    """``metric`` (top-1 accuracy; or e.g. ``mean_class_accuracy``) per split (one spatial and one temporal run per split) and their mean, as the
    paper's Table 4: rows spatial, temporal, fusion by averaging, fusion by SVM (fitted on the training
    scores), and, where the runs hold groups out for it (``fusion_groups``), fusion by SVM fitted on the
    held-out groups' scores."""
    if len(spatial) != len(temporal) or not spatial:
        raise UserError(f"need one spatial and one temporal run per split, got {len(spatial)} and {len(temporal)}")
    acc: dict[str, list[float]] = {"Spatial ConvNet": [], "Temporal ConvNet": [], "Fusion by averaging": [],
                                   "Fusion by SVM": []}
    for s_run, t_run in zip(spatial, temporal):
        get = lambda run, part: run_scores(run, part, task, evaluate_missing, **evaluate_kw)  # noqa: E731
        s, t = get(s_run, "test"), get(t_run, "test")
        s_train, t_train = get(s_run, "train"), get(t_run, "train")
        acc["Spatial ConvNet"].append(metric(s.scores, s.labels))
        acc["Temporal ConvNet"].append(metric(t.scores, t.labels))
        avg, _ = fuse("avg", (s, t))
        svm, _ = fuse("svm", (s, t), (s_train, t_train))
        acc["Fusion by averaging"].append(metric(avg.scores, avg.labels))
        acc["Fusion by SVM"].append(metric(svm.scores, svm.labels))
        if holds_out_groups(s_run) and holds_out_groups(t_run):
            held = fuse("svm", (s, t), (get(s_run, "fusion"), get(t_run, "fusion")))[0]
            acc.setdefault(HELD_OUT_ROW, []).append(metric(held.scores, held.labels))
    if HELD_OUT_ROW in acc and len(acc[HELD_OUT_ROW]) != len(spatial):
        raise UserError("either every split's runs hold groups out for the fusion, or none")
    headers = ["method"] + [f"split {_fold(run, task)}" for run in spatial] + ["mean"]
    rows = [[name] + [f"{v:.1%}" for v in vals] + [f"{np.mean(vals):.1%}"] for name, vals in acc.items()]
    return headers, rows, acc


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
