"""The size evaluations-to-target counts to: fixed in the compare config, given on the command line,
or by default the best size any compared run found, loosened a little.

A fixed target makes evaluations-to-target comparable across comparisons (adding a run does not
move it); a `fraction` of one of the problem's size baselines (summary.json `sizes`, e.g. the
all-8-bit size) is read from the run folders alone, like every number of a comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

from dse.core.config import TargetSection
from dse.core.errors import DseError
from dse.indicators.quality import default_target
from dse.results.rundata import RunData

Target = float | TargetSection | None


def resolve_target(
    runs: Sequence[RunData], size: str, bests: Sequence[float], target: Target, factor: float = 1.05
) -> tuple[str, float, str]:
    """(metric, value, rule): evaluations-to-target counts up to the first feasible metric <= value."""
    if target is None:
        return size, default_target(list(bests), factor), f"best {size} any run found x {factor:g}"
    if not isinstance(target, TargetSection):
        return size, float(target), f"given: {size} <= {float(target):g}"
    objectives = runs[0].objectives
    senses = dict(zip(objectives.names, objectives.senses, strict=True))
    metric = target.metric or size
    if senses.get(metric) != "min":
        minimised = ", ".join(n for n, s in senses.items() if s == "min")
        raise DseError(f"compare.target.metric: {metric!r} is not a minimised objective ({minimised})")
    if target.value is not None:
        return metric, float(target.value), f"given: {metric} <= {target.value:g}"
    baselines = runs[0].summary.get("sizes", {}).get(metric, {}).get("baselines", {})
    if target.of not in baselines:
        known = ", ".join(baselines) or "none"
        raise DseError(f"compare.target.of: {metric} has no size baseline {target.of!r} (known: {known})")
    value = float(target.fraction) * float(baselines[target.of])  # type: ignore[arg-type]
    return metric, value, f"given: {metric} <= {target.fraction:g} x the {target.of} size ({value:g})"
