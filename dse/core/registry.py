"""Name -> object registries whose entries may be import paths, resolved on first use.

Lazy entries keep `import dse` free of torch: the quantization problem registers itself by path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def import_object(path: str) -> Any:
    """Resolve 'package.module:attr' (or 'package.module.attr')."""
    module, sep, attr = path.partition(":")
    if not sep:
        module, _, attr = path.rpartition(".")
    if not module or not attr:
        raise ImportError(f"{path!r} is not an import path of the form 'package.module:name'")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"cannot import {module!r} (from {path!r}): {e}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"{module!r} has no attribute {part!r} (from {path!r})") from None
    return obj


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, obj: T | str | None = None) -> Callable[[T], T] | None:
        """Register `obj` (or an import path to it) under `name`; usable as a decorator."""
        if obj is not None:
            self._entries[name] = obj
            return None

        def deco(o: T) -> T:
            self._entries[name] = o
            return o

        return deco

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The entry registered as `name`, or, for a 'package.module:attr' path, the object there
        (imported on each call, not registered: out-of-tree code needs no registration)."""
        if name not in self._entries and ":" in name:
            try:
                return import_object(name)  # type: ignore[no-any-return]
            except Exception as e:  # noqa: BLE001 - whatever the module raises on import: one line
                why = (str(e) if isinstance(e, ImportError) else f"{type(e).__name__}: {e}").strip()
                why = why.splitlines()[0] if why else "import failed"
                raise KeyError(f"{self.kind} {name!r}: {why}") from None
        if name not in self._entries:
            raise KeyError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())} "
                "(or an import path 'package.module:Name')"
            )
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = import_object(entry)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]


class ProblemRegistry(Registry[str]):
    """Problems register a pair of import paths: their config class and their problem class."""

    def config_class(self, name: str) -> Any:
        return self._resolve(name, 0)

    def problem_class(self, name: str) -> Any:
        return self._resolve(name, 1)

    def _resolve(self, name: str, i: int) -> Any:
        if name not in self._entries:
            raise KeyError(f"unknown problem {name!r}; known: {', '.join(self.names())}")
        return import_object(self._entries[name][i])  # type: ignore[index]


PROBLEMS = ProblemRegistry("problem")
PROBLEMS.register(
    "layerwise_quantization",
    (  # type: ignore[arg-type]
        "problems.quantization.config:QuantizationConfig",
        "problems.quantization.problem:LayerwiseQuantizationProblem",
    ),
)
PROBLEMS.register(
    "layerwise_pruning",
    (  # type: ignore[arg-type]
        "problems.pruning.config:PruningConfig",
        "problems.pruning.problem:LayerwisePruningProblem",
    ),
)

ALGORITHMS: Registry[Any] = Registry("algorithm")
