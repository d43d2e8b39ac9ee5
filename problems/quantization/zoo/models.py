"""Model registry, `build_model` and `load_checkpoint`.

Registered models (all with separate `nn.ReLU` modules, one per activation, so that activation
quantizers can hook module outputs):

- `resnet8`, `resnet20`, `resnet32`: CIFAR-style ResNets (see `resnet.py`); options `in_channels`,
  `width`, `num_classes`.
- `cnn1d`: a small 1-D CNN for MNIST-1D, input (N, C, L); options `channels`, `in_channels`,
  `num_classes`, `input_shape` (its last entry is L, default 40).
- `mlp`: flatten + fully connected layers; options `hidden` (list of sizes), `in_features` (or
  `input_shape`), `num_classes`.

`build_model` fills `in_channels`, `num_classes` and `input_shape` from the data for registered models
that accept them (unless the options give them). A user model is named `package.module:factory`; its
factory gets exactly `**options` and must return an `nn.Module`.
"""

from __future__ import annotations

import inspect
import math
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dse.core.errors import DseError
from dse.core.registry import Registry, import_object
from problems.quantization.zoo import resnet

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
MODELS.register("resnet8", resnet.resnet8)
MODELS.register("resnet20", resnet.resnet20)
MODELS.register("resnet32", resnet.resnet32)


