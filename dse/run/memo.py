"""The evaluation memo that the runs of one comparison share: no configuration is computed twice.

Keyed by the configuration (every variable's value, pinned ones included). A rejected record sits
under its key plus REJECTED_KEY (a key one longer: never a real one), beside any exact record.
"""

from __future__ import annotations

from collections.abc import Iterable

from dse.core.evaluation import Evaluation

Memo = dict[tuple[int, ...], Evaluation]
REJECTED_KEY = -1


def share(memo: Memo | None, key: tuple[int, ...], ev: Evaluation) -> None:
    """Keep the first successful (or rejected) record of a configuration for the other runs."""
    if memo is not None and (ev.ok or ev.rejected):
        memo.setdefault((*key, REJECTED_KEY) if ev.rejected else key, ev)


def shared(
    memo: Memo | None, key: tuple[int, ...], limits: dict[str, float], metrics: Iterable[str]
) -> Evaluation | None:
    """What was computed before (a reference point, another run of a comparison) that this request
    may take as its own: an exact record, else a rejected one. A request that may be rejected takes
    an infeasible exact record only from a reference point (every run evaluates those first), so
    that a run hands out the same records whatever other runs did before it. None: compute it."""
    if memo is None:
        return None
    found = memo.get(key)
    if found is not None and limits and not found.feasible and found.kind != "reference":
        found = None
    if found is None and limits:
        found = memo.get((*key, REJECTED_KEY))
    return found if found is not None and all(m in found.metrics for m in metrics) else None
