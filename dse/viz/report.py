"""`report.html`: one self-contained file (PNG plots as base64 data URIs, tables as HTML, the resolved
config, package versions) that any browser opens from disk: no server, no external assets.
"""

from __future__ import annotations

import base64
import html
import platform
import time
from importlib import metadata
from pathlib import Path

import pandas as pd

from dse.compare.comparison import formatted_summary
from dse.core.errors import DseError
from dse.core.files import write_text
from dse.results.heldout import load_held_out, validation_columns
from dse.results.rundata import RunData, is_run_dir, load_run, read_csv, read_json
from dse.results.sizes import SizeInfo, size_columns
from dse.viz.finetuned_plot import write_finetuned_plot
from dse.viz.run_plots import write_run_plots

REPORT_NAME = "report.html"
PACKAGES = ("dse", "numpy", "pandas", "scipy", "pymoo", "matplotlib", "pydantic", "PyYAML", "torch")
RUN_PLOTS = (
    "pareto.png",
    "pareto_test.png",
    "pareto_finetuned.png",
    "hv_curve.png",
    "heatmap.png",
    "parallel.png",
)
COMPARE_PLOTS = ("fronts.png", "hv_curve.png", "heatmap.png", "parallel.png")
CAPTIONS = {
    "pareto.png": "Evaluated configurations and the feasible Pareto front (reference points in green).",
    "pareto_test.png": "The Pareto configurations on validation (searched) and on the held-out split.",
    "pareto_finetuned.png": "Fronts after post-training quantization (searched) and after dse finetune.",
    "hv_curve.png": "Hypervolume of the feasible front after each evaluation (common normalisation).",
    "heatmap.png": "Bit width of each variable (row) in each Pareto configuration (column, by size).",
    "parallel.png": "Parallel coordinates of the Pareto configurations: variables, then objectives.",
    "fronts.png": "Feasible fronts of every run, one colour per algorithm; squares: reference points.",
}
CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 7px;
text-align:right}th{background:#f4f4f4}.scroll{overflow-x:auto}figure{margin:1em 0}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
pre{background:#f7f7f7;padding:.8em;font-size:.8em;overflow-x:auto}.muted{color:#777;font-size:.85em}
"""


def write_report(folder: str | Path) -> Path:
    """Write `folder/report.html` for a run folder or a compare folder; returns its path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DseError(f"{folder}: not found (expected a run or compare folder)")
    if (folder / "comparison.csv").exists():
        body = _compare_body(folder)
        title = f"Comparison · {folder}"
    elif is_run_dir(folder):
        body, title = _run_body(load_run(folder))
    else:
        raise DseError(
            f"{folder}: neither a run folder (journal.jsonl) nor a compare folder (comparison.csv)"
        )
    page = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='muted'>written {time.strftime('%Y-%m-%d %H:%M:%S')} by dse report</p>"
        f"{body}{_versions()}</body></html>\n"
    )
    path = folder / REPORT_NAME
    write_text(path, page)
    return path


def _run_body(run: RunData) -> tuple[str, str]:
    write_run_plots(run)  # from the run's files; cheap, and keeps the report in step with the journal
    write_finetuned_plot(run)
    s = run.summary
    keys = [
        "experiment", "problem", "algorithm", "seed", "status", "budget", "evaluations",
        "failed_evaluations", "rejected_evaluations", "feasible_evaluations", "baseline", "constraint",
        "pareto_size", "hypervolume", "space_size", "wall_seconds", "evaluation_seconds",
    ]  # fmt: skip
    facts = pd.DataFrame(
        [{"field": k, "value": s[k]} for k in keys if k in s]
        + [
            {"field": f"{m} ratios against", "value": i.baselines_text()}
            for m, i in run.sizes.items()
            if i.baselines
        ]
    )
    size, _ = run.axes
    shown = validation_columns(run)
    front = pd.DataFrame(
        [
            {"eval_id": e.eval_id, **{m: e.metrics.get(m) for m in shown}, **e.values}
            for e in sorted(run.front, key=lambda e: (e.metrics[size], e.eval_id))
        ]
    )
    held = load_held_out(run.run_dir)
    if held is not None and len(front):
        extra = [c for c in held[0].columns if c not in front.columns]
        front = front.merge(held[0][["eval_id", *extra]], on="eval_id", how="left")
        cols = ["eval_id", *shown, *extra]
        front = front[cols + [c for c in front.columns if c not in cols]]
    references = pd.DataFrame(
        [{"reference": e.label, **{m: e.metrics.get(m) for m in shown}} for e in run.reference_points if e.ok]
    )
    front, references = _with_sizes(front, run.sizes), _with_sizes(references, run.sizes)
    parts = [
        _section("Summary", _table(facts, index=False)),
        _section(f"Pareto front ({len(front)} configurations, by {size})", _table(front)),
        _section("Reference configurations", _table(references)),
        _section("Plots", _figures(run.run_dir, RUN_PLOTS)),
        _section("Resolved config", f"<pre>{html.escape(run.config_text)}</pre>"),
    ]
    title = f"{s.get('experiment', '')} · {run.algorithm} · seed {run.seed}"
    return "".join(parts), title


def _with_sizes(frame: pd.DataFrame, sizes: dict[str, SizeInfo]) -> pd.DataFrame:
    """After each size metric's raw column: its human-readable size and compression ratios."""
    for metric, info in sizes.items():
        if metric not in frame.columns:
            continue
        at = list(frame.columns).index(metric) + 1
        values = pd.to_numeric(frame[metric], errors="coerce").tolist()
        for offset, (name, column) in enumerate(size_columns(metric, values, info).items()):
            if name not in frame.columns:
                frame.insert(at + offset, name, column)
    return frame


def _compare_body(folder: Path) -> str:
    table = read_csv(folder / "comparison.csv", required=("algorithm", "seed", "hypervolume"))
    summary = read_csv(folder / "comparison_summary.csv", required=("algorithm", "runs"))
    ref = read_json(folder / "reference.json", what="a compare folder")
    if not isinstance(ref, dict) or "normalization" not in ref:
        raise DseError(f"{folder / 'reference.json'}: corrupt (no normalization)")
    try:
        formatted = formatted_summary(summary)
    except KeyError as e:
        raise DseError(f"{folder / 'comparison_summary.csv'}: corrupt (no {e.args[0]!r} column)") from None
    norm = ref["normalization"]
    norm_rows = pd.DataFrame(
        {
            "objective": norm.get("names", []),
            "best": norm.get("best", []),
            "worst": norm.get("worst", []),
            "reference point": [norm.get("reference_point", {}).get(n) for n in norm.get("names", [])],
        }
    )
    target = ref.get("target", {})
    front = ref.get("reference_front", {})
    notes = (
        f"<p>Every run is measured on one normalisation (0 = best, 1 = worst per objective; the HV reference "
        f"point is {norm.get('margin', 1.1)} in every normalised objective). Reference front for IGD: "
        f"{html.escape(str(front.get('source', '?')))} ({len(front.get('points', []))} points). "
        f"Evaluations-to-target: the first evaluation reaching a feasible "
        f"{html.escape(str(target.get('metric')))} "
        f"&le; {_fmt(target.get('value'))} ({html.escape(str(target.get('rule', '')))}). "
        f"Wall seconds include evaluation time saved by the shared cache.</p>"
    )
    parts = [
        _section("Per algorithm (mean ± sample std over seeds)", notes + _table(formatted, index=False)),
        _section("Runs", _table(table.drop(columns=["run_dir"], errors="ignore"), index=False)),
        _section("Normalisation", _table(norm_rows, index=False)),
    ]
    skipped = folder / "skipped.json"
    if skipped.exists():
        data = read_json(skipped)
        parts.append(_section("Skipped runs", _table(pd.DataFrame(data), index=False)))
    parts.append(_section("Plots", _figures(folder, COMPARE_PLOTS)))
    config = folder / "config.yaml"
    if config.exists():
        parts.append(
            _section("Resolved config", f"<pre>{html.escape(config.read_text(errors='replace'))}</pre>")
        )
    return "".join(parts)


def _figures(folder: Path, names: tuple[str, ...]) -> str:
    out = []
    for name in names:
        path = folder / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        if not data.startswith(b"\x89PNG"):
            raise DseError(f"{path}: corrupt (not a PNG image)")
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        caption = html.escape(CAPTIONS.get(name, name))
        if name == "heatmap.png" and (folder / "comparison.csv").exists():
            caption = "Bit widths of the Pareto configurations of the run with the largest hypervolume."
        out.append(
            f"<figure><img alt='{html.escape(name)}' src='{uri}'><figcaption>{caption}</figcaption></figure>"
        )
    return "".join(out) or "<p class='muted'>no plots</p>"


def _table(frame: pd.DataFrame, index: bool = False) -> str:
    if frame is None or frame.empty:
        return "<p class='muted'>(none)</p>"
    return (
        "<div class='scroll'>"
        + frame.to_html(index=index, float_format=lambda v: f"{v:.6g}", border=0)
        + "</div>"
    )


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>{body}"


def _versions() -> str:
    rows = [{"package": "python", "version": platform.python_version()}]
    for name in PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "not installed"
        rows.append({"package": name, "version": version})
    rows.append({"package": "platform", "version": platform.platform()})
    return _section("Versions", _table(pd.DataFrame(rows), index=False))


def _fmt(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) else html.escape(str(value))
