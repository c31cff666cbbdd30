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

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CorpusModel", "HarmProof", "plant_secret", "prove_all", "run_plain", "scan_corpus"]

#: How a prover loads each kind of model.
LOADERS = ("saved_model", "tf1_session", "keras", "keras_unsafe")


@dataclass(frozen=True)
class HarmProof:
    """What a proof run saw.

    Attributes:
        proven: the model did harm.
        why: what was seen (or why not).
    """

    proven: bool
    why: str


@dataclass(frozen=True)
class CorpusModel:
    """One model of the corpus.

    Attributes:
        name: ``<op>--<place>`` for harmful models, the builder's name for clean ones.
        path: the SavedModel folder or ``.keras`` file.
        harmful: built to do harm (counted only once proven).
        op: the op that does the harm (``""`` for clean models).
        place: the hiding place or trick.
        sources: the published lists naming the op (``tensorabuse``, ``modelscan``,
            ``saved_model_cli``, ``issue``, or ``trick`` for the model-tree tricks).
        effect: ``leak``, ``create``, ``replace``, ``delete``, ``die`` (``""`` when clean).
        victim: the file or folder a create/replace/delete effect concerns.
        loader: how plain TF/Keras loads it (:data:`LOADERS`).
        secret: the secret file the model reads (its other forms sit next to it).
        setup: what the prover prepares before loading (``merge_source``,
            ``variables_outside``), or ``""``.
        extra: what a setup needs (``checkpoint``: the outside checkpoint's prefix).
    """

    name: str
    path: Path
    harmful: bool
    op: str = ""
    place: str = ""
    sources: tuple[str, ...] = ()
    effect: str = ""
    victim: Path | None = None
    loader: str = "saved_model"
    secret: Path | None = None
    setup: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def prove(self, *, token: str, timeout: float = 180.0) -> HarmProof:
        """Load and call the model with plain TF/Keras in a fresh process; did it do harm?

        Plants the secret (``token``) first when it is not planted yet, and resets this
        model's victim folder.

        Args:
            token: the secret, 32 hex characters (written after the build).
            timeout: seconds before the process is killed (then: not proven).

        Returns:
            A :class:`HarmProof`.
        """
        if self.secret is not None:
            plant_secret(self.secret, token)
        self._prepare()
        stdout, status = _run_prover([self._job()], timeout)
        if status is None:
            return HarmProof(False, f"no result within {timeout:.0f} s")
        out, finished = _segments(stdout).get(0, ("", False))
        return self._judge_output(out, not finished and status != 0, status, token)

    # ------------------------------------------------------------ proof parts
    def _job(self) -> dict[str, str]:
        return {"path": str(self.path), "loader": self.loader}

    def _prepare(self) -> None:
        if self.victim is None:
            return
        folder = self.victim.parent
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if self.effect in ("replace", "delete"):
            self.victim.write_text("original")
        if self.setup:
            _SETUPS[self.setup](self)

    def _judge_output(self, out: str, died: bool, status: int | None, token: str) -> HarmProof:
        called = "\nCALLED" in "\n" + out
        if self.effect == "die":
            if died:
                return HarmProof(True, f"the process died (exit status {status})")
            return HarmProof(False, "the process lived")
        if not called:
            error = [line for line in out.splitlines() if line.startswith("ERROR")]
            return HarmProof(False, f"load or call failed: {(error or ['process died'])[0][:300]}")
        if self.effect == "leak":
            if token[len(token) // 2 :] in out:
                return HarmProof(True, "the secret written after the build reached the output")
            return HarmProof(False, "ran, but the secret is not in the output")
        assert self.victim is not None
        if self.effect == "create" and self.victim.exists():
            return HarmProof(True, f"{self.victim.name} appeared outside the model")
        if (
            self.effect == "replace"
            and self.victim.exists()
            and self.victim.read_bytes() != b"original"
        ):
            return HarmProof(True, f"{self.victim.name} outside the model was overwritten")
        if self.effect == "delete" and not self.victim.exists():
            return HarmProof(True, f"{self.victim.name} outside the model was deleted")
        return HarmProof(False, f"ran, but {self.victim.name} shows no {self.effect}")


def plant_secret(secret: str | os.PathLike[str], token: str) -> None:
    """Write the secret (``token``) in place, in every form the harmful models read.

    The text file is rewritten in place, so a hard link made at build time sees the new
    content. A no-op when ``token`` is already planted.

    Args:
        secret: the secret file ``scan_corpus`` was given.
        token: 32 hex characters.

    Raises:
        ValueError: ``token`` is not 32 hex characters.
    """
    from hublayer.testing._scan_corpus_ops import TOKEN_LENGTH

    if len(token) != TOKEN_LENGTH or any(c not in "0123456789abcdef" for c in token):
        raise ValueError(
            f"Expected token to be {TOKEN_LENGTH} lowercase hex characters. "
            f"Received: token={token!r}. Use secrets.token_hex({TOKEN_LENGTH // 2})."
        )
    path = Path(secret)
    marker = path.parent / f"{token}.listed"
    if marker.exists() and path.read_text() == token + "\n":
        return
    for old in path.parent.glob("*.listed"):
        old.unlink()
    with path.open("r+" if path.exists() else "w") as handle:  # same inode: keep links
        handle.seek(0)
        handle.truncate()
        handle.write(token + "\n")
    Path(f"{path}.tfrecord").write_bytes(_tfrecord(token.encode()))
    Path(f"{path}.desc").write_bytes(_descriptor(token))
    marker.write_text("")


def _tfrecord(payload: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the data, its masked CRC."""
    import struct

    from hublayer.records._framing import masked_crc

    length = struct.pack("<Q", len(payload))
    return (
        length
        + struct.pack("<I", masked_crc(length))
        + payload
        + struct.pack("<I", masked_crc(payload))
    )


def _descriptor(token: str) -> bytes:
    """A FileDescriptorSet whose message ``m.M`` has a string field defaulting to ``token``."""
    from google.protobuf import descriptor_pb2

    files = descriptor_pb2.FileDescriptorSet()
    file = files.file.add(name="m.proto", package="m", syntax="proto2")
    message = file.message_type.add(name="M")
    message.field.add(
        name="s",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        default_value=token,
    )
    data: bytes = files.SerializeToString()
    return data


def _merge_source(model: CorpusModel) -> None:
    """A checkpoint in the victim folder for MergeV2Checkpoints to merge (and move)."""
    import tensorflow as tf

    assert model.victim is not None
    prefix = str(model.victim.parent / "source")
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=["a"], shape_and_slices=[""], tensors=[tf.constant(1.0)]
    )


def _variables_outside(model: CorpusModel) -> None:
    """Rewrite the outside checkpoint the model's ``variables/`` links to: label = secret."""
    import tensorflow as tf

    assert model.secret is not None
    prefix = model.extra["checkpoint"]
    token = model.secret.read_text().strip()
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(reader.get_variable_to_shape_map())
    values = [
        tf.constant(token) if name.startswith("label/") else tf.constant(reader.get_tensor(name))
        for name in names
    ]
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=values
    )


_SETUPS = {"merge_source": _merge_source, "variables_outside": _variables_outside}

#: Runs in a fresh process: for each job, load with plain TF/Keras, call everything, print
#: the outputs between START and END markers (a job that fails prints ERROR and the rest
#: go on; a job that kills the process leaves no END).
_PROVER = r"""
import json, sys, traceback
jobs = json.loads(sys.argv[1])
import numpy as np
import tensorflow as tf
x = np.ones([1, 4], np.float32)
def show(value):
    for leaf in tf.nest.flatten(value):
        array = np.asarray(leaf)
        if array.dtype == object:
            print("OUT", [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                          for v in array.ravel().tolist()])
        else:
            print("OUT", array.ravel().tolist()[:8])
    sys.stdout.flush()
def feed_for(shape, dtype):
    dtype = tf.as_dtype(dtype)
    dims = [1 if d is None else d for d in shape]
    if dtype == tf.string:
        return tf.fill(dims, "the cat")
    return tf.ones(dims, dtype) if dtype.is_floating else tf.zeros(dims, dtype)
def run(path, loader):
    if loader == "tf1_session":
        with tf.compat.v1.Session(graph=tf.Graph()) as session:
            tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
    elif loader in ("keras", "keras_unsafe"):
        import keras
        import hublayer  # registers KerasLayer, as a user's code would
        model = keras.saving.load_model(path, safe_mode=loader == "keras")
        show(model([feed_for(t.shape, t.dtype) for t in model.inputs]))
    else:
        model = tf.saved_model.load(path)
        calls = [lambda: model(tf.constant(x))] if callable(model) else []
        for function in model.signatures.values():
            inputs = function.structured_input_signature[1]
            feed = {k: feed_for(spec.shape, spec.dtype) for k, spec in inputs.items()}
            calls.append(lambda function=function, feed=feed: function(**feed))
        errors = []
        for call in calls:  # each on its own: a one-shot harm may fail the second time
            try:
                show(call())
            except Exception as error:
                errors.append(error)
        if errors and len(errors) == len(calls):
            raise errors[0]
for index, job in enumerate(jobs):
    print(f"\nSTART {index}", flush=True)
    try:
        run(job["path"], job["loader"])
        print("\nCALLED", flush=True)
    except Exception:
        print("ERROR", traceback.format_exc().strip().splitlines()[-1][:300], flush=True)
    print(f"\nEND {index}", flush=True)
"""


def _run_prover(jobs: list[dict[str, str]], timeout: float) -> tuple[str, int | None]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-c", _PROVER, json.dumps(jobs)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as error:
        out = error.stdout.decode() if isinstance(error.stdout, bytes) else error.stdout or ""
        return out, None
    return done.stdout, done.returncode


def _segments(stdout: str) -> dict[int, tuple[str, bool]]:
    """index -> (its output, whether it reached END)."""
    found: dict[int, tuple[str, bool]] = {}
    current: int | None = None
    lines: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("START "):
            current, lines = int(line.split()[1]), []
        elif line.startswith("END ") and current is not None:
            found[current] = ("\n".join(lines), True)
            current = None
        elif current is not None:
            lines.append(line)
    if current is not None:
        found[current] = ("\n".join(lines), False)
    return found


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
            stdout, status = _run_prover([m._job() for m in group], timeout)
            seen = _segments(stdout)
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
    stdout, status = _run_prover([m._job() for m in models], timeout)
    seen = _segments(stdout)
    problems = {}
    for index, model in enumerate(models):
        out, finished = seen.get(index, ("", False))
        if finished and "\nCALLED" in "\n" + out:
            problems[model.name] = ""
        else:
            errors = [line for line in out.splitlines() if line.startswith("ERROR")]
            problems[model.name] = (errors or [f"no result (exit status {status})"])[0]
    return problems
