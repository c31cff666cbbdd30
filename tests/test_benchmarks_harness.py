"""The benchmark harness's mechanics, on trivial contenders (no timing is asserted).

What a reader of RESULTS.md relies on: contenders alternate after a warm-up; medians,
ratios and targets are computed as labelled; a feature that is missing shows as "not
yet" without failing the run; a peer in another process (and its stray output) works;
results land in the JSON file and the table. About 5 s (a few tiny child processes).
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks import _cli, _data, _env, _machine, _report, _store, _verdict
from benchmarks._env import environment
from benchmarks._harness import (
    CaseSpec,
    Contender,
    InProcess,
    NotYet,
    Plan,
    Ratio,
    Sample,
    check_target,
    require,
    run_case,
    run_plan,
)
from benchmarks._subprocess import FIRST_OUTPUT, ColdProcess, Worker
from benchmarks._suites import SUITES
from benchmarks.peers._server import LoopbackServer


class Scripted(Contender):
    """Returns preset times and records every call in a shared journal."""

    def __init__(self, name: str, times: list[float], journal: list[str], **kw: Any) -> None:
        super().__init__(name, **kw)
        self.times, self.journal, self.calls = list(times), journal, 0

    def start(self) -> None:
        self.journal.append(f"start {self.name}")

    def measure(self) -> Sample:
        self.journal.append(self.name)
        self.calls += 1
        return Sample(self.times.pop(0) if self.times else 1.0, cpu_seconds=0.5)

    def stop(self) -> None:
        self.journal.append(f"stop {self.name}")


def _quiet(_: str) -> None:
    pass


_REAL_OTHER_CORES = _machine.Meter.other_cores  # before quiet_machine replaces it


@pytest.fixture(autouse=True)
def quiet_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin the load average and other work low: nothing is busy unless a test says so."""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(_machine.Meter, "other_cores", lambda self: 0.0)


def _run(plan: Plan) -> Any:
    return run_plan("case", "a case", plan, log=_quiet)


def test_contenders_alternate_after_warmup_and_stop_in_reverse() -> None:
    journal: list[str] = []
    a, b = Scripted("A", [], journal), Scripted("B", [], journal, role="peer")
    _run(Plan([a, b], warmup=1, reps=3))
    assert journal == [
        "start A",
        "start B",
        "A",  # warm-up
        "B",
        "A",  # rounds
        "B",
        "A",
        "B",
        "A",
        "B",
        "stop B",
        "stop A",
    ]


def test_stats_and_ratios_use_medians_of_timed_runs_only() -> None:
    journal: list[str] = []
    ours = Scripted("ours", [99.0, 1.0, 3.0, 2.0, 2.0, 2.0], journal, items=10, nbytes=2_000_000)
    peer = Scripted("peer", [99.0, 4.0, 4.0, 8.0, 4.0, 4.0], journal, role="peer")
    plan = Plan(
        [ours, peer],
        [
            Ratio("ours", "peer", "time", "<= 1.05"),
            Ratio("ours", "peer", "speed", ">= 2"),
            Ratio("ours", "", "seconds", "< 1"),
        ],
        warmup=1,
        reps=5,
    )
    result = _run(plan)
    stats = result.contenders[0].stats
    assert (stats.median, stats.min, stats.max, stats.n) == (2.0, 1.0, 3.0, 5)
    assert stats.cores == pytest.approx(0.25)  # median of cpu/wall = 0.5 / 2
    time_ratio, speed_up, seconds = result.ratios
    assert (time_ratio.value, time_ratio.met, time_ratio.verdict) == (0.5, True, "met")
    # 2.0x by the medians, but round 2 alone gives 4 / 3: the target is inside the noise.
    assert (speed_up.value, speed_up.met, speed_up.verdict) == (2.0, None, "within noise")
    assert (seconds.value, seconds.met, seconds.verdict) == (2.0, False, "not met")
    assert speed_up.min_value == 4.0  # fastest peer run over fastest own run
    assert speed_up.pairs == 5


