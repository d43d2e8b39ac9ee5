"""Append-only run journal: one JSON line per event, flushed and fsync'ed as it happens.

Follows Optuna's JournalFileStorage: the journal is the only record of a run; every table and plot
is derived from it, and resuming a run is replaying it. A last line cut short by a crash is
skipped with a warning; a corrupt line elsewhere is an error (the file was edited, not crashed).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dse.core.errors import DseError
from dse.core.evaluation import Evaluation, latest

JOURNAL_NAME = "journal.jsonl"


class Journal:
    """`defer=True` holds appended lines in memory until `start()`, so checks that evaluate (e.g. the
    all-highest configuration) leave no file behind when they fail; `read=False` ignores an old file."""

    def __init__(self, path: Path, *, defer: bool = False, read: bool = True) -> None:
        self.path = Path(path)
        self.events: list[dict[str, Any]] = []
        if read and self.path.exists():
            self.events = list(read_events(self.path))
            self._repair_tail()
        self._fh = None
        self._pending: list[str] | None = [] if defer else None

    def start(self) -> None:
        """End a deferred start: write the lines held so far (the folder must exist by now)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            if pending:
                self._write("".join(pending))

    def _repair_tail(self) -> None:
        """End the file on a line break, as `read_events` read it, so the next append starts a line:
        a complete last line that only lacks its newline (kept in `events`) gets it, a torn one
        (skipped) is cut off. What is counted is what is on disk."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as fh:
                if _parse(data[keep:]) is not None:
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"\n")
                else:
                    fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, allow_nan=False, separators=(",", ":")) + "\n"
        with _ctrl_c_held():  # a line is on disk and in `events`, or neither
            if self._pending is not None:
                self._pending.append(line)
            else:
                self._write(line)
            self.events.append(event)

    def _write(self, text: str) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run
        self._fh.write(text)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def append_evaluation(self, ev: Evaluation) -> None:
        self.append({"event": "eval", **ev.to_json()})

    def evaluations(self) -> list[Evaluation]:
        return [Evaluation.from_json(e) for e in self.events if e.get("event") == "eval"]

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold SIGINT for the few microseconds of an append, then deliver it (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, Any]] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: caught.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if old is None else old)
        if caught:
            if callable(old):
                old(*caught[0])
            elif old == signal.SIG_DFL:
                raise KeyboardInterrupt


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    lines = Path(path).read_bytes().split(b"\n")
    last = len(lines) - 1
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        event = _parse(raw)
        if event is None:
            if i == last:  # no newline after it: the process died while writing it
                warnings.warn(f"{path}: skipped a truncated last line (an interrupted write)", stacklevel=2)
                continue
            raise DseError(f"{path}: line {i + 1} is corrupt (not a JSON object)")
        yield event


def _parse(raw: bytes) -> dict[str, Any] | None:
    """The event on one line, or None where the line is not a JSON object (e.g. cut short)."""
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def load_evaluations(run_dir: Path) -> list[Evaluation]:
    """Evaluations of a finished or interrupted run, for commands that read runs (plot, compare, ...);
    a superseded record (rejected, then evaluated exactly) is left out."""
    path = Path(run_dir) / JOURNAL_NAME
    if not path.is_file():
        raise DseError(f"{path}: not found (is {run_dir} a run folder?)")
    try:
        return latest(Evaluation.from_json(e) for e in read_events(path) if e.get("event") == "eval")
    except (KeyError, TypeError) as e:
        raise DseError(f"{path}: an evaluation record is malformed ({e})") from None
