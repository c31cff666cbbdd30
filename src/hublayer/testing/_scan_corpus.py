"""A held-out corpus for a model scanner: harmful models from *published* op lists, each
in several hiding places and tricks, proven harmful under plain TensorFlow, plus every
clean model we can build.

The op lists are TensorAbuse's (ZJU-SEC), protectai modelscan's and ``saved_model_cli
scan``'s (see ``_scan_corpus_ops.py``), not hublayer's own. A harmful model counts only
once :meth:`CorpusModel.prove` has shown, in a fresh Python process that loads it with
plain TensorFlow or Keras and calls it, that it did harm: a file outside the model
appeared, was replaced or was deleted; a secret written *after* the model was built
reached the output; or the process died.

Layout (everything under ``root`` except the secret and the victim folder)::

    root/harmful/<op>--<place>/    one model per op and hiding place, or per trick
    root/clean/<name>/             clean SavedModels and .keras files
    secret, secret.tfrecord, secret.desc, <dir of secret>/<token>.listed
                                   written by plant_secret() after the build
    victim_dir/<model>/            what each harmful model writes, replaces or deletes

Example:
    >>> import pathlib, tempfile
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> corpus = scan_corpus(tmp / "c", secret=tmp / "s" / "secret.txt",
    ...                      victim_dir=tmp / "v", only=["ReadFile--call"])
    >>> [m.name for m in corpus if m.harmful]
    ['ReadFile--call']
    >>> corpus[0].prove(token="0123456789abcdef0123456789abcdef").proven
    True
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from hublayer.testing._scan_corpus_model import CorpusModel, HarmProof
from hublayer.testing._scan_corpus_prover import run_prover, segments
from hublayer.testing._scan_corpus_secret import plant_secret

__all__ = ["CorpusModel", "HarmProof", "plant_secret", "prove_all", "run_plain", "scan_corpus"]


def prove_all(
    models: Sequence[CorpusModel], *, token: str, jobs: int = 2, timeout: float = 600.0
) -> dict[str, HarmProof]:
    """Prove many harmful models, in a few fresh processes rather than one each.

    Each process loads and calls its models one after another (each model has its own
    victim folder, so effects do not mix); a model that kills its process is judged by
    that, and the models after it go on in a new process. :meth:`CorpusModel.prove`
    proves one model alone.

    Args:
        models: harmful models (clean ones are skipped).
        token: the secret, 32 hex characters.
        jobs: processes at a time.
        timeout: seconds for one process.

    Returns:
        name -> :class:`HarmProof`.
    """
    from concurrent.futures import ThreadPoolExecutor

    harmful = [m for m in models if m.harmful]
    for model in harmful:
        if model.secret is not None:
            plant_secret(model.secret, token)
        model._prepare()
    groups = [harmful[i::jobs] for i in range(jobs)]

    def prove_group(group: list[CorpusModel]) -> dict[str, HarmProof]:
        proofs: dict[str, HarmProof] = {}
        while group:
            stdout, status = run_prover([m._job() for m in group], timeout)
            seen = segments(stdout)
            for index, model in enumerate(group):
                if index not in seen:
                    break
                out, finished = seen[index]
                died = not finished and status not in (0, None)
                proofs[model.name] = model._judge_output(out, died, status, token)
                if not finished:
                    index += 1
                    break
            else:
                index = len(group)
            if index == 0:  # pragma: no cover - the process never started a model
                proofs.update({m.name: HarmProof(False, "the prover did not start") for m in group})
                break
            group = group[index:]
        return proofs

    results: dict[str, HarmProof] = {}
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for found in pool.map(prove_group, [g for g in groups if g]):
            results.update(found)
    return results


def scan_corpus(
    root: str | os.PathLike[str],
    *,
    secret: str | os.PathLike[str],
    victim_dir: str | os.PathLike[str],
    real: bool = False,
    only: Iterable[str] | None = None,
) -> list[CorpusModel]:
    """Build the corpus under ``root``: harmful models, then clean ones.

    Harmful models are built but not proven; call :meth:`CorpusModel.prove` (a fresh
    process each) before counting one.

    Args:
        root: an empty or missing folder for the models.
        secret: the secret file the leaking models read; it must lie outside ``root``
            (it is created empty now, and :func:`plant_secret` fills it later).
        victim_dir: the folder harmful models write into, one subfolder each.
        real: also build the real models of shared/OFFLINE_ASSETS.md (the zoo's
            EfficientNet-Lite0 and the all-MiniLM-L6-v2 export; about a minute).
        only: build just these names (for quick checks).

    Returns:
        Every model, harmful first.
    """
    from hublayer.testing import _scan_corpus_clean, _scan_corpus_harmful

    base = Path(root)
    secret_path = Path(secret).resolve()
    secret_path.parent.mkdir(parents=True, exist_ok=True)
    secret_path.touch()
    victims = Path(victim_dir).resolve()
    victims.mkdir(parents=True, exist_ok=True)
    wanted = set(only) if only is not None else None
    models = _scan_corpus_harmful.build_harmful(base / "harmful", secret_path, victims, wanted)
    models += _scan_corpus_clean.build_clean(base / "clean", real=real, wanted=wanted)
    return models


def run_plain(models: Sequence[CorpusModel], *, timeout: float = 600.0) -> dict[str, str]:
    """Load and call each model with plain TF/Keras in one fresh process.

    Returns:
        name -> ``""`` when it loaded and ran, else what went wrong.
    """
    stdout, status = run_prover([m._job() for m in models], timeout)
    seen = segments(stdout)
    problems = {}
    for index, model in enumerate(models):
        out, finished = seen.get(index, ("", False))
        if finished and "\nCALLED" in "\n" + out:
            problems[model.name] = ""
        else:
            errors = [line for line in out.splitlines() if line.startswith("ERROR")]
            problems[model.name] = (errors or [f"no result (exit status {status})"])[0]
    return problems