def test_missing_feature_is_not_yet_and_the_others_still_run() -> None:
    def build() -> Callable[[], None]:
        require("hublayer.no_such_package")
        return lambda: None

    journal: list[str] = []
    plan = Plan(
        [InProcess("ours", build), Scripted("peer", [], journal, role="peer")],
        [Ratio("ours", "peer", "time", "<= 1")],
        warmup=0,
        reps=2,
    )
    result = _run(plan)
    ours, peer = result.contenders
    assert ours.status == "not yet"
    assert "hublayer.no_such_package is not built yet" in ours.detail
    assert (peer.status, peer.stats.n) == ("ok", 2)
    assert result.status == "ok"
    assert (result.ratios[0].value, result.ratios[0].met) == (None, None)


def test_require_names_the_missing_attribute() -> None:
    assert require("json", "dumps") is json
    with pytest.raises(NotYet, match=r"json\.no_such_name is not built yet"):
        require("json", "no_such_name")


def test_errors_are_recorded_and_expected_failures_keep_their_message() -> None:
    def boom() -> None:
        raise ValueError("'Conv1_kernel:0_momentum' is not a valid scope name")

    plan = Plan(
        [
            InProcess("broken", lambda: boom),
            InProcess("known to fail", lambda: boom, role="peer", expect_failure=True),
            InProcess("fine", lambda: lambda: None, role="peer"),
        ],
        warmup=1,
        reps=2,
    )
    result = _run(plan)
    broken, known, fine = result.contenders
    assert broken.status == "error"
    assert broken.detail.startswith("measure: ValueError:")
    assert known.status == "fails as expected"
    assert "is not a valid scope name" in known.detail
    assert fine.stats.n == 2


def test_a_spent_budget_stops_after_min_reps() -> None:
    journal: list[str] = []
    plan = Plan([Scripted("A", [], journal)], warmup=0, reps=10, min_reps=2, budget_s=0.0)
    assert _run(plan).contenders[0].stats.n == 2


def test_inner_repeats_report_time_per_call_and_before_runs_untimed() -> None:
    calls: list[str] = []
    contender = InProcess(
        "x", lambda: lambda: calls.append("op"), inner=5, before=lambda: calls.append("before")
    )
    _run(Plan([contender], warmup=0, reps=2))
    assert calls == ["before"] + ["op"] * 5 + ["before"] + ["op"] * 5


def test_cleanup_runs_even_when_a_contender_fails_to_start() -> None:
    done: list[str] = []

    def bad() -> Callable[[], None]:
        raise OSError("no disk")

    plan = Plan([InProcess("x", bad)], cleanup=[lambda: done.append("cleaned")])
    result = _run(plan)
    assert result.status == "error"
    assert done == ["cleaned"]


@pytest.mark.parametrize(
    ("value", "target", "met"),
    [(1.0, "<= 1.05", True), (1.1, "<= 1.05", False), (2.0, ">= 2", True), (3.0, "", None)],
)
def test_check_target(value: float, target: str, met: bool | None) -> None:
    assert check_target(value, target) is met


def test_check_target_rejects_an_unknown_operator() -> None:
    with pytest.raises(ValueError, match="Expected a target like"):
        check_target(1.0, "== 1")


def test_run_case_records_a_case_that_cannot_start_yet() -> None:
    def build(_: Any) -> Plan:
        raise NotYet("hublayer.records.dataset is not built yet")

    result = run_case(CaseSpec("images", "Images", build), SUITES["quick"], log=_quiet)
    assert (result.status, result.detail) == (
        "not yet",
        "hublayer.records.dataset is not built yet",
    )
    assert result.suite == "quick"


# ---------------------------------------------------------------- verdicts


def _pair(ours: list[float], peer: list[float], target: str, kind: str = "speed") -> Any:
    journal: list[str] = []
    plan = Plan(
        [Scripted("ours", ours, journal), Scripted("peer", peer, journal, role="peer")],
        [Ratio("ours", "peer", kind, target)],  # type: ignore[arg-type]
        warmup=0,
        reps=len(ours),
    )
    return _run(plan).ratios[0]


