"""Run plots. As in Optuna's visualisation: one function builds the data (tested), another draws it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dse.core.evaluation import Evaluation  # noqa: E402
from dse.core.files import atomic_write  # noqa: E402
from dse.core.objectives import Objectives  # noqa: E402


@dataclass
class FrontPlotData:
    x_name: str
    y_name: str
    all_points: list[tuple[float, float, bool]]  # (x, y, feasible) of every successful evaluation
    front: list[tuple[float, float]]  # sorted by x
    uniform: list[tuple[float, float, str]] = field(default_factory=list)
    baseline_y: float | None = None
    threshold_y: float | None = None


def plot_axes(objectives: Objectives) -> tuple[str, str]:
    """x: the first objective other than accuracy (the size); y: accuracy where it is an objective."""
    names = list(objectives.names)
    y = "accuracy" if "accuracy" in names else names[1]
    x = next(n for n in names if n != y)
    return x, y


def front_plot_data(
    evals: Sequence[Evaluation],
    front: Sequence[Evaluation],
    uniform: Sequence[Evaluation],
    objectives: Objectives,
    baseline_y: float | None = None,
    threshold_y: float | None = None,
) -> FrontPlotData:
    x, y = plot_axes(objectives)
    return FrontPlotData(
        x_name=x,
        y_name=y,
        all_points=[(e.metrics[x], e.metrics[y], e.feasible) for e in evals if e.ok],
        front=sorted((e.metrics[x], e.metrics[y]) for e in front),
        uniform=[(e.metrics[x], e.metrics[y], f"{next(iter(e.values.values()))}b") for e in uniform if e.ok],
        baseline_y=baseline_y,
        threshold_y=threshold_y,
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
    for xu, yu, label in data.uniform:
        ax.scatter([xu], [yu], marker="s", s=36, c="tab:green", zorder=4)
        ax.annotate(label, (xu, yu), textcoords="offset points", xytext=(4, 4), fontsize=7, color="tab:green")
    if data.baseline_y is not None:
        ax.axhline(data.baseline_y, ls="--", c="k", lw=0.8, label=f"float ({data.baseline_y:.2f})")
    if data.threshold_y is not None:
        ax.axhline(data.threshold_y, ls=":", c="tab:orange", lw=0.8, label="constraint")
    ys = [b for _, b, _ in data.all_points] + [b for _, b, _ in data.uniform]
    if data.threshold_y is not None and ys:  # keep the interesting band readable
        lo = min(data.threshold_y - 5, min(b for _, b in data.front) if data.front else data.threshold_y)
        ax.set_ylim(bottom=max(lo, min(ys)) - 0.5, top=max(ys + [data.baseline_y or 0]) + 0.5)
    finish_front_axes(fig, ax, data.x_name, data.y_name, title, path)


def finish_front_axes(
    fig: plt.Figure, ax: plt.Axes, x_name: str, y_name: str, title: str, path: Path
) -> None:
    """The common dressing of every front plot, then the atomic save."""
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, path)


def save_figure(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
