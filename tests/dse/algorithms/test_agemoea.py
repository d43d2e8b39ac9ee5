"""AGE-MOEA / AGE-MOEA-II need numba: a dependency of dse, so they run after scripts/setup.sh; where
numba is missing anyway, the run is refused in one line before anything is built or written."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.dse.helpers import run_cli, write_config

REPO = Path(__file__).resolve().parents[3]


def test_numba_is_a_main_dependency():
    text = (REPO / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)  # [project] dependencies
    assert re.search(r'^\s*"numba[><=~ ]', deps, re.M)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["agemoea", "agemoea2"])
def test_agemoea_runs_without_any_extra(tmp_path, name):
    """Not skipped when numba is missing: then the setup command did not install what dse needs."""
    path = write_config(tmp_path, algorithm={"name": name, "pop_size": 8})
    assert run_cli("run", str(path), "--quiet", "--budget", "16") == 0
    summary = json.loads((tmp_path / "results" / "toy" / f"{name}-s0" / "summary.json").read_text())
    assert summary["evaluations"] == 16 and summary["status"] == "budget_spent"


@pytest.mark.parametrize("name", ["agemoea", "agemoea2"])
def test_agemoea_without_numba_is_refused_in_one_line(tmp_path, capsys, monkeypatch, name):
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` fails; find_spec says None
    path = write_config(tmp_path, algorithm={"name": name})
    assert run_cli("run", str(path), "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: algorithm.name: {name} needs numba (pymoo compiles it with numba), which is not "
        "installed: run `pip install numba` (scripts/setup.sh installs it)"
    )
    assert not (tmp_path / "results").exists()