def test_a_verdict_is_met_only_when_the_whole_interval_meets_the_target() -> None:
    steady = [1.0, 1.02, 0.98, 1.01, 0.99]
    peer = [2.0, 2.05, 1.95, 2.02, 1.98]
    assert _pair(steady, peer, ">= 1.8").verdict == "met"
    assert _pair(steady, peer, ">= 2.5").verdict == "not met"
    # The same medians, but one round where ours was slow: 2.0x is no longer certain.
    noisy = _pair([1.0, 1.02, 3.0, 0.5, 0.99], peer, ">= 1.8")
    assert noisy.value == pytest.approx(2.0 / 1.0)
    assert noisy.low < 1.8 < noisy.high
    assert (noisy.verdict, noisy.met) == ("within noise", None)
    assert noisy.low <= noisy.value <= noisy.high


def test_paired_rounds_cancel_noise_that_hits_both_contenders() -> None:
    # A busy minute slows both contenders of a round alike: the ratio stays 0.5.
    ratio = _pair([1.0, 2.0, 4.0, 1.5, 3.0], [2.0, 4.0, 8.0, 3.0, 6.0], "<= 0.6", "time")
    assert (ratio.low, ratio.value, ratio.high) == (0.5, 0.5, 0.5)
    assert ratio.verdict == "met"


def test_seconds_ratios_and_missing_sides_get_a_verdict_too() -> None:
    journal: list[str] = []
    plan = Plan(
        [Scripted("ours", [4.0, 4.2, 3.9, 4.1, 4.0], journal)],
        [Ratio("ours", "", "seconds", "<= 5"), Ratio("ours", "absent", "time", "<= 1")],
        warmup=0,
        reps=5,
    )
    seconds, missing = _run(plan).ratios
    assert 3.9 <= seconds.low <= seconds.high <= 4.2
    assert seconds.verdict == "met"
    assert (missing.value, missing.verdict, missing.met) == (None, "n/a", None)


def test_a_metric_each_run_reports_gets_its_own_verdict() -> None:
    accuracies = iter([0.96, 0.97, 0.955, 0.96, 0.965, 0.2])

    def build() -> Callable[[], dict[str, float]]:
        return lambda: {"test_accuracy": next(accuracies)}

    plan = Plan(
        [InProcess("demo", build)],
        [
            Ratio("demo", "", "metric", ">= 0.95", metric="test_accuracy"),
            Ratio("demo", "", "metric", ">= 0.5", metric="no_such_key"),
        ],
        warmup=0,
        reps=5,
    )
    accuracy, missing = _run(plan).ratios
    assert accuracy.value == 0.96
    assert 0.955 <= accuracy.low <= accuracy.high <= 0.97
    assert (accuracy.verdict, accuracy.min_value, accuracy.pairs) == ("met", 0.955, 5)
    assert (missing.value, missing.verdict) == (None, "n/a")
    figure, shown, spread, verdict = _report.ratio_text(accuracy.__dict__)
    assert (figure, shown, verdict) == ("median test_accuracy of demo", "0.96", "**met**")
    assert spread.endswith("; min 0.955")


def test_intervals_are_reproducible_and_reject_empty_sides() -> None:
    a, b = [1.0, 1.3, 0.9, 1.1, 1.2], [2.0, 1.7, 2.4, 2.1, 2.2]
    assert _verdict.interval(a, b, "speed") == _verdict.interval(a, b, "speed")
    assert _verdict.verdict(1.0, 2.0, "", pairs=5) == ""
    with pytest.raises(ValueError, match="Expected runs on both sides"):
        _verdict.interval(a, [], "time")


def test_fewer_than_five_pairs_report_the_figure_and_a_min_max_but_no_verdict() -> None:
    # Three steady pairs at 2.0x would "meet" >= 1.8 by any interval: still no verdict.
    few = _pair([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], ">= 1.8")
    assert (few.value, few.pairs, few.verdict, few.met) == (2.0, 3, "too few runs", None)
    # The interval is the min-max of the pairs' own ratios, not a bootstrap.
    assert (few.low, few.high) == (2.1 / 1.1, 1.9 / 0.9)
    _, _, spread, verdict = _report.ratio_text(few.__dict__)
    assert spread.startswith("min-max of 3 pairs: 1.91 to 2.11")
    assert verdict == "too few runs: n=3"
    # Four is still too few, even for a figure far from its target; five earn a verdict.
    assert _pair([1.0] * 4, [9.0] * 4, ">= 1.8").verdict == "too few runs"
    assert _pair([1.0] * 5, [9.0] * 5, ">= 1.8").verdict == "met"
    assert _pair([1.0] * 5, [9.0] * 5, ">= 10").verdict == "not met"


