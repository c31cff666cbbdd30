"""The ``RESULTS.md`` table, drawn from a results document (``_store.py`` reads and
writes the JSON files it comes from).

Example:
    >>> fmt_seconds(0.2615), fmt_seconds(12.25)
    ('261.5 ms', '12.2 s')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks._verdict import MIN_PAIRS, interval_label

__all__ = ["fmt_seconds", "ratio_text", "render_markdown"]

TIMES = "\N{MULTIPLICATION SIGN}"

_INTRO = f"""\
Every figure is measured against a peer in the same run, on the same machine: after a
warm-up, the contenders of a case run in turn (A B C A B C ...), and each reports the
median, min and max of its runs. **time ratio** = our median / the peer's median (lower
is better); **speed-up** = the peer's median / our median (higher is better). Beside each
ratio: its **90 % interval**, a bootstrap over the paired rounds (run *i* of each contender
saw the same minute of the machine), and the ratio of the fastest runs (**min**). A
target is **met** ("yes" in the summary) only when the whole interval meets it, **not met**
when none of it does, and **within noise** otherwise. A figure from fewer than
{MIN_PAIRS} paired rounds gets no verdict: it says **too few runs: n=K**, and its
interval is the **min-max** of its K pairs ("one run" for one), not a 90 % interval.
"cores" is CPU time over wall time of the process doing the work; "CPU µs/item" is a
run's CPU time over its items. The load average (1 minute, this run's own work
included) and "other processes" (cores that other work took while the case ran, its own
threads and children left out) show how busy the machine was: a case during which other
work took more than a tenth of the usable cores is marked **busy**. Notes quote only
figures computed in the run. Contenders whose feature is not built yet are listed as
"not yet", with the reason.
"""


def _sizes() -> str:
    from benchmarks._suites import SUITES

    q, f = SUITES["quick"], SUITES["full"]
    return (
        f"smaller inputs than the issue's in the quick suite: {q.images:,} JPEGs "
        f"(full: {f.images:,}), {q.tabular:,} tabular examples (full: {f.tabular:,}), "
        f"training on {q.train_images:,} images at {q.train_size} px (full: "
        f"{f.train_images:,} at {f.train_size} px); the archive ({q.archive_mb} MB) and the "
        f"shards to inspect ({q.inspect_mb / 1024:g} GiB) are full size"
    )


def fmt_seconds(seconds: float) -> str:
    """Microseconds, milliseconds below 10 s, seconds, minutes from 2 min, for the table."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 10:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _rate(items: float, seconds: float) -> str:
    rate = items / seconds
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M/s"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f}k/s"
    return f"{rate:.1f}/s"


def _extras(extras: Mapping[str, Any]) -> str:
    parts = []
    for key, value in extras.items():
        if key == "loss":
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts)


#: The summary's "met" column: "yes" only when the whole interval meets the target.
_SUMMARY = {
    "met": "yes",
    "not met": "**no**",
    "within noise": "within noise",
    "n/a": "n/a",
    "": "—",
}


def _verdict(ratio: Mapping[str, Any]) -> str:
    """The ratio's verdict, with the pair count when there were too few; results written
    before verdicts existed fall back on ``met``."""
    if "verdict" in ratio:
        shown = str(ratio["verdict"])
        return f"{shown}: n={ratio.get('pairs', 0)}" if shown == "too few runs" else shown
    return {True: "met by the median alone", False: "not met by the median", None: ""}[
        ratio.get("met")
    ]


