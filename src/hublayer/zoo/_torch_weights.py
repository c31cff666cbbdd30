"""Read a PyTorch ``.pth`` state dict into numpy arrays, without PyTorch.

``torch.save`` writes one of two layouts, and this reader takes both:

- **zip** (PyTorch >= 1.6): ``<root>/data.pkl`` is a pickle of the state dict whose
  tensors refer to storages by key; storage ``k`` is the raw file ``<root>/data/<k>``.
- **legacy** (before 1.6): five records back to back in one file::

      pickle(magic number)  pickle(protocol version)  pickle(system info)
      pickle(state dict)    pickle([storage keys])
      for each key: <int64 element count, little endian> <raw little-endian elements>

In both, a tensor is pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, requires_grad, hooks)`` and a storage as the persistent id ``("storage",
torch.<Type>Storage, key, location, numel)``.

The unpickler is restricted: it resolves only the handful of globals above (anything
else raises :class:`~hublayer.errors.ModelNotFoundError` before it can run), so reading an
untrusted file cannot execute code the way ``torch.load(weights_only=False)`` can.

Example:
    >>> from hublayer.zoo._torch_weights import read_state_dict
    >>> weights = read_state_dict(path)                       # doctest: +SKIP
    >>> weights["_conv_stem.weight"].shape                    # doctest: +SKIP
    (32, 3, 3, 3)
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from hublayer.errors import ModelNotFoundError

__all__ = ["read_state_dict"]

#: First record of a legacy ``torch.save`` file.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

#: ``torch.<Name>Storage`` -> numpy dtype of its elements (little endian on disk).
_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "<i1",
    "ByteStorage": "<u1",
    "BoolStorage": "?",
}


@dataclass(frozen=True)
class _StorageRef:
    """A storage named by a pickled persistent id; its bytes are read afterwards."""

    key: str
    dtype: str
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """A tensor view into a storage, materialized once the storages are read."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: _StorageRef,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_ignored: Any,
) -> _TensorRef:
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _StorageType:
    """Stands in for ``torch.<Name>Storage`` inside a persistent id."""

    def __init__(self, name: str) -> None:
        self.name = name


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a plain state dict of tensors needs."""

    def __init__(self, file: IO[bytes], source: Path) -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise ModelNotFoundError(
            "Expected a PyTorch state dict of plain tensors. "
            f"Received: a pickle that references {module}.{name}, which this reader "
            "refuses to load because unpickling it could run code. Save the weights with "
            "`torch.save(model.state_dict(), path)`.",
            path=str(self._source),
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ModelNotFoundError(
                "Expected tensor storages pickled as ('storage', type, key, location, numel). "
                f"Received: persistent id {pid!r}. The file is not a supported `.pth` file.",
                path=str(self._source),
            )
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType):
            raise ModelNotFoundError(
                f"Expected a torch storage type. Received: {storage_type!r}.",
                path=str(self._source),
            )
        return _StorageRef(str(key), _STORAGE_DTYPES[storage_type.name], int(numel))


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a ``torch.save``-d state dict as ``{name: numpy array}``, without PyTorch.

    Args:
        path: a ``.pth`` / ``.pt`` file written by ``torch.save(model.state_dict(), path)``,
            in the zip layout or the legacy one.

    Returns:
        The tensors in file order, as C-contiguous numpy arrays with PyTorch's shapes
        (convolution kernels stay ``[out, in, kh, kw]``).

    Raises:
        ModelNotFoundError: the file is missing, truncated, or not a plain state dict
            (for example a pickled module, which would need code to run).

    Example:
        >>> weights = read_state_dict("efficientnet-lite0.pth")  # doctest: +SKIP
        >>> sorted(weights)[:2]                                   # doctest: +SKIP
        ['_bn0.bias', '_bn0.num_batches_tracked']
    """
    source = Path(path)
    if not source.is_file():
        raise ModelNotFoundError(
            f"Expected a PyTorch weights file. Received: path={str(source)!r}, which does "
            "not exist. Check the path, or reinstall the package that ships the file.",
            path=str(source),
        )
    try:
        if zipfile.is_zipfile(source):
            return _read_zip(source)
        with source.open("rb") as file:
            return _read_legacy(file, source)
    except (EOFError, ValueError, KeyError, IndexError, pickle.UnpicklingError) as error:
        raise ModelNotFoundError(
            "Expected a complete PyTorch state dict. "
            f"Received: path={str(source)!r}, which could not be read ({error}). "
            "The file is truncated or not a `torch.save` file; reinstall or re-save it.",
            path=str(source),
        ) from error


def _read_zip(source: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(source) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"expected one */data.pkl member, found {len(pickles)}")
        root = pickles[0][: -len("data.pkl")]
        refs = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), source).load()
        buffers: dict[str, np.ndarray] = {}
        for ref in _tensor_refs(refs):
            key = ref.storage.key
            if key not in buffers:
                raw = archive.read(f"{root}data/{key}")
                buffers[key] = np.frombuffer(raw, dtype=ref.storage.dtype)
        return _materialize(refs, buffers)


def _read_legacy(file: IO[bytes], source: Path) -> dict[str, np.ndarray]:
    magic = pickle.load(file)  # plain ints and a dict: the stock unpickler is safe here
    protocol = pickle.load(file)
    if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
        raise ValueError(f"not a torch.save file (magic={magic!r}, protocol={protocol!r})")
    pickle.load(file)  # system info: endianness and C type sizes
    refs = _RestrictedUnpickler(file, source).load()
    keys = pickle.load(file)
    by_key = {ref.storage.key: ref.storage for ref in _tensor_refs(refs)}
    buffers: dict[str, np.ndarray] = {}
    for key in keys:
        storage = by_key[str(key)]
        count = int(np.frombuffer(_read_exact(file, 8), dtype="<i8")[0])
        itemsize = np.dtype(storage.dtype).itemsize
        buffers[storage.key] = np.frombuffer(
            _read_exact(file, count * itemsize), dtype=storage.dtype
        )
    return _materialize(refs, buffers)


def _read_exact(file: IO[bytes], size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise ValueError(f"expected {size} more bytes, found {len(data)}")
    return data


def _tensor_refs(refs: Any) -> list[_TensorRef]:
    if not isinstance(refs, dict) or not all(isinstance(v, _TensorRef) for v in refs.values()):
        raise ValueError("the pickle is not a flat {name: tensor} state dict")
    return list(refs.values())


def _materialize(
    refs: dict[str, _TensorRef], buffers: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for name, ref in refs.items():
        flat = buffers[ref.storage.key]
        itemsize = flat.dtype.itemsize
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
        if ref.offset < 0 or (all(ref.size) and last >= flat.size):
            raise ValueError(f"tensor {name!r} reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset :],
            shape=ref.size,
            strides=tuple(s * itemsize for s in ref.stride),
            writeable=False,
        )
        arrays[str(name)] = np.array(view, dtype=view.dtype.newbyteorder("="), order="C")
    return arrays
