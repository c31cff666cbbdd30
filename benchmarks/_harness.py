"""The measuring loop: contenders, alternation, statistics, ratios.

A case is a list of contenders that do the same work. After a warm-up, the harness runs
them in turn, A B C A B C ..., so that a slow minute on a shared machine hits all of
them alike, and reports the median, min and max of each, and the ratios the case names.

Contenders are defined in ``_contender.py``, results and figures in ``_results.py``
(both re-exported here, so a case imports all it needs from one place). A contender
whose feature is not built yet raises :class:`NotYet` from ``start`` and is reported as
"not yet", with the reason, instead of failing the run.

How to write a case whose verdicts survive noise (all of this is automatic once the
case names its figures):

- **Ratios get an interval and a verdict.** Name each figure with
  ``Ratio(subject, peer, kind, target)``. The harness computes the median ratio, a 90 %
  bootstrap interval over the paired rounds (``low``, ``high``), the ratio of the
  fastest runs (``min_value``), and a ``verdict``: "met" only when the whole interval
  meets the target, "not met" when none of it does, "within noise" otherwise (see
  ``_verdict.py``). The summary says "yes" only for "met". A figure from fewer than 5
  paired rounds gets no verdict ("too few runs: n=K") and a min-max, not a 90 %
  interval: give a case at least 5 rounds (``reps`` and ``min_reps``) where it wants one.
- **Nothing measured is typed.** A note that states a figure (cores, an output
  difference, a record count) is a callable ``note(result) -> str | None``, resolved
  after the runs: ``result.contender(name).stats.cores``, ``.stats.cpu``,
  ``.extras[key]`` (what the timed operation returned as a dict) and
  ``result.ratio(subject, peer)`` are there to quote. Compute an output difference
  inside the run (return it in the operation's dict) or in ``start``.
- **Short operations loop.** ``InProcess(..., min_seconds=2.0)`` repeats the operation
  until a run lasts at least that long and reports the time per pass, so one run is
  not one 0.2 s blip. Give ``items`` and the table shows CPU µs per item.
- **A busy machine is flagged.** A case measures how many cores other processes took
  while it ran (``other_cores``, see ``_machine.py``; its own threads and children do
  not count) and reads the load average before, during (each round) and after. When
  other work took more than a tenth of the usable cores (or, where that cannot be
  measured, the load exceeded them) the case is marked ``busy`` and gets a note saying
  so, in the table too; ``python -m benchmarks`` then runs it again (``--rerun-busy``,
  once by default) and keeps the quietest run.

Example:
    >>> import time
    >>> a = InProcess("sleep 1 ms", lambda: lambda: time.sleep(0.001))
    >>> b = InProcess("sleep 2 ms", lambda: lambda: time.sleep(0.002), role="peer")
    >>> plan = Plan(
    ...     [a, b],
    ...     [Ratio("sleep 1 ms", "sleep 2 ms", "time", "<= 1.0")],
    ...     reps=5,
    ...     notes=[lambda r: f"{r.contender('sleep 1 ms').stats.n} runs of each"],
    ... )
    >>> result = run_plan("demo", "two sleeps", plan, log=lambda line: None)
    >>> [c.status for c in result.contenders], result.notes[0]
    (['ok', 'ok'], '5 runs of each')
    >>> r = result.ratio("sleep 1 ms", "sleep 2 ms")
    >>> r.low <= r.value <= r.high, r.verdict in ("met", "within noise", "not met")
    (True, True)
"""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks._contender import Contender, InProcess, NotYet, Sample, require
from benchmarks._env import cpu_count, provenance
from benchmarks._machine import Meter, is_busy
from benchmarks._results import (
    CaseResult,
    ContenderResult,
    Ratio,
    RatioResult,
    Stats,
    Status,
    compute_ratio,
)
from benchmarks._verdict import MIN_PAIRS, Verdict, check_target

__all__ = [
    "CaseResult",
    "CaseSpec",
    "Contender",
    "ContenderResult",
    "InProcess",
    "NotYet",
    "Plan",
    "Ratio",
    "RatioResult",
    "Sample",
    "Stats",
    "Verdict",
    "check_target",
    "require",
    "run_case",
    "run_plan",
]

Log = Callable[[str], None]
Note = str | Callable[["CaseResult"], str | None]