def _shown(value: float | None, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "metric":
        return f"{value:.4g}"
    return fmt_seconds(value) if kind == "seconds" else f"{value:.2f}{TIMES}"


def _few(ratio: Mapping[str, Any]) -> bool:
    """Whether the interval is a min-max of fewer than MIN_PAIRS pairs, not a 90 % one
    (results written before pair counts existed are taken as 90 %)."""
    return ratio.get("pairs") is not None and int(ratio["pairs"]) < MIN_PAIRS


def ratio_text(ratio: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """Figure, median value, "[low, high]; min m" and the verdict for a summary row.

    Below 5 pairs the spread names what it is ("min-max of 3 pairs: ...", "one run")
    and the verdict says "too few runs: n=K".

    Example:
        >>> ratio = {"subject": "a", "peer": "", "kind": "seconds", "value": 0.5,
        ...     "low": 0.4, "high": 0.6, "min_value": 0.39, "target": "<= 1",
        ...     "verdict": "met", "pairs": 5}
        >>> ratio_text(ratio)
        ('median time of a', '500.0 ms', '400.0 ms to 600.0 ms; min 390.0 ms', '**met**')
        >>> ratio_text({**ratio, "verdict": "too few runs", "pairs": 3})[2:]
        ('min-max of 3 pairs: 400.0 ms to 600.0 ms; min 390.0 ms', 'too few runs: n=3')
        >>> one = {**ratio, "low": 0.5, "high": 0.5, "verdict": "too few runs", "pairs": 1}
        >>> ratio_text(one)[2:]
        ('one run', 'too few runs: n=1')
    """
    kind = ratio["kind"]
    if kind == "seconds":
        figure = f"median time of {ratio['subject']}"
    elif kind == "metric":
        figure = f"median {ratio.get('metric', '')} of {ratio['subject']}"
    else:
        label = "time ratio" if kind == "time" else "speed-up"
        figure = f"{label} {ratio['subject']} vs {ratio['peer']}"
    spread = ""
    if ratio.get("low") is not None and ratio.get("high") is not None:
        low, high = _shown(ratio["low"], kind), _shown(ratio["high"], kind)
        spread = (
            f"{low.rstrip(TIMES)} to {high}" if kind in ("time", "speed") else f"{low} to {high}"
        )
        if ratio.get("min_value") is not None:
            spread += f"; min {_shown(ratio['min_value'], kind)}"
        if _few(ratio):
            pairs = int(ratio["pairs"])
            spread = "one run" if pairs == 1 else f"{interval_label(pairs)}: {spread}"
    shown_verdict = {"met": "**met**", "not met": "**not met**", "": "—"}
    verdict = _verdict(ratio)
    return figure, _shown(ratio.get("value"), kind), spread, shown_verdict.get(verdict, verdict)


def _contender_rows(case: Mapping[str, Any]) -> list[str]:
    rows = [
        "| contender | role | status | median | min | max | runs | cores | rate "
        "| CPU µs/item | notes |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in case["contenders"]:
        stats = c.get("stats")
        if stats:
            med, lo, hi = (fmt_seconds(stats[k]) for k in ("median", "min", "max"))
            runs = str(stats["n"])
            cores = f"{stats['cores']:.2f}" if stats.get("cores") is not None else ""
            rates = []
            if c.get("items"):
                rates.append(_rate(c["items"], stats["median"]))
            if c.get("nbytes"):
                rates.append(f"{c['nbytes'] / stats['median'] / 1e6:.0f} MB/s")
            rate = ", ".join(rates)
            per_item = ""
            if c.get("items") and stats.get("cpu") is not None:
                us = stats["cpu"] / c["items"] * 1e6
                per_item = f"{us:.2f}" if us < 10 else f"{us:.0f}"
        else:
            med = lo = hi = runs = cores = rate = per_item = ""
        notes = "; ".join(x for x in (c.get("detail", ""), _extras(c.get("extras", {}))) if x)
        notes = notes.replace("|", "\\|").replace("\n", " ")
        rows.append(
            f"| {c['name']} | {c['role']} | {c['status']} | {med} | {lo} | {hi} | {runs} "
            f"| {cores} | {rate} | {per_item} | {notes} |"
        )
    return rows


def _provenance(run: Mapping[str, Any]) -> str:
    """The commits a run measured, and a warning when the code changed or was dirty.

    Example:
        >>> _provenance({"commit_start": "abc", "commit_end": "abc", "dirty_start": False,
        ...     "dirty_end": False})
        '; commit `abc`, clean tree'
    """
    start, end = run.get("commit_start"), run.get("commit_end")
    if not start:
        return ""
    dirty = run.get("dirty_start") or run.get("dirty_end")
    tree = "uncommitted changes in `src/` or `benchmarks/`" if dirty else "clean tree"
    if start == end:
        return f"; commit `{start}`, {tree}"
    return (
        f"; **the code changed while this run measured**: commit `{start}` at the start, "
        f"`{end}` at the end ({tree}), so its cases may have measured different code: "
        "each case's own commit is in its section"
    )


def render_markdown(doc: Mapping[str, Any]) -> str:
    """The RESULTS.md text for a results document (see :func:`merge_results`)."""
    env = doc["environment"]
    v = env["versions"]
    suites = sorted({c.get("suite", "") for c in doc["cases"]} - {""})
    runs = []
    for run in doc.get("runs", []):
        alias = {"python -m benchmarks --suite quick": " (`make bench`)"}.get(run["command"], "")
        alias = alias or {"python -m benchmarks --suite full": " (`make bench-full`)"}.get(
            run["command"], ""
        )
        load = run.get("load")
        runs.append(
            f"- Command: `{run['command']}`{alias}, started {run['started']}, "
            f"{fmt_seconds(run['wall_s'])} wall time in all"
            + (
                f"; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end"
                if load
                else ""
            )
            + _provenance(run)
        )
    lines = [
        "# Benchmark results",
        "",
        "Generated by the harness in `benchmarks/` (do not edit by hand).",
        "",
        *runs,
        f"- Suite: {', '.join(suites)}" + (f" ({_sizes()})" if "quick" in suites else ""),
        f"- Date: {env['date']}; host `{env['host']}`; "
        f"commit `{env['commit']}` when the results were written",
        f"- CPUs: {env['cpus']} usable ({env['machine_cpus']} on the machine), {env['cpu_model']}",
        f"- Python {env['python']}, TensorFlow {v['tensorflow']}, Keras {v['keras']}, "
        f"tf-keras {v['tf-keras']}, tensorflow-hub {v['tensorflow-hub']}, "
        f"tfrecord {v['tfrecord']}, NumPy {v['numpy']}, hublayer {v['hublayer']}",
        "- Raw data: "
        + ", ".join(f"[{name}]({name})" for name in doc.get("files") or [doc["file"]]),
        "",
        _INTRO,
        "## Summary",
        "",
        f"| issue | case | figure | value | 90 % interval (min-max below {MIN_PAIRS} pairs); "
        "min-of-runs | target | met |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for case in doc["cases"]:
        head = (
            f"| {case.get('issue', '')} | {case['name']}{' (busy)' if case.get('busy') else ''} |"
        )
        for ratio in case["ratios"]:
            figure, shown, spread, _ = ratio_text(ratio)
            target = ratio.get("target") or "—"
            target += " s" if ratio["kind"] == "seconds" and ratio.get("target") else ""
            verdict = _verdict(ratio)
            met = _SUMMARY.get(verdict, verdict)
            lines.append(f"{head} {figure} | {shown} | {spread} | {target} | {met} |")
        for c in case["contenders"]:
            accuracy = c.get("extras", {}).get("val_accuracy")
            if isinstance(accuracy, float):
                lines.append(f"{head} validation accuracy, {c['name']} | {accuracy:.3f} | | | |")
        if not case["ratios"] or case["status"] != "ok":
            lines.append(f"{head} {case['status']} | | | | {case.get('detail', '')} |")
    for case in doc["cases"]:
        lines += ["", f"## {case['name']}: {case['title']}", ""]
        meta = f"Suite `{case.get('suite', '')}`, measured {case.get('started', '')}"
        machine = case.get("machine") or {}
        if machine.get("cpu_model") and machine != {
            k: env.get(k) for k in ("date", "host", "cpu_model", "cpus")
        }:
            meta += f" on {machine.get('cpus')} CPUs of {machine['cpu_model']}"
        meta += f", case wall time {fmt_seconds(case.get('wall_s', 0.0))}"
        if case.get("commit"):
            meta += f", commit `{case['commit']}`" + (" (dirty)" if case.get("dirty") else "")
        if case.get("load"):
            meta += f", load average {case['load'][0]:.1f} → {case['load'][1]:.1f}"
        if case.get("other_cores") is not None:
            meta += f", other processes {case['other_cores']:.2f} cores"
        if case.get("reruns"):
            meta += (
                f", run {case['reruns'] + 1} times because the machine was busy (the quietest kept)"
            )
        lines.append(meta + ".")
        if case.get("detail"):
            lines += ["", f"Status: **{case['status']}**: {case['detail']}"]
        if case.get("notes"):
            lines += [""] + [f"- {note}" for note in case["notes"]]
        if case["contenders"]:
            lines += ["", *_contender_rows(case)]
        if case["ratios"]:
            lines.append("")
            for ratio in case["ratios"]:
                figure, shown, spread, verdict = ratio_text(ratio)
                unit = " s" if ratio["kind"] == "seconds" else ""
                if spread and not _few(ratio):
                    spread = f"90 % interval {spread}"
                spread = f" ({spread})" if spread else ""
                target = (
                    f"; target {ratio['target']}{unit}: {verdict}" if ratio.get("target") else ""
                )
                lines.append(f"- {figure}: **{shown}**{spread}{target}")
    return "\n".join(lines) + "\n"
