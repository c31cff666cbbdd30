"""Early stopping, best weights, checkpoints and resume, and epoch progress.

One callback per phase does all of the bookkeeping, so its state can be saved and
restored as a whole. Keras' own ``EarlyStopping`` and ``BackupAndRestore`` each keep
half of it in memory: after an interruption the patience counter and the best weights
would be lost.

Checkpoint folder (``<out_dir>/checkpoints``, or a temporary folder without ``out_dir``)::

    state.json                      the commit point: run fingerprint, per-phase epoch,
                                    best value, patience counter, and the history rows
    <phase>-last-e<N>.weights.h5    model and optimizer after epoch N (for resume)
    <phase>-best-e<N>.npz           model weights of the best epoch so far

Each file is written under a temporary name and renamed; ``state.json`` is renamed last
and names the weight files it goes with, so an interruption at any moment leaves a
consistent checkpoint. A finished run deletes the folder.

Example:
    >>> store = Checkpoints(Path("run/checkpoints"), "ab12", resume=True)  # doctest: +SKIP
    >>> store.phase("head").next_epoch  # doctest: +SKIP
    4
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from hublayer.errors import TrainingError
from hublayer.train._progress import Mode, Ticker, write_line

__all__ = ["Checkpoints", "PhaseGuard", "PhaseState", "Progress", "monitor_mode"]

_STATE = "state.json"
#: In "lines" mode, an epoch that runs longer than this also prints a line per tenth of it.
_QUIET_EPOCH_S = 20.0


def monitor_mode(monitor: str) -> str:
    """``"min"`` for losses and errors, ``"max"`` for everything else."""
    return "min" if monitor.endswith(("loss", "error")) else "max"


@dataclass
class PhaseState:
    """Where one phase stands. Epoch numbers are 0-based and global across phases."""

    next_epoch: int = 0
    best: float | None = None
    best_loss: float | None = None
    best_epoch: int | None = None
    best_file: str | None = None
    last_file: str | None = None
    wait: int = 0
    stopped_early: bool = False
    done: bool = False


class Checkpoints:
    """The checkpoint folder of one run.

    Args:
        directory: where checkpoints go; created when needed.
        fingerprint: identifies the run (model, data and settings). A checkpoint with
            another fingerprint is not resumed: it is cleared with a warning.
        resume: False clears any checkpoint and starts over.
    """

    def __init__(self, directory: Path, fingerprint: str, *, resume: bool) -> None:
        self.directory = directory
        self.fingerprint = fingerprint
        self.phases: dict[str, PhaseState] = {}
        self.history: list[dict[str, Any]] = []
        self.resumed = False
        state = self._read() if resume else None
        if state is not None and state.get("fingerprint") != fingerprint:
            warnings.warn(
                f"The checkpoint in {directory} belongs to a run with other settings, "
                "model or data; starting over and replacing it.",
                UserWarning,
                stacklevel=3,
            )
            state = None
        if state is None:
            self.clear()
            return
        self.phases = {name: PhaseState(**fields) for name, fields in state["phases"].items()}
        self.history = list(state["history"])
        self.resumed = any(p.next_epoch > 0 or p.done for p in self.phases.values())

    def _read(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads((self.directory / _STATE).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return state

    def phase(self, name: str) -> PhaseState:
        """The state of phase ``name`` (a fresh one the first time)."""
        return self.phases.setdefault(name, PhaseState())

    def commit(self) -> None:
        """Write ``state.json`` atomically, then delete weight files it no longer names."""
        self.directory.mkdir(parents=True, exist_ok=True)
        state = {
            "fingerprint": self.fingerprint,
            "phases": {name: asdict(p) for name, p in self.phases.items()},
            "history": self.history,
        }
        temp = self.directory / f".{_STATE}.{os.getpid()}.tmp"
        temp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(temp, self.directory / _STATE)
        keep = {_STATE}
        for p in self.phases.values():
            keep.update(f for f in (p.best_file, p.last_file) if f)
        for path in self.directory.iterdir():
            if path.name not in keep:
                with contextlib.suppress(OSError):
                    path.unlink()

    def save_last(self, model: keras.Model, phase: str, epoch: int) -> str:
        """Save model and optimizer after ``epoch``; returns the file name (not committed)."""
        name = f"{phase}-last-e{epoch:04d}.weights.h5"
        temp = f".tmp-{os.getpid()}-{name}"
        self.directory.mkdir(parents=True, exist_ok=True)
        model.save_weights(self.directory / temp)
        os.replace(self.directory / temp, self.directory / name)
        return name

    def save_best(self, model: keras.Model, phase: str, epoch: int) -> str:
        """Save the model's weights as the best so far; returns the file name."""
        name = f"{phase}-best-e{epoch:04d}.npz"
        temp = self.directory / f".tmp-{os.getpid()}-{name}"
        self.directory.mkdir(parents=True, exist_ok=True)
        with temp.open("wb") as handle:
            np.savez(handle, *model.get_weights())
        os.replace(temp, self.directory / name)
        return name

    def load_last(self, model: keras.Model, phase: str) -> None:
        """Load model and optimizer state saved by :meth:`save_last`, if any."""
        state = self.phase(phase)
        if state.last_file is None:
            return
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.directory / state.last_file)

    def restore_best(self, model: keras.Model, phase: str) -> bool:
        """Put the best weights of ``phase`` back into ``model``; False when there are none."""
        state = self.phase(phase)
        if state.best_file is None:
            return False
        with np.load(self.directory / state.best_file, allow_pickle=False) as arrays:
            model.set_weights([arrays[f"arr_{i}"] for i in range(len(arrays.files))])
        return True

    def clear(self) -> None:
        """Delete the checkpoint folder."""
        self.phases, self.history, self.resumed = {}, [], False
        shutil.rmtree(self.directory, ignore_errors=True)


