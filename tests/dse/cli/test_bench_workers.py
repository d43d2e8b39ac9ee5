"""`dse bench --workers N [--json]`: evaluations per second through 1..N workers beside the problem's
own figures, on a tiny quantization experiment; `--json` prints one JSON object and nothing else."""

from __future__ import annotations

import json
import re

import pytest

from dse.cli import main
from tests.problems.quantization.bench_config import write_bench_config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_bench_config(tmp_path_factory.mktemp("bench-workers"))


@pytest.mark.slow
def test_json_holds_the_problem_figures_and_one_row_per_worker_count(tiny, capsys, monkeypatch):
    from problems.quantization.problem import LayerwiseQuantizationProblem as Problem

    measured = Problem.benchmark

    def chatty(self, *args, **kwargs):
        print("a problem that talks on stdout")  # must not spoil the JSON
        return measured(self, *args, **kwargs)

    monkeypatch.setattr(Problem, "benchmark", chatty)
    capsys.readouterr()
    args = ["bench", str(tiny), "--candidates", "2", "--repeats", "1", "--workers", "2", "--json"]
    assert main(args) == 0
    out = capsys.readouterr().out
    result = json.loads(out)  # stdout is the object alone
    assert result["evaluation_s"] > 0 and result["candidates"] == 2
    rows = result["throughput"]
    assert [(r["backend"], r["workers"]) for r in rows] == [("local", 1), ("local", 2)]
    assert rows[0]["speedup"] == 1.0 and all(r["evaluations_per_s"] > 0 for r in rows)
    assert [len(r["rss_mib_per_worker"]) for r in rows] == [1, 2]
    assert result["throughput_configurations"] == 16  # 8 per worker at least


@pytest.mark.slow
def test_text_prints_a_throughput_line_per_worker_count(tiny, capsys):
    capsys.readouterr()
    assert main(["bench", str(tiny), "--candidates", "2", "--repeats", "1", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "evaluations/s" in line]
    assert len(lines) == 2
    assert re.match(
        r"\s+local\s+1 worker\s+[\d.]+ evaluations/s\s+x1\.00\s+resident MiB per worker: \d+$", lines[0]
    )
    assert re.match(r"\s+local\s+2 workers\s+[\d.]+ evaluations/s\s+x[\d.]+\s+.*: \d+, \d+$", lines[1])
