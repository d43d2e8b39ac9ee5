"""Run plots. As in Optuna's visualisation: one function builds the data (tested), another draws it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from dse.core.evaluation import Evaluation  # noqa: E402
from dse.core.files import atomic_write  # noqa: E402
from dse.results.rundata import RunData  # noqa: E402
from dse.results.sizes import BITS_PER_BYTE, SizeInfo, prefix_scale  # noqa: E402


@dataclass
class FrontPlotData:
    x_name: str
    y_name: str
    all_points: list[tuple[float, float, bool]]  # (x, y, feasible) of every successful evaluation
    front: list[tuple[float, float]]  # sorted by x
    references: list[tuple[float, float, str]] = field(default_factory=list)  # (x, y, label)
    baseline_y: float | None = None
    threshold_y: float | None = None
    x_size: SizeInfo | None = None  # where x is a size metric: ticks in KiB/MiB, compression on top
    rejected: int = 0  # evaluations stopped early (infeasible, y unknown): counted, not drawn


def labelled_points(evals: Sequence[Evaluation], x: str, y: str) -> list[tuple[float, float, str]]:
    """(x, y, label) of the successful evaluations that carry both metrics: the reference points."""
    return [
        (e.metrics[x], e.metrics[y], e.label) for e in evals if e.ok and x in e.metrics and y in e.metrics
    ]


def front_plot_data(run: RunData) -> FrontPlotData:
    """A run's evaluations, front and reference points on its axes (`RunData.axes`). Failed and
    rejected evaluations have no y to draw them at; rejected ones are counted in the legend."""
    x, y = run.axes
    ok = [e for e in run.evaluations if e.ok and x in e.metrics and y in e.metrics]
    return FrontPlotData(
        x_name=x,
        y_name=y,
        all_points=[(e.metrics[x], e.metrics[y], e.feasible) for e in ok],
        front=sorted((e.metrics[x], e.metrics[y]) for e in run.front),
        references=labelled_points(run.reference_points, x, y),
        baseline_y=run.baseline.get(y),
        threshold_y=run.threshold,
        x_size=run.sizes.get(x),
        rejected=sum(e.rejected for e in run.evaluations),
    )


def draw_front(data: FrontPlotData, path: Path, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    feas = [(a, b) for a, b, f in data.all_points if f]
    infeas = [(a, b) for a, b, f in data.all_points if not f]
    if infeas:
        ax.scatter(*zip(*infeas), s=8, c="0.75", alpha=0.5, label="infeasible")
    if feas:
        ax.scatter(*zip(*feas), s=10, c="tab:blue", alpha=0.3, label="evaluated")
    if data.front:
        ax.step(*zip(*data.front), where="post", c="tab:red", lw=1.2)
        ax.scatter(*zip(*data.front), s=28, c="tab:red", zorder=3, label="Pareto front")
    for xu, yu, label in data.references:
        ax.scatter([xu], [yu], marker="s", s=36, c="tab:green", zorder=4)
        ax.annotate(label, (xu, yu), textcoords="offset points", xytext=(4, 4), fontsize=7, color="tab:green")
    if data.baseline_y is not None:
        ax.axhline(data.baseline_y, ls="--", c="k", lw=0.8, label=f"float ({data.baseline_y:.2f})")
    if data.threshold_y is not None:
        ax.axhline(data.threshold_y, ls=":", c="tab:orange", lw=0.8, label="constraint")
    if data.rejected:  # no y to draw them at: a legend line says how many
        ax.plot([], [], ls="", label=f"{data.rejected} rejected early (infeasible, not drawn)")
    ys = [b for _, b, _ in data.all_points] + [b for _, b, _ in data.references]
    if data.threshold_y is not None and ys:  # keep the interesting band readable
        lo = min(data.threshold_y - 5, min(b for _, b in data.front) if data.front else data.threshold_y)
        ax.set_ylim(bottom=max(lo, min(ys)) - 0.5, top=max(ys + [data.baseline_y or 0]) + 0.5)
    finish_front_axes(fig, ax, data.x_name, data.y_name, title, path, size=data.x_size)


def finish_front_axes(
    fig: plt.Figure,
    ax: plt.Axes,
    x_name: str,
    y_name: str,
    title: str,
    path: Path,
    size: SizeInfo | None = None,
) -> None:
    """The common dressing of every front plot (x a size: `dress_size_axis`), then the atomic save."""
    if size is not None:
        dress_size_axis(ax, size)
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, path)


def dress_size_axis(ax: plt.Axes, size: SizeInfo) -> None:
    """x ticks as sizes ("12.0 KiB"); with baselines, a top axis: compression vs the first one."""
    if size.unit in BITS_PER_BYTE:
        ax.xaxis.set_major_locator(SizeLocator(size.unit))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: size.format(v)))
    ax.tick_params(axis="x", labelsize=8)
    label, base = next(iter(size.baselines.items()), ("", 0.0))
    if base <= 0:
        return

    def ratio(v: np.ndarray) -> np.ndarray:  # size <-> base / size: its own inverse
        return base / np.clip(np.asarray(v, dtype=float), base * 1e-9, None)

    top = ax.secondary_xaxis("top", functions=(ratio, ratio))
    top.xaxis.set_major_formatter(FuncFormatter(lambda r, _pos: f"{r:g}x"))
    top.tick_params(labelsize=7)
    top.set_xlabel(f"compression vs {label}", fontsize=8)


class SizeLocator(MaxNLocator):
    """Round ticks in the shown unit (25, 50, 75 KiB), not in the metric's (100000 bits = 12.2 KiB)."""

    def __init__(self, unit: str) -> None:
        super().__init__(nbins="auto", steps=[1, 2, 2.5, 5, 10])
        self.unit = unit

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        scale, _ = prefix_scale(max(abs(vmin), abs(vmax)), self.unit)
        return np.asarray(super().tick_values(vmin / scale, vmax / scale)) * scale


def save_figure(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
