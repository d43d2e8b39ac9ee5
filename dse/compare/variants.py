"""`compare.variants`: one comparison repeated on variants of a problem, measured together.

Why: "which number format?" (or calibrator, or fold_bn) is answered by the fronts each variant
reaches under the same search, on one plot and one table. Each variant is its own problem (built
once, its runs in `variants/<name>/`, with a comparison of their own); the runs of all variants are
then compared in the compare folder itself, where each run is labelled by its variant (and its
algorithm where several are compared). Only the fingerprint sections the variants change may differ:
objectives, constraint and normalisation must agree, or the comparison is refused naming the field.
A variant whose problem refuses to run (a constraint it cannot meet) is skipped with its reason.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

from dse.compare.runs import CompareResult, compare_runs, resolve_algorithms, run_config
from dse.core.config import ExperimentConfig, apply_overrides, folder_name, parse_config
from dse.core.errors import ConfigError, DseError

#: what every variant shares: what is measured and how the runs are made
SHARED = ("objectives", "constraints", "algorithm", "compare", "experiment", "output")


def variant_configs(cfg: ExperimentConfig) -> dict[str, ExperimentConfig]:
    """Per variant: the config with its changes applied and its algorithms relabelled `variant` (one
    algorithm) or `variant-algorithm`; a bad change is reported as `compare.variants.NAME.KEY`."""
    algorithms = resolve_algorithms(cfg.compare.algorithms, cfg.compare.aliases)
    raw = cfg.model_dump(mode="json", exclude_none=True)
    out = {}
    for name, changes in cfg.compare.variants.items():
        fixed = [k for k in changes if k.split(".")[0] in SHARED]
        if fixed:
            raise ConfigError(
                f"compare.variants.{name}.{fixed[0]}: variants change the problem; "
                f"{', '.join(SHARED)} are shared by every variant"
            )
        if folder_name(name) != name:
            raise ConfigError(f"compare.variants.{name}: use letters, digits, '-' and '_' in a variant name")
        raw_i = copy.deepcopy(raw)
        where = f"compare.variants.{name}"
        apply_overrides(raw_i, [(k, v, f"{where}.{k}={v}") for k, v in changes.items()])
        labels = {(name if len(algorithms) == 1 else f"{name}-{a}"): a for a in algorithms}
        options = cfg.compare.options
        raw_i["compare"].update(
            variants={},
            algorithms=list(labels),
            aliases={label: cfg.compare.aliases.get(a, a) for label, a in labels.items()},
            options={label: options[a] for label, a in labels.items() if a in options},
        )
        out[name] = parse_config(raw_i, where)
    return out


def run_variants(
    cfg: ExperimentConfig,
    out_dir: Path,
    *,
    fresh: bool = False,
    progress: bool = True,
    target: float | None = None,
    log: Callable[[str], None] | None = None,
) -> CompareResult:
    """Every variant's comparison (its own problem), then all their runs compared in `out_dir`."""
    configs = variant_configs(cfg)  # every variant checked before the first one runs
    runs, skipped = [], []
    for name, cfg_i in configs.items():
        if log:
            log(f"variant {name}")
        try:
            result = run_config(cfg_i, out_dir / "variants" / name, fresh=fresh, progress=progress, log=log)
        except DseError as e:  # e.g. a format that cannot meet the constraint: the others still run
            skipped.append({"algorithm": name, "seed": "all", "reason": str(e)})
            if log:
                log(f"skipped variant {name}: {e}")
            continue
        runs += result.comparison.runs
        skipped += result.skipped
    if not runs:
        raise DseError(f"no variant finished a run: {skipped[0]['reason']}" if skipped else "no variant ran")
    changed = {k.split(".")[0] for changes in cfg.compare.variants.values() for k in changes}
    target_spec = cfg.compare.target if target is None else target
    return compare_runs(
        runs,  # each variant's comparison has read its runs already
        out_dir,
        target=target_spec,
        skipped=skipped,
        config_text=cfg.to_yaml(),
        may_differ=sorted(changed | {"variables"}),
    )