def test_one_run_is_a_point_and_never_met() -> None:
    """The demo's accuracy and scan_detect's rate were "yes" from a single run."""
    accuracy = iter([0.97])
    plan = Plan(
        [InProcess("demo", lambda: lambda: {"test_accuracy": next(accuracy)})],
        [Ratio("demo", "", "metric", ">= 0.95", metric="test_accuracy")],
        warmup=0,
        reps=1,
    )
    (ratio,) = _run(plan).ratios
    assert (ratio.value, ratio.low, ratio.high, ratio.pairs) == (0.97, 0.97, 0.97, 1)
    assert (ratio.verdict, ratio.met) == ("too few runs", None)
    _, shown, spread, verdict = _report.ratio_text(ratio.__dict__)
    assert (shown, spread, verdict) == ("0.97", "one run", "too few runs: n=1")


def test_a_redraw_applies_the_rules_to_results_stored_before_them(tmp_path: Path) -> None:
    """A results file written when one run could say "met" (and a 3-pair bootstrap was
    called a 90 % interval) is redrawn from its samples: no "yes", a min-max label."""
    case = _case_json("demo", 0.5)
    (ratio,) = case["ratios"]
    for contender in case["contenders"]:
        contender["samples"] = contender["samples"][:3]
    ratio.update(verdict="met", met=True, pairs=3, low=0.4, high=0.6)  # as the old rules wrote
    doc = {"environment": environment(), "runs": [], "cases": [case]}
    (tmp_path / "2026-01-01-vm.json").write_text(json.dumps(doc))
    md = tmp_path / "RESULTS.md"
    _store.redraw_results(["demo"], tmp_path, md)
    text = md.read_text()
    row = f"| demo | time ratio ours vs peer | 0.50{_report.TIMES} | min-max of 3 pairs: 0.50 to "
    assert row in text
    assert "| <= 1.05 | too few runs: n=3 |" in text
    assert "| yes |" not in text
    times = _report.TIMES
    assert f"(min-max of 3 pairs: 0.50 to 0.50{times}; min 0.50{times}); target <= 1.05" in text
    assert "90 % interval 0.50" not in text


def test_a_case_on_a_busy_machine_flags_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    journal: list[str] = []

    def run() -> Any:
        return _run(Plan([Scripted("A", [], journal)], warmup=0, reps=2))

    assert not run().busy
    # A high load from the case's own threads, with no other work, is not busy.
    monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 99.0, 99.0))
    result = run()
    assert (result.busy, result.peak_load, result.other_cores) == (False, 99.0, 0.0)
    # Other processes taking 1.5 cores is.
    monkeypatch.setattr(_machine.Meter, "other_cores", lambda self: 1.5)
    result = run()
    assert result.busy
    assert f"other processes used 1.50 of the {result.cpus} usable cores" in result.notes[-1]
    # Where other work cannot be measured, the load average decides.
    monkeypatch.setattr(_machine.Meter, "other_cores", lambda self: None)
    result = run()
    assert result.busy
    assert "the load average reached 99.0" in result.notes[-1]
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert not run().busy


def test_other_work_is_busy_cpu_time_of_our_cores_minus_our_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  900 0 900 5000 0 0 0 0 0 0\n"
        "cpu0 100 5 50 1000 40 1 2 3 0 0\n"  # busy: 100+5+50+1+2+3 = 161
        "cpu1 200 0 100 1000 0 0 0 0 0 0\n"  # busy: 300
        "cpu2 999 0 999 1000 0 0 0 0 0 0\n"  # not ours
        "intr 12345\n"
    )
    assert _machine.busy_ticks({0, 1}, stat) == 461
    assert _machine.busy_ticks({7}, stat) is None
    assert _machine.busy_ticks({0}, tmp_path / "missing") is None
    ticks = iter([1000, 1000 + 300])  # 3 s of busy CPU at 100 ticks a second
    clock = iter([10.0, 12.0])  # over 2 s of wall time
    own = iter([5.0, 6.0])  # of which 1 s is ours
    monkeypatch.setattr(_machine, "busy_ticks", lambda: next(ticks))
    monkeypatch.setattr(_machine, "_now", lambda: next(clock))
    monkeypatch.setattr(_machine, "_own_cpu", lambda: next(own))
    monkeypatch.setattr(_machine, "_ticks_per_second", lambda: 100)
    meter = _machine.Meter()
    assert _REAL_OTHER_CORES(meter) == pytest.approx(1.0)  # (3 s - 1 s) / 2 s


