"""dse: design-space exploration of per-layer bit widths (problem-agnostic framework; never imports torch)."""

__version__ = "0.1.0"
