"""Resume = replay: a killed, interrupted or extended run ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import random
import signal
import subprocess
from collections import Counter

import pandas as pd
import pytest

from tests.dse.helpers import run_cli, write_config
from tests.dse.proc import events, journal_lines, start_run, wait_for_lines

TOY = {"n_var": 4}


def _config(tmp_path, name, **toy):
    folder = tmp_path / name
    folder.mkdir()
    return write_config(folder, toy={**TOY, **toy}, algorithm={"budget": 60, "pop_size": 12})


def _reference_run(tmp_path, *args):
    """The uninterrupted run every resumed run must reproduce."""
    out = tmp_path / "reference-run"
    assert run_cli("run", str(_config(tmp_path, "reference")), "--quiet", "--out", str(out), *args) == 0
    return out


def _front(run_dir):
    return pd.read_csv(run_dir / "pareto.csv").filter(regex="^(?!.*seconds$)")


def _search_ids(run_dir):
    return [e["eval_id"] for e in events(run_dir) if e["kind"] == "search"]


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_at_most_the_evaluation_in_flight(tmp_path):
    calls = tmp_path / "calls.log"  # one line per evaluation started, in any process
    cfg = _config(tmp_path, "killed", sleep=0.02, calls_log=str(calls))
    out = tmp_path / "killed-run"
    rng = random.Random(5)
    kills, seen = 0, 0
    while kills < 5:
        proc = start_run(cfg, "--out", str(out))
        # let it make progress past what the previous process left, then kill at a random moment
        if not wait_for_lines(proc, out, seen + 1):
            proc.communicate()
            break
        try:
            proc.communicate(timeout=rng.uniform(0.0, 0.25))
        except subprocess.TimeoutExpired:  # still running: the usual case
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            kills += 1
        seen = journal_lines(out)
    assert kills >= 3, "the run finished before it could be killed: raise the toy's sleep"
    assert run_cli("run", str(cfg), "--quiet", "--out", str(out)) == 0

    ref = _reference_run(tmp_path)
    assert events(out) == events(ref)  # same evaluations, same order, same ids, same metrics
    assert _search_ids(out) == list(range(60))  # none missing, none twice
    pd.testing.assert_frame_equal(_front(out), _front(ref))
    started = calls.read_text().splitlines()
    recorded = [e for e in events(out) if e["event"] == "eval"]
    assert len(started) - len(recorded) <= kills  # each kill lost at most the evaluation in flight
    assert max(Counter(started).values()) <= 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "budget_spent" and summary["evaluations"] == 60


@pytest.mark.parametrize("algorithm", ["nsga2", "random"])
def test_resuming_with_a_larger_budget_equals_one_long_run(tmp_path, algorithm):
    cfg = _config(tmp_path, "extended")
    out = tmp_path / "extended-run"
    common = ("--quiet", "--out", str(out), "--algorithm", algorithm)
    assert run_cli("run", str(cfg), *common, "--budget", "25") == 0
    assert json.loads((out / "summary.json").read_text())["evaluations"] == 25
    assert run_cli("run", str(cfg), *common) == 0
    ref = _reference_run(tmp_path, "--algorithm", algorithm)
    assert events(out) == events(ref)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["replayed_from_journal"] == 25 and summary["evaluations"] == 60


@pytest.mark.parametrize("algorithm", ["nsga2", "random"])
def test_repeated_runs_write_the_same_journal(tmp_path, algorithm):
    cfg = _config(tmp_path, "again")
    runs = [tmp_path / "first", tmp_path / "second"]
    for out in runs:
        assert run_cli("run", str(cfg), "--quiet", "--out", str(out), "--algorithm", algorithm) == 0
    assert events(runs[0]) == events(runs[1])
    a, b = (pd.read_csv(r / "evaluations.csv").filter(regex="^(?!.*seconds$)") for r in runs)
    pd.testing.assert_frame_equal(a, b)


def test_a_torn_last_line_is_skipped_and_the_run_resumes(tmp_path):
    cfg = _config(tmp_path, "torn")
    out = tmp_path / "torn-run"
    assert run_cli("run", str(cfg), "--quiet", "--out", str(out), "--budget", "30") == 0
    with open(out / "journal.jsonl", "a") as fh:
        fh.write('{"event":"eval","eval_id":30,"kind":"sea')  # the process died mid-write
    with pytest.warns(UserWarning, match="truncated last line"):
        assert run_cli("run", str(cfg), "--quiet", "--out", str(out)) == 0
    assert events(out) == events(_reference_run(tmp_path))


@pytest.mark.slow
def test_sigint_stops_cleanly_after_writing_what_finished(tmp_path):
    cfg = _config(tmp_path, "ctrl-c", sleep=0.1)  # ~4 s left to run when the signal comes, even under load
    out = tmp_path / "ctrl-c-run"
    proc = start_run(cfg, "--out", str(out))
    assert wait_for_lines(proc, out, 20)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    recorded = [e for e in events(out) if e["kind"] == "search"]  # every line parses: none torn
    assert summary["status"] == "interrupted" and summary["evaluations"] == len(recorded) >= 12
    assert len(pd.read_csv(out / "evaluations.csv")) == len(recorded)
    assert run_cli("run", str(cfg), "--quiet", "--out", str(out)) == 0
    assert events(out) == events(_reference_run(tmp_path))


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c(tmp_path):
    cfg = _config(tmp_path, "term", sleep=0.1)
    out = tmp_path / "term-run"
    proc = start_run(cfg, "--out", str(out))
    assert wait_for_lines(proc, out, 12)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"


def test_a_run_folder_of_another_config_is_refused_naming_the_fields(tmp_path, capsys):
    path = write_config(tmp_path, algorithm={"budget": 20, "pop_size": 12})
    assert run_cli("run", str(path), "--quiet") == 0
    journal = (tmp_path / "results/toy/nsga2-s0/journal.jsonl").read_text()
    changed = write_config(tmp_path, algorithm={"budget": 20, "pop_size": 10}, toy={"n_var": 5})
    capsys.readouterr()
    assert run_cli("run", str(changed), "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert "different config" in err and "algorithm.pop_size (12 -> 10)" in err and "toy.n_var" in err
    assert (tmp_path / "results/toy/nsga2-s0/journal.jsonl").read_text() == journal  # untouched


def test_fresh_moves_the_old_run_aside(tmp_path):
    path = write_config(tmp_path, algorithm={"budget": 20, "pop_size": 12})
    run_dir = tmp_path / "results/toy/nsga2-s0"
    assert run_cli("run", str(path), "--quiet") == 0
    old = events(run_dir)
    assert run_cli("run", str(path), "--quiet", "--fresh") == 0
    assert run_cli("run", str(path), "--quiet", "--fresh") == 0  # twice in the same second
    asides = sorted(run_dir.parent.glob("nsga2-s0.old-*"))
    assert len(asides) == 2 and all(events(a) == old for a in asides)
    assert json.loads((run_dir / "summary.json").read_text())["replayed_from_journal"] == 0


def test_temporaries_of_a_killed_write_are_cleaned_up(tmp_path):
    path = write_config(tmp_path, algorithm={"budget": 20, "pop_size": 12})
    run_dir = tmp_path / "results/toy/nsga2-s0"
    assert run_cli("run", str(path), "--quiet") == 0
    (run_dir / ".pareto.csv.abc123.tmp").write_text("half a fi")
    assert run_cli("run", str(path), "--quiet") == 0
    assert not list(run_dir.glob(".*.tmp"))


def test_summary_says_how_the_run_ended(tmp_path):
    # 2 variables x 2 choices: random search sees all 4 configurations well before its budget
    path = write_config(tmp_path, toy={"n_var": 2, "choices": [6, 8]}, algorithm={"name": "random"})
    assert run_cli("run", str(path), "--quiet") == 0
    summary = json.loads((tmp_path / "results/toy/random-s0/summary.json").read_text())
    assert summary["status"] == "finished" and summary["evaluations"] == 4


def test_fresh_with_a_refused_config_leaves_the_old_run_in_place(tmp_path, capsys):
    path = write_config(tmp_path, algorithm={"budget": 20, "pop_size": 12})
    run_dir = tmp_path / "results/toy/nsga2-s0"
    assert run_cli("run", str(path), "--quiet") == 0
    old = events(run_dir)
    refused = write_config(
        tmp_path, algorithm={"budget": 20, "pop_size": 12}, constraints={"min_accuracy": 99.9}
    )
    assert run_cli("run", str(refused), "--quiet", "--fresh") == 2
    assert "no configuration can meet" in capsys.readouterr().err
    assert events(run_dir) == old and not list(run_dir.parent.glob("*.old-*"))


def test_wall_time_accumulates_over_resumes(tmp_path):
    import json

    from tests.dse.helpers import run_cli, write_config

    path = write_config(tmp_path, algorithm={"budget": 20})
    assert run_cli("run", str(path), "--quiet") == 0
    summary = tmp_path / "results" / "toy" / "nsga2-s0" / "summary.json"
    first = json.loads(summary.read_text())["wall_seconds"]
    data = json.loads(summary.read_text())
    data["wall_seconds"] = first + 100.0  # as if the earlier process had run 100 s longer
    summary.write_text(json.dumps(data))
    assert run_cli("run", str(path), "--quiet", "--budget", "30") == 0
    assert json.loads(summary.read_text())["wall_seconds"] >= first + 100.0


def test_a_last_line_without_its_newline_is_counted_as_it_is_kept_on_disk(tmp_path):
    cfg = _config(tmp_path, "unterminated")
    out = tmp_path / "unterminated-run"
    assert run_cli("run", str(cfg), "--quiet", "--out", str(out), "--budget", "30") == 0
    journal = out / "journal.jsonl"
    journal.write_bytes(journal.read_bytes().removesuffix(b"\n"))  # died before the last newline
    assert run_cli("run", str(cfg), "--quiet", "--out", str(out), "--budget", "40") == 0
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    searched = [e for e in lines if e["kind"] == "search"]
    rows = pd.read_csv(out / "evaluations.csv")
    assert len(lines) == len(rows) + sum(e["kind"] == "reference" for e in lines)  # nothing off disk
    assert sorted(rows.eval_id) == [e["eval_id"] for e in searched] == list(range(40))
    assert json.loads((out / "summary.json").read_text())["evaluations"] == 40
    assert events(out) == events(_reference_run(tmp_path, "--budget", "40"))


def test_failed_evaluations_replay_as_failed_and_are_not_run_again(tmp_path):
    calls = tmp_path / "calls.log"
    cfg = _config(tmp_path, "failing", fail_when_first_is=2, calls_log=str(calls))
    out = tmp_path / "failing-run"
    assert run_cli("run", str(cfg), "--quiet", "--out", str(out), "--budget", "30") == 0
    before = pd.read_csv(out / "evaluations.csv")
    failed = before[before.status == "failed"]
    assert len(failed) > 0 and (failed.reason == "RuntimeError: injected failure").all()
    first = len(calls.read_text().splitlines())
    assert run_cli("run", str(cfg), "--quiet", "--out", str(out), "--budget", "40") == 0
    after = pd.read_csv(out / "evaluations.csv")
    pd.testing.assert_frame_equal(after[after.eval_id < 30].reset_index(drop=True), before)
    again = calls.read_text().splitlines()[first:]
    assert len(again) == 10  # only the 10 new evaluations ran: no failed one was retried
    failed_configs = {",".join(map(str, r)) for r in failed[["x0", "x1", "x2", "x3"]].itertuples(index=False)}
    assert not failed_configs & set(again)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["replayed_from_journal"] == 30
    assert summary["failed_evaluations"] == (after.status == "failed").sum() >= len(failed)


@pytest.mark.parametrize("how", ["--out", "output.dir"])
def test_a_moved_run_folder_resumes_from_its_journal(tmp_path, how):
    calls = tmp_path / "calls.log"
    cfg = _config(tmp_path, "moved", calls_log=str(calls))
    old, new = tmp_path / "here" / "run", tmp_path / "there" / "renamed"
    assert run_cli("run", str(cfg), "--quiet", "--out", str(old), "--budget", "25") == 0
    journal = (old / "journal.jsonl").read_text()
    first = len(calls.read_text().splitlines())
    new.parent.mkdir()
    old.rename(new)
    args: tuple[str, ...] = ("--out", str(new))
    if how == "output.dir":
        toy = {**TOY, "calls_log": str(calls)}
        cfg = write_config(
            cfg.parent, toy=toy, algorithm={"budget": 60, "pop_size": 12}, output={"dir": str(new)}
        )
        args = ()
    assert run_cli("run", str(cfg), "--quiet", *args) == 0
    assert not old.exists() and (new / "journal.jsonl").read_text().startswith(journal)
    assert len(calls.read_text().splitlines()) - first == 35  # the 25 recorded ones did not run again
    summary = json.loads((new / "summary.json").read_text())
    assert summary["replayed_from_journal"] == 25 and summary["evaluations"] == 60
    assert events(new) == events(_reference_run(tmp_path))
