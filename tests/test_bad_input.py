"""Every bad input: exit code 2, one line naming the cause, and nothing written (no folder, no file).

One table: each row is a config patch (deep-merged into a toy or a tiny quantization experiment),
extra command-line arguments, and the words the one-line message must contain. Quantization rows
use a checkpoint saved once per session, so none of them trains a model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from dse.cli import main

TOY: dict[str, Any] = {
    "experiment": {"name": "toy", "problem": "toy"},
    "algorithm": {"name": "nsga2", "budget": 20, "pop_size": 8},
    "output": {"root": "{tmp}/results", "plots": False},
}
QUANT: dict[str, Any] = {  # a tiny quantization experiment: mlp on 8x8 digits
    "experiment": {"name": "tiny"},
    "execution": {"threads": 1},
    "model": {"name": "mlp", "options": {"hidden": [16]}, "checkpoint": "{ckpt}/mlp16.pt"},
    "data": {"name": "digits", "image_size": 8, "calib_samples": 64},
    "training": {"epochs": 1},
    "search_space": {"weights": {"bounds": [2, 8]}},
    "objectives": ["accuracy", "weight_bits"],
    "algorithm": {"name": "random", "budget": 10},
    "output": {"root": "{tmp}/results", "plots": False},
}
ODD = "tests.problems.quantization.odd_models"

# (id, base, patch or raw YAML text, extra CLI arguments, words of the message)
CASES: list[tuple[str, str, Any, tuple[str, ...], tuple[str, ...]]] = [
    # -- the file itself
    ("missing-file", "toy", None, ("--config-path", "{tmp}/nope.yaml"), ("nope.yaml", "not found")),
    ("invalid-yaml", "toy", "algorithm: [1, 2\n", (), ("invalid YAML",)),
    ("python-tag", "toy", "experiment: !!python/object/apply:os.getcwd []\n", (), ("invalid YAML",)),
    ("not-a-mapping", "toy", "- a\n- b\n", (), ("top level must be a mapping",)),
    # -- unknown or misspelled keys, at every level
    ("key-top", "toy", {"experimnet": {}}, (), ("experimnet", "unknown key")),
    ("key-section", "toy", {"algorithm": {"nmae": "nsga2"}}, (), ("algorithm.nmae", "unknown key")),
    ("key-problem", "toy", {"toy": {"n_vars": 3}}, (), ("toy.n_vars", "unknown key")),
    ("key-deep", "quant", {"quantization": {"weights": {"per_chanel": False}}}, (), ("per_chanel",)),
    ("key-bits", "quant", {"search_space": {"weights": {"bound": [2, 4]}}}, (), ("weights.bound",)),
    ("key-algorithm-option", "toy", {"algorithm": {"options": {"pop_sizee": 3}}}, (), ("pop_sizee",)),
    ("key-random-option", "toy", {"algorithm": {"name": "random", "options": {"x": 1}}}, (), ("options.x",)),
    (  # options an algorithm can only check against the space, inside its search
        "option-vs-space",
        "toy",
        {"algorithm": {"name": "bisection", "options": {"high": 7}}},
        (),
        ("algorithm.options.high", "7 is not a choice"),
    ),
    (
        "space-too-large",
        "toy",
        {"toy": {"n_var": 7}, "algorithm": {"name": "exhaustive"}},
        (),
        ("max_configurations", "78,125"),
    ),
    # -- wrong types and ranges
    ("type-budget", "toy", {"algorithm": {"budget": "lots"}}, (), ("algorithm.budget", "integer")),
    ("type-objectives", "toy", {"objectives": "accuracy"}, (), ("objectives", "list")),
    ("type-image-size", "quant", {"data": {"image_size": "big"}}, (), ("data.image_size",)),
    ("type-seed", "toy", {"experiment": {"seed": -1}}, (), ("experiment.seed", "greater than")),
    # -- bits and the search space
    ("bits-zero", "quant", {"search_space": {"weights": {"bounds": [0, 8]}}}, (), ("bits 0", "1-32")),
    (
        "bits-33",
        "quant",
        {"search_space": {"weights": {"bounds": None, "choices": [4, 33]}}},
        (),
        ("bits 33", "1-32"),
    ),
    ("bits-lo-hi", "quant", {"search_space": {"weights": {"bounds": [8, 4]}}}, (), ("lo=8 > hi=4",)),
    ("bits-fixed", "quant", {"quantization": {"weight_bits": 40}}, (), ("quantization.weight_bits",)),
    ("space-empty", "quant", {"search_space": {"weights": None}}, (), ("empty search space",)),
    (
        "space-choices-empty",
        "quant",
        {"search_space": {"weights": {"bounds": None, "choices": []}}},
        (),
        ("choices is empty",),
    ),
    (
        "space-matches-nothing",
        "quant",
        {"search_space": {"weights": {"bounds": [2, 8], "include": "^conv"}}},
        (),
        ("search_space.weights", "no quantizer to search", "fc1"),
    ),
    # -- unknown names, listing the known ones
    ("unknown-problem", "toy", {"experiment": {"problem": "nope"}}, (), ("unknown problem 'nope'", "toy")),
    ("unknown-algorithm", "toy", None, ("--algorithm", "nsga9"), ("unknown algorithm 'nsga9'", "random")),
    (
        "unknown-objective",
        "toy",
        {"objectives": ["accuracy", "size"]},
        (),
        ("unknown objective", "weight_bits"),
    ),
    ("unknown-objective-q", "quant", {"objectives": ["accuracy", "mb"]}, (), ("'mb'", "bops", "qerror")),
    ("unknown-model", "quant", {"model": {"name": "resnet99"}}, (), ("unknown model 'resnet99'", "mlp")),
    ("unknown-dataset", "quant", {"data": {"name": "imagenet5"}}, (), ("unknown dataset", "digits")),
    # -- objectives and constraints
    ("one-objective-moea", "toy", {"objectives": ["accuracy"]}, (), ("objectives", "at least 2")),
    ("no-objective", "toy", {"objectives": []}, (), ("objectives", "at least one")),
    (
        "constraint-unmeetable",
        "toy",
        {"constraints": {"min_accuracy": 99.9}},
        (),
        ("no configuration can meet accuracy >= 99.90", "all-highest"),
    ),
    (
        "constraint-unmeetable-q",
        "quant",
        {"constraints": {"min_accuracy": 99.9}},
        (),
        ("no configuration can meet", "all-highest"),
    ),
    ("constraint-range", "toy", {"constraints": {"max_accuracy_drop": -1}}, (), ("max_accuracy_drop",)),
    # -- checkpoints and model code
    (
        "ckpt-missing",
        "quant",
        {"model": {"checkpoint": "{tmp}/none.pt"}},
        (),
        ("model.checkpoint", "not found"),
    ),
    (
        "ckpt-corrupt",
        "quant",
        {"model": {"checkpoint": "{ckpt}/corrupt.pt"}},
        (),
        ("model.checkpoint", "could not be read"),
    ),
    (
        "ckpt-pickled-code",  # weights_only=True refuses to unpickle arbitrary objects
        "quant",
        {"model": {"checkpoint": "{ckpt}/pickled.pt"}},
        (),
        ("model.checkpoint", "could not be read"),
    ),
    (
        "ckpt-misfit",
        "quant",
        {"model": {"checkpoint": "{ckpt}/mlp32.pt"}},
        (),
        ("does not fit the model", "'fc1.weight'", "(32, 64)"),
    ),
    ("ckpt-not-state-dict", "quant", {"model": {"checkpoint": "{ckpt}/list.pt"}}, (), ("not a state_dict",)),
    ("model-import", "quant", {"model": {"name": "nosuch.module:factory"}}, (), ("model.name", "nosuch")),
    ("model-options", "quant", {"model": {"options": {"hiden": [8]}}}, (), ("model.options", "hiden")),
    # -- data and calibration
    ("data-root-missing", "quant", {"data": {"root": "{tmp}/no-data"}}, (), ("data.root", "not found")),
    (
        "calib-below-minimum",
        "quant",
        {"data": {"calib_samples": 8, "min_calib_samples": 16}},
        (),
        ("calib_samples=8", "min_calib_samples=16"),
    ),
    (
        "calib-more-than-data",
        "quant",
        {"data": {"calib_samples": 700, "min_calib_samples": 600}},
        (),
        ("data.calib_samples", "min_calib_samples is 600"),
    ),
    (
        "quantizer-saw-no-data",
        "quant",
        {"model": {"name": f"{ODD}:unused_relu", "options": {}, "checkpoint": "{ckpt}/unused.pt"}},
        (),
        ("spare", "saw no data"),
    ),
    (
        "calib-all-zero",
        "quant",
        {"model": {"name": f"{ODD}:dead_layer", "options": {}, "checkpoint": "{ckpt}/dead.pt"}},
        (),
        ("amax 0", "all-zero"),
    ),
    # -- budget and output folder
    ("budget-zero", "toy", None, ("--budget", "0"), ("algorithm.budget", "greater than or equal to 1")),
    ("budget-negative", "toy", {"algorithm": {"budget": -5}}, (), ("algorithm.budget",)),
    (
        "out-under-a-file",
        "toy",
        {"output": {"root": "{tmp}/afile/results"}},
        (),
        ("output.root", "not a folder"),
    ),
    ("out-dir-under-a-file", "toy", None, ("--out", "{tmp}/afile/run"), ("output.dir", "not a folder")),
    (
        "out-read-only",
        "toy",
        {"output": {"root": "{tmp}/locked/results"}},
        (),
        ("output.root", "not writable"),
    ),
]


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and v and isinstance(out.get(k), dict) else v
    return out


def _fill(value: Any, subs: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**subs)
    if isinstance(value, dict):
        return {k: _fill(v, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, subs) for v in value]
    return value


def _tree(root: Path) -> set[str]:
    """Every path under root, except the forward tuning cache: a machine measurement taken while the
    problem is built (complete or absent, never partial), kept even where the run is then refused,
    and the folders that exist only to hold it."""
    kept = set()
    for p in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):  # the deepest first
        rel = p.relative_to(root).as_posix()
        if "/.cache/tuning" in f"/{rel}":
            continue
        if p.is_dir() and any(p.iterdir()) and not any(k.startswith(rel + "/") for k in kept):
            continue
        kept.add(rel)
    return kept


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> Path:
    """State dicts for the quantization rows: fitting, misfitting, corrupt, unsafe, odd models."""
    pytest.importorskip("torch")
    import torch

    from problems.quantization.zoo.models import build_model
    from tests.problems.quantization import odd_models

    folder = tmp_path_factory.mktemp("checkpoints")

    def mlp(hidden: int):
        shape = {"in_channels": 1, "num_classes": 10, "input_shape": (1, 8, 8)}
        return build_model("mlp", {"hidden": [hidden]}, **shape).state_dict()

    torch.save(mlp(16), folder / "mlp16.pt")
    torch.save(mlp(32), folder / "mlp32.pt")
    torch.save({"weights": _Unsafe()}, folder / "pickled.pt")
    torch.save([torch.zeros(3)], folder / "list.pt")
    (folder / "corrupt.pt").write_bytes(b"PK\x03\x04 not really a torch file")
    torch.save(odd_models.unused_relu().state_dict(), folder / "unused.pt")
    torch.save(odd_models.dead_layer().state_dict(), folder / "dead.pt")
    return folder


class _Unsafe:
    """An arbitrary object in a checkpoint: loading it with weights_only=True must refuse."""


@pytest.mark.parametrize(
    ("base", "patch", "args", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path, capsys, request, base, patch, args, words
):
    subs = {"tmp": str(tmp_path), "ckpt": ""}
    if base == "quant":
        subs["ckpt"] = str(request.getfixturevalue("checkpoints"))
    (tmp_path / "afile").write_text("a file, not a folder\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    if request.node.callspec.id == "out-read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        locked.chmod(0o555)
    config = tmp_path / "exp.yaml"
    if isinstance(patch, str):
        config.write_text(patch)
    else:
        config.write_text(yaml.safe_dump(_fill(_merge(TOY if base == "toy" else QUANT, patch or {}), subs)))
    argv = [_fill(a, subs) for a in args]
    if argv[:1] == ["--config-path"]:
        config, argv = Path(argv[1]), argv[2:]
    before = _tree(tmp_path)
    capsys.readouterr()

    code = main(["run", str(config), "--quiet", *argv])

    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    assert _tree(tmp_path) == before  # no run folder, no journal, no temporary file
    locked.chmod(0o755)