def tie_breaker(monitor: str) -> str | None:
    """The loss that decides between epochs with the same ``monitor`` value: accuracy
    saturates on easy data (1.0 for several epochs) while the loss keeps improving."""
    if monitor_mode(monitor) == "min":
        return None
    return "val_loss" if monitor.startswith("val_") else "loss"


class PhaseGuard(keras.callbacks.Callback):
    """Early stopping on ``monitor`` with the best weights kept, and a checkpoint per epoch.

    An epoch improves when its ``monitor`` value is better, or equal with a lower loss
    (see :func:`tie_breaker`).

    Args:
        store: the run's :class:`Checkpoints`.
        phase: the phase name (``"head"``, ``"fine_tune"``).
        monitor: the logged value to watch, e.g. ``"val_accuracy"``.
        patience: epochs without improvement before training stops.
    """

    def __init__(self, store: Checkpoints, phase: str, *, monitor: str, patience: int) -> None:
        super().__init__()
        self.store = store
        self.phase = phase
        self.monitor = monitor
        self.patience = patience
        self.better = np.greater if monitor_mode(monitor) == "max" else np.less
        self.tie = tie_breaker(monitor)

    def improves(self, state: PhaseState, value: float, loss: float | None) -> bool:
        """Whether ``value`` (and ``loss`` on a tie) beats the phase's best so far."""
        if state.best is None:
            return True
        if not math.isfinite(value):
            return False
        if self.better(value, state.best):
            return True
        if value != state.best or loss is None or state.best_loss is None:
            return False
        return math.isfinite(loss) and loss < state.best_loss

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        if self.monitor not in logs:
            raise TrainingError(
                f"Expected the training logs to contain monitor={self.monitor!r}. "
                f"Received: logs with {sorted(logs)}. Pick one of those, or pass "
                "validation data to monitor a validation metric.",
                stage=self.phase,
            )
        row: dict[str, Any] = {"epoch": epoch + 1, "phase": self.phase}
        row.update({k: float(v) for k, v in sorted(logs.items())})
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        state = self.store.phase(self.phase)
        value = float(logs[self.monitor])
        loss = float(logs[self.tie]) if self.tie in logs else None
        if self.improves(state, value, loss):
            state.best, state.best_loss, state.best_epoch, state.wait = value, loss, epoch, 0
            state.best_file = self.store.save_best(self.model, self.phase, epoch)
        else:
            state.wait += 1
        state.last_file = self.store.save_last(self.model, self.phase, epoch)
        state.next_epoch = epoch + 1
        self.store.history.append(row)
        if state.wait >= self.patience:
            state.stopped_early = True
            self.model.stop_training = True
        self.store.commit()


class Progress(keras.callbacks.Callback):
    """A phase's progress: a bar over its epochs on a terminal, or a line per epoch in a log
    (and a line per tenth of an epoch that runs longer than 20 s).

    Args:
        phase: shown as the bar's label, or at the start of each line.
        epochs: how many epochs the phase may train.
        initial_epoch: the first epoch this run trains, counted within the phase.
        steps: batches per epoch, when known, for an inner bar.
        mode: ``"bars"``, ``"lines"`` (one line per epoch on stderr) or ``"off"``; a
            bool means bars or nothing.
        first: the phase's first epoch in the run's numbering (0-based), for the lines.
        write: where lines go.
    """

    def __init__(
        self,
        phase: str,
        *,
        epochs: int,
        initial_epoch: int,
        steps: int | None,
        mode: Mode | bool,
        first: int = 0,
        write: Callable[[str], object] = write_line,
    ) -> None:
        super().__init__()
        if isinstance(mode, bool):
            mode = "bars" if mode else "off"
        self.enabled = mode == "bars"
        self.lines = mode == "lines"
        self.phase = phase
        self.epochs = epochs
        self.first = first
        self.steps = steps
        self.write = write
        self.started = time.perf_counter()
        self.bar = tqdm(
            total=epochs,
            initial=initial_epoch,
            desc=phase,
            unit="epoch",
            disable=not self.enabled,
            dynamic_ncols=True,
        )
        self.inner: Any = None
        self.batches: Ticker | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()
        if self.lines:  # a slow epoch (fine-tuning on CPU) also reports its batches
            self.batches = Ticker(
                f"{self.phase}: epoch {epoch + 1} batches",
                total=self.steps,
                mode="lines",
                every=10,
                write=self.write,
                quiet_for=_QUIET_EPOCH_S,
            )
        if self.enabled:
            self.inner = tqdm(
                total=self.steps, desc=f"epoch {epoch + 1}", unit="batch", leave=False
            )

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.inner is not None:
            self.inner.update(1)
        if self.batches is not None:
            self.batches.update(1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.inner is not None:
            self.inner.close()
            self.inner = None
        shown = {
            k: f"{float(v):.4f}" for k, v in (logs or {}).items() if "accuracy" in k or "loss" in k
        }
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)
        if self.lines:
            values = " ".join(f"{k} {v}" for k, v in sorted(shown.items()))
            self.write(
                f"{self.phase}: epoch {epoch + 1} ({epoch + 1 - self.first}/{self.epochs} "
                f"of the phase) {values} in {time.perf_counter() - self.started:.1f} s"
            )

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.close()

    def close(self) -> None:
        """Close the bars (also after an interruption)."""
        if self.inner is not None:
            self.inner.close()
        self.bar.close()
