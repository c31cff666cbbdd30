"""Prove, by value, where a path that reaches a file op points.

A conditional op (``ReadFile``, a vocabulary table's initializer, a dataset reader, a
checkpoint op) is allowed only when every value its path input can take at run time is
proven to lie inside the model folder. The proof follows the data flow backwards, through
function arguments to their callers, and ends at one of these roots:

==========  ===================================================================  =========
root        what the loader puts there                                          proves
==========  ===================================================================  =========
``asset``   ``<model>/assets/<filename>``: a TF2 ``SavedAsset`` bound to a       path ops
            concrete function, a TF1 asset tensor *where the loader feeds it*
            (the init op, never a signature), or a variable assigned only from
            one of these
``saver``   ``<model>/variables/variables``: the ``saver_def``'s filename       checkpoint
            tensor, where the loader feeds it (the save and restore parts of   ops
            the graph, never a signature)
``const``   the constant's own value, decoded from ``tensor_content`` when set  nothing
            (as TensorFlow does) and from ``string_val`` otherwise
==========  ===================================================================  =========

Constant suffixes may be joined to a root (``StringJoin``, ``ShardedFilename``: what
``tf.saved_model.save``'s checkpoint functions do), but never a ``..`` part. Every other
value (a signature input, a variable restored from the checkpoint, a variable another
handle can assign, anything computed) is *unknown*, and an unknown path is refused: what
the scan cannot prove, it refuses.

Example:
    >>> Value("asset", "").inside("asset"), Value("const", "/etc/passwd").inside("asset")
    (True, False)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from hublayer.models._scan_index import (
    _ASSET,
    _Context,
    _data_inputs,
    _MetaGraph,
    _node_name,
)

__all__ = ["Value", "trace"]

Root = Literal["asset", "saver", "const", "variable", "unknown"]

_DT_STRING = 7
_MAX_DEPTH = 48
_MAX_VALUES = 64
#: Ops whose output is their first data input, unchanged (values and, for strings, text).
_SAME_VALUE = frozenset(
    {
        "Identity",
        "Snapshot",
        "StopGradient",
        "PreventGradient",
        "EnsureShape",
        "Reshape",
        "ExpandDims",
        "Squeeze",
        "PlaceholderWithDefault",
    }
)
_SHARD_SUFFIX = "-#####-of-#####"
#: tf.data ops whose elements are elements of their input 0, unchanged (order and count
#: aside): an element traced through them is an element of that input.
_SAME_ELEMENTS = frozenset(
    {
        "ShuffleDataset",
        "ShuffleDatasetV2",
        "ShuffleDatasetV3",
        "RepeatDataset",
        "PrefetchDataset",
        "TakeDataset",
        "SkipDataset",
        "ShardDataset",
        "OptionsDataset",
        "ModelDataset",
        "MaxIntraOpParallelismDataset",
        "PrivateThreadPoolDataset",
        "AssertCardinalityDataset",
    }
)


@dataclass(frozen=True)
class Value:
    """One value a string tensor can take: a root and the text after it.

    Attributes:
        root: ``asset``, ``saver``, ``const`` (``text`` is the whole value), ``variable``
            (``text`` names a top-level variable handle) or ``unknown`` (``text`` says why).
        text: see ``root``.
    """

    root: Root
    text: str = ""

    def inside(self, *roots: str) -> bool:
        """Whether this value is one of ``roots`` plus a suffix without a ``..`` part."""
        if self.root not in roots:
            return False
        parts = PurePosixPath(self.text.replace("\\", "/")).parts
        return ".." not in parts and "\x00" not in self.text

    def describe(self) -> str:
        """What the value is, for a finding's detail."""
        if self.root == "const":
            return f"path is the constant {self.text!r}"
        if self.root == "unknown":
            return f"path is {self.text}"
        if self.root == "variable":
            return f"path is held in variable {self.text!r}"
        where = "assets/" if self.root == "asset" else "variables/"
        return f"path is the model's {where} plus {self.text!r}, which leaves it"


def _unknown(why: str) -> list[Value]:
    return [Value("unknown", why)]


