"""`pareto_finetuned.png`: the post-training (QAT) front beside the post-training-quantization front."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dse.results.finetuned import FINETUNED_PLOT, Finetuned, front_of, load_finetuned  # noqa: E402
from dse.results.rundata import RunData  # noqa: E402
from dse.results.sizes import SizeInfo  # noqa: E402
from dse.viz.front import finish_front_axes  # noqa: E402


@dataclass
class FinetunedPlotData:
    x_name: str
    y_name: str
    ptq: list[tuple[float, float]]  # the run's feasible front (validation)
    qat: list[tuple[float, float]]  # the front of the fine-tuned points (validation, after)
    moves: list[tuple[float, float, float]]  # per fine-tuned point: size, before, after
    baseline: float | None
    size: SizeInfo | None


def finetuned_plot_data(run: RunData, tuned: list[Finetuned]) -> FinetunedPlotData:
    size, acc = run.axes
    ptq = front_of([(e.metrics[size], e.metrics[acc]) for e in run.front])
    qat = front_of([(f.size, f.after) for f in tuned])
    moves = [(f.size, f.before, f.after) for f in tuned]
    return FinetunedPlotData(size, acc, ptq, qat, moves, run.baseline.get(acc), run.sizes.get(size))


def draw_finetuned(data: FinetunedPlotData, path: Path, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for pts, colour, label in (
        (data.ptq, "tab:blue", "post-training quantization"),
        (data.qat, "tab:red", "fine-tuned (QAT)"),
    ):
        if pts:
            xs, ys = zip(*pts)
            ax.step(xs, ys, where="post", c=colour, lw=1)
            ax.scatter(xs, ys, s=24, c=colour, label=label, zorder=3)
    for x, before, after in data.moves:
        ax.annotate("", (x, after), (x, before), arrowprops={"arrowstyle": "->", "color": "0.6", "lw": 0.6})
    if data.baseline is not None:
        ax.axhline(data.baseline, ls="--", c="0.3", lw=0.7, label=f"float ({data.baseline:.2f})")
    finish_front_axes(fig, ax, data.x_name, f"validation {data.y_name}", title, path, size=data.size)


def write_finetuned_plot(run: RunData) -> Path | None:
    """Draw the plot where the run has fine-tuned points; None where it has none."""
    tuned = load_finetuned(run)
    if not tuned:
        return None
    path = run.run_dir / FINETUNED_PLOT
    draw_finetuned(finetuned_plot_data(run, tuned), path, f"{run.name}: after fine-tuning")
    return path
