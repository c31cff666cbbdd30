"""One model of the scanner corpus, and the proof that a harmful one does harm.

A :class:`CorpusModel` says what a model is built to do (its op, hiding place, effect
and victim); :meth:`CorpusModel.prove` loads and calls it with plain TensorFlow or Keras
in a fresh process (:mod:`._scan_corpus_prover`) after planting the secret
(:mod:`._scan_corpus_secret`), and judges the output as a :class:`HarmProof`.

Example:
    >>> from pathlib import Path
    >>> model = CorpusModel("clean", Path("/tmp/none"), harmful=False)
    >>> model.loader, model.effect
    ('saved_model', '')
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hublayer.testing._scan_corpus_prover import run_prover, segments
from hublayer.testing._scan_corpus_secret import plant_secret

__all__ = ["LOADERS", "CorpusModel", "HarmProof"]

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
        stdout, status = run_prover([self._job()], timeout)
        if status is None:
            return HarmProof(False, f"no result within {timeout:.0f} s")
        out, finished = segments(stdout).get(0, ("", False))
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
