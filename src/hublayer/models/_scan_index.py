"""Index one meta graph of a ``saved_model.pb`` for the scan: its contexts, calls, assets.

A *context* is where nodes live: the meta graph's top-level graph, or one library
function. The index records, once per meta graph, what the rules need:

- which functions each node calls (by op name, or through a function-valued attribute:
  ``While``/``If``/``Case`` bodies, tf.data functions, ``PartitionedCall`` targets);
- where each function argument's value comes from (callers' inputs, or what the loader
  binds: a TF2 ``SavedAsset`` through ``SavedConcreteFunction.bound_inputs``);
- the asset constants of TF1 graphs (``asset_file_def`` and ``saved_model_assets``);
- the checkpoint part of the graph (what ``saver_def`` names, and the functions only it
  calls), and the top-level nodes a signature or an init collection runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from google.protobuf import message

from hublayer.models._scan_proto import AssetFileDef
from hublayer.models._scan_registry import FUNCTION_ATTRS, tensorflow_ops
from hublayer.models._scan_report import Finding
from hublayer.models._scan_rules import ASSET_ESCAPE_WHY, HIGH

__all__ = ["escaping_assets", "index_meta_graph"]

_CALLS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
_BRANCHES = frozenset({"If", "StatelessIf", "Case", "StatelessCase"})
#: tf.data ops whose first function takes an element of input 0, then ``other_arguments``.
_DATASET_FUNCTIONS = frozenset(
    {
        "MapDataset",
        "ParallelMapDataset",
        "ParallelMapDatasetV2",
        "FlatMapDataset",
        "InterleaveDataset",
        "ParallelInterleaveDataset",
        "LegacyParallelInterleaveDatasetV2",
        "ExperimentalParallelInterleaveDataset",
        "ExperimentalMapDataset",
        "ExperimentalMapAndBatchDataset",
        "ParallelInterleaveDatasetV2",
        "ParallelInterleaveDatasetV3",
        "ParallelInterleaveDatasetV4",
        "FilterDataset",
        "ParallelFilterDataset",
        "MapAndBatchDataset",
    }
)
_GRAPH = "(graph)"
#: The TF2 signature that names the init op: it runs with the assets fed, unlike the rest.
_INIT_SIGNATURE = "__saved_model_init_op"

# What a traced tensor is: an asset path, a constant, a function argument, or other.
_ASSET = ("asset",)
_OTHER = ("other",)


@dataclass
class _Context:
    """One place nodes live: a meta graph's top-level graph, or one function."""

    name: str
    nodes: dict[str, Any]
    args: dict[str, int] = field(default_factory=dict)
    #: every node as listed, duplicates of a name included (``nodes`` keeps the last).
    listed: list[Any] = field(default_factory=list)


@dataclass
class _MetaGraph:
    """What the rules need to know about one meta graph."""

    label: str
    graph: _Context
    functions: dict[str, _Context]
    asset_nodes: frozenset[str]
    #: (function, arg index) -> where callers' values come from: (context, input, calling
    #: node) triples, or _ASSET / _OTHER for values the loader binds.
    arg_sources: dict[tuple[str, int], list[Any]]
    #: functions some caller reaches in a way the scan does not map (datasets, loops).
    opaque: set[str]
    save_nodes: frozenset[str]
    restore_nodes: frozenset[str]
    #: top-level nodes a signature or an init/table collection runs.
    live_nodes: frozenset[str]
    save_functions: frozenset[str]
    restore_functions: frozenset[str]
    #: top-level variable -> (assigning node, value) for each top-level assignment.
    assigned: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: top-level variable -> why its value cannot be proven from its assignments
    #: (another handle shares its name, or its handle reaches another op).
    variable_doubt: dict[str, str] = field(default_factory=dict)
    #: top-level nodes a signature (not the init op) runs, and the signatures' inputs.
    signature_nodes: frozenset[str] = frozenset()
    signature_inputs: frozenset[str] = frozenset()
    #: the saver_def's filename tensor, and the top-level nodes where the loader feeds it
    #: (the save and restore parts, less whatever a signature or init op runs).
    saver_filename: str = ""
    #: the top-level nodes of the save and restore parts.
    checkpoint_nodes: frozenset[str] = frozenset()
    checkpoint_sites: frozenset[str] = frozenset()
    #: (context, node) -> the functions the node calls or names, computed once.
    callees: dict[tuple[str, str], list[str]] = field(default_factory=dict)


def _node_name(tensor: str) -> str:
    return tensor.lstrip("^").split(":", 1)[0]


def _data_inputs(node: Any) -> list[str]:
    return [name for name in node.input if not name.startswith("^")]


def _attr_functions(value: Any) -> Iterator[str]:
    """Names of every function an attribute value refers to, nested ones included."""
    kind = value.WhichOneof("value")
    if kind == "func":
        yield value.func.name
        for nested in value.func.attr.values():
            yield from _attr_functions(nested)
    elif kind == "list":
        for func in value.list.func:
            yield func.name
            for nested in func.attr.values():
                yield from _attr_functions(nested)