def test_computed_notes_quote_the_run_and_a_failing_note_keeps_the_figures() -> None:
    journal: list[str] = []
    plan = Plan(
        [Scripted("A", [2.0, 2.0], journal)],
        [Ratio("A", "", "seconds", "<= 5")],
        warmup=0,
        reps=2,
        notes=[
            "typed",
            lambda r: f"A used {r.contender('A').stats.cores:.2f} cores",  # type: ignore[union-attr]
            lambda r: None,
            lambda r: f"{r.contender('nobody').stats}",  # type: ignore[union-attr]
        ],
    )
    result = _run(plan)
    assert result.notes[:2] == ["typed", "A used 0.25 cores"]
    assert result.notes[2].startswith("(a computed note failed: AttributeError")
    assert len(result.notes) == 3
    assert result.ratio("A").verdict == "too few runs"  # 2 runs: a figure, no verdict


def test_min_seconds_loops_a_short_operation_and_reports_per_pass() -> None:
    calls: list[int] = []

    def build() -> Callable[[], dict[str, int]]:
        def op() -> dict[str, int]:
            calls.append(1)
            time.sleep(0.002)
            return {"examples": 10}

        return op

    contender = InProcess("short", build, min_seconds=0.02)
    contender.start()
    sample = contender.measure()
    assert sample.extras["passes"] == len(calls) >= 2
    assert sample.extras["examples"] == 10
    assert sample.seconds * len(calls) >= 0.02


def test_report_shows_cpu_per_item_verdicts_and_changed_code(tmp_path: Path) -> None:
    journal: list[str] = []
    ours = Scripted("ours", [1.0, 1.0, 3.0, 0.5, 1.0], journal, items=1000)
    plan = Plan(
        [ours, Scripted("peer", [2.0] * 5, journal, role="peer")],
        [Ratio("ours", "peer", "speed", ">= 1.8")],
        warmup=0,
        reps=5,
    )
    case = run_plan("tabular", "t", plan, log=_quiet).to_json()
    run = {
        "command": "python -m benchmarks --suite quick",
        "started": "now",
        "wall_s": 1.0,
        "commit_start": "aaaaaaa",
        "commit_end": "bbbbbbb",
        "dirty_start": False,
        "dirty_end": True,
    }
    md = tmp_path / "RESULTS.md"
    _store.write_results(
        environment(), [case], ["tabular"], results_dir=tmp_path, markdown=md, run=run
    )
    text = md.read_text()
    assert "| ours | ours | ok | 1000.0 ms |" in text  # median of 1.0, 1.0, 3.0, 0.5, 1.0
    assert "| 500 |" in text  # 0.5 CPU s per run over 1,000 items
    assert "| >= 1.8 | within noise |" in text
    assert "target >= 1.8: within noise" in text
    assert "the code changed while this run measured" in text
    assert "`aaaaaaa` at the start, `bbbbbbb` at the end" in text
    assert "uncommitted changes" in text


# ---------------------------------------------------------------- other processes


@pytest.fixture
def target_module(tmp_path: Path) -> dict[str, str]:
    """A module for worker targets, importable in the child through PYTHONPATH."""
    (tmp_path / "bench_targets.py").write_text(
        textwrap.dedent(
            """
            from benchmarks._harness import NotYet

            def counter(start=0):
                state = {"n": start}
                def op():
                    print("noise on stdout must not break the protocol")
                    state["n"] += 1
                    return {"n": state["n"]}
                return op

            def missing():
                raise NotYet("hublayer.thing is not built yet")

            def crashing():
                import os
                return lambda: os._exit(7)
            """
        )
    )
    return {"PYTHONPATH": str(tmp_path)}


