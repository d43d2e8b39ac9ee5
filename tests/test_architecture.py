"""The house rules the layout promises, checked: dse/ never imports torch, small modules, no import cycle."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("dse", "problems")
MAX_LINES = 300


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of this repo that `name` imports at module level (TYPE_CHECKING blocks included)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    nodes = [
        n
        for stmt in tree.body
        for n in ast.walk(stmt)
        if not isinstance(stmt, (ast.FunctionDef, ast.ClassDef))
    ]
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m in known and m != name}


def test_dse_never_imports_torch():
    """Every module under dse/ imported in a fresh interpreter leaves torch unloaded."""
    names = [n for n in _modules("dse") if n != "dse.__main__"]
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}:\n    importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print(len(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0", "a dse module imports torch"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_over_300_lines(package):
    long = {n: len(p.read_text().splitlines()) for n, p in _modules(package).items()}
    assert {n: k for n, k in long.items() if k > MAX_LINES} == {}


def test_no_import_cycle():
    modules = {**_modules("dse"), **_modules("problems")}
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        pytest.fail(f"import cycle: {' -> '.join(e.args[1])}")
