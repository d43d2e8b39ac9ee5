"""The `finetune` config section (`dse finetune RUN_DIR`): how a chosen configuration is trained.

Plain data, no torch. Lives beside the quantization problem's config because only that problem can
fine-tune; `--epochs` / `--lr` on the command line override `epochs` / `lr`.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from dse.core.config import Section

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class FinetuneSection(Section):
    """Quantization-aware training: SGD (Nesterov), one warm-up epoch then cosine decay, label smoothing
    0.1, the baseline's augmentation (training.shift); BatchNorm trained unfolded, folded after."""

    epochs: int = Field(20, ge=1)
    lr: float = Field(0.1, gt=0)
    batch_size: int = Field(64, ge=2)
    weight_decay: float = Field(5e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    seed: int | None = Field(
        None, ge=0, description="seeds training (shuffling, augmentation); None: data.seed"
    )
    tuner: str | None = Field(
        None,
        description="'package.module:function' called as function(model, splits, options) instead of the "
        "built-in loop: it trains `model` (fake-quantized forward, straight-through gradients) in place",
    )

    @field_validator("tuner")
    @classmethod
    def _import_path(cls, v: str | None) -> str | None:
        if v is not None and not _IMPORT_PATH.match(v):
            raise ValueError(f"expected 'package.module:function', got {v!r}")
        return v