def test_worker_runs_the_target_in_a_child_process(target_module: dict[str, str]) -> None:
    worker = Worker("w", "bench_targets:counter", {"start": 10}, env=target_module, inner=2)
    result = _run(Plan([worker], warmup=1, reps=2))
    (res,) = result.contenders
    assert res.status == "ok"
    assert res.stats.n == 2
    assert res.extras == {"n": 16}  # warm-up 2 calls + 2 rounds of 2, from 10


def test_worker_reports_not_yet_and_crashes(target_module: dict[str, str]) -> None:
    plan = Plan(
        [
            Worker("missing", "bench_targets:missing", env=target_module),
            Worker("crashing", "bench_targets:crashing", env=target_module),
        ],
        warmup=0,
        reps=1,
    )
    missing, crashing = _run(plan).contenders
    assert (missing.status, missing.detail) == ("not yet", "hublayer.thing is not built yet")
    assert crashing.status == "error"
    assert "worker exited with status 7" in crashing.detail


def test_cold_process_is_timed_to_its_marker() -> None:
    code = f"import json; print('loading'); print('{FIRST_OUTPUT} ' + json.dumps({{'cpu': 0.25}}))"
    sample = ColdProcess("cold", [sys.executable, "-c", code]).measure()
    assert sample.seconds > 0
    assert sample.cpu_seconds == 0.25


def test_cold_process_can_be_timed_to_a_successful_exit() -> None:
    sample = ColdProcess("cli", [sys.executable, "-c", "print('done')"], until="exit").measure()
    assert sample.seconds > 0
    assert sample.cpu_seconds is not None
    with pytest.raises(RuntimeError, match="exited with status 2 before output"):
        ColdProcess("cli", [sys.executable, "-c", "raise SystemExit(2)"], until="exit").measure()


def test_cold_process_exit_status_3_means_not_yet() -> None:
    code = "import sys; print('hublayer.KerasLayer is not built yet', file=sys.stderr); sys.exit(3)"
    with pytest.raises(NotYet, match="not built yet"):
        ColdProcess("cold", [sys.executable, "-c", code]).measure()
    with pytest.raises(RuntimeError, match="exited with status 1 before output"):
        ColdProcess("cold", [sys.executable, "-c", "raise SystemExit(1)"]).measure()


def test_loopback_server_serves_files_and_ignores_queries(tmp_path: Path) -> None:
    (tmp_path / "model.tar.gz").write_bytes(b"x" * 100_000)
    with LoopbackServer(tmp_path) as server:
        url = server.url("model.tar.gz") + "?tf-hub-format=compressed"
        with urllib.request.urlopen(url) as response:
            assert response.read() == b"x" * 100_000


# ---------------------------------------------------------------- data


def test_cached_data_is_built_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_data, "DATA_DIR", tmp_path)
    builds: list[Path] = []

    def build(folder: Path) -> None:
        builds.append(folder)
        (folder / "x.bin").write_bytes(b"1")

    first = _data.cached("thing", {"n": 1}, build)
    second = _data.cached("thing", {"n": 1}, build)
    other = _data.cached("thing", {"n": 2}, build)
    assert first == second != other
    assert len(builds) == 2
    assert (first / "x.bin").read_bytes() == b"1"
    assert json.loads((first / ".complete").read_text()) == {"n": 1}
    assert not list(tmp_path.glob(".*tmp*"))  # no leftover temp folders


def test_generated_data_is_deterministic(tmp_path: Path) -> None:
    assert _data._jpeg(7, 64, 10, 0) == _data._jpeg(7, 64, 10, 0)
    assert _data._jpeg(7, 64, 10, 0)[1] == 7
    assert _data._jpeg(7, 64, 10, 0) != _data._jpeg(8, 64, 10, 0)
    source = tmp_path / "src"
    (source / "variables").mkdir(parents=True)
    (source / "saved_model.pb").write_bytes(b"pb")
    (source / "variables" / "variables.index").write_bytes(b"idx")
    _data.tar_gz(source, tmp_path / "a.tar.gz")
    _data.tar_gz(source, tmp_path / "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        assert sorted(tar.getnames()) == [
            "saved_model.pb",
            "variables",
            "variables/variables.index",
        ]


# ---------------------------------------------------------------- results


