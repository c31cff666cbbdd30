"""Every foreign private API hublayer uses works on the installed TF, Keras and tf2jax.

The adapters (``hublayer._foreign_tf``, ``_foreign_keras``, ``_foreign_tf2jax``) are the
only place such APIs are touched. These tests call each one for real; when an upgrade
moves past an adapter's version range, or breaks a name inside it, they fail here, with
the adapter's own ``UnsupportedVersionError``, rather than in a user's model.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import pytest
import tensorflow as tf

from hublayer import _foreign_keras, _foreign_tf, _foreign_tf2jax, testing
from hublayer._foreign import release, within
from hublayer.errors import UnsupportedVersionError

SRC = Path(__file__).resolve().parents[1] / "src" / "hublayer"
ADAPTERS = {"_foreign_tf.py", "_foreign_keras.py", "_foreign_tf2jax.py"}
PRIVATE_PREFIXES = ("tensorflow.python", "keras.src", "tf2jax._src")


@pytest.fixture(autouse=True)
def _fresh_adapters() -> Any:
    _foreign_tf.restored_trace_picker.cache_clear()
    yield
    _foreign_tf.restored_trace_picker.cache_clear()


# ----------------------------------------------------------------------------- the rule


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names = [str(node.args[0].value)]
        found += [f"{path.relative_to(SRC.parent)}:{line}: {name}" for name in names]
    return [line for line in found if line.split(": ")[-1].startswith(PRIVATE_PREFIXES)]


def test_only_the_adapters_import_private_modules_of_tf_keras_and_tf2jax() -> None:
    found = [
        line
        for path in sorted(SRC.rglob("*.py"))
        if path.name not in ADAPTERS
        for line in _private_imports(path)
    ]
    assert not found, (
        "import these through hublayer._foreign_tf / _foreign_keras / _foreign_tf2jax "
        "(one adapter per library, each guarded by its version range):\n" + "\n".join(found)
    )


def test_the_installed_versions_are_the_ones_the_adapters_were_written_for() -> None:
    assert within(release(tf.__version__), *_foreign_tf.SUPPORTED), tf.__version__
    assert within(release(keras.__version__), *_foreign_keras.SUPPORTED), keras.__version__


# ------------------------------------------------------------------------- TensorFlow


def test_the_trace_picker_calls_the_trace_tensorflow_would_pick(tmp_path: Path) -> None:
    model = tf.saved_model.load(testing.image_feature_vector(tmp_path / "m", dim=4))
    restored = vars(model)["__call__"]
    picker = _foreign_tf.restored_trace_picker()
    assert picker is not None
    x = tf.random.uniform([2, 32, 32, 3])
    inputs = picker.bind(restored, (x,), {"training": False})
    assert inputs is not None
    matching = [t for t in restored.concrete_functions if picker.callable_with(t, inputs)]
    assert len(matching) == 1
    np.testing.assert_allclose(
        picker.call(matching[0], inputs).numpy(), model(x, training=False).numpy(), rtol=1e-6
    )
    # An input the saved traces do not take (wrong dtype) matches none of them.
    wrong = picker.bind(restored, (tf.zeros([2, 32, 32, 3], tf.int32),), {"training": False})
    assert wrong is not None
    assert not any(picker.callable_with(t, wrong) for t in restored.concrete_functions)
    # Inputs TensorFlow cannot bind at all (an unknown keyword) give None: the caller
    # then calls the function, which raises TensorFlow's own error.
    assert picker.bind(restored, (x,), {"no_such_argument": 1}) is None


def test_the_trace_picker_refuses_an_object_that_is_no_restored_function() -> None:
    picker = _foreign_tf.restored_trace_picker()
    assert picker is not None
    with pytest.raises(UnsupportedVersionError, match="_function_type") as caught:
        picker.bind(object(), (), {})
    assert caught.value.package == "tensorflow"


def test_registered_op_defs_hold_every_raw_op_with_its_attrs() -> None:
    defs = _foreign_tf.registered_op_defs()
    raw = {name for name in dir(tf.raw_ops) if not name.startswith("_")}
    assert raw <= set(defs)
    assert sorted(a.name for a in defs["While"].attr if a.type == "func") == ["body", "cond"]


def test_a_tensorflow_outside_the_range_takes_the_public_call_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tf, "__version__", "2.99.0")
    with caplog.at_level(logging.WARNING, logger="hublayer"):
        assert _foreign_tf.restored_trace_picker() is None
    assert "TensorFlow 2.99.0 is outside 2.16 to 2.21" in caplog.text
    assert "public dispatch" in caplog.text


def test_a_tensorflow_outside_the_range_has_no_op_defs_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tf, "__version__", "3.0.0")
    with pytest.raises(UnsupportedVersionError) as caught:
        _foreign_tf.registered_op_defs()
    error = caught.value
    assert isinstance(error, RuntimeError)
    assert (error.package, error.version, error.supported) == (
        "tensorflow",
        "3.0.0",
        "2.16 to 2.21",
    )
    assert "TF_GetAllOpList" in str(error)
    assert "tensorflow>=2.16,<2.22" in str(error)


# ------------------------------------------------------------------------------ Keras


@keras.saving.register_keras_serializable(package="hublayer_test_foreign")
class _Recorder(keras.layers.Layer):
    seen: ClassVar[list[bool | None]] = []

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _Recorder.seen.append(_foreign_keras.in_load_scope_safe_mode())

    def call(self, x: Any) -> Any:
        return x


def test_the_safe_mode_of_the_load_that_rebuilds_a_layer_is_read(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input((2,)), _Recorder()]).save(path)
    _Recorder.seen.clear()
    keras.saving.load_model(path, safe_mode=False)
    keras.saving.load_model(path, safe_mode=True)
    assert _Recorder.seen == [False, True]
    assert _foreign_keras.in_load_scope_safe_mode() is None  # outside any load


class _WithLoss(keras.layers.Layer):
    @_foreign_keras.own_losses_hook
    def _get_own_losses(self) -> list[Any]:
        return [*_foreign_keras.parent_own_losses(super()), keras.ops.convert_to_tensor(0.25)]

    def call(self, x: Any) -> Any:
        return x


def test_an_own_losses_override_shows_in_layer_and_model_losses_before_any_call() -> None:
    layer = _WithLoss()
    model = keras.Sequential([keras.Input((2,)), layer])
    assert [float(v) for v in layer.losses] == [0.25]
    assert [float(v) for v in model.losses] == [0.25]


def test_the_own_losses_hook_refuses_a_keras_that_no_longer_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def losses(self: Any) -> list[Any]:
        return []

    monkeypatch.setattr(keras.Layer, "losses", property(losses))
    with pytest.raises(UnsupportedVersionError, match=r"does not read Layer\._get_own_losses"):

        @_foreign_keras.own_losses_hook
        def _get_own_losses(self: Any) -> list[Any]:
            return []


def test_a_keras_outside_3x_fails_loudly_in_both_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras, "__version__", "4.0.0")
    with pytest.raises(UnsupportedVersionError, match=r"Expected Keras 3\.x") as caught:
        _foreign_keras.in_load_scope_safe_mode()
    assert (caught.value.package, caught.value.version) == ("keras", "4.0.0")
    with pytest.raises(UnsupportedVersionError, match="keras>=3,<4"):

        @_foreign_keras.own_losses_hook
        def _get_own_losses(self: Any) -> list[Any]:
            return []


def test_a_built_layer_takes_new_state_only_inside_tracking_unlocked() -> None:
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    with pytest.raises(ValueError, match="cannot add new elements of state"):
        layer.late = keras.random.SeedGenerator(0)
    with _foreign_keras.tracking_unlocked(layer):
        layer.late = keras.random.SeedGenerator(0, name="late_seed")
    assert [v.path for v in layer.variables][-1] == "late_seed/seed_generator_state"
    with pytest.raises(ValueError, match="cannot add new elements of state"):  # locked again
        layer.later = keras.random.SeedGenerator(1)
    with (
        pytest.raises(UnsupportedVersionError, match="has no such tracker"),
        _foreign_keras.tracking_unlocked(object()),
    ):
        pass


def test_the_own_losses_hook_takes_only_that_method() -> None:
    with pytest.raises(TypeError, match="_get_own_losses"):

        @_foreign_keras.own_losses_hook
        def losses(self: Any) -> list[Any]:
            return []


# ----------------------------------------------------------------------------- tf2jax


def test_tf2jax_names_the_ops_it_cannot_convert() -> None:
    pytest.importorskip("tf2jax")
    assert _foreign_tf2jax.unsupported_operations(["MatMul", "Relu", "NoSuchOp"]) == {"NoSuchOp"}


def test_a_tf2jax_outside_the_range_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    tf2jax = pytest.importorskip("tf2jax")
    assert within(release(tf2jax.__version__), *_foreign_tf2jax.SUPPORTED), tf2jax.__version__
    monkeypatch.setattr(tf2jax, "__version__", "0.4.0")
    with pytest.raises(UnsupportedVersionError, match=r"Expected tf2jax 0\.3 to 0\.3") as caught:
        _foreign_tf2jax.unsupported_operations(["MatMul"])
    assert caught.value.api == "tf2jax._src.ops.get_unsupported_operations"
