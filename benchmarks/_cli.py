"""``python -m benchmarks --suite quick|full [--case NAME ...]``.

Each case runs in its own process, so one case's models, thread pools and memory do not
leak into the next, and a crash or a hang (past the case's timeout) costs one case, not
the run. The parent collects each case's JSON, then writes ``results/<date>-<host>.json``
and ``RESULTS.md``.

Exit status: 0 when every case ran (contenders "not yet" included), 1 when a case or a
contender failed unexpectedly, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._env import environment, provenance
from benchmarks._harness import CaseResult, CaseSpec, run_case
from benchmarks._report import fmt_seconds, ratio_text
from benchmarks._store import HERE, redraw_results, write_results
from benchmarks._subprocess import ROOT, child_env
from benchmarks._suites import SUITES
from hublayer.cli._quiet import is_noise

__all__ = ["main"]


def _cases() -> tuple[CaseSpec, ...]:
    from benchmarks.cases import CASES

    return CASES


def _parser(names: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure hublayer against its peers, side by side, in one run.",
        epilog="Example: python -m benchmarks --suite quick --case forward --case images",
    )
    parser.add_argument("--suite", choices=sorted(SUITES), default="quick")
    parser.add_argument(
        "--case",
        action="append",
        choices=names,
        metavar="NAME",
        help=f"run only this case (repeatable); one of: {', '.join(names)}",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="one run of each contender, no warm-up: checks that every "
        "case works; its figures mean nothing (implies --no-save)",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="print results; write no JSON or RESULTS.md"
    )
    parser.add_argument(
        "--rerun-busy",
        type=int,
        default=1,
        metavar="N",
        help="run a case again, up to N times, while other processes keep the machine "
        "busy, and keep its quietest run (default: 1; 0 to only flag it)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=HERE / "results",
        help="where <date>-<host>.json goes (default: benchmarks/results)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=HERE / "RESULTS.md",
        help="the table to write (default: benchmarks/RESULTS.md)",
    )
    parser.add_argument(
        "--redraw",
        action="store_true",
        help="run nothing: draw RESULTS.md again from every results file",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child: run this case in-process
    parser.add_argument("--json-out", help=argparse.SUPPRESS)  # child: write result here
    return parser


def _log(line: str) -> None:
    print(line, flush=True)


def _run_child(spec: CaseSpec, suite: str, smoke: bool = False) -> dict[str, Any]:
    """Run one case in a child process; a crash or timeout becomes an error result."""
    timeout = spec.timeout_s[1] if suite == "full" else spec.timeout_s[0]
    with tempfile.TemporaryDirectory(prefix="hublayer-bench-") as tmp:
        out = Path(tmp) / "case.json"
        argv = [sys.executable, "-m", "benchmarks", "--suite", suite, "--one", spec.name]
        argv += ["--smoke"] if smoke else []
        proc = subprocess.Popen(
            [*argv, "--json-out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=child_env(),
            start_new_session=True,  # so a timeout can stop its workers and servers too
        )
        assert proc.stdout is not None  # stdout=PIPE above
        tail: collections.deque[str] = collections.deque(maxlen=20)
        timed_out = False

        def stop_group() -> None:
            nonlocal timed_out
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, stop_group)
        timer.start()
        try:
            for line in proc.stdout:
                if is_noise(line):  # TensorFlow's known start-up notices, by their message
                    continue
                tail.append(line.rstrip())
                print(line, end="", flush=True)
            proc.wait()
        finally:
            timer.cancel()
        if out.exists():
            result: dict[str, Any] = json.loads(out.read_text())
            return result
        why = f"timed out after {timeout:.0f} s" if timed_out else f"exit status {proc.returncode}"
        last = next((x for x in reversed(tail) if x.strip()), "")
        return CaseResult(spec.name, spec.title, "error", detail=f"{why}: {last}"[:400]).to_json()


def _ratio_line(ratio: dict[str, Any]) -> str:
    figure, shown, spread, verdict = ratio_text(ratio)
    goal = f"; target {ratio['target']}: {verdict.strip('*')}" if ratio["target"] else ""
    return f"{figure}: {shown}" + (f" ({spread})" if spread else "") + goal


def _rerun_if_busy(spec: CaseSpec, suite: str, case: dict[str, Any], times: int) -> dict[str, Any]:
    """Run a case again while it comes back busy, up to ``times``; keep the quietest run."""
    reruns = 0
    while case.get("busy") and reruns < times:
        reruns += 1
        other = case.get("other_cores")
        busy = f"other processes {other:.2f} cores" if other is not None else "high load"
        _log(f"=== {spec.name}: busy machine ({busy}); running it again ({reruns}/{times})")
        again = _run_child(spec, suite)
        quieter = (again.get("other_cores") or 0.0) < (case.get("other_cores") or 0.0)
        if not again.get("busy") or quieter:
            case = again
    case["reruns"] = reruns
    return case


def _failed(case: dict[str, Any]) -> bool:
    return case["status"] == "error" or any(c["status"] == "error" for c in case["contenders"])


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the selected cases. Returns the exit status."""
    cases = _cases()
    by_name = {c.name: c for c in cases}
    args = _parser(list(by_name)).parse_args(argv)
    suite = SUITES[args.suite]
    if args.list:
        for spec in cases:
            print(f"{spec.name:12s} {spec.title}")
        return 0
    if args.redraw:
        redraw_results([c.name for c in cases], args.results_dir, args.markdown)
        print(f"redrew {args.markdown} from {args.results_dir}")
        return 0
    if args.one:  # child process: one case, in this process
        if args.one not in by_name:
            print(f"unknown case {args.one!r}; expected one of {sorted(by_name)}", file=sys.stderr)
            return 2
        result = run_case(by_name[args.one], suite, log=_log, smoke=args.smoke)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(result.to_json(), default=str))
        return 0

    selected = [by_name[n] for n in args.case] if args.case else list(cases)
    command = "python -m benchmarks --suite " + args.suite
    command += "".join(f" --case {s.name}" for s in selected) if args.case else ""
    t0 = time.perf_counter()
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    load_before = os.getloadavg()[0]
    code_before = provenance()
    results: list[dict[str, Any]] = []
    for spec in selected:
        _log(f"=== {spec.name}: {spec.title} ({args.suite} suite)")
        case = _run_child(spec, args.suite, args.smoke)
        case = _rerun_if_busy(spec, args.suite, case, 0 if args.smoke else args.rerun_busy)
        case["command"] = command
        results.append(case)
        _log(f"=== {spec.name}: {case['status']} in {fmt_seconds(case.get('wall_s', 0.0))}")
        for ratio in case["ratios"]:
            _log(f"    {_ratio_line(ratio)}")
    wall = time.perf_counter() - t0
    _log(f"all cases done in {fmt_seconds(wall)}")
    code_after = provenance()
    if code_after["commit"] != code_before["commit"]:
        _log(
            f"note: the commit changed during the run: {code_before['commit']} → "
            f"{code_after['commit']}"
        )
    if not (args.no_save or args.smoke):
        path = write_results(
            environment(),
            results,
            [c.name for c in cases],
            results_dir=args.results_dir,
            markdown=args.markdown,
            run={
                "command": command,
                "started": started,
                "wall_s": wall,
                "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "commit_start": code_before["commit"],
                "dirty_start": code_before["dirty"],
                "commit_end": code_after["commit"],
                "dirty_end": code_after["dirty"],
            },
        )
        _log(f"wrote {path} and {args.markdown}")
    return 1 if any(_failed(c) for c in results) else 0