def _case_json(name: str, value: float) -> dict[str, Any]:
    journal: list[str] = []
    plan = Plan(
        [Scripted("ours", [value] * 6, journal), Scripted("peer", [1.0] * 6, journal, role="peer")],
        [Ratio("ours", "peer", "time", "<= 1.05")],
        warmup=1,
        reps=5,
        notes=["a note | with a pipe"],
    )
    result = run_plan(name, f"title of {name}", plan, log=_quiet)
    result.suite, result.command = "quick", "python -m benchmarks --suite quick"
    return result.to_json()


def test_results_go_to_dated_json_and_a_markdown_table(tmp_path: Path) -> None:
    env = environment()
    md = tmp_path / "RESULTS.md"
    run = {"command": "python -m benchmarks --suite quick", "started": "now", "wall_s": 300.0}
    path = _store.write_results(
        env, [_case_json("forward", 0.5)], ["forward"], results_dir=tmp_path, markdown=md, run=run
    )
    assert path.name == f"{env['date'][:10]}-{env['host']}.json"
    doc = json.loads(path.read_text())
    assert doc["cases"][0]["ratios"][0]["value"] == 0.5
    text = md.read_text()
    for expected in (
        "`python -m benchmarks --suite quick` (`make bench`), started now, 5.0 min wall time",
        f"TensorFlow {env['versions']['tensorflow']}",
        "tf-keras",
        "tensorflow-hub",
        f"Python {env['python']}",
        f"CPUs: {env['cpus']} usable",
        f"| forward | time ratio ours vs peer | 0.50{_report.TIMES} "
        f"| 0.50 to 0.50{_report.TIMES}; min 0.50{_report.TIMES} | <= 1.05 | yes |",
        "- a note | with a pipe",
    ):
        assert expected in text


def test_a_partial_rerun_keeps_the_other_cases(tmp_path: Path) -> None:
    env, md = environment(), tmp_path / "RESULTS.md"
    order = ["forward", "finetune"]
    first = [_case_json("forward", 0.5), _case_json("finetune", 2.0)]
    _store.write_results(env, first, order, results_dir=tmp_path, markdown=md)
    path = _store.write_results(
        env, [_case_json("forward", 0.8)], order, results_dir=tmp_path, markdown=md
    )
    cases = json.loads(path.read_text())["cases"]
    assert [c["name"] for c in cases] == ["forward", "finetune"]
    assert [c["ratios"][0]["value"] for c in cases] == [0.8, 2.0]
    row = f"| finetune | time ratio ours vs peer | 2.00{_report.TIMES} "
    row += f"| 2.00 to 2.00{_report.TIMES}; min 2.00{_report.TIMES} | <= 1.05 | **no** |"
    assert row in md.read_text()


def test_a_later_day_replaces_only_its_cases_and_names_each_machine(tmp_path: Path) -> None:
    """RESULTS.md is drawn from every day's file: a partial run on another machine keeps
    the earlier cases, each with the CPU that measured it."""
    old_env = {**environment(), "date": "2026-01-01T00:00:00", "cpu_model": "Old CPU"}
    new_env = {**environment(), "date": "2026-02-01T00:00:00", "cpu_model": "New CPU"}
    md, order = tmp_path / "RESULTS.md", ["forward", "finetune"]
    first = [_case_json("forward", 0.5), _case_json("finetune", 2.0)]
    _store.write_results(old_env, first, order, results_dir=tmp_path, markdown=md)
    _store.write_results(
        new_env, [_case_json("forward", 0.8)], order, results_dir=tmp_path, markdown=md
    )
    text = md.read_text()
    assert f"| forward | time ratio ours vs peer | 0.80{_report.TIMES} " in text
    assert f"| finetune | time ratio ours vs peer | 2.00{_report.TIMES} " in text
    assert "New CPU" in text.split("## Summary")[0]
    assert "on " + str(old_env["cpus"]) + " CPUs of Old CPU" in text.split("## finetune")[1]
    assert "2026-01-01" in text  # both raw files are linked
    assert "2026-02-01" in text


