"""The held-out corpus for ``scan_detect``, its proofs, and the three scanners' verdicts.

The corpus (``hublayer.testing.scan_corpus``, with the real models) is built once into
``benchmarks/.data/scan-corpus-<digest of its sources>/`` (in place: its models name
their secret and victim folders by absolute path). Harm is proven on every run, with a
fresh secret, before any scanner is counted; a model that cannot be proven is dropped and
listed. modelscan lives in its own virtual environment (``benchmarks/.data/
venv-modelscan``): it pins ``rich<15`` while the main environment has rich 15, so
installing it there would downgrade a package; TensorFlow comes from the main
environment through a ``.pth`` file.

Example:
    >>> tally({"a": True, "b": False}, [], [])["detected"]
    0
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._data import DATA_DIR
from benchmarks._harness import NotYet

__all__ = [
    "Corpus",
    "load_corpus",
    "modelscan_flags",
    "modelscan_tool",
    "saved_model_cli_flags",
    "tally",
]

MODELSCAN = "modelscan==0.8.8"
#: Processes at a time for the proofs (the machine has 2 cores).
JOBS = 2


@dataclasses.dataclass
class Corpus:
    """The built corpus and what the proofs found.

    Attributes:
        harmful: proven harmful models.
        clean: clean models that load and run under plain TF/Keras.
        dropped: name -> why, harmful models not proven (not counted).
        broken: name -> why, clean models that did not run (not counted).
    """

    harmful: list[Any]
    clean: list[Any]
    dropped: dict[str, str]
    broken: dict[str, str]


def _source_digest() -> str:
    import hublayer.testing

    folder = Path(hublayer.testing.__file__).parent
    files = sorted(folder.glob("_scan_corpus*.py"))
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:10]


def _to_json(model: Any) -> dict[str, Any]:
    data = dataclasses.asdict(model)
    for key in ("path", "victim", "secret"):
        data[key] = None if data[key] is None else str(data[key])
    return data


def _from_json(data: dict[str, Any]) -> Any:
    from hublayer.testing import CorpusModel

    for key in ("path", "victim", "secret"):
        data[key] = None if data[key] is None else Path(data[key])
    data["sources"] = tuple(data["sources"])
    return CorpusModel(**data)


def _built() -> list[Any]:
    """Every corpus model, built once per version of the corpus' sources."""
    from hublayer.testing import scan_corpus

    folder = DATA_DIR / f"scan-corpus-{_source_digest()}"
    manifest = folder / "corpus.json"
    if manifest.exists():
        return [_from_json(d) for d in json.loads(manifest.read_text())]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"[data] building the scan corpus (once; cached in {folder})", flush=True)
    models = scan_corpus(
        folder / "models",
        secret=folder / "secret" / "secret.txt",
        victim_dir=folder / "victims",
        real=True,
    )
    manifest.write_text(json.dumps([_to_json(m) for m in models], indent=1))
    return models


def load_corpus() -> Corpus:
    """Build (or find) the corpus, prove every harmful model, run every clean one."""
    from hublayer.testing import prove_all
    from hublayer.testing._scan_corpus import run_plain

    models = _built()
    harmful = [m for m in models if m.harmful]
    clean = [m for m in models if not m.harmful]
    proofs = prove_all(harmful, token=secrets.token_hex(16), jobs=JOBS)
    ran = run_plain(clean)
    return Corpus(
        harmful=[m for m in harmful if proofs[m.name].proven],
        clean=[m for m in clean if not ran[m.name]],
        dropped={m.name: proofs[m.name].why for m in harmful if not proofs[m.name].proven},
        broken={name: why for name, why in ran.items() if why},
    )


def _share(
    models: Iterable[Any], flags: dict[str, bool], key: Callable[[Any], Iterable[str]]
) -> dict[str, str]:
    counts: dict[str, list[int]] = {}
    for model in models:
        for group in key(model):
            pair = counts.setdefault(group, [0, 0])
            pair[0] += int(flags[model.name])
            pair[1] += 1
    return {group: f"{found}/{total}" for group, (found, total) in sorted(counts.items())}


def tally(flags: dict[str, bool], harmful: Sequence[Any], clean: Sequence[Any]) -> dict[str, Any]:
    """Detection over the proven harmful models and false positives over the clean ones,
    overall, by source list and by hiding place."""
    caught = [m.name for m in harmful if flags[m.name]]
    false = [m.name for m in clean if flags[m.name]]
    return {
        "rate": len(caught) / len(harmful) if harmful else 0.0,
        "detected": len(caught),
        "harmful": len(harmful),
        "missed": [m.name for m in harmful if not flags[m.name]],
        "false_positives": len(false),
        "clean": len(clean),
        "false_positive_names": false,
        "by_source": _share(harmful, flags, lambda m: m.sources),
        "by_place": _share(harmful, flags, lambda m: (m.place,)),
    }


