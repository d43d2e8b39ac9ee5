"""Run `python -m dse` in a child process with the toy problem registered, and read its run folder.

Kill and Ctrl-C tests need a real process; the toy lives in the tests package, so the child imports
it before handing over to the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# The child takes Ctrl-C as a terminal user's process does: a SIGINT disposition the test runner's
# process happens to hold (an ignored SIGINT is inherited across exec) must not decide the test.
CHILD = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "import tests.dse.toy; from dse.cli import main; sys.exit(main(sys.argv[1:]))"
)


def start_run(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, "run", str(config), "--quiet", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def journal_lines(run_dir: Path) -> int:
    """Complete lines in the journal (a torn last line is not counted)."""
    path = run_dir / "journal.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_for_lines(proc: subprocess.Popen[str], run_dir: Path, n: int, timeout: float = 30) -> bool:
    """Wait until the journal has at least `n` lines; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal_lines(run_dir) >= n:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise TimeoutError(f"journal of {run_dir} did not reach {n} lines")


def events(run_dir: Path) -> list[dict[str, Any]]:
    """Journal events without their timings (`seconds`, `info.*_seconds`): identical across runs."""
    out = []
    for line in (run_dir / "journal.jsonl").read_text().splitlines():
        event = json.loads(line)
        event.pop("seconds", None)
        info = event.get("info") or {}
        event["info"] = {k: v for k, v in info.items() if not k.endswith("seconds")}
        out.append(event)
    return out