def test_cli_runs_selected_cases_and_writes_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def build(_: Any) -> Plan:
        journal: list[str] = []
        return Plan([Scripted("ours", [], journal)], warmup=0, reps=1)

    spec = CaseSpec("tiny", "A tiny case", build)
    monkeypatch.setattr(_cli, "_cases", lambda: (spec,))
    # The child process would import the real registry; run the child's path in-process.
    monkeypatch.setattr(
        _cli,
        "_run_child",
        lambda s, suite, smoke=False: run_case(s, SUITES[suite], log=_quiet).to_json(),
    )
    assert _cli.main(["--list"]) == 0
    assert "tiny" in capsys.readouterr().out
    md = tmp_path / "RESULTS.md"
    argv = ["--case", "tiny", "--results-dir", str(tmp_path), "--markdown", str(md)]
    assert _cli.main(argv) == 0
    assert "`python -m benchmarks --suite quick --case tiny`" in md.read_text()
    assert len(list(tmp_path.glob("*.json"))) == 1
    with pytest.raises(SystemExit):
        _cli.main(["--case", "nope"])


def test_a_busy_case_runs_again_and_the_quietest_run_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = CaseSpec("tiny", "A tiny case", lambda _: Plan([]))
    monkeypatch.setattr(_cli, "_cases", lambda: (spec,))
    runs: list[dict[str, Any]] = []

    def child(s: CaseSpec, suite: str, smoke: bool = False) -> dict[str, Any]:
        other = [1.5, 0.05, 1.2][len(runs) % 3]
        case = _case_json("tiny", 0.5)
        case.update(busy=other > 0.2, other_cores=other, wall_s=float(len(runs)))
        runs.append(case)
        return case

    monkeypatch.setattr(_cli, "_run_child", child)
    argv = ["--case", "tiny", "--results-dir", str(tmp_path), "--markdown", str(tmp_path / "R.md")]
    assert _cli.main(argv) == 0
    (case,) = json.loads(next(tmp_path.glob("*.json")).read_text())["cases"]
    assert len(runs) == 2
    assert (case["busy"], case["other_cores"], case["reruns"]) == (False, 0.05, 1)
    assert "run 2 times because the machine was busy" in (tmp_path / "R.md").read_text()
    runs.clear()
    assert _cli.main([*argv, "--rerun-busy", "0"]) == 0
    (case,) = json.loads(next(tmp_path.glob("*.json")).read_text())["cases"]
    assert (len(runs), case["busy"], case["reruns"]) == (1, True, 0)


def test_a_run_records_the_commit_at_its_start_and_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = CaseSpec("tiny", "A tiny case", lambda _: Plan([]))
    monkeypatch.setattr(_cli, "_cases", lambda: (spec,))
    monkeypatch.setattr(_cli, "_run_child", lambda s, suite, smoke=False: _case_json("tiny", 0.5))
    commits = iter([{"commit": "1111111", "dirty": False}, {"commit": "2222222", "dirty": True}])
    monkeypatch.setattr(_cli, "provenance", lambda: next(commits))
    md = tmp_path / "R.md"
    assert _cli.main(["--case", "tiny", "--results-dir", str(tmp_path), "--markdown", str(md)]) == 0
    (run,) = json.loads(next(tmp_path.glob("*.json")).read_text())["runs"]
    assert (run["commit_start"], run["commit_end"]) == ("1111111", "2222222")
    assert (run["dirty_start"], run["dirty_end"]) == (False, True)
    assert "**the code changed while this run measured**" in md.read_text()


def test_provenance_names_the_checked_out_commit() -> None:
    import subprocess

    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    code = _env.provenance()
    assert code["commit"] == head
    assert code["dirty"] in (True, False)


def test_smoke_runs_each_contender_once_without_warmup() -> None:
    journal: list[str] = []

    def build(_: Any) -> Plan:
        return Plan([Scripted("A", [], journal)], warmup=3, reps=9)

    result = run_case(CaseSpec("c", "C", build), SUITES["quick"], log=_quiet, smoke=True)
    assert journal == ["start A", "A", "stop A"]
    stats = result.contenders[0].stats
    assert stats is not None
    assert stats.n == 1


def test_cli_child_mode_writes_one_case_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def build(_: Any) -> Plan:
        raise NotYet("not built")

    monkeypatch.setattr(_cli, "_cases", lambda: (CaseSpec("tiny", "A tiny case", build),))
    out = tmp_path / "case.json"
    assert _cli.main(["--one", "tiny", "--json-out", str(out)]) == 0
    assert json.loads(out.read_text())["status"] == "not yet"
