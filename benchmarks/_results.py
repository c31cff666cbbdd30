"""What a case measured: statistics, figures with their verdicts, and the case's result.

:class:`Ratio` names a figure; :func:`compute_ratio` computes it from the runs, with its
interval and verdict (``_verdict.py``). The dataclasses here are what the JSON holds.
Re-exported by ``_harness.py``, which is where cases import them from.

Example:
    >>> stats = Stats.of([Sample(2.0, 1.0), Sample(4.0, 2.0), Sample(3.0, 1.5)])
    >>> stats.median, stats.cores, stats.cpu
    (3.0, 0.5, 1.5)
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from benchmarks import _verdict
from benchmarks._contender import Sample
from benchmarks._verdict import Verdict, interval, min_ratio, pair_count, verdict

__all__ = [
    "CaseResult",
    "ContenderResult",
    "Ratio",
    "RatioResult",
    "Stats",
    "Status",
    "compute_ratio",
    "recompute_ratios",
]

Status = Literal["ok", "not yet", "error", "fails as expected", "skipped"]


@dataclass(frozen=True)
class Ratio:
    """A figure the case reports: ``subject`` against ``peer``.

    Args:
        subject: the contender the figure is about (usually ours).
        peer: the contender it is compared with.
        kind: ``"time"``: median time of subject / median time of peer (lower is better);
            ``"speed"``: median time of peer / median time of subject, i.e. throughput of
            subject over throughput of peer, or "x faster" (higher is better);
            ``"seconds"``: the subject's median in seconds, for an absolute target
            (``peer`` is then ``""``);
            ``"metric"``: the median of a value each run reports (``metric``, a key of
            the operation's dict, such as an accuracy), for an absolute target.
        target: the goal, such as ``"<= 1.05"`` or ``">= 2"``, or ``""`` for none.
        metric: the key of a ``"metric"`` figure.

    Example:
        >>> Ratio("demo", "", "metric", ">= 0.95", metric="test_accuracy").metric
        'test_accuracy'
    """

    subject: str
    peer: str
    kind: Literal["time", "speed", "seconds", "metric"]
    target: str = ""
    metric: str = ""


@dataclass
class Stats:
    """Summary of one contender's samples (seconds)."""

    median: float
    min: float
    max: float
    n: int
    cores: float | None
    cpu: float | None = None  #: median CPU seconds of a run, all threads together

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Stats:
        secs = [s.seconds for s in samples]
        usage = [s.cpu_seconds / s.seconds for s in samples if s.cpu_seconds and s.seconds > 0]
        cpu = [s.cpu_seconds for s in samples if s.cpu_seconds is not None]
        return cls(
            median=statistics.median(secs),
            min=min(secs),
            max=max(secs),
            n=len(secs),
            cores=statistics.median(usage) if usage else None,
            cpu=statistics.median(cpu) if cpu else None,
        )


@dataclass
class ContenderResult:
    """What one contender did: its status, samples and summary."""

    name: str
    role: str
    status: Status
    detail: str = ""
    items: int | None = None
    nbytes: int | None = None
    samples: list[Sample] = field(default_factory=list)
    stats: Stats | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class RatioResult:
    """A computed figure with its interval and verdict (see ``_verdict.py``).

    ``value`` is the ratio of the medians, None when either side has no timing;
    ``low``/``high`` the 90 % bootstrap interval over ``pairs`` paired rounds, or their
    min-max below 5 pairs (``_verdict.interval_label``); ``min_value`` the ratio of the
    fastest runs; ``verdict`` is "met", "not met", "within noise", "too few runs" (under 5
    pairs, whatever the value), "n/a" (no value) or "" (no target); ``met`` is True or
    False only for "met" or "not met".
    """

    subject: str
    peer: str
    kind: str
    target: str
    value: float | None
    met: bool | None
    verdict: Verdict = ""
    low: float | None = None
    high: float | None = None
    min_value: float | None = None
    pairs: int = 0
    metric: str = ""


@dataclass
class CaseResult:
    """The outcome of one case, ready for JSON."""

    name: str
    title: str
    status: Status
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    contenders: list[ContenderResult] = field(default_factory=list)
    ratios: list[RatioResult] = field(default_factory=list)
    wall_s: float = 0.0
    load: list[float] = field(default_factory=list)
    issue: str = ""
    suite: str = ""
    command: str = ""
    started: str = ""
    peak_load: float = 0.0
    cpus: int = 0
    busy: bool = False
    other_cores: float | None = None
    commit: str = ""
    dirty: bool | None = None

    def contender(self, name: str) -> ContenderResult | None:
        """The result of the contender called ``name``, or None (for computed notes)."""
        return next((c for c in self.contenders if c.name == name), None)

    def ratio(self, subject: str, peer: str = "") -> RatioResult | None:
        """The first computed ratio of ``subject`` against ``peer``, or None."""
        return next((r for r in self.ratios if (r.subject, r.peer) == (subject, peer)), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compute_ratio(ratio: Ratio, by_name: dict[str, ContenderResult]) -> RatioResult:
    mine, theirs = by_name.get(ratio.subject), by_name.get(ratio.peer)
    alone = ratio.kind in ("seconds", "metric")
    kind: _verdict.Kind = "seconds" if ratio.kind == "metric" else ratio.kind
    if ratio.kind == "metric":
        runs = mine.samples if mine else []
        a = [float(s.extras[ratio.metric]) for s in runs if ratio.metric in s.extras]
    else:
        a = [s.seconds for s in mine.samples] if mine else []
    b = [s.seconds for s in theirs.samples] if theirs and not alone else []
    head = (ratio.subject, ratio.peer, ratio.kind, ratio.target)
    if not a or (not alone and not b):
        v = verdict(None, None, ratio.target, pairs=0)
        return RatioResult(*head, None, None, v, metric=ratio.metric)
    pairs = pair_count(a, b, kind)
    low, high = interval(a, b, kind)
    v = verdict(low, high, ratio.target, pairs=pairs)
    return RatioResult(
        *head,
        value=_verdict.ratio(a, b, kind),
        met={"met": True, "not met": False}.get(v),
        verdict=v,
        low=low,
        high=high,
        min_value=min_ratio(a, b, kind),
        pairs=pairs,
        metric=ratio.metric,
    )


def recompute_ratios(case: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored case's figures computed again from its runs, by today's rules.

    Results files keep every run's sample, so a change of rule (such as no verdict below
    5 pairs) reaches RESULTS.md on a redraw without measuring again. A case stored
    without samples keeps its stored figures.

    Example:
        >>> case = {"contenders": [{"name": "a", "samples": [{"seconds": 2.0}]}],
        ...     "ratios": [{"subject": "a", "peer": "", "kind": "seconds", "target": "<= 3",
        ...         "verdict": "met"}]}
        >>> [(r["value"], r["verdict"], r["pairs"]) for r in recompute_ratios(case)]
        [(2.0, 'too few runs', 1)]
    """
    stored = case.get("contenders", [])
    if not any(c.get("samples") for c in stored):
        return list(case.get("ratios", []))
    by_name = {
        c["name"]: ContenderResult(
            c["name"],
            c.get("role", ""),
            c.get("status", "ok"),
            samples=[Sample(**s) for s in c.get("samples", [])],
        )
        for c in stored
    }
    return [
        asdict(
            compute_ratio(
                Ratio(r["subject"], r["peer"], r["kind"], r.get("target", ""), r.get("metric", "")),
                by_name,
            )
        )
        for r in case.get("ratios", [])
    ]