class CNN1d(nn.Module):
    """conv5 -> conv3/2 -> conv3/2 (each + BN + ReLU) -> flatten -> fc. Keeps position information,
    which MNIST-1D needs (global pooling loses accuracy there)."""

    def __init__(self, *, in_channels: int = 1, length: int = 40, channels: int = 32, num_classes: int = 10):
        super().__init__()
        if min(in_channels, length, channels, num_classes) < 1:
            raise ValueError(
                f"in_channels, length, channels and num_classes must be >= 1 "
                f"(got {in_channels}, {length}, {channels}, {num_classes})"
            )
        c2 = 2 * channels
        self.conv1 = nn.Conv1d(in_channels, channels, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm1d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(channels, c2, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(c2)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv1d(c2, c2, 3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm1d(c2)
        self.relu3 = nn.ReLU()
        out_len = (length + 1) // 2
        out_len = (out_len + 1) // 2
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c2 * out_len, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        return self.fc(self.flatten(x))


@MODELS.register("cnn1d")
def cnn1d(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    channels: int = 32,
    input_shape: Sequence[int] | None = None,
) -> CNN1d:
    length = int(input_shape[-1]) if input_shape else 40
    return CNN1d(in_channels=in_channels, length=length, channels=channels, num_classes=num_classes)


class MLP(nn.Sequential):
    """flatten -> (fcI -> reluI) for each hidden size -> fc."""

    def __init__(self, in_features: int, hidden: Sequence[int], num_classes: int) -> None:
        if in_features < 1 or num_classes < 1 or any(h < 1 for h in hidden):
            raise ValueError(
                f"in_features, hidden sizes and num_classes must be >= 1 "
                f"(got {in_features}, {list(hidden)}, {num_classes})"
            )
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        prev = in_features
        for i, h in enumerate(hidden, start=1):
            layers[f"fc{i}"] = nn.Linear(prev, h)
            layers[f"relu{i}"] = nn.ReLU()
            prev = h
        layers["fc"] = nn.Linear(prev, num_classes)
        super().__init__(layers)


@MODELS.register("mlp")
def mlp(
    *,
    hidden: Sequence[int] = (256, 128),
    in_features: int | None = None,
    num_classes: int = 10,
    input_shape: Sequence[int] | None = None,
) -> MLP:
    if in_features is None:
        if not input_shape:
            raise ValueError("mlp needs in_features (or the data's input_shape)")
        in_features = math.prod(int(s) for s in input_shape)
    return MLP(int(in_features), [int(h) for h in hidden], num_classes)


_FILLED = ("in_channels", "num_classes", "input_shape")


def is_import_path(name: str) -> bool:
    return ":" in name or "." in name


def build_model(
    name: str,
    options: Mapping[str, Any] | None,
    *,
    in_channels: int,
    num_classes: int,
    input_shape: Sequence[int] | None = None,
) -> nn.Module:
    """Build registered model `name` (or the user factory 'package.module:factory') with `options`."""
    kwargs = dict(options or {})
    if name in MODELS:
        factory = MODELS.get(name)
        params = inspect.signature(factory).parameters
        filled = {"in_channels": in_channels, "num_classes": num_classes, "input_shape": input_shape}
        for key in _FILLED:
            if key in params and key not in kwargs and filled[key] is not None:
                kwargs[key] = tuple(filled[key]) if key == "input_shape" else filled[key]
    elif is_import_path(name):
        try:
            factory = import_object(name)
        except ImportError as e:
            raise DseError(f"model.name: {e}") from None
        if not callable(factory):
            raise DseError(f"model.name: {name!r} is not callable")
    else:
        raise DseError(
            f"model.name: unknown model {name!r}; known: {', '.join(MODELS.names())} "
            f"(or a user factory 'package.module:factory')"
        )

    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as e:
        raise DseError(f"model.options: {name}: {e}") from None
    except ValueError:  # no signature available (builtins, some C extensions): just call it
        pass
    try:
        model = factory(**kwargs)
    except (TypeError, ValueError) as e:
        raise DseError(f"model.options: {name}: {_one_line(e)}") from None
    if not isinstance(model, nn.Module):
        raise DseError(f"model.name: {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _one_line(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()  # torch colours some messages
    return text[0] if text else type(e).__name__


def _extract_state_dict(obj: Any, path: Path) -> dict[str, Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise DseError(
            f"model.checkpoint: {path} is not a state_dict (a dict of tensors, optionally under "
            f"'state_dict' or 'model')"
        )
    sd = {str(k): v for k, v in obj.items()}
    if sd and all(k.startswith("module.") for k in sd):  # saved from DataParallel / DDP
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def check_state_dict(model: nn.Module, sd: Mapping[str, Tensor], source: str) -> None:
    """Raise DseError naming the first tensor of `sd` that does not fit `model`."""
    expected = model.state_dict()
    for key, want in expected.items():
        if key not in sd:
            if key.endswith("num_batches_tracked"):  # a BN counter some exporters drop; harmless
                continue
            raise DseError(f"model.checkpoint: {source} does not fit the model: missing tensor {key!r}")
        got = sd[key]
        if tuple(got.shape) != tuple(want.shape):
            raise DseError(
                f"model.checkpoint: {source} does not fit the model: tensor {key!r} has shape "
                f"{tuple(got.shape)} in the checkpoint, {tuple(want.shape)} in the model"
            )
    for key in sd:
        if key not in expected:
            raise DseError(f"model.checkpoint: {source} does not fit the model: unexpected tensor {key!r}")


_TORCH_MAGIC = (
    b"PK\x03\x04",  # torch.save's zip format
    b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19",  # legacy format: pickled magic number
)


def _looks_like_torch_file(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(max(map(len, _TORCH_MAGIC)))
    return head.startswith(_TORCH_MAGIC)


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a state_dict file into `model` in place (also returned). Errors name the first bad tensor."""
    path = Path(path)
    if not path.is_file():
        raise DseError(f"model.checkpoint: {path} not found")
    # text, random bytes, a plain pickle: torch would advise retrying with weights_only=False (unsafe)
    if not _looks_like_torch_file(path):
        raise DseError(f"model.checkpoint: {path}: not a PyTorch state_dict file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, or pickles non-tensor objects
        why = _one_line(e)
        if "weights_only" in str(e):  # never relay torch's "retry with weights_only=False"
            why = "it pickles objects other than tensors (save the model's state_dict() instead)"
        raise DseError(f"model.checkpoint: {path} could not be read: {why}") from None
    sd = _extract_state_dict(obj, path)
    check_state_dict(model, sd, str(path))
    model.load_state_dict(sd, strict=False)
    return model
