"""The tiny quantization experiment `dse bench` is tested on (with and without workers)."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_bench_config(folder: Path) -> Path:
    """exp.yaml in `folder`: a one-epoch MLP on 8x8 digits, one thread, batches of 100."""
    config = folder / "exp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "experiment": {"name": "tiny"},
                "model": {"name": "mlp", "options": {"hidden": [16]}},
                "data": {"name": "digits", "image_size": 8, "calib_samples": 64},
                "execution": {"threads": 1, "batch_size": 100},
                "training": {"epochs": 1},
                "objectives": ["accuracy", "weight_bits"],
                "output": {"root": str(folder / "results"), "plots": False},
            }
        )
    )
    return config
