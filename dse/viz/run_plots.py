"""A run's plots, rebuilt from its folder alone: front, anytime hypervolume, per-layer bit-width heat
map, parallel coordinates, validation vs held-out front. Data builders are tested; drawing is separate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dse.core.evaluation import Evaluation  # noqa: E402
from dse.indicators.quality import hv_curve  # noqa: E402
from dse.results.heldout import held_out_pairs, load_held_out  # noqa: E402
from dse.results.rundata import RunData  # noqa: E402
from dse.results.sizes import SizeInfo  # noqa: E402
from dse.viz.compare_plots import draw_hv_bands, hv_band_data  # noqa: E402
from dse.viz.front import draw_front, finish_front_axes, front_plot_data, save_figure  # noqa: E402


@dataclass
class HeatmapData:
    variables: list[str]  # rows
    eval_ids: list[int]  # columns: front points by increasing size
    sizes: list[float]
    size_name: str
    matrix: np.ndarray  # bits, len(variables) x len(eval_ids)
    size: SizeInfo | None = None  # the size metric's unit (tick labels in KiB/MiB)


def heatmap_data(
    front: Sequence[Evaluation], variables: Sequence[str], size_name: str, size: SizeInfo | None = None
) -> HeatmapData:
    order = sorted(front, key=lambda e: (e.metrics[size_name], e.eval_id))
    matrix = np.array([[e.values[v] for e in order] for v in variables], dtype=float)
    return HeatmapData(
        list(variables),
        [e.eval_id for e in order],
        [e.metrics[size_name] for e in order],
        size_name,
        matrix.reshape(len(variables), len(order)),
        size,
    )


def draw_heatmap(data: HeatmapData, path: Path, title: str = "") -> None:
    n_var, n_pts = data.matrix.shape
    fig, ax = plt.subplots(figsize=(min(max(5, 0.35 * n_pts + 3), 16), min(max(3, 0.22 * n_var + 1.5), 14)))
    if n_pts:
        bits = sorted(set(data.matrix.ravel().astype(int).tolist()))
        cmap = plt.get_cmap("viridis", len(bits))
        index = np.searchsorted(bits, data.matrix)
        im = ax.imshow(index, aspect="auto", cmap=cmap, vmin=-0.5, vmax=len(bits) - 0.5)
        cbar = fig.colorbar(im, ax=ax, ticks=range(len(bits)))
        cbar.ax.set_yticklabels([str(b) for b in bits])
        cbar.set_label("bits")
        if n_pts * n_var <= 600:
            for (i, j), b in np.ndenumerate(data.matrix):
                ax.text(j, i, f"{int(b)}", ha="center", va="center", fontsize=6, color="w")
        step = max(1, n_pts // 20)
        ax.set_xticks(range(0, n_pts, step))
        show = data.size.format if data.size is not None else (lambda v: f"{v:.3g}")
        ax.set_xticklabels([show(data.sizes[j]) for j in range(0, n_pts, step)], rotation=60, fontsize=7)
    else:
        ax.text(0.5, 0.5, "no feasible configuration", ha="center", va="center", transform=ax.transAxes)
    ax.set_yticks(range(n_var))
    ax.set_yticklabels(data.variables, fontsize=6 if n_var > 20 else 8)
    ax.set_xlabel(f"Pareto configurations by {data.size_name}")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


@dataclass
class ParallelData:
    axes: list[str]  # variables, then objectives
    low: list[float]
    high: list[float]
    values: np.ndarray  # points x axes, own units
    scaled: np.ndarray  # points x axes, 0 at low, 1 at high (0.5 where low == high)
    colour: list[float]  # the size objective of each point
    colour_name: str


def parallel_data(
    front: Sequence[Evaluation],
    variables: Sequence[str],
    objectives: Sequence[str],
    choices: dict[str, Sequence[int]],
    size_name: str,
) -> ParallelData:
    """Variables are scaled over their choices, objectives over the front's own range."""
    order = sorted(front, key=lambda e: (e.metrics[size_name], e.eval_id))
    axes = [*variables, *objectives]
    values = np.array(
        [[e.values[v] for v in variables] + [e.metrics[m] for m in objectives] for e in order], dtype=float
    ).reshape(len(order), len(axes))
    low, high = [], []
    for i, name in enumerate(axes):
        if name in choices and len(choices[name]):
            low.append(float(min(choices[name])))
            high.append(float(max(choices[name])))
        elif len(values):
            low.append(float(values[:, i].min()))
            high.append(float(values[:, i].max()))
        else:
            low.append(0.0)
            high.append(1.0)
    lo, hi = np.array(low), np.array(high)
    span = np.where(hi > lo, hi - lo, 1.0)
    scaled = np.where(hi > lo, (values - lo) / span, 0.5)
    return ParallelData(axes, low, high, values, scaled, [e.metrics[size_name] for e in order], size_name)


