"""What `dse run` adds once a search ends: the front re-measured on held-out data, and its plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dse.results.heldout import HELD_OUT_CSV, has_held_out, held_out_pairs, write_held_out
from dse.results.rundata import load_run
from dse.viz.run_plots import write_held_out_plot


def finish_run(run_dir: Path, setup: Any, plots: bool) -> list[str]:
    """Write pareto_test.csv (and its plot) where the problem has a held-out split; say what it found.

    The run's other plots were drawn when its outputs were written (`run_experiment`).
    """
    run = load_run(run_dir)
    lines = []
    if setup is not None and has_held_out(setup.problem):
        frame = write_held_out(run, setup.problem)
        for held, val in held_out_pairs(list(frame.columns)).items():
            if len(frame) and val in frame:
                gap = (frame[val] - frame[held]).mean()
                lines.append(
                    f"held-out: {run_dir / HELD_OUT_CSV}: {len(frame)} Pareto configurations, "
                    f"{held} {frame[held].min():.2f}..{frame[held].max():.2f} "
                    f"(on average {gap:.2f} below {val})"
                )
        if plots:
            write_held_out_plot(run)
    return lines
