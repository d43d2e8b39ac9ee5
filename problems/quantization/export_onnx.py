"""`dse export --onnx`: write the configuration's QDQ graph, then check it in ONNX Runtime.

The check is what makes the file trustworthy: ONNX Runtime runs it on the test split and its top-1
predictions are compared with the PyTorch fake-quantized model's (`DeployedModel`, the model
`finetune` measures), sample by sample. The file is written atomically, and only once the graph
passes `onnx.checker`. `onnx` and `onnxruntime` are the optional extra `dse[export]`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dse.core.errors import DseError
from dse.core.files import atomic_write


def export(problem: Any, values: Mapping[str, int], path: Path, checkpoint: Path | None) -> dict[str, Any]:
    """Write `path`; return the agreement record (samples, agreement %, both accuracies, seconds)."""
    try:
        import onnxruntime as ort

        from problems.quantization.onnx_graph import OPSET, build_onnx
    except ImportError as e:
        raise DseError(
            f"export needs onnx and onnxruntime: pip install 'dse[export]' ({e.name} missing)"
        ) from None
    problem.apply(problem.unit_bits(values))
    deployed = problem.deployed(checkpoint)
    splits = problem.engine.splits
    model = build_onnx(deployed, tuple(splits.input_shape), splits.num_classes)
    atomic_write(path, lambda p: p.write_bytes(model.SerializeToString()))
    start = time.perf_counter()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, y = splits.test.x, splits.test.y.cpu()
    ours, theirs = [], []
    bs = 256
    with torch.inference_mode():
        for i in range(0, len(y), bs):
            xb = x[i : i + bs]
            ours.append(deployed(xb).argmax(1).cpu())
            feed = {"input": np.ascontiguousarray(xb.detach().cpu().float().contiguous().numpy())}
            theirs.append(torch.from_numpy(session.run(None, feed)[0]).argmax(1))
    pt, rt = torch.cat(ours), torch.cat(theirs)
    n = len(y)
    return {
        "onnx": str(path),
        "opset": OPSET,
        "split": "test",
        "samples": n,
        "agreement": 100.0 * float((pt == rt).sum()) / n,
        "torch_accuracy": 100.0 * float((pt == y).sum()) / n,
        "onnxruntime_accuracy": 100.0 * float((rt == y).sum()) / n,
        "check_seconds": round(time.perf_counter() - start, 3),
        "int4_tensors": sum(t.data_type in (22, 21) for t in model.graph.initializer),
    }
