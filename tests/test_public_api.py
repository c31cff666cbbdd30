"""The public API: `hublayer.__all__` is sorted, documented, and every name resolves."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import hublayer

DOCS = Path(__file__).resolve().parents[1] / "docs" / "API.md"


def _documented(section: str) -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    body = text.split(f"## `{section}`", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `([^`]+)`", body, flags=re.MULTILINE)


def test_all_is_sorted_and_matches_the_docs() -> None:
    assert hublayer.__all__ == sorted(hublayer.__all__)
    assert hublayer.__all__ == sorted(_documented("hublayer"))


def test_version_and_module_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hublayer", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"hublayer {hublayer.__version__}"


def test_import_is_light() -> None:
    """`import hublayer` must not pull in TensorFlow; the CLI stays fast."""
    code = (
        "import sys, hublayer, hublayer.config, hublayer.errors; print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        hublayer.no_such_name  # noqa: B018
