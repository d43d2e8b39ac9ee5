"""From a front point to deployment: the quantization problem's optional contract hooks (mpq.json,
`dse finetune`, `dse export`), kept out of `problem.py` as a mixin that delegates to one module each.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dse.core.errors import DseError
from problems.quantization.backends import require_native
from problems.quantization.config import QuantizationConfig
from problems.quantization.deployed import DeployedModel
from problems.quantization.export_onnx import export
from problems.quantization.finetune import finetune, trained_model
from problems.quantization.mpq import describe
from problems.quantization.zoo.training import baseline_key, baseline_path


def baseline_file(cfg: QuantizationConfig) -> Path:
    """The float weights a run's problem is built on: `model.checkpoint`, else the cached baseline."""
    if cfg.model.checkpoint is not None:
        return Path(cfg.model.checkpoint)
    key, _ = baseline_key(cfg.model, cfg.data, cfg.training, cfg.data.seed)
    return baseline_path(cfg.output.root / ".cache", key)


class DeploymentHooks:
    """`Problem.check_rebuild`, `describe_quantizers`, `finetune` and `export_onnx` for
    `LayerwiseQuantizationProblem` (which lists this class first among its bases)."""

    @classmethod
    def check_rebuild(cls, cfg: QuantizationConfig) -> None:
        """Rebuilding must not train a new baseline: the run's checkpoint or cached one must be there."""
        path = baseline_file(cfg)
        if not path.is_file():
            field = "model.checkpoint" if cfg.model.checkpoint is not None else "the run's cached baseline"
            raise DseError(
                f"{field}: {path} is gone; the run's quantizers were calibrated on it (restore it, or rerun)"
            )

    def describe_quantizers(
        self, values: Mapping[str, int], checkpoint: Path | None = None
    ) -> dict[str, Any]:
        require_native(self.qmodel, "mpq.json")  # type: ignore[attr-defined]
        cfg: QuantizationConfig = self.cfg  # type: ignore[attr-defined]
        weights = Path(checkpoint) if checkpoint is not None else baseline_file(cfg)
        q = cfg.quantization
        # the bits and formats of `values` first: `deployed` copies the weight quantizers as they are
        self.apply(self.unit_bits(values))  # type: ignore[attr-defined]
        per_channel = q.weights.per_channel and q.format == "affine"
        return {
            "default_quantization_dtype": f"int{q.weight_bits}",
            "default_granularity": "channel" if per_channel else "layer",
            "layers": describe(self, values, self.deployed(checkpoint)),  # type: ignore[arg-type]
            "model": {
                "name": cfg.model.name,
                "options": cfg.model.options,
                "folded_batchnorms": [list(p) for p in self.qmodel.folded],  # type: ignore[attr-defined]
            },
            "checkpoint": str(weights),
        }

    def deployed(self, checkpoint: Path | None = None) -> Any:
        """The `DeployedModel` of the run's float weights, or of a fine-tuned `checkpoint`."""
        model = self.float_model  # type: ignore[attr-defined]
        if checkpoint is not None:
            model = trained_model(self, load_state(Path(checkpoint)))  # type: ignore[arg-type]
        return DeployedModel(model, self.qmodel)  # type: ignore[attr-defined]

    def finetune(
        self, values: Mapping[str, int], out_dir: Path, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        require_native(self.qmodel, "dse finetune")  # type: ignore[attr-defined]
        return finetune(self, values, out_dir, options)  # type: ignore[arg-type]

    def export_onnx(
        self, values: Mapping[str, int], path: Path, checkpoint: Path | None = None
    ) -> dict[str, Any]:
        require_native(self.qmodel, "dse export")  # type: ignore[attr-defined]
        return export(self, values, Path(path), checkpoint)  # type: ignore[arg-type]


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """A fine-tuned model.pt (a state dict, read with weights_only=True); one line where it is not."""
    if not path.is_file():
        raise DseError(f"{path}: not found (run `dse finetune` first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: name it
        raise DseError(f"{path}: not a readable state dict ({str(e).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise DseError(f"{path}: not a state dict")
    return state