def _callees(node: Any, functions: dict[str, _Context]) -> list[str]:
    """The functions a node calls: by op name, or through a function-valued attribute.

    A registered op calls functions only through the attributes its op def declares as
    ``func`` / ``list(func)`` (``FUNCTION_ATTRS``), so only those are read; every
    attribute of any other op is.
    """
    op = node.op
    names = [op] if op in functions else []
    attrs = node.attr
    if op in tensorflow_ops():
        for key in FUNCTION_ATTRS.get(op, ()):
            if key in attrs:
                names.extend(_attr_functions(attrs[key]))
    else:
        for value in attrs.values():
            names.extend(_attr_functions(value))
    return names


def _closure(graph: _Context, *starts: str) -> frozenset[str]:
    """The top-level nodes ``starts`` depend on (data and control inputs), themselves included."""
    seen: set[str] = set()
    todo = [_node_name(start) for start in starts if start]
    while todo:
        name = todo.pop()
        if name in seen or name not in graph.nodes:
            continue
        seen.add(name)
        todo.extend(_node_name(i) for i in graph.nodes[name].input)
    return frozenset(seen)


def _reachable(roots: set[str], calls: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(calls.get(name, ()))
    return seen


def index_meta_graph(meta: Any, label: str) -> _MetaGraph:
    """Index meta graph ``meta``; ``label`` tells it apart when a model has several."""
    graph = _Context(_GRAPH if not label else f"{_GRAPH} {label}", {})
    graph.listed = list(meta.graph_def.node)
    for node in graph.listed:
        graph.nodes[node.name] = node
    functions: dict[str, _Context] = {}
    implements: dict[str, set[str]] = {}
    for function in meta.graph_def.library.function:
        listed = list(function.node_def)
        context = _Context(function.signature.name, {n.name: n for n in listed}, listed=listed)
        context.args = {arg.name: i for i, arg in enumerate(function.signature.input_arg)}
        functions[context.name] = context
        if "api_implements" in function.attr:
            api = bytes(function.attr["api_implements"].s).decode("utf-8", "replace")
            implements.setdefault(api, set()).add(context.name)
    assigned, variable_doubt = _variables(graph, functions)
    arg_sources: dict[tuple[str, int], list[Any]] = {}
    opaque: set[str] = set()
    calls: dict[str, set[str]] = {}
    all_callees: dict[tuple[str, str], list[str]] = {}
    for group in implements.values():  # Grappler may run any of them in place of another
        for name in group:
            calls.setdefault(name, set()).update(group - {name})
    for context in (graph, *functions.values()):
        called = calls.setdefault(context.name, set())
        for node in context.nodes.values():
            callees = all_callees[context.name, node.name] = _callees(node, functions)
            if not callees:
                continue
            called.update(callees)
            if node.op in functions or node.op in _CALLS:
                mapped, passed = callees[:1], _data_inputs(node)
            elif node.op in _BRANCHES:
                mapped, passed = callees, _data_inputs(node)[1:]
            elif node.op in _DATASET_FUNCTIONS and callees[0] in functions:
                _map_dataset_function(context, node, functions[callees[0]], arg_sources)
                opaque.update(callees[1:])
                continue
            else:  # While bodies, other dataset functions...: arguments the scan does not map
                opaque.update(callees)
                continue
            for callee in mapped:
                for i, tensor in enumerate(passed):
                    arg_sources.setdefault((callee, i), []).append((context, tensor, node.name))
            opaque.update(callees[len(mapped) :])
    # What the loader binds: user inputs first, then the captured objects.
    objects = meta.object_graph_def
    for name, concrete in objects.concrete_functions.items():
        concrete_context = functions.get(name)
        if concrete_context is None:
            continue
        bound = list(concrete.bound_inputs)
        first = len(concrete_context.args) - len(bound)
        if first < 0:  # more captures than arguments: nothing is known of any of them
            bound, first = [], len(concrete_context.args)
        for i in range(len(concrete_context.args)):
            source = _OTHER
            if i >= first:
                node = bound[i - first]
                is_asset = 0 <= node < len(objects.nodes) and (
                    objects.nodes[node].WhichOneof("kind") == "asset"
                )
                source = _ASSET if is_asset else _OTHER
            arg_sources.setdefault((name, i), []).append(source)
    saver = meta.saver_def
    save_nodes = _closure(graph, saver.save_tensor_name)
    restore_nodes = _closure(graph, saver.restore_op_name)
    checkpoint = save_nodes | restore_nodes
    signatures = [sig for key, sig in meta.signature_def.items() if key != _INIT_SIGNATURE]
    signature_roots = [t.name for sig in signatures for t in sig.outputs.values()]
    roots = [t.name for sig in meta.signature_def.values() for t in sig.outputs.values()]
    roots += [v for c in meta.collection_def.values() for v in c.node_list.value]
    live_nodes = _closure(graph, *roots)

    def called_from(nodes: frozenset[str]) -> set[str]:
        roots = {c for n in nodes for c in all_callees[graph.name, n]}
        return _reachable(roots, calls)

    model_roots = {
        c
        for name, node in graph.nodes.items()
        if name not in checkpoint
        for c in all_callees[graph.name, name]
    }
    model_roots.update(objects.concrete_functions.keys())
    model = _reachable(model_roots, calls)
    return _MetaGraph(
        label=label,
        graph=graph,
        functions=functions,
        asset_nodes=_asset_nodes(meta),
        arg_sources=arg_sources,
        opaque=opaque,
        save_nodes=save_nodes,
        restore_nodes=restore_nodes,
        live_nodes=live_nodes,
        # A function both parts reach is neither: the restore part must not write.
        save_functions=frozenset(called_from(save_nodes) - model - called_from(restore_nodes)),
        restore_functions=frozenset(called_from(restore_nodes) - model - called_from(save_nodes)),
        assigned=assigned,
        variable_doubt=variable_doubt,
        callees=all_callees,
        signature_nodes=_closure(graph, *signature_roots),
        signature_inputs=frozenset(
            _node_name(t.name) for sig in signatures for t in sig.inputs.values()
        ),
        saver_filename=_node_name(saver.filename_tensor_name),
        checkpoint_sites=checkpoint - live_nodes,
        checkpoint_nodes=checkpoint,
    )


def _map_dataset_function(
    context: _Context, node: Any, function: _Context, arg_sources: dict[Any, list[Any]]
) -> None:
    """Where a tf.data function's arguments come from: first the components of an element
    of the input dataset (input 0), then the captured ``other_arguments`` (``Targuments``)."""
    inputs = _data_inputs(node)
    captured = len(node.attr["Targuments"].list.type)
    components = len(function.args) - captured
    for i in range(len(function.args)):
        if i < components:
            source: Any = ("element", context, inputs[0] if inputs else "", i, node.name)
        else:
            source = (context, inputs[1 + i - components], node.name)
        arg_sources.setdefault((function.name, i), []).append(source)


def _handle_key(node: Any) -> tuple[str, str]:
    """The resource a ``VarHandleOp`` names: (container, shared_name or the node's name)."""
    container = bytes(node.attr["container"].s).decode("utf-8", "replace")
    shared = bytes(node.attr["shared_name"].s).decode("utf-8", "replace")
    return container, shared or node.name


def _variables(
    graph: _Context, functions: dict[str, _Context]
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """Top-level variables' assignments, and why some cannot be trusted to hold them.

    A variable's value is proven from its top-level assignments only when nothing else
    can assign it: no other ``VarHandleOp`` (top level or in any function) names the same
    resource, and its handle reaches no op but reads and those assignments.
    """
    assigned: dict[str, list[tuple[str, str]]] = {}
    doubt: dict[str, str] = {}
    handles: dict[tuple[str, str], list[str]] = {}
    for context in (graph, *functions.values()):
        for node in context.nodes.values():
            if node.op == "VarHandleOp":
                where = node.name if context is graph else f"{context.name}/{node.name}"
                handles.setdefault(_handle_key(node), []).append(where)
    variables = {n.name for n in graph.nodes.values() if n.op == "VarHandleOp"}
    for node in graph.nodes.values():
        inputs = _data_inputs(node)
        for position, tensor in enumerate(inputs):
            variable = _node_name(tensor)
            if variable not in variables:
                continue
            if node.op == "AssignVariableOp" and position == 0 and len(inputs) == 2:
                assigned.setdefault(variable, []).append((node.name, inputs[1]))
            elif node.op not in ("ReadVariableOp", "VarIsInitializedOp") or position != 0:
                doubt[variable] = f"whose handle reaches {node.op} {node.name!r}"
    for names in handles.values():
        if len(names) > 1:
            for name in names:
                if name in variables:
                    doubt[name] = f"which {len(names) - 1} other handle(s) also name ({names})"
    return assigned, doubt


def _asset_file_defs(meta: Any) -> list[Any]:
    """``asset_file_def``, and the AssetFileDefs TF1 builders keep in the
    ``saved_model_assets`` collection."""
    assets = list(meta.asset_file_def)
    for value in meta.collection_def["saved_model_assets"].any_list.value:
        if value.type_url.endswith("/tensorflow.AssetFileDef"):
            with contextlib.suppress(message.DecodeError):
                assets.append(AssetFileDef.FromString(value.value))
    return assets


def _asset_nodes(meta: Any) -> frozenset[str]:
    """Top-level nodes that hold asset paths."""
    return frozenset(_node_name(a.tensor_info.name) for a in _asset_file_defs(meta))


def escaping_assets(meta: Any, label: str, file: str) -> Iterator[Finding]:
    """An asset filename the loader joins to ``assets/`` must stay inside it."""
    for asset in _asset_file_defs(meta):
        name = asset.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts:
            yield Finding(
                "(asset)",
                _GRAPH + (f" {label}" if label else ""),
                name,
                HIGH,
                ASSET_ESCAPE_WHY,
                file,
                f"asset_file_def filename {name!r}",
            )
