import json

import pytest

from dse.core.errors import DseError
from dse.core.evaluation import Evaluation
from dse.run.journal import Journal, load_evaluations


def ev(i, acc=90.0, status="ok"):
    return Evaluation(i, "search", {"a": 2}, {"accuracy": acc}, True, status=status)


def test_append_and_replay(tmp_path):
    with Journal(tmp_path / "journal.jsonl") as j:
        j.append_evaluation(ev(0))
        j.append_evaluation(ev(1, float("nan"), "failed"))
    again = Journal(tmp_path / "journal.jsonl").evaluations()
    assert [e.eval_id for e in again] == [0, 1]
    assert again[0] == ev(0)
    assert again[1].metrics["accuracy"] != again[1].metrics["accuracy"]  # NaN survives as null


def test_truncated_last_line_is_skipped_and_repaired(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as j:
        j.append_evaluation(ev(0))
    with open(path, "a") as fh:
        fh.write('{"event": "eval", "eval_id": 1, "ki')
    with pytest.warns(UserWarning, match="truncated last line"):
        j = Journal(path)
    assert [e.eval_id for e in j.evaluations()] == [0]
    j.append_evaluation(ev(1))
    j.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)


def test_corrupt_middle_line_is_an_error(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"event": "eval"\n{"event": "x"}\n')
    with pytest.raises(DseError, match="line 1 is corrupt"):
        load_evaluations(tmp_path)
    with pytest.raises(DseError, match="not found"):
        load_evaluations(tmp_path / "nope")


def test_a_complete_last_line_without_its_newline_is_kept_on_disk_and_counted(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as j:
        j.append_evaluation(ev(0))
        j.append_evaluation(ev(1))
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # died between the line and its newline
    j = Journal(path)
    assert [e.eval_id for e in j.evaluations()] == [0, 1]
    assert path.read_bytes().endswith(b"}\n")  # the newline is back: the next append starts a line
    j.append_evaluation(ev(2))
    j.close()
    on_disk = [json.loads(line)["eval_id"] for line in path.read_text().splitlines()]
    assert on_disk == [e.eval_id for e in j.evaluations()] == [0, 1, 2]
