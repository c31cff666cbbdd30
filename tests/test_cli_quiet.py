"""The CLI keeps TensorFlow's start-up notices out of its output, and nothing else.

Each case runs a fresh Python process, as `hublayer` runs: the notices come at TensorFlow's
import, before any Python logging exists. About 10 s on 2 cores (TensorFlow imports).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hublayer.cli._quiet import NOTICES, is_noise

# Lines copied from `import tensorflow` on a 2-core machine without a GPU (TF 2.21,
# TF_CPP_MIN_LOG_LEVEL=0), and from reading records.
NOISY = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796598654.254135    1142 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796598654.254384    1142 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "I0000 00:00:1796598654.578217    1142 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX512_FP16 "
    "AVX_VNNI AMX_TILE AMX_INT8 AMX_BF16 FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "E0000 00:00:1796598670.196314    1142 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "W0000 00:00:1796048963.100000   15283 tf_record_dataset_op.cc:377] TFRecordDataset "
    "`buffer_size` is unspecified, default to 262144",
]
KEPT = [
    "Error: Expected a model folder or file at /x. Received: nothing there.",
    "E0000 00:00:1796048963.032838   15283 op_kernel.cc:1] OOM when allocating tensor",
    "Traceback (most recent call last):",
    "head: epoch 3 (3/40 of the phase) loss 0.1000 in 1.0 s",
    # Real CUDA errors on a GPU host, from the same source files as the notices: shown.
    "E0000 00:00:1796048963.032838   15283 cuda_executor.cc:1228] INTERNAL: failed to allocate "
    "2.00GiB (2147483648 bytes) from device: CUDA_ERROR_OUT_OF_MEMORY: out of memory",
    "E0000 00:00:1796048963.032838   15283 cuda_platform.cc:52] failed call to cuInit: "
    "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected",
    "E0000 00:00:1796048963.032838   15283 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803)",
    # A notice's text from another source, or with more after it, is not the notice.
    "E0000 00:00:1796048963.032838   15283 op_kernel.cc:1] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "I0000 00:00:1796598654.254384    1142 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used. Also: libcudart.so.12 is corrupt",
    "I0000 00:00:1796598654.254384    1142 port.cc:153] a new message from port.cc",
]


@pytest.mark.parametrize("line", NOISY)
def test_the_notices_are_noise(line: str) -> None:
    assert is_noise(line)


@pytest.mark.parametrize("line", KEPT)
def test_errors_and_our_lines_are_kept(line: str) -> None:
    assert not is_noise(line)


def test_no_notice_drops_a_whole_source_file() -> None:
    """Each entry names its source and its whole message: another message from the same
    source, or the notice with more text after it, passes."""
    for source, _ in NOTICES:
        line = f"E0000 00:00:1796048963.032838   15283 {source}:52] CUDA_ERROR_ILLEGAL_ADDRESS"
        assert not is_noise(line), source
    for notice in NOISY:
        assert not is_noise(notice + " Then a real error.")


_SCRIPT = """
import logging, sys
from hublayer.cli._quiet import quiet_tensorflow
with quiet_tensorflow():
    import tensorflow as tf
    print(int(tf.constant(2) * 3), flush=True)
    logging.getLogger("tensorflow").warning(
        "5 out of the last 5 calls to <function f> triggered tf.function retracing.")
    logging.getLogger("tensorflow").warning("a warning of ours to keep")
    print("prompt without newline", end="", file=sys.stderr, flush=True)
    print("\\nline kept", file=sys.stderr)
print("after", file=sys.stderr)
"""


def _run(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_a_cli_process_shows_its_own_lines_and_no_notice() -> None:
    done = _run({})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "6\n"
    err = done.stderr
    for text in ("absl::InitializeLog", "oneDNN", "cuda drivers", "cuInit", "retracing"):
        assert text not in err, err
    assert "a warning of ours to keep" in err
    assert "prompt without newline\nline kept\nafter\n" in err


@pytest.mark.slow
def test_setting_tf_cpp_min_log_level_shows_everything_again() -> None:
    done = _run({"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert done.returncode == 0, done.stderr
    assert "absl::InitializeLog" in done.stderr or "oneDNN" in done.stderr
