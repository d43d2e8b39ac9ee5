"""Config sections of the layer-wise quantization problem (plain data: no torch here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dse.core.config import ExperimentConfig, Section
from dse.core.config import SearchSpaceSection as BaseSearchSpaceSection
from problems.quantization.finetune_config import FinetuneSection


def check_regex(rx: str | None, where: str = "") -> str | None:
    """`rx` unchanged where it compiles; a ValueError naming it (pydantic's field error) where not."""
    if rx is not None:
        try:
            re.compile(rx)
        except re.error as e:
            raise ValueError(f"{where}invalid regex {rx!r}: {e}") from None
    return rx


class ModelSection(Section):
    name: str = Field("resnet20", description="registered model name, or 'package.module:factory'")
    options: dict[str, Any] = Field(default_factory=dict, description="factory keyword arguments")
    checkpoint: Path | None = Field(None, description="state_dict file; none = train and cache a baseline")


class DataSection(Section):
    name: str = "digits"
    seed: int = Field(0, ge=0, description="seeds the split, baseline training and calibration sampling")
    root: Path | None = Field(None, description="folder of on-disk datasets (cifar10: cifar-10-batches-py)")
    image_size: int = Field(16, ge=4, le=256, description="digits: images are upsampled to this size")
    options: dict[str, Any] = Field(default_factory=dict, description="dataset-specific keyword arguments")
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    calib_samples: int = Field(128, ge=1, description="taken from the training part, disjoint from train")
    min_calib_samples: int = Field(16, ge=1)
    first_batch_size: int = Field(
        64,
        ge=1,
        description="a candidate's validation (and test) batches start at this size and double up to "
        "execution.batch_size: early rejection (constraints.early_reject) can stop after a small first batch",
    )

    @model_validator(mode="after")
    def _fractions(self) -> DataSection:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% for training")
        if self.calib_samples < self.min_calib_samples:
            raise ValueError(
                f"calib_samples={self.calib_samples} is below min_calib_samples={self.min_calib_samples}"
            )
        return self


class TrainingSection(Section):
    """How the float baseline is trained when no checkpoint is given."""

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.1, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    shift: int = Field(1, ge=0, description="augmentation: random translation of training inputs (pixels)")


Calibrator = Literal["max", "percentile", "mse"]
#: number formats (problems/quantization/formats/registry.py; `dse formats CONFIG` compares them)
FormatName = Literal["affine", "fixed_point", "log2", "lq"]


#: `quantization.weights.params`' default: nn.MultiheadAttention's projection weights, which are no
#: module's `weight` (its out_proj is a Linear, quantized as one)
DEFAULT_WEIGHT_PARAMS = r"(^|\.)(in_proj_weight|[qkv]_proj_weight)$"


class WeightQuantSection(Section):
    format: FormatName | None = Field(
        None, description="number format of the weights; none: quantization.format"
    )
    per_channel: bool = True
    calibrator: Calibrator = Field("mse", description="mse clips outliers: much better below 4 bits")
    params: str | None = Field(
        DEFAULT_WEIGHT_PARAMS,
        description="regex on qualified parameter names ('encoder.layers.0.self_attn.in_proj_weight'): "
        "matching parameters get weight quantizers too, named by that name, beside the weights of every "
        "Conv1d/2d, ConvTranspose1d/2d, Linear and Embedding (named by the module); default: "
        "MultiheadAttention's projections; null: those layers only",
    )

    @field_validator("params")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return check_regex(v)


class ActivationQuantSection(Section):
    format: FormatName | None = Field(
        None, description="number format of the activations; none: quantization.format"
    )
    calibrator: Calibrator = "percentile"
    percentile: float = Field(99.99, gt=50, le=100)
    types: list[str] = Field(
        default_factory=lambda: ["ReLU", "Linear"],
        description="module class names whose outputs are quantized",
    )
    names: str | None = Field(
        None, description="regex; modules whose qualified name matches are quantized too"
    )
    input: bool = Field(True, description="quantize the model input")

    @field_validator("names")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return check_regex(v)


class FixedPointSection(Section):
    """`format: fixed_point`: searched bits are word lengths; fraction lengths are searched per layer."""

    biases: bool = Field(
        False,
        description="quantize biases as their own searched variables 'b:<layer>' (the choices and "
        "include/exclude of search_space.weights); false: biases stay float",
    )
    extra_fraction_bits: int = Field(
        6, ge=0, le=31, description="initial word length = integer bits of max|x| + this (greedy's start)"
    )
    samples: int = Field(
        65536, ge=1, description="activation values kept from calibration for the fraction-length search"
    )


class LQSection(Section):
    """`format: lq`: a k-bit codebook per output channel, fitted by alternating least squares."""

    iterations: int = Field(
        20, ge=1, le=1000, description="most fitting rounds (it stops when the error stops falling)"
    )
    samples: int = Field(65536, ge=1, description="activation values kept from calibration for the fit")


class QuantizationSection(Section):
    format: FormatName = Field(
        "affine", description="number format of every quantizer (weights.format, activations.format override)"
    )
    fixed_point: FixedPointSection = Field(default_factory=FixedPointSection)
    lq: LQSection = Field(default_factory=LQSection)
    fold_bn: bool = Field(True, description="fold BatchNorm into the preceding conv before quantizing")
    weights: WeightQuantSection = Field(default_factory=WeightQuantSection)
    activations: ActivationQuantSection = Field(default_factory=ActivationQuantSection)
    weight_bits: int = Field(8, ge=1, le=32, description="bits of weight quantizers that are not searched")
    activation_bits: int = Field(8, ge=1, le=32, description="bits of activation quantizers not searched")
    backend: Literal["native", "modelopt"] = Field(
        "native",
        description="who inserts the quantizers: native, or NVIDIA ModelOpt (`pip install 'dse[modelopt]'`: "
        "mtq.quantize, max calibration, weights per channel, each layer's input per tensor; "
        "activations.types: [] with input: false = weights only)",
    )

    @property
    def weight_format(self) -> str:
        return self.weights.format or self.format

    @property
    def activation_format(self) -> str:
        return self.activations.format or self.format

    def format_settings(self) -> dict[str, dict[str, Any]]:
        """Per format name, its options (the `fixed_point` and `lq` sections)."""
        return {"fixed_point": self.fixed_point.model_dump(), "lq": self.lq.model_dump()}

    @model_validator(mode="after")
    def _fixed_point_only(self) -> QuantizationSection:
        if self.fixed_point.biases and self.weight_format != "fixed_point":
            raise ValueError("fixed_point.biases needs format: fixed_point")
        return self


class BitsSpec(Section):
    """Bit choices of one kind of quantizer: `bounds: [lo, hi]` or an explicit `choices` list."""

    bounds: tuple[int, int] | None = None
    choices: list[int] | None = None
    include: str | None = Field(None, description="regex on layer names; default all")
    exclude: str | None = Field(None, description="regex on layer names to leave at the default bits")

    @model_validator(mode="after")
    def _one_of(self) -> BitsSpec:
        if (self.bounds is None) == (self.choices is None):
            raise ValueError("give exactly one of bounds: [lo, hi] or choices: [...]")
        values = list(self.bounds) if self.bounds is not None else list(self.choices or [])
        if not values:
            raise ValueError("choices is empty")
        bad = [b for b in values if not 1 <= b <= 32]
        if bad:
            raise ValueError(f"bits {bad[0]} outside 1-32")
        if self.bounds is not None and self.bounds[0] > self.bounds[1]:
            raise ValueError(f"bounds lo={self.bounds[0]} > hi={self.bounds[1]}")
        check_regex(self.include)
        check_regex(self.exclude)
        return self

    def values(self) -> list[int]:
        if self.choices is not None:
            return sorted(set(self.choices))
        lo, hi = self.bounds  # type: ignore[misc]
        return list(range(lo, hi + 1))


class SearchSpaceSection(BaseSearchSpaceSection):
    weights: BitsSpec | None = Field(default_factory=lambda: BitsSpec(choices=[2, 3, 4, 5, 6, 8]))
    activations: BitsSpec | None = None
    ties: dict[str, str] = Field(
        default_factory=dict,
        description="variable name -> regex; the searched quantizers it matches share one bit width",
    )
    formats: list[FormatName] | None = Field(
        None,
        description="two or more number formats: each searched weight gets a variable 'f:<layer>' "
        "choosing among them (its value indexes this list), searched with its bits",
    )

    @model_validator(mode="after")
    def _something_searched(self) -> SearchSpaceSection:
        if self.weights is None and self.activations is None:
            raise ValueError("empty search space: search weights, activations or both")
        for name, rx in self.ties.items():
            check_regex(rx, f"ties.{name}: ")
        if self.formats is not None:
            if len(self.formats) < 2 or len(set(self.formats)) != len(self.formats):
                raise ValueError(f"formats: give two or more distinct formats, got {self.formats}")
            if self.weights is None:
                raise ValueError(
                    "formats: a format is chosen per searched weight, but search_space.weights is null"
                )
        return self


class ModelProblemConfig(ExperimentConfig):
    """The sections every problem on a zoo model shares: the model, its data and how its float
    baseline is trained (`problems.quantization.setup.prepare_baseline` reads exactly these)."""

    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    training: TrainingSection = Field(default_factory=TrainingSection)


class QuantizationConfig(ModelProblemConfig):
    quantization: QuantizationSection = Field(default_factory=QuantizationSection)
    search_space: SearchSpaceSection = Field(default_factory=SearchSpaceSection)
    finetune: FinetuneSection = Field(default_factory=FinetuneSection)  # `dse finetune` only

    @model_validator(mode="after")
    def _formats_include_the_weights(self) -> QuantizationConfig:
        formats, own = self.search_space.formats, self.quantization.weight_format
        if formats and own not in formats:
            raise ValueError(
                f"search_space.formats must include the weights' format {own!r} (quantization.format / "
                "weights.format): weights not searched and the uniform references use it"
            )
        return self

    @classmethod
    def known_metrics(cls) -> set[str]:
        return {"accuracy", "total_bits", "weight_bits", "bops", "qerror", "model_bits"}