def draw_parallel(data: ParallelData, path: Path, title: str = "") -> None:
    n = len(data.axes)
    fig, ax = plt.subplots(figsize=(min(max(6, 0.3 * n + 2), 18), 4.5))
    if len(data.scaled):
        cmap = plt.get_cmap("plasma")
        c = np.asarray(data.colour)
        norm = plt.Normalize(c.min(), c.max() if c.max() > c.min() else c.min() + 1)
        for row, value in zip(data.scaled, c, strict=True):
            ax.plot(range(n), row, c=cmap(norm(value)), lw=1, alpha=0.7)
        sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(sm, ax=ax).set_label(data.colour_name)
    for i in range(n):
        ax.axvline(i, c="0.6", lw=0.6)
        lift = 3 + 7 * (i % 2) if n > 12 else 3  # stagger the labels of crowded axes
        ax.annotate(
            f"{data.high[i]:.4g}",
            (i, 1.0),
            xytext=(0, lift),
            textcoords="offset points",
            fontsize=5,
            ha="center",
        )
        ax.annotate(
            f"{data.low[i]:.4g}",
            (i, 0.0),
            xytext=(0, -5 - lift),
            textcoords="offset points",
            fontsize=5,
            ha="center",
        )
    ax.set_xticks(range(n))
    ax.set_xticklabels(data.axes, rotation=70, fontsize=6 if n > 20 else 8)
    ax.set_yticks([])
    ax.set_ylim(-0.12, 1.12)
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


@dataclass
class HeldOutPlotData:
    x_name: str
    y_name: str  # validation metric
    held_name: str  # its held-out counterpart
    points: list[tuple[float, float, float]]  # (x, validation y, held-out y), by x
    baseline_y: float | None
    held_baseline_y: float | None
    x_size: SizeInfo | None = None


def held_out_plot_data(
    frame: pd.DataFrame, x: str, y: str, held: str, baseline: float | None, held_baseline: float | None
) -> HeldOutPlotData:
    rows = frame.sort_values([x, "eval_id"])
    points = [(float(a), float(b), float(c)) for a, b, c in zip(rows[x], rows[y], rows[held], strict=True)]
    return HeldOutPlotData(x, y, held, points, baseline, held_baseline)


def draw_held_out(data: HeldOutPlotData, path: Path, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if data.points:
        xs, ys, hs = zip(*data.points)
        ax.step(xs, ys, where="post", c="tab:blue", lw=1)
        ax.scatter(xs, ys, s=24, c="tab:blue", label=f"validation {data.y_name}", zorder=3)
        ax.plot(xs, hs, c="tab:red", lw=1, ls="--")
        ax.scatter(xs, hs, s=24, c="tab:red", marker="D", label=data.held_name, zorder=3)
    if data.baseline_y is not None:
        ax.axhline(
            data.baseline_y, ls="--", c="tab:blue", lw=0.7, label=f"float, validation ({data.baseline_y:.2f})"
        )
    if data.held_baseline_y is not None:
        ax.axhline(
            data.held_baseline_y,
            ls=":",
            c="tab:red",
            lw=0.7,
            label=f"float, held out ({data.held_baseline_y:.2f})",
        )
    finish_front_axes(fig, ax, data.x_name, data.y_name, title, path, size=data.x_size)


def write_run_plots(run: RunData) -> list[Path]:
    """Every plot of a run folder, from its files; returns the paths written."""
    x, y = run.axes
    n = len(run.evaluations)
    title = f"{run.summary.get('experiment', '')} · {run.algorithm} · seed {run.seed} · {n} evals"
    d = run.run_dir
    written = []
    draw_front(front_plot_data(run), d / "pareto.png", title)
    written.append(d / "pareto.png")
    draw_hv_bands(
        hv_band_data({run.algorithm: [hv_curve(run.evaluations, run.objectives, run.norm)]}),
        d / "hv_curve.png",
        title,
    )
    written.append(d / "hv_curve.png")
    draw_heatmap(
        heatmap_data(run.front, run.variables, x, run.sizes.get(x)),
        d / "heatmap.png",
        f"bit widths of the Pareto configurations\n{title}",
    )
    written.append(d / "heatmap.png")
    choices = {v: run.choices(v) for v in run.variables}
    draw_parallel(
        parallel_data(run.front, run.variables, list(run.objectives.names), choices, x),
        d / "parallel.png",
        title,
    )
    written.append(d / "parallel.png")
    return written + write_held_out_plot(run)


def write_held_out_plot(run: RunData) -> list[Path]:
    """pareto_test.png where the run has a held-out table (`dse run` adds it after the search)."""
    x, y = run.axes
    title = f"{run.summary.get('experiment', '')} · {run.algorithm} · seed {run.seed}"
    d, written = run.run_dir, []
    held = load_held_out(d)
    if held is not None:
        frame, meta = held
        split = str(meta.get("split", "test"))
        pairs = {
            h: v
            for h, v in held_out_pairs(list(frame.columns), split).items()
            if v == y and x in frame and v in frame
        }
        for h, v in pairs.items():
            base = (meta.get("baseline") or {}).get(h)
            data = held_out_plot_data(
                frame, x, v, h, run.baseline.get(v), base if base is None else float(base)
            )
            data.x_size = run.sizes.get(x)
            draw_held_out(data, d / "pareto_test.png", f"validation vs {split} · {title}")
            written.append(d / "pareto_test.png")
    return written
