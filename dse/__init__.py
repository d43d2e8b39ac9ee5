"""dse: design-space exploration of per-layer bit widths (problem-agnostic framework; never imports torch)."""

__version__ = "0.1.0"


def __getattr__(name: str):  # `import dse; dse.api.run(...)` without importing pandas/pymoo up front
    if name == "api":
        import importlib

        return importlib.import_module("dse.api")
    raise AttributeError(f"module 'dse' has no attribute {name!r}")
