"""THE mpq.json: one layout for every writer (`dse pick`, bisection, `dse finetune`, `dse export`).

Samsung ONE's mixed-precision layout (`default_quantization_dtype`, `default_granularity`,
`layers: [{name, dtype, granularity}]`) so that a compiler reading that format finds its fields, with
ours added: per quantizer its bits, format, scale / amax and axis (the problem fills those in,
`Problem.describe_quantizers`), the model and checkpoint the scales belong to, the searched variables'
values and where the configuration came from. What only one writer knows goes under its own key
(`pick`, `bisection`, `finetune`, `export`). `docs/mpq.schema.json` is the schema; the tests validate
every written file against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dse.core.files import write_json
from dse.core.problem import Problem

MPQ_NAME = "mpq.json"
MPQ_FORMAT = "dse-mpq/2"
WRITERS = ("pick", "bisection", "finetune", "export")


def mpq_document(
    problem: Problem,
    values: Mapping[str, int],
    source: Mapping[str, Any],
    writer: str,
    details: Mapping[str, Any] | None = None,
    checkpoint: Path | None = None,
) -> dict[str, Any]:
    """The mpq.json content for one configuration. `source`: run_dir, experiment, algorithm, seed,
    eval_id (None where the configuration is not one evaluation); `details`: the writer's own record;
    `checkpoint`: fine-tuned weights (their quantizers are described, not the run's)."""
    if writer not in WRITERS:
        raise ValueError(f"unknown mpq.json writer {writer!r}; known: {', '.join(WRITERS)}")
    described = problem.describe_quantizers(values, checkpoint)
    return {
        "format": MPQ_FORMAT,
        "default_quantization_dtype": described["default_quantization_dtype"],
        "default_granularity": described["default_granularity"],
        "layers": described["layers"],
        "model": described["model"],
        "checkpoint": described["checkpoint"],
        "bits": {k: int(v) for k, v in values.items()},
        "source": dict(source),
        writer: dict(details or {}),
    }


def write_mpq(path: Path, document: Mapping[str, Any]) -> Path:
    """Write atomically (a reader never sees half a file)."""
    write_json(Path(path), dict(document))
    return Path(path)
