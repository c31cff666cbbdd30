"""The benchmark harness: hublayer against its peers, side by side, in one run.

Run it with ``python -m benchmarks --suite quick|full [--case NAME ...]`` (``make bench``
and ``make bench-full``). Results go to ``benchmarks/results/<date>-<host>.json`` and a
table to ``benchmarks/RESULTS.md``.

Layout:

- ``_harness.py``: contenders, the A B A B loop, statistics and ratios.
- ``_subprocess.py`` / ``_worker.py``: contenders in another process (legacy Keras peers,
  cold starts).
- ``_data.py``: deterministic synthetic data, cached under ``benchmarks/.data/``.
- ``_suites.py``: sizes of the quick and full suites.
- ``_results.py`` / ``_verdict.py``: figures, their intervals and verdicts.
- ``_store.py``: the JSON files; ``_report.py``: the Markdown table drawn from them.
- ``cases/``: one module per group of cases; ``peers/``: code that runs only in the
  peers' own processes (``tensorflow_hub`` + ``tf_keras``, cold starts).
"""