@dataclass
class Plan:
    """What a case runs: contenders, the figures to report, and how many repetitions.

    Args:
        contenders: run in this order in every round.
        ratios: the figures to compute from the medians.
        warmup: untimed runs of each contender before the rounds.
        reps: timed rounds (each contender once per round).
        min_reps: rounds always run, even when ``budget_s`` is spent (5 by default: the
            fewest that earn a verdict, see ``_verdict.MIN_PAIRS``).
        budget_s: stop after the round that passes this many seconds of measuring.
        notes: text for the table (sizes, what "usual style" means). A note may be a
            callable ``note(result) -> str | None``, called with the finished
            :class:`CaseResult`: use it for anything measured (cores, an output
            difference), so no figure in a note is typed by hand. None drops the note.
        cleanup: called after the contenders stop (servers, temp folders), last first.
    """

    contenders: Sequence[Contender]
    ratios: Sequence[Ratio] = ()
    warmup: int = 1
    reps: int = 5
    min_reps: int = MIN_PAIRS
    budget_s: float = math.inf
    notes: list[Note] = field(default_factory=list)
    cleanup: list[Callable[[], object]] = field(default_factory=list)


def _short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:400]


def _fmt(seconds: float) -> str:
    if seconds < 0.01:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1e3:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def run_plan(name: str, title: str, plan: Plan, *, log: Log = print) -> CaseResult:
    """Start the contenders, warm up, alternate them, and summarise.

    Args:
        name: the case's short name.
        title: one line shown in the table.
        plan: contenders, ratios and repetitions.
        log: receives one progress line at a time.

    Returns:
        A :class:`CaseResult`. Contenders that are not built yet, fail as expected, or
        raise, are recorded with that status; the others are measured.
    """
    t_case = time.perf_counter()
    results = {
        c.name: ContenderResult(c.name, c.role, "ok", items=c.items, nbytes=c.nbytes)
        for c in plan.contenders
    }
    active: list[Contender] = []
    started: list[Contender] = []
    peak = os.getloadavg()[0]
    meter = Meter()

    def fail(contender: Contender, exc: BaseException, when: str) -> None:
        res = results[contender.name]
        if isinstance(exc, NotYet):
            res.status, res.detail = "not yet", str(exc)
        elif contender.expect_failure:
            res.status, res.detail = "fails as expected", _short_error(exc)
        else:
            res.status, res.detail = "error", f"{when}: {_short_error(exc)}"
            log("".join(traceback.format_exception(exc)).rstrip())
        log(f"[{name}] {contender.name}: {res.status}: {res.detail}")

    def sample(contender: Contender, timed: bool) -> None:
        try:
            s = contender.measure()
        except Exception as exc:
            fail(contender, exc, "measure")
            active.remove(contender)
            return
        if contender.expect_failure:
            results[contender.name].detail = "expected to fail, but ran"
        if timed:
            results[contender.name].samples.append(s)
            results[contender.name].extras.update(s.extras)
        label = "rep" if timed else "warm-up"
        log(f"[{name}] {contender.name} {label}: {_fmt(s.seconds)}")

    try:
        for contender in plan.contenders:
            log(f"[{name}] starting {contender.name}")
            started.append(contender)
            try:
                contender.start()
            except Exception as exc:
                fail(contender, exc, "start")
                continue
            active.append(contender)
        for contender in list(active):
            for _ in range(plan.warmup):
                if contender in active:
                    sample(contender, timed=False)
        t_rounds = time.perf_counter()
        for round_no in range(plan.reps):
            for contender in list(active):
                sample(contender, timed=True)
            peak = max(peak, os.getloadavg()[0])
            spent = time.perf_counter() - t_rounds
            if round_no + 1 >= plan.min_reps and spent > plan.budget_s:
                log(f"[{name}] budget of {plan.budget_s:.0f} s spent after {round_no + 1} rounds")
                break
    finally:
        for contender in reversed(started):
            try:
                contender.stop()
            except Exception as exc:
                log(f"[{name}] {contender.name}: stop failed: {_short_error(exc)}")
        for cleanup in reversed(plan.cleanup):
            try:
                cleanup()
            except Exception as exc:
                log(f"[{name}] cleanup failed: {_short_error(exc)}")

    for res in results.values():
        if res.samples:
            res.stats = Stats.of(res.samples)
    ratios = [compute_ratio(r, results) for r in plan.ratios]
    contenders = list(results.values())
    statuses = {c.status for c in contenders}
    status: Status = "ok" if statuses & {"ok", "fails as expected"} else "not yet"
    if "error" in statuses and not any(c.stats for c in contenders):
        status = "error"
    cpus = cpu_count()
    other = meter.other_cores()  # the workers and servers have been waited for above
    result = CaseResult(
        name=name,
        title=title,
        status=status,
        contenders=contenders,
        ratios=ratios,
        wall_s=time.perf_counter() - t_case,
        peak_load=round(peak, 2),
        cpus=cpus,
        busy=is_busy(other, peak, cpus),
        other_cores=None if other is None else round(other, 3),
    )
    result.notes = _notes(plan.notes, result, log)
    return result


