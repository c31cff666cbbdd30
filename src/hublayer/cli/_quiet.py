"""Keep TensorFlow's start-up notices out of the command line's output.

Every ``hublayer`` command that imports TensorFlow used to print, before its own output:
absl's "All log messages before absl::InitializeLog()" notice, the oneDNN and CUDA driver
info lines, "rebuild TensorFlow with the appropriate compiler flags", the ``cuInit``
error on machines without a GPU, "TFRecordDataset ``buffer_size`` is unspecified" and
tf.function retracing warnings. None of them asks the user to do anything.

The CLI owns its process, so :func:`quiet_tensorflow` silences them there:

- ``TF_CPP_MIN_LOG_LEVEL=2`` (TensorFlow's C++ info and warnings) unless already set;
- a filter on the ``tensorflow`` and ``absl`` Python loggers for the retracing notices;
- the lines TensorFlow's C++ code writes to file descriptor 2 before its logging starts
  (no setting reaches those) go through a pipe that drops exactly those lines and passes
  everything else on at once, progress bars included.

Quiet, not blind: a line is dropped only when it is one of the known notices in
:data:`NOTICES`, matched by its source file *and* its whole message. Any other line
passes, from the same source files too: on a GPU host a real CUDA error
(``cuda_executor.cc``, ``cuda_platform.cc`` with another cause) still reaches the user.

Setting ``TF_CPP_MIN_LOG_LEVEL`` yourself (``0`` shows everything) turns the pipe off. The
library itself changes nothing: ``import hublayer`` leaves logging to the application.

Example:
    >>> with quiet_tensorflow():  # doctest: +SKIP
    ...     import tensorflow as tf
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import sys
import threading
from collections.abc import Iterator

__all__ = ["NOTICES", "PLAIN_NOTICES", "is_noise", "quiet_tensorflow"]

#: TensorFlow's known start-up notices in absl's format (``I0000 00:00:1796.5  15283
#: port.cc:153] message``), as (source file, whole message). A message is a regular
#: expression that must match all of it: literal text, with a wildcard only where TF puts
#: a value (the CPU's instruction list, a buffer size). Each was seen with TF 2.21 on a
#: host without a GPU; a notice of another version that reads differently is shown.
NOTICES: tuple[tuple[str, str], ...] = (
    (
        "port.cc",
        re.escape(
            "oneDNN custom operations are on. You may see slightly different numerical "
            "results due to floating-point round-off errors from different computation "
            "orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`."
        ),
    ),
    (
        "cudart_stub.cc",
        re.escape("Could not find cuda drivers on your machine, GPU will not be used."),
    ),
    (
        "cpu_feature_guard.cc",
        re.escape(
            "This TensorFlow binary is optimized to use available CPU instructions in "
            "performance-critical operations."
        ),
    ),
    # A host without a CUDA driver at all. Any other cuInit failure (no device, a driver
    # mismatch) is a real problem on a GPU host, and is shown.
    (
        "cuda_platform.cc",
        re.escape(
            "failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: "
            "UNKNOWN ERROR (303)"
        ),
    ),
    (
        "tf_record_dataset_op.cc",
        re.escape("TFRecordDataset `buffer_size` is unspecified, default to ") + r"\d+",
    ),
)
#: Known notices TensorFlow writes without absl's prefix, as whole-line expressions.
PLAIN_NOTICES: tuple[str, ...] = (
    re.escape(
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
    ),
    re.escape("To enable the following instructions: ")
    + r"[A-Z0-9_ ]+"
    + re.escape(", in other operations, rebuild TensorFlow with the appropriate compiler flags."),
)
_ABSL = re.compile(r"[IWE]\d{4} [\d:.]+ +\d+ (?P<source>[\w.]+):\d+\] (?P<message>.*)")
_KNOWN = [(source, re.compile(message)) for source, message in NOTICES]
_PLAIN = [re.compile(line) for line in PLAIN_NOTICES]
_RETRACING = ("triggered tf.function retracing", "retracing")


def is_noise(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's known start-up notices (:data:`NOTICES`,
    :data:`PLAIN_NOTICES`): its source file and its whole message must both match.

    Example:
        >>> is_noise("E0000 00:00:1796.5  15283 cuda_platform.cc:52] failed call to cuInit: "
        ...     "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
        True
        >>> is_noise("E0000 00:00:1796.5  15283 cuda_platform.cc:52] failed call to cuInit: "
        ...     "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected")
        False
        >>> is_noise("Error: the file is not a TFRecord file")
        False
    """
    text = line.rstrip("\r\n")
    found = _ABSL.fullmatch(text)
    if found is not None:
        return any(
            source == found["source"] and message.fullmatch(found["message"])
            for source, message in _KNOWN
        )
    return any(plain.fullmatch(text) for plain in _PLAIN)


class _Retracing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _RETRACING)


def _pump(read_fd: int, write_fd: int) -> None:
    """Copy ``read_fd`` to ``write_fd`` line by line, dropping noise. A partial line (a
    prompt, a progress bar redrawn with ``\\r``) is passed on after 0.1 s of quiet."""
    pending = b""
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], 0.1 if pending else None)
            if not ready:
                os.write(write_fd, pending)
                pending = b""
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            pending += chunk
            parts = re.split(rb"(?<=[\n\r])", pending)
            pending = parts.pop()
            kept = [p for p in parts if not is_noise(p.decode("utf-8", "replace"))]
            if kept:
                os.write(write_fd, b"".join(kept))
        if pending:
            os.write(write_fd, pending)
    except OSError:  # pragma: no cover - the terminal went away; nothing left to do
        return


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, saved), daemon=True, name="stderr")
    pump.start()
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end in this process
        pump.join(timeout=2.0)
        os.close(read_fd)
        os.close(saved)


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Silence TensorFlow's start-up notices for the duration (see the module docstring).

    The stderr pipe is used only when TensorFlow is not imported yet (its notices come at
    import), stderr is file descriptor 2, and ``TF_CPP_MIN_LOG_LEVEL`` was not set.
    """
    filtering = "TF_CPP_MIN_LOG_LEVEL" not in os.environ and "tensorflow" not in sys.modules
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    retracing = _Retracing()
    loggers = [logging.getLogger(name) for name in ("tensorflow", "absl")]
    for logger in loggers:
        logger.addFilter(retracing)
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    try:
        with _filtered_stderr() if filtering and fd == 2 else contextlib.nullcontext():
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(retracing)
