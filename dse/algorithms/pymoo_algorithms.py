"""More pymoo MOEAs by name, each a thin `PymooMOEA` subclass: pymoo does the work.

Options in `algorithm.options` go to the pymoo constructor as they are; the few that need the
objectives first (reference directions, reference points) are turned into pymoo's form here.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np
from pymoo.util.ref_dirs import get_reference_directions

from dse.algorithms.base import SearchContext
from dse.algorithms.pymoo_moea import PymooMOEA
from dse.core.errors import ConfigError
from dse.core.registry import ALGORITHMS


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def partitions_for(pop_size: int, n_obj: int) -> int:
    """Largest Das-Dennis partition count whose number of directions still fits in `pop_size`."""
    p = 1
    while math.comb(p + 1 + n_obj - 1, n_obj - 1) <= pop_size:
        p += 1
    return p


class _RefDirsMOEA(PymooMOEA):
    """Algorithms steered by reference directions: Das-Dennis with `n_partitions` (default: as many
    directions as fit in pop_size), or explicit `ref_dirs` (rows summing to 1)."""

    own_options = ("n_partitions", "ref_dirs")

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        p = self.options.get("n_partitions")
        if p is not None and (not _is_int(p) or p < 1):
            raise ConfigError(f"algorithm.options.n_partitions: must be an integer >= 1, got {p!r}")

    def ref_dirs(self, ctx: SearchContext, pop_size: int, n_obj: int) -> np.ndarray:
        if "ref_dirs" in self.options:
            dirs = np.asarray(self.options["ref_dirs"], dtype=float)
            if dirs.ndim != 2 or dirs.shape[1] != n_obj:
                raise ConfigError(
                    f"algorithm.options.ref_dirs: needs rows of {n_obj} values (one per objective)"
                )
            return dirs
        p = self.options.get("n_partitions") or partitions_for(pop_size, n_obj)
        dirs = get_reference_directions("das-dennis", n_obj, n_partitions=p)
        ctx.log(f"{self.cls.__name__}: {len(dirs)} Das-Dennis reference directions (n_partitions={p})")
        return dirs


@ALGORITHMS.register("nsga3")
class NSGA3(_RefDirsMOEA):
    """NSGA-III; pop_size is raised to the number of reference directions where it is smaller."""

    pymoo_class = "pymoo.algorithms.moo.nsga3:NSGA3"

    def adjust(self, kwargs: dict[str, Any], ctx: SearchContext, n_obj: int) -> dict[str, Any]:
        kwargs["ref_dirs"] = self.ref_dirs(ctx, kwargs["pop_size"], n_obj)
        kwargs["pop_size"] = max(kwargs["pop_size"], len(kwargs["ref_dirs"]))
        return kwargs


@ALGORITHMS.register("moead")
class MOEAD(_RefDirsMOEA):
    """MOEA/D; its population is one member per reference direction. pymoo's MOEA/D handles no
    constraints, so a constrained experiment is refused rather than silently unconstrained."""

    pymoo_class = "pymoo.algorithms.moo.moead:MOEAD"

    def adjust(self, kwargs: dict[str, Any], ctx: SearchContext, n_obj: int) -> dict[str, Any]:
        if ctx.constraint.threshold is not None:
            raise ConfigError("constraints: moead (pymoo) supports no constraints; remove them or use nsga2")
        pop_size = kwargs.pop("pop_size", ctx.pop_size)
        kwargs.pop("eliminate_duplicates", None)  # MOEA/D sets its own
        kwargs["ref_dirs"] = self.ref_dirs(ctx, pop_size, n_obj)
        kwargs.setdefault("n_neighbors", min(20, len(kwargs["ref_dirs"])))
        return kwargs


@ALGORITHMS.register("rnsga2")
class RNSGA2(PymooMOEA):
    """R-NSGA-II, drawn towards `ref_points` given in the objectives' own units, e.g. [[99.0, 200000]]
    for (accuracy, weight_bits).

    pymoo compares reference points with the minimised objectives, so maximised ones are negated
    here; it normalises distances itself (by the current front's ideal and nadir points with the
    default normalization="front"), so the points are not scaled.
    """

    pymoo_class = "pymoo.algorithms.moo.rnsga2:RNSGA2"
    own_options = ("ref_points",)

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        pts = self.options.get("ref_points")
        ok = (
            isinstance(pts, list)
            and pts
            and all(isinstance(r, list) and r and len(r) == len(pts[0]) for r in pts)
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for r in pts for x in r)
        )
        if not ok:
            raise ConfigError(
                "algorithm.options.ref_points: rnsga2 needs a list of points in the objectives' units, "
                "e.g. [[99.0, 200000]] for (accuracy, weight_bits)"
            )

    def adjust(self, kwargs: dict[str, Any], ctx: SearchContext, n_obj: int) -> dict[str, Any]:
        pts = np.asarray(self.options["ref_points"], dtype=float)
        if pts.shape[1] != n_obj:
            raise ConfigError(
                f"algorithm.options.ref_points: each point needs {n_obj} values, one per objective "
                f"({', '.join(ctx.objectives.names)})"
            )
        kwargs["ref_points"] = pts * ctx.objectives.signs
        return kwargs


@ALGORITHMS.register("smsemoa")
class SMSEMOA(PymooMOEA):
    """SMS-EMOA: survival by hypervolume contribution."""

    pymoo_class = "pymoo.algorithms.moo.sms:SMSEMOA"


@ALGORITHMS.register("spea2")
class SPEA2(PymooMOEA):
    pymoo_class = "pymoo.algorithms.moo.spea2:SPEA2"


class _NumbaMOEA(PymooMOEA):
    """pymoo compiles these with numba (a dependency of dse, installed by scripts/setup.sh). Where it
    is missing, the algorithm is refused on construction: before any problem is built or trained."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        if importlib.util.find_spec("numba") is None:
            name = type(self).__name__.lower()
            raise ConfigError(
                f"algorithm.name: {name} needs numba (pymoo compiles it with numba), which is not installed: "
                "run `pip install numba` (scripts/setup.sh installs it)"
            )
        super().__init__(options)


@ALGORITHMS.register("agemoea")
class AGEMOEA(_NumbaMOEA):
    """AGE-MOEA."""

    pymoo_class = "pymoo.algorithms.moo.age:AGEMOEA"


@ALGORITHMS.register("agemoea2")
class AGEMOEA2(_NumbaMOEA):
    """AGE-MOEA-II."""

    pymoo_class = "pymoo.algorithms.moo.age2:AGEMOEA2"
