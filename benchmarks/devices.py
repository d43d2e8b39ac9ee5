"""Evaluation cost on every device this machine has, side by side in one process.

    python -m benchmarks.devices experiments/resnet.yaml [--candidates 10] [--json out.json]

For each device (the CPU, and each CUDA device where there is one) the problem is built there and
`Problem.benchmark` times the float forward (default and tuned settings), one candidate evaluation
and one rejected early, on the same random candidates. Ratios between devices are only meaningful
within one run of this script.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from dse.core.config import load_config
from dse.core.objectives import Constraint
from problems.quantization.problem import LayerwiseQuantizationProblem


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--candidates", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    devices = ["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    out: dict[str, dict[str, float | str]] = {}
    for device in devices:
        cfg = load_config(args.config, sets=[f"execution.device={device}"])
        problem = LayerwiseQuantizationProblem.from_config(cfg, progress=True)
        rng = np.random.default_rng(0)
        candidates = [
            {v.name: int(rng.choice(v.choices)) for v in problem.variables} for _ in range(args.candidates)
        ]
        limits = Constraint.of(cfg.constraints, problem).reject_limits(problem, True)
        out[device] = problem.benchmark(candidates, args.repeats, reject_worse_than=limits)
        if device.startswith("cuda"):
            out[device]["gpu"] = torch.cuda.get_device_name(device)
    keys = list(dict.fromkeys(k for r in out.values() for k in r))
    print(f"{'':34}" + "".join(f"{d:>14}" for d in out))
    for k in keys:
        cells = (out[d].get(k, "") for d in out)
        print(
            f"{k:34}"
            + "".join(f"{c:>14.6g}" if isinstance(c, float) else f"{str(c)[:13]:>14}" for c in cells)
        )
    if len(out) > 1:
        cpu = out["cpu"]["evaluation_s"]
        for d in list(out)[1:]:
            print(f"evaluation on {d} / on cpu = {float(out[d]['evaluation_s']) / float(cpu):.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
