"""The public API: `hublayer.__all__` is sorted, documented, and every name resolves."""

from __future__ import annotations

import importlib
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


def _sections() -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    return re.findall(r"^## `([a-z_.]+)`$", text, flags=re.MULTILINE)


def test_every_documented_package_pins_its_all() -> None:
    """Each `## \\`hublayer.x\\`` section lists exactly that module's sorted `__all__`."""
    sections = [name for name in _sections() if name != "hublayer"]
    assert sections, "docs/API.md lists no package sections"
    for module_name in sections:
        module = importlib.import_module(module_name)
        exported = list(module.__all__)
        assert exported == sorted(exported), f"{module_name}.__all__ is not sorted"
        assert exported == sorted(_documented(module_name)), module_name


def test_every_public_name_resolves() -> None:
    for name in hublayer.__all__:
        assert getattr(hublayer, name) is not None, name
    for module_name in _sections():
        module = importlib.import_module(module_name)
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module_name}.{name}"


@pytest.mark.parametrize(
    "imports",
    [
        "import hublayer, keras",
        "import keras, hublayer",
        # TensorFlow probes for keras (find_spec) before anything imports it.
        "import hublayer, tensorflow, keras",
        "import hublayer, importlib.util; importlib.util.find_spec('keras'); import keras",
    ],
)
def test_keras_finds_the_layers_after_import_hublayer_in_any_order(imports: str) -> None:
    """`keras.models.load_model` needs no custom_objects once `hublayer` is imported."""
    code = f"{imports}\nprint(keras.saving.get_registered_object('hublayer>KerasLayer'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "hublayer.layers" in out.stdout