def decode_strings(tensor: Any) -> list[str] | None:
    """The strings a string ``TensorProto`` holds, as TensorFlow reads them.

    ``tensor_content``, when set, wins over ``string_val`` (``Tensor::FromProto``): a
    varint length for every element, then the bytes of each. ``None`` when the tensor
    is not a string tensor or its content does not decode.
    """
    if tensor.dtype != _DT_STRING:
        return None
    content = bytes(tensor.tensor_content)
    if not content:
        values = [bytes(v).decode("utf-8", "replace") for v in tensor.string_val]
        return values or [""]
    count = 1
    for dim in tensor.tensor_shape.dim:
        count *= max(int(dim.size), 0)
    lengths: list[int] = []
    pos = 0
    try:
        for _ in range(count):
            shift = length = 0
            while True:
                byte = content[pos]
                pos += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            lengths.append(length)
    except IndexError:
        return None
    strings = []
    for length in lengths:
        strings.append(content[pos : pos + length].decode("utf-8", "replace"))
        pos += length
    return strings if pos == len(content) else None


def _output_index(tensor: str) -> int:
    tail = tensor.rsplit(":", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else 0


class _Tracer:
    def __init__(self, index: _MetaGraph) -> None:
        self.index = index

    def tensor(self, context: _Context, tensor: str, site: str | None, depth: int) -> list[Value]:
        index = self.index
        if depth > _MAX_DEPTH:
            return _unknown("passed through more steps than the scan follows")
        name = _node_name(tensor)
        if name in context.args and name not in context.nodes:
            return self.argument(context.name, context.args[name], depth)
        node = context.nodes.get(name)
        if node is None:
            return _unknown(f"{name!r}, which {context.name} does not define")
        top = context is index.graph
        if top:
            site = site or name
            if name in index.signature_inputs:  # whoever calls the signature chooses it
                return _unknown(f"the signature input {name!r}")
            if name in index.asset_nodes and (
                node.op == "Placeholder" or site not in index.signature_nodes
            ):
                return [Value("asset")]
            if name == index.saver_filename and site in index.checkpoint_sites:
                return [Value("saver")]
        inputs = _data_inputs(node)
        op = node.op
        if op == "Const":
            strings = decode_strings(node.attr["value"].tensor)
            if strings is None:
                return _unknown(f"the constant {name!r}, which is not a readable string")
            return [Value("const", s) for s in strings]
        if op in _SAME_VALUE and inputs:
            return self.tensor(context, inputs[0], site, depth + 1)
        if op == "IdentityN" and inputs:
            at = _output_index(tensor)
            if at < len(inputs):
                return self.tensor(context, inputs[at], site, depth + 1)
        if op in ("Select", "SelectV2") and len(inputs) == 3:
            return self.union(context, inputs[1:], site, depth)
        if op == "Pack" and inputs:
            return self.union(context, inputs, site, depth)
        if op == "ConcatV2" and len(inputs) > 1:
            return self.union(context, inputs[:-1], site, depth)
        if op == "StringJoin" and inputs:
            return self.join(context, node, inputs, site, depth)
        if op == "ShardedFilename" and inputs:
            return [
                Value(v.root, v.text + _SHARD_SUFFIX) if v.root != "unknown" else v
                for v in self.tensor(context, inputs[0], site, depth + 1)
            ]
        if op == "VarHandleOp":
            if not top:
                return _unknown(f"a variable created inside {context.name}")
            return [Value("variable", name)]
        if op == "ReadVariableOp" and inputs:
            return self.read_variable(context, inputs[0], site, depth)
        where = "the top-level graph" if top else context.name
        return _unknown(f"computed by {op} ({name!r} in {where})")

    def union(
        self, context: _Context, inputs: list[str], site: str | None, depth: int
    ) -> list[Value]:
        out: list[Value] = []
        for tensor in inputs:
            out.extend(self.tensor(context, tensor, site, depth + 1))
        return out if len(out) <= _MAX_VALUES else _unknown("one of too many values")

    def join(
        self, context: _Context, node: Any, inputs: list[str], site: str | None, depth: int
    ) -> list[Value]:
        separator = bytes(node.attr["separator"].s).decode("utf-8", "replace")
        parts = [self.tensor(context, tensor, site, depth + 1) for tensor in inputs]
        out: list[Value] = []
        for combo in itertools.islice(itertools.product(*parts), _MAX_VALUES + 1):
            bad = next((v for v in combo if v.root in ("unknown", "variable")), None)
            if bad is not None:
                out.append(bad if bad.root == "unknown" else Value("unknown", bad.describe()))
                continue
            first, rest = combo[0], combo[1:]
            if any(v.root != "const" for v in rest):
                out.extend(_unknown("a model path joined after other text (StringJoin)"))
                continue
            text = first.text + "".join(separator + v.text for v in rest)
            out.append(Value(first.root, text))
        return out if len(out) <= _MAX_VALUES else _unknown("one of too many values")

    def argument(self, function: str, position: int, depth: int) -> list[Value]:
        index = self.index
        if function in index.opaque:
            return _unknown(
                f"argument {position} of {function}, passed by a loop or dataset the scan "
                "does not follow"
            )
        sources = index.arg_sources.get((function, position))
        if not sources:
            return _unknown(f"argument {position} of {function}, which no caller passes")
        out: list[Value] = []
        for source in sources:
            if source == _ASSET:
                out.append(Value("asset"))
            elif isinstance(source, tuple) and len(source) == 5 and source[0] == "element":
                _, caller, dataset, component, caller_node = source
                site = caller_node if caller is index.graph else None
                out.extend(self.element(caller, dataset, component, site, depth + 1))
            elif isinstance(source, tuple) and len(source) == 3:
                caller, tensor, caller_node = source
                site = caller_node if caller is index.graph else None
                out.extend(self.tensor(caller, tensor, site, depth + 1))
            else:
                out.extend(_unknown(f"argument {position} of {function}, given at run time"))
        return out if len(out) <= _MAX_VALUES else _unknown("one of too many values")

    def element(
        self, context: _Context, dataset: str, component: int, site: str | None, depth: int
    ) -> list[Value]:
        """The values component ``component`` of the elements of ``dataset`` can take:
        known only for datasets made from tensors (each element is one of their values)."""
        node = context.nodes.get(_node_name(dataset))
        if node is not None and node.op in _SAME_ELEMENTS and _data_inputs(node):
            return self.element(context, _data_inputs(node)[0], component, site, depth + 1)
        if node is None or node.op not in ("TensorSliceDataset", "TensorDataset"):
            made = "an argument" if node is None else node.op
            return _unknown(f"an element of a dataset made by {made}")
        inputs = _data_inputs(node)
        if component >= len(inputs):
            return _unknown(f"component {component} of a dataset with {len(inputs)}")
        return self.tensor(context, inputs[component], site, depth + 1)

    def read_variable(
        self, context: _Context, handle: str, site: str | None, depth: int
    ) -> list[Value]:
        index = self.index
        out: list[Value] = []
        for source in self.tensor(context, handle, site, depth + 1):
            if source.root != "variable":
                out.append(source if source.root == "unknown" else Value("unknown", "a variable"))
                continue
            variable = source.text
            why = index.variable_doubt.get(variable)
            if why is not None:
                out.extend(_unknown(f"variable {variable!r}, {why}"))
                continue
            assigned = index.assigned.get(variable, [])
            if not assigned:
                out.extend(_unknown(f"variable {variable!r}, restored from the checkpoint"))
                continue
            for assign_node, value in assigned:
                out.extend(self.tensor(index.graph, value, assign_node, depth + 1))
        return out


def trace(index: _MetaGraph, context: _Context, tensor: str, site: str | None) -> list[Value]:
    """Every value ``tensor`` (in ``context``) can take, as far as the scan can prove.

    Args:
        index: the meta graph's index.
        context: where the consuming node sits.
        tensor: its input, as the node lists it.
        site: the consuming node's name when it sits in the top-level graph.
    """
    return _Tracer(index).tensor(context, tensor, site, 0)
