"""Comparison plots: fronts of every run overlaid, hypervolume against evaluations (median and band).

As in `dse.viz.front`: one function builds the data (tested numerically), another draws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dse.results.rundata import RunData  # noqa: E402
from dse.results.sizes import SizeInfo  # noqa: E402
from dse.viz.front import finish_front_axes, labelled_points, save_figure  # noqa: E402


@dataclass
class OverlayData:
    x_name: str
    y_name: str
    fronts: dict[str, list[list[tuple[float, float]]]]  # algorithm -> one front per run, sorted by x
    references: list[tuple[float, float, str]] = field(default_factory=list)
    baseline_y: float | None = None
    threshold_y: float | None = None
    x_size: SizeInfo | None = None


def overlay_data(runs: Sequence[RunData]) -> OverlayData:
    x, y = runs[0].axes
    fronts: dict[str, list[list[tuple[float, float]]]] = {}
    for r in runs:
        fronts.setdefault(r.label, []).append(sorted((e.metrics[x], e.metrics[y]) for e in r.front))
    references = labelled_points(runs[0].reference_points, x, y)
    return OverlayData(
        x, y, fronts, references, runs[0].baseline.get(y), runs[0].threshold, runs[0].sizes.get(x)
    )


def draw_overlay(data: OverlayData, path: Path, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = plt.get_cmap("tab10")
    for i, (algorithm, fronts) in enumerate(data.fronts.items()):
        c = colours(i % 10)
        labelled = False
        for front in fronts:
            if not front:
                continue
            ax.step(*zip(*front), where="post", c=c, lw=1, alpha=0.6)
            ax.scatter(*zip(*front), s=16, color=c, alpha=0.8, label=None if labelled else algorithm)
            labelled = True
    for i, (xu, yu, label) in enumerate(data.references):
        ax.scatter(
            [xu], [yu], marker="s", s=36, c="k", zorder=4, label="reference points" if i == 0 else None
        )
        ax.annotate(label, (xu, yu), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if data.baseline_y is not None:
        ax.axhline(data.baseline_y, ls="--", c="k", lw=0.8, label=f"float ({data.baseline_y:.2f})")
    if data.threshold_y is not None:
        ax.axhline(data.threshold_y, ls=":", c="tab:orange", lw=0.8, label="constraint")
    ys = [p[1] for fs in data.fronts.values() for f in fs for p in f]
    if data.threshold_y is not None and ys:
        top = max(ys + [data.baseline_y or -np.inf] + [u[1] for u in data.references])
        ax.set_ylim(bottom=min(ys + [data.threshold_y]) - 0.5, top=top + 0.5)
    finish_front_axes(fig, ax, data.x_name, data.y_name, title, path, size=data.x_size)


@dataclass
class HVBand:
    algorithm: str
    evaluations: np.ndarray  # 1..K
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray
    runs: int


def pad_curve(curve: np.ndarray, length: int) -> np.ndarray:
    """A run that stopped early keeps its last hypervolume (its front no longer changes)."""
    curve = np.asarray(curve, dtype=float)
    if len(curve) >= length:
        return curve[:length]
    last = curve[-1] if len(curve) else 0.0
    return np.concatenate([curve, np.full(length - len(curve), last)])


def hv_band_data(curves: Mapping[str, Sequence[np.ndarray]]) -> list[HVBand]:
    """Per algorithm: median and min-max over its runs of HV after k evaluations."""
    bands = []
    for algorithm, runs in curves.items():
        length = max((len(c) for c in runs), default=0)
        if length == 0:
            continue
        M = np.vstack([pad_curve(c, length) for c in runs])
        bands.append(
            HVBand(
                algorithm,
                np.arange(1, length + 1),
                np.median(M, axis=0),
                M.min(axis=0),
                M.max(axis=0),
                len(runs),
            )
        )
    return bands


def draw_hv_bands(bands: Sequence[HVBand], path: Path, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = plt.get_cmap("tab10")
    for i, b in enumerate(bands):
        c = colours(i % 10)
        label = f"{b.algorithm} (median of {b.runs})" if b.runs > 1 else b.algorithm
        ax.plot(b.evaluations, b.median, c=c, lw=1.5, label=label, drawstyle="steps-post")
        if b.runs > 1:
            ax.fill_between(b.evaluations, b.low, b.high, color=c, alpha=0.2, step="post")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("hypervolume (normalised)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, path)
