"""Fine-tuned configurations of a run, read back from `RUN_DIR/finetune/<eval_id>/finetune.json`.

`dse finetune` writes one folder per configuration; the post-training front (`pareto_finetuned.png`,
the report) is derived from those files alone, beside the run's post-training-quantization front.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.core.errors import DseError
from dse.results.rundata import RunData, read_json

FINETUNE_DIR = "finetune"
FINETUNE_JSON = "finetune.json"
FINETUNED_PLOT = "pareto_finetuned.png"


def finetune_dir(run_dir: Path, key: str) -> Path:
    """RUN_DIR/finetune/<key>: key an eval_id, or a reference's label (`dse.results.pick.point_key`)."""
    return Path(run_dir) / FINETUNE_DIR / key


@dataclass(frozen=True)
class Finetuned:
    """One fine-tuned configuration: its size and validation accuracy before (PTQ) and after (QAT)."""

    key: str
    size: float
    before: float
    after: float


def load_finetuned(run: RunData) -> list[Finetuned]:
    """Every finetune.json of the run, by size (none: empty)."""
    root = run.run_dir / FINETUNE_DIR
    out = []
    for path in sorted(root.glob(f"*/{FINETUNE_JSON}")) if root.is_dir() else []:
        data: Any = read_json(path)
        try:
            out.append(
                Finetuned(
                    str(data["key"]),
                    float(data["weight_bits"]),
                    float(data["before"]["val_accuracy"]),
                    float(data["after"]["val_accuracy"]),
                )
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DseError(f"{path}: corrupt ({e!r})") from None
    return sorted(out, key=lambda f: (f.size, f.key))


def front_of(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated (size min, accuracy max) points, by size."""
    best, out = float("-inf"), []
    for size, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            out.append((size, acc))
            best = acc
    return out