#: What ``saved_model_cli scan`` prints when a meta graph holds a denylisted op.
SMC_FLAGGED = "contains the following denylisted ops"
#: ``saved_model_cli scan --dir D`` without flags runs exactly this (saved_model_cli.scan),
#: here over every folder in one process, so TensorFlow starts once, not once per model.
_SMC_SCRIPT = """
import contextlib, io, json, sys
from tensorflow.python.tools import saved_model_cli, saved_model_utils
for folder in sys.argv[1:]:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            for meta_graph_def in saved_model_utils.read_saved_model(folder).meta_graphs:
                saved_model_cli.scan_meta_graph_def(meta_graph_def, saved_model_cli._OP_DENYLIST)
        print(json.dumps([folder, out.getvalue(), 0]))
    except Exception as error:
        print(json.dumps([folder, repr(error), 1]))
"""


def saved_model_cli_flags(models: Sequence[Any], env: dict[str, str]) -> dict[str, Any]:
    """What ``saved_model_cli scan --dir X`` says of each SavedModel folder: found when it
    reports denylisted ops or fails (the command would exit non-zero). Its scan function
    runs over every folder in one process; the command itself runs once, on a model it
    flags, for its exit status. A ``.keras`` file is no SavedModel folder, so the tool is
    not run on it (not found)."""
    tool = Path(sys.executable).with_name("saved_model_cli")
    if not tool.is_file():
        raise NotYet(f"saved_model_cli is not installed next to {sys.executable}")
    folders = {str(m.path): m.name for m in models if m.path.is_dir()}
    done = subprocess.run(
        [sys.executable, "-c", _SMC_SCRIPT, *folders],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    said = {}
    for line in done.stdout.splitlines():
        if line.startswith("["):
            folder, text, failed = json.loads(line)
            said[folders[folder]] = (text, failed)
    flags = {m.name: False for m in models}
    errors = []
    for name, (text, failed) in said.items():
        flags[name] = bool(failed) or SMC_FLAGGED in text
        if failed:
            errors.append(name)
    flagged = next((m for m in models if flags[m.name] and m.name not in errors), None)
    exit_status = None
    if flagged is not None:
        exit_status = subprocess.run(
            [str(tool), "scan", "--dir", str(flagged.path)], capture_output=True, env=env
        ).returncode
    return {"flags": flags, "errors": sorted(errors), "exit_when_flagging": exit_status}


def modelscan_tool() -> Path:
    """modelscan's CLI in its own environment, made on first use."""
    venv = DATA_DIR / "venv-modelscan"
    tool = venv / "bin" / "modelscan"
    if tool.is_file():
        return tool
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Its own packages first, then the main environment's (TensorFlow, numpy, click).
    Path(site, "zz_main_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            MODELSCAN,
            "rich>=13.4.2,<15",
            "tomlkit>=0.12",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not tool.is_file():
        shutil.rmtree(venv, ignore_errors=True)
        raise NotYet(f"could not install {MODELSCAN} into {venv}: {done.stderr[-300:]}")
    return tool


def modelscan_flags(models: Sequence[Any], env: dict[str, str]) -> dict[str, Any]:
    """``modelscan -p FOLDER -r json``, once per folder of models (harmful, clean): a
    model is found when an issue or a scan error names one of its files."""
    tool = modelscan_tool()
    by_folder: dict[Path, dict[str, str]] = {}
    for model in models:
        by_folder.setdefault(model.path.parent, {})[model.path.name] = model.name
    flags = {m.name: False for m in models}
    statuses: dict[str, int] = {}
    for folder, names in by_folder.items():
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "report.json"
            done = subprocess.run(
                [str(tool), "-p", str(folder), "-r", "json", "-o", str(out)],
                capture_output=True,
                text=True,
                env=env,
                cwd=scratch,
            )
            statuses[folder.name] = done.returncode
            report = json.loads(out.read_text()) if out.exists() else {}
        for entry in [*report.get("issues", []), *report.get("errors", [])]:
            source = str(entry.get("source", ""))
            top = source.split("/", 1)[0].split(":", 1)[0]
            if top in names:
                flags[names[top]] = True
    return {"flags": flags, "exit_statuses": statuses}
