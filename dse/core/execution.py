"""The `execution` config section: where and how many evaluations run at once. Plain data; the
problem reads `device`, `threads`, `batch_size` and `memory_format`, the run reads the rest."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dse.core.section import Section

#: where a field moved in this release: old key path -> new one (a config using the old one is told)
MOVED = {("experiment", "threads"): "execution.threads", ("data", "batch_size"): "execution.batch_size"}


class ExecutionSection(Section):
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N (auto: CUDA where available)")
    workers: int = Field(1, ge=1, description="evaluations running at once, each in its own process")
    backend: Literal["local", "ray"] = Field("local", description="local: worker processes; ray: Ray actors")
    address: str | None = Field(
        None, description="Ray cluster to join (auto, ray://host:port); null: start a local Ray"
    )
    threads: int | None = Field(None, ge=1, description="torch threads per worker; null: torch's default")
    batch_size: int | None = Field(None, ge=1, description="evaluation batch size; null: tuned")
    memory_format: Literal["contiguous", "channels_last"] | None = Field(
        None, description="of the model and inputs; null: tuned"
    )

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", v):
            raise ValueError(f"{v!r} is not a device: use auto, cpu, cuda or cuda:N")
        return v

    @model_validator(mode="after")
    def _address(self) -> ExecutionSection:
        if self.address is not None and self.backend != "ray":
            raise ValueError("address joins a Ray cluster: set backend: ray as well")
        return self


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """A saved config of an earlier release with its moved fields in their new places (a copy)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for (section, key), new in MOVED.items():
        if isinstance(out.get(section), dict) and key in out[section]:
            new_section, new_key = new.split(".")
            value = out[section].pop(key)
            target = out.setdefault(new_section, {}) or {}
            out[new_section] = {**target, new_key: target.get(new_key, value)}
    return out


def moved_fields(raw: Any) -> str | None:
    """A one-line message naming a field of an older config that moved, or None."""
    if not isinstance(raw, dict):
        return None
    for (section, key), new in MOVED.items():
        if isinstance(raw.get(section), dict) and key in raw[section]:
            return f"{section}.{key}: moved to {new}"
    return None
