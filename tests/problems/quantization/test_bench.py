"""`dse bench CONFIG` on a tiny quantization experiment: the printed timings and their ratio."""

from __future__ import annotations

import re

import pytest
import yaml

from dse.cli import main
from dse.core.config import parse_config
from problems.quantization.zoo.data import load_dataset
from tests.problems.quantization.bench_config import write_bench_config


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    return write_bench_config(tmp_path_factory.mktemp("bench"))


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["bench", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_bench_prints_positive_timings_and_their_ratio(printed, capsys):
    code, out, err = _run(capsys, str(printed), "--candidates", "2", "--repeats", "1")
    assert code == 0, err
    lines = out.strip().splitlines()
    figures, words = {}, {}
    for line in lines[:-1]:
        m = re.fullmatch(r"(\w+) +(\S+)", line)
        assert m, line
        try:
            figures[m.group(1)] = float(m.group(2))
        except ValueError:
            words[m.group(1)] = m.group(2)
    assert words["device"] == "cpu" and words["memory_format"] in ("contiguous", "channels_last")
    for key in ("float_forward_s", "quantized_forward_s", "evaluation_s", "ratio_evaluation_to_float"):
        assert figures[key] > 0, key
    # the ratio is the printed evaluation time over the printed float time (6 significant digits each)
    ratio = figures["evaluation_s"] / figures["float_forward_s"]
    assert figures["ratio_evaluation_to_float"] == pytest.approx(ratio, rel=1e-4)
    m = re.fullmatch(r"evaluation / float forward = (\d+\.\d{3})", lines[-1])
    assert m and float(m.group(1)) == pytest.approx(ratio, abs=1e-3 + 1e-4 * ratio)
    # what was timed: 2 candidates, one thread, the validation split in batches of 100
    assert figures["candidates"] == 2 and figures["threads"] == 1 and figures["batch_size"] == 100
    cfg = parse_config(yaml.safe_load(printed.read_text()))
    assert figures["val_samples"] == len(load_dataset(cfg.data, seed=cfg.data.seed).val) > 100


def test_bench_refuses_zero_candidates(printed, capsys):
    code, _, err = _run(capsys, str(printed), "--candidates", "0")
    assert code == 2 and err.strip() == "error: --candidates and --repeats must be at least 1"


def test_bench_sets_a_rejected_evaluation_beside_a_full_one(printed, capsys):
    # a limit no configuration of the 1-epoch model meets: every candidate is rejected early
    code, out, err = _run(
        capsys,
        str(printed),
        "--candidates",
        "4",
        "--repeats",
        "1",
        "--set",
        "constraints.min_accuracy=90",
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    figures = dict(line.split() for line in lines if re.fullmatch(r"\w+ +\S+", line))
    rejected = float(figures["rejected_candidates"])
    assert rejected == 4
    ratio = float(figures["rejected_evaluation_s"]) / float(figures["full_evaluation_of_rejected_s"])
    assert float(figures["ratio_rejected_to_full"]) == pytest.approx(ratio, rel=1e-4)
    m = re.fullmatch(
        r"rejected evaluation / full evaluation = (\d+\.\d{3}) \((\d) of 4 candidates rejected early\)",
        lines[-1],
    )
    assert (
        m
        and float(m.group(1)) == pytest.approx(ratio, abs=1e-3 + 1e-4 * ratio)
        and int(m.group(2)) == rejected
    )
    # without early rejection there is nothing to set beside
    off = ["--set", "constraints.min_accuracy=90", "--set", "constraints.early_reject=false"]
    code, out, _ = _run(capsys, str(printed), "--candidates", "1", "--repeats", "1", *off)
    assert code == 0 and "rejected" not in out
