"""`ValueSample`: a seeded uniform sample of the values of every tensor shown to it.

Why: formats that fit themselves to activations (fixed point's fraction length, LQ's basis) must
not cost more the more calibration data there is. Each value gets a random key from a seeded
generator and the `size` smallest keys stay (a bottom-k reservoir), so the sample is uniform over
all batches, the same for the same data, and bounded; `size` None keeps every value (weights).
"""

from __future__ import annotations

import torch
from torch import Tensor


class ValueSample:
    def __init__(self, size: int | None, seed: int = 0) -> None:
        self.size = size
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self._gen = torch.Generator().manual_seed(self.seed)
        self.values = torch.zeros(0)
        self._keys = torch.zeros(0)

    def add(self, v: Tensor) -> None:
        """Show it a flat float tensor; the first one seen says on which device the sample lives."""
        if self.values.device != v.device:
            self.values, self._keys = self.values.to(v.device), self._keys.to(v.device)
        values = torch.cat([self.values, v])
        if self.size is None:
            self.values = values
            return
        keys = torch.cat([self._keys, torch.rand(v.numel(), generator=self._gen).to(v.device)])
        if len(keys) > self.size:
            keys, idx = torch.topk(keys, self.size, largest=False, sorted=False)
            values = values[idx]
        self._keys, self.values = keys, values
