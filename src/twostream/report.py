"""Reports: confusion matrix and per-class accuracy as PNG, and one self-contained HTML page per
evaluation or fusion (tables, plots, and a few test videos with frames, colour-coded flow and top-5)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from .flow.codec import encode_jpeg
from .flow.visualize import flow_to_color
from .io import atomic_write, atomic_write_text
from .metrics import confusion_matrix, per_class_accuracy, summary
from .scores import Scores


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(scores: Scores, path: str | Path) -> Path:
    """Row-normalised confusion matrix (true class down, predicted across) as PNG."""
    plt = _plt()
    k = len(scores.classes)
    cm = confusion_matrix(scores.labels, scores.scores.argmax(1), k).astype(float)
    cm /= np.maximum(cm.sum(1, keepdims=True), 1)
    side = min(4 + 0.18 * k, 20)
    fig, ax = plt.subplots(figsize=(side, side), dpi=80)
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    if k <= 60:
        ax.set_xticks(range(k), scores.classes, rotation=90, fontsize=7)
        ax.set_yticks(range(k), scores.classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, fraction=0.046)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return Path(path)


def plot_per_class(scores: Scores, path: str | Path) -> Path:
    """Per-class top-1 accuracy, worst first, as PNG."""
    plt = _plt()
    acc = per_class_accuracy(scores.scores, scores.labels)
    order = np.argsort(np.nan_to_num(acc, nan=-1))
    k = len(order)
    fig, ax = plt.subplots(figsize=(6, min(2 + 0.16 * k, 20)), dpi=80)
    ax.barh(range(k), np.nan_to_num(acc[order]), color="#4477aa")
    ax.set_yticks(range(k), [scores.classes[i] for i in order], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("top-1 accuracy")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return Path(path)


ACCURACY_HEADERS = ["scores", "top-1", "top-5", "mean class"]


def accuracy_rows(named: list[tuple[str, Scores]]) -> list[list[str]]:
    """One row per (name, scores): top-1, top-5 and mean class accuracy as percentages."""
    rows = []
    for name, s in named:
        m = summary(s.scores, s.labels)
        rows.append([name, f"{m['top1']:.1%}", f"{m['top5']:.1%}", f"{m['mean_class']:.1%}"])
    return rows


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _img(data: bytes, mime: str, alt: str, width: int | None = None) -> str:
    w = f' width="{width}"' if width else ""
    return f'<img src="{_data_uri(data, mime)}" alt="{html.escape(alt)}"{w}>'


def _table(headers: list[str], rows: list[list], caption: str) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _video_block(scores: Scores, i: int, cache: Path | None, frames: int = 3) -> str:
    from .cache import CachedVideo

    vid, probs = scores.video_ids[i], scores.scores[i]
    top = np.argsort(-probs)[:5]
    rows = [[r + 1, scores.classes[c], f"{probs[c]:.3f}", "yes" if c == scores.labels[i] else ""]
            for r, c in enumerate(top)]
    parts = [f"<h3>{html.escape(vid)}</h3><p>true class: <b>{html.escape(scores.classes[scores.labels[i]])}</b></p>"]
    if cache is not None:
        try:
            video = CachedVideo(cache, vid)
        except ValueError:
            video = None
        if video is not None and video.num_flows > 0:
            picks = np.linspace(0, video.num_flows - 1, frames).round().astype(int)
            imgs = [_img(encode_jpeg(video.frame(int(t)), 85), "image/jpeg", f"{vid} frame {t}", 160) for t in picks]
            flows = [video.flow(int(t)) for t in picks]
            top_mag = max(float(np.hypot(f[..., 0], f[..., 1]).max()) for f in flows) or 1.0
            imgs += [_img(encode_jpeg(flow_to_color(f, top_mag), 85), "image/jpeg", f"{vid} flow {t}", 160)
                     for t, f in zip(picks, flows)]
            parts.append('<div class="strip">' + "".join(imgs) + "</div>"
                         "<p class=note>frames, then their optical flow (colour = direction, saturation = speed)</p>")
    parts.append(_table(["rank", "class", "score", "correct"], rows, f"top-5 of {vid}"))
    return '<div class="video">' + "".join(parts) + "</div>"


_STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}caption{font-weight:bold;text-align:left}
.strip img{margin-right:4px}.note{color:#666;font-size:90%}.video{border-top:1px solid #ddd;margin-top:1em}"""

# Marks on <body> how many images the browser decoded: a check a headless test can read from the DOM.
_SCRIPT = """window.addEventListener('load',function(){var im=document.images,n=0;
for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0)n++;}
document.body.setAttribute('data-images-loaded',n);document.body.setAttribute('data-images-total',im.length);});"""


def write_report(path: str | Path, title: str, scores: Scores, cache: str | Path | None = None,
                 extra_tables: list[tuple[str, list[str], list[list]]] = (), videos: int = 4) -> Path:
    """One self-contained HTML page (images inlined) for an evaluation or a fusion; PNG plots beside it."""
    path = Path(path)
    m = summary(scores.scores, scores.labels)
    tables = [_table(["videos", "top-1", "top-5", "mean class accuracy"],
                     [[m["videos"], f"{m['top1']:.1%}", f"{m['top5']:.1%}", f"{m['mean_class']:.1%}"]], "accuracy")]
    tables += [_table(h, r, c) for c, h, r in extra_tables]
    cm_png = plot_confusion(scores, path.with_name(path.stem + "-confusion.png"))
    pc_png = plot_per_class(scores, path.with_name(path.stem + "-per-class.png"))
    plots = (_img(cm_png.read_bytes(), "image/png", "confusion matrix") +
             _img(pc_png.read_bytes(), "image/png", "per-class accuracy"))
    picks = np.unique(np.linspace(0, len(scores.video_ids) - 1, min(videos, len(scores.video_ids))).round().astype(int))
    blocks = "".join(_video_block(scores, int(i), Path(cache) if cache else None) for i in picks)
    meta = {}
    for k, v in scores.meta.items():  # one level of nesting (fusion: its streams' provenance)
        for k2, v2 in (v.items() if isinstance(v, dict) else [("", v)]):
            if k2 != "config" and k != "config" and not isinstance(v2, dict):
                meta[f"{k}.{k2}" if k2 else k] = v2
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body><h1>{html.escape(title)}</h1>"
            + "".join(tables)
            + _table(["key", "value"], [[k, v] for k, v in meta.items()], "provenance")
            + f"<h2>Confusion matrix and per-class accuracy</h2><div>{plots}</div>"
            + f"<h2>Test videos</h2>{blocks}</body></html>")
    return atomic_write_text(path, page)
