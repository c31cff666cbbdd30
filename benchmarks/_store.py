"""Results files: ``results/<date>-<host>.json`` written and merged, and ``RESULTS.md``
drawn from all of them.

A run that selects some cases (``--case``) updates those cases in the day's JSON file and
keeps the others, and the table is always drawn from every file, so a partial rerun never
drops figures. Each case keeps the command, suite and time it was measured with, and
every run's sample: a redraw computes each figure again from the samples by today's
rules (:func:`benchmarks._results.recompute_ratios`), and ``_report.py`` draws the table.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> collect_results(folder)["cases"]
    []
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks._report import render_markdown
from benchmarks._results import recompute_ratios

__all__ = ["HERE", "collect_results", "merge_results", "redraw_results", "write_results"]

HERE = Path(__file__).resolve().parent


def merge_results(
    path: Path,
    environment: Mapping[str, Any],
    cases: Iterable[Mapping[str, Any]],
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Read ``path`` if it exists, replace its cases by name with ``cases``, add ``run``.

    Runs whose cases have all been replaced since are dropped from the list.
    """
    old: dict[str, Any] = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
    new = list(cases)
    names = {c["name"] for c in new}
    merged = [c for c in old.get("cases", []) if c["name"] not in names] + new
    kept = {c.get("command") for c in merged}
    runs = [r for r in old.get("runs", []) if r.get("command") in kept]
    if run is not None:
        runs = [r for r in runs if r.get("command") != run.get("command")] + [dict(run)]
    return {"file": path.name, "environment": dict(environment), "runs": runs, "cases": merged}


def write_results(
    environment: Mapping[str, Any],
    cases: Sequence[Mapping[str, Any]],
    order: Sequence[str],
    *,
    results_dir: Path = HERE / "results",
    markdown: Path = HERE / "RESULTS.md",
    run: Mapping[str, Any] | None = None,
) -> Path:
    """Merge ``cases`` into the day's JSON file, then redraw the Markdown table.

    Args:
        environment: from :func:`benchmarks._env.environment`.
        cases: case results as JSON-able dicts.
        order: case names in the order the table shows them.
        run: the run's ``command``, ``started`` and ``wall_s``, for the header.
        results_dir: where ``<date>-<host>.json`` goes.
        markdown: the table to write.

    Returns:
        The JSON file's path.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    date = str(environment["date"])[:10]
    path = results_dir / f"{date}-{environment['host']}.json"
    doc = merge_results(path, environment, cases, run)
    try:
        doc["file"] = str(path.resolve().relative_to(markdown.resolve().parent))
    except ValueError:
        doc["file"] = str(path)
    rank = {name: i for i, name in enumerate(order)}
    doc["cases"].sort(key=lambda c: rank.get(c["name"], len(rank)))
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    redraw_results(order, results_dir, markdown)
    return path


def redraw_results(order: Sequence[str], results_dir: Path, markdown: Path) -> None:
    """Draw ``markdown`` from every results file in ``results_dir`` (:func:`collect_results`),
    cases in ``order`` (unknown names last), each figure computed again from its runs."""
    rank = {name: i for i, name in enumerate(order)}
    every = collect_results(results_dir)
    every["cases"].sort(key=lambda c: rank.get(c["name"], len(rank)))
    for case in every["cases"]:
        case["ratios"] = recompute_ratios(case)
    every["files"] = [_relative(results_dir / name, markdown) for name in every["files"]]
    every["file"] = every["files"][-1] if every["files"] else ""
    markdown.write_text(render_markdown(every))


def _relative(path: Path, markdown: Path) -> str:
    try:
        return str(path.resolve().relative_to(markdown.resolve().parent))
    except ValueError:
        return str(path)


def collect_results(results_dir: Path) -> dict[str, Any]:
    """Every ``<date>-<host>.json`` in ``results_dir`` as one document: for each case the
    newest file's result, with that file's machine (date, CPU model, CPUs) kept on it.

    A partial run on a later day then replaces only its own cases in RESULTS.md; the
    others keep their figures and say which machine and day measured them.
    """
    cases: dict[str, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    files: list[str] = []
    environment: dict[str, Any] = {}
    latest: list[dict[str, Any]] = []
    for path in sorted(results_dir.glob("*.json")):  # names start with the date
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue
        env = doc.get("environment", {})
        for case in doc.get("cases", []):
            kept = dict(case)
            kept["machine"] = {k: env.get(k) for k in ("date", "host", "cpu_model", "cpus")}
            cases.pop(kept["name"], None)
            cases[kept["name"]] = kept
        runs.extend(doc.get("runs", []))
        files.append(path.name)
        environment = env or environment
        latest = doc.get("runs", [])
    commands = {c.get("command") for c in cases.values()}
    runs = [r for r in runs if r.get("command") in commands or r in latest]
    unique: dict[tuple[Any, Any], dict[str, Any]] = {(r["command"], r["started"]): r for r in runs}
    return {
        "environment": environment,
        "runs": sorted(unique.values(), key=lambda r: str(r.get("started"))),
        "cases": list(cases.values()),
        "files": files,
    }
