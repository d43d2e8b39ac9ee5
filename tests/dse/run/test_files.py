"""Atomic writes and journal appends reach the disk (fsync) and replace files whole (os.replace);
a process killed inside a write leaves the old file or the new one, and the next run sweeps up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dse.core.files import atomic_write, write_csv, write_json, write_text
from dse.run.journal import Journal
from tests.dse.helpers import run_cli, write_config
from tests.dse.proc import REPO


@pytest.fixture
def syscalls(monkeypatch):
    """fsync (as the inode it flushed) and replace calls, in order; both still done."""
    calls: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        calls.append(("replace", Path(src), Path(dst)))
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls


WRITERS = {
    "atomic_write": lambda p: atomic_write(p, lambda tmp: tmp.write_text("new")),
    "write_text": lambda p: write_text(p, "new"),
    "write_json": lambda p: write_json(p, {"a": 1}),
    "write_csv": lambda p: write_csv(p, pd.DataFrame({"a": [1, 2]})),
}


@pytest.mark.parametrize("write", WRITERS.values(), ids=WRITERS)
def test_atomic_writes_fsync_a_temporary_then_rename_it_over_the_file(tmp_path, syscalls, write):
    target = tmp_path / "out.txt"
    target.write_text("old")
    write(target)
    replaces = [c for c in syscalls if c[0] == "replace"]
    assert len(replaces) == 1
    _, src, dst = replaces[0]
    assert dst == target and src.parent == tmp_path and src.name.startswith(".out.txt.")
    # the file fsynced before the rename is the one now at `target`
    assert ("fsync", target.stat().st_ino) in syscalls[: syscalls.index(replaces[0])]
    assert target.read_text() != "old" and list(tmp_path.iterdir()) == [target]  # no temporary left


def test_each_journal_line_is_on_disk_and_fsynced_before_append_returns(tmp_path, syscalls):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as j:
        for i in range(3):
            j.append({"event": "eval", "i": i})
            assert syscalls[-1] == ("fsync", path.stat().st_ino)
            assert path.read_text().count("\n") == i + 1
    assert syscalls.count(("fsync", path.stat().st_ino)) == 3
    deferred = Journal(tmp_path / "deferred.jsonl", defer=True)
    deferred.append({"event": "eval", "i": 0})
    assert not deferred.path.exists()  # held until the run starts
    deferred.start()
    assert syscalls[-1] == ("fsync", deferred.path.stat().st_ino)
    deferred.close()


# Writes half of the new content inside atomic_write, then SIGKILLs itself: before the rename, or
# (with os.replace wrapped) just after it.
CHILD = """
import os, signal, sys
from pathlib import Path
from dse.core import files

real_replace = os.replace
if sys.argv[2] == "after-rename":
    def replace(src, dst):
        real_replace(src, dst)
        os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace

def write(tmp):
    with open(tmp, "w") as fh:
        fh.write("new,half")
        fh.flush()
        if sys.argv[2] == "mid-write":
            os.kill(os.getpid(), signal.SIGKILL)
        fh.write(" and the rest\\n")

files.atomic_write(Path(sys.argv[1]), write)
"""


@pytest.mark.slow  # subprocesses killed mid-write
@pytest.mark.parametrize(("moment", "expected"), [("mid-write", "old"), ("after-rename", "new")])
def test_a_process_killed_inside_a_write_leaves_the_old_file_or_the_new(tmp_path, moment, expected):
    path = write_config(tmp_path, algorithm={"budget": 12, "pop_size": 12})
    assert run_cli("run", str(path), "--quiet") == 0
    run_dir = tmp_path / "results" / "toy" / "nsga2-s0"
    target = run_dir / "pareto.csv"
    old = target.read_text()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(target), moment], cwd=REPO, capture_output=True, timeout=60
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert target.read_text() == {"old": old, "new": "new,half and the rest\n"}[expected]
    left = list(run_dir.glob(".*.tmp"))
    assert len(left) == (1 if moment == "mid-write" else 0)
    assert run_cli("run", str(path), "--quiet") == 0  # the next run sweeps up and rewrites the tables
    assert not list(run_dir.glob(".*.tmp"))
    assert target.read_text() == old