def _notes(notes: Sequence[Note], result: CaseResult, log: Log) -> list[str]:
    """Resolve computed notes against the finished result; a failing one says so."""
    out = []
    for note in notes:
        if isinstance(note, str):
            out.append(note)
            continue
        try:
            text = note(result)
        except Exception as exc:  # a note must not lose the case's figures
            log(f"[{result.name}] a computed note failed: {_short_error(exc)}")
            text = f"(a computed note failed: {_short_error(exc)})"
        if text:
            out.append(text)
    if result.busy:
        out.append(_busy_note(result))
    return out


def _busy_note(result: CaseResult) -> str:
    if result.other_cores is not None:
        what = (
            f"other processes used {result.other_cores:.2f} of the {result.cpus} usable "
            f"cores on average while this case ran (load average up to {result.peak_load:.1f})"
        )
    else:
        what = (
            f"the load average reached {result.peak_load:.1f} on {result.cpus} cores while "
            "this case ran"
        )
    return (
        f"**Busy machine**: {what}, so its runs are noisy: read the intervals and "
        "verdicts, not the medians alone."
    )


@dataclass(frozen=True)
class CaseSpec:
    """A named case: how to build its plan for a suite.

    Args:
        name: short name used by ``--case`` and in the table.
        title: one line describing what is measured.
        build: ``build(suite)`` returns the :class:`Plan`; it may generate data, and may
            raise :class:`NotYet` when nothing in the case can run yet.
        timeout_s: ``(quick, full)`` seconds the case may take before it is stopped.
        issue: the issue whose figures the case gives (``"#4"``), for the summary.
    """

    name: str
    title: str
    build: Callable[[Any], Plan]
    timeout_s: tuple[float, float] = (300.0, 1800.0)
    issue: str = ""


def run_case(spec: CaseSpec, suite: Any, *, log: Log = print, smoke: bool = False) -> CaseResult:
    """Build ``spec``'s plan for ``suite`` and run it; a :class:`NotYet` plan is recorded.

    Args:
        spec: the case.
        suite: a :class:`benchmarks._suites.Suite`.
        log: receives progress lines.
        smoke: run each contender once, without warm-up (checks that the case works).

    Returns:
        The :class:`CaseResult`, with ``suite`` and ``started`` filled in.
    """
    import datetime as dt

    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    code = provenance()
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        plan = spec.build(suite)
        if smoke:
            plan.warmup, plan.reps, plan.min_reps = 0, 1, 1
    except NotYet as exc:
        log(f"[{spec.name}] not yet: {exc}")
        result = CaseResult(spec.name, spec.title, "not yet", detail=str(exc))
    except Exception as exc:
        log("".join(traceback.format_exception(exc)).rstrip())
        result = CaseResult(spec.name, spec.title, "error", detail=f"setup: {_short_error(exc)}")
    else:
        result = run_plan(spec.name, spec.title, plan, log=log)
    result.suite, result.started, result.issue = suite.name, started, spec.issue
    result.commit, result.dirty = code["commit"], code["dirty"]
    result.wall_s = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    result.load = [round(load_before, 2), round(load_after, 2)]
    result.cpus = cpu_count()
    result.peak_load = round(max(result.peak_load, load_before, load_after), 2)
    busy = is_busy(result.other_cores, result.peak_load, result.cpus)
    if busy and not result.busy and result.contenders:
        result.busy = True
        result.notes.append(_busy_note(result))
    return result
