"""Walk every node of a ``saved_model.pb``, TF-free, and judge it against the denylist.

Every meta graph's top-level graph and *every* function of its library is walked, not
only the ones a signature names: a ``While`` body, an ``If``/``Case`` branch, a tf.data
``map`` function or a function called by another function is a ``FunctionDef`` like any
other. A function-valued attribute that names a function the library lacks is reported.

Paths are traced (through ``Identity``) to where they come from, so the few allowed uses
of file ops (see ``_scan_rules.py``) can be told apart from the rest:

- a TF2 function argument is an asset when the object graph binds it to a ``SavedAsset``
  (``SavedConcreteFunction.bound_inputs``), or every caller passes an asset to it;
- a top-level constant is an asset when ``asset_file_def`` names it (TF1 Hub modules);
- the nodes that ``saver_def`` names, the nodes they depend on, and the functions only
  they call, form the checkpoint part of the graph.

Example:
    >>> from hublayer.models._scan_proto import SavedModel
    >>> model = SavedModel()
    >>> model.meta_graphs.add().graph_def.node.add(name="w", op="WriteFile")
    >>> findings, ops, _ = walk(model, file="saved_model.pb")
    >>> findings[0].op, findings[0].severity, dict(ops)
    ('WriteFile', 'high', {'WriteFile': 1})
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from google.protobuf import message

from hublayer.models._scan_proto import AssetFileDef
from hublayer.models._scan_registry import FUNCTION_ATTRS, TENSORFLOW_OPS
from hublayer.models._scan_report import Finding
from hublayer.models._scan_rules import (
    ASSET_ESCAPE_WHY,
    DENYLIST,
    HIGH,
    MEDIUM,
    MISSING_FUNCTION_WHY,
    UNREGISTERED_WHY,
    Rule,
)

__all__ = ["walk"]

_DT_STRING = 7
_PASS_THROUGH = frozenset({"Identity", "Snapshot", "StopGradient"})
_CALLS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
_BRANCHES = frozenset({"If", "StatelessIf", "Case", "StatelessCase"})
_GRAPH = "(graph)"

# What a traced tensor is: an asset path, a constant, a function argument, or other.
_ASSET = ("asset",)
_OTHER = ("other",)


@dataclass
class _Context:
    """One place nodes live: a meta graph's top-level graph, or one function."""

    name: str
    nodes: dict[str, Any]
    args: dict[str, int] = field(default_factory=dict)


@dataclass
class _MetaGraph:
    """What the rules need to know about one meta graph."""

    label: str
    graph: _Context
    functions: dict[str, _Context]
    asset_nodes: frozenset[str]
    #: (function, arg index) -> where callers' values come from: (context, input) pairs,
    #: or _ASSET / _OTHER for values the loader binds.
    arg_sources: dict[tuple[str, int], list[Any]]
    #: functions some caller reaches in a way the scan does not map (datasets, loops).
    opaque: set[str]
    save_nodes: frozenset[str]
    restore_nodes: frozenset[str]
    #: top-level nodes a signature or an init/table collection runs.
    live_nodes: frozenset[str]
    save_functions: frozenset[str]
    restore_functions: frozenset[str]
    #: top-level variable -> the values assigned to it (TF2's asset path variables).
    assigned: dict[str, list[str]] = field(default_factory=dict)
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
    if op in TENSORFLOW_OPS:
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


def _index(meta: Any, label: str) -> _MetaGraph:
    graph = _Context(_GRAPH if not label else f"{_GRAPH} {label}", {})
    for node in meta.graph_def.node:
        graph.nodes[node.name] = node
    assigned: dict[str, list[str]] = {}
    for node in graph.nodes.values():
        if node.op == "AssignVariableOp" and len(inputs := _data_inputs(node)) == 2:
            assigned.setdefault(_node_name(inputs[0]), []).append(inputs[1])
    functions: dict[str, _Context] = {}
    for function in meta.graph_def.library.function:
        context = _Context(function.signature.name, {n.name: n for n in function.node_def})
        context.args = {arg.name: i for i, arg in enumerate(function.signature.input_arg)}
        functions[context.name] = context
    arg_sources: dict[tuple[str, int], list[Any]] = {}
    opaque: set[str] = set()
    calls: dict[str, set[str]] = {}
    all_callees: dict[tuple[str, str], list[str]] = {}
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
            else:  # While bodies, dataset functions...: arguments the scan does not map
                opaque.update(callees)
                continue
            for callee in mapped:
                for i, tensor in enumerate(passed):
                    arg_sources.setdefault((callee, i), []).append((context, tensor))
            opaque.update(callees[len(mapped) :])
    # What the loader binds: user inputs first, then the captured objects.
    objects = meta.object_graph_def
    for name, concrete in objects.concrete_functions.items():
        concrete_context = functions.get(name)
        if concrete_context is None:
            continue
        bound = list(concrete.bound_inputs)
        first = len(concrete_context.args) - len(bound)
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
        save_functions=frozenset(called_from(save_nodes) - model),
        restore_functions=frozenset(called_from(restore_nodes) - model),
        assigned=assigned,
        callees=all_callees,
    )


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


def _escaping_assets(meta: Any, label: str, file: str) -> Iterator[Finding]:
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


def _trace(index: _MetaGraph, context: _Context, tensor: str, depth: int = 0) -> tuple[Any, ...]:
    """Follow ``tensor`` back through pass-through ops to an asset, constant or argument."""
    if depth > 16:
        return _OTHER
    for _ in range(64):
        name = _node_name(tensor)
        if name in context.args and name not in context.nodes:
            return ("arg", context.name, context.args[name])
        node = context.nodes.get(name)
        if node is None:
            return _OTHER
        if context is index.graph and name in index.asset_nodes:
            return _ASSET
        if context is index.graph and node.op == "ReadVariableOp" and node.input:
            # TF2's graph keeps each asset path in a variable assigned from the asset.
            values = index.assigned.get(_node_name(node.input[0]), [])
            if values and all(_trace(index, context, v, depth + 1) == _ASSET for v in values):
                return _ASSET
            return _OTHER
        if node.op in _PASS_THROUGH and node.input:
            tensor = _data_inputs(node)[0] if _data_inputs(node) else ""
            continue
        if node.op == "Const":
            value = node.attr["value"].tensor
            if value.dtype == _DT_STRING and len(value.string_val) == 1:
                return ("const", value.string_val[0].decode("utf-8", "replace"))
        return _OTHER
    return _OTHER


def _is_asset(index: _MetaGraph, source: tuple[Any, ...], seen: set[tuple[str, int]]) -> bool:
    if source == _ASSET:
        return True
    if source[0] != "arg":
        return False
    key = (source[1], source[2])
    callers = index.arg_sources.get(key)
    if key in seen or not callers or source[1] in index.opaque:
        return False
    seen.add(key)
    try:
        for caller in callers:
            if isinstance(caller[0], _Context):
                traced = _trace(index, caller[0], caller[1])
            else:
                traced = caller
            if not _is_asset(index, traced, seen):
                return False
        return True
    finally:
        seen.discard(key)


def _judge(index: _MetaGraph, context: _Context, node: Any, rule: Rule) -> str | None:
    """``None`` when the node passes its rule's check, else a detail for the finding."""
    check = rule.check
    if check is None:
        return ""
    in_graph = context is index.graph
    if check in ("checkpoint_save", "checkpoint_restore"):
        if in_graph:
            # A top-level node runs only when fetched: by a signature, an init or table
            # collection, or the saver's restore op (which must not save).
            allowed = node.name not in index.live_nodes and (
                check == "checkpoint_restore" or node.name not in index.restore_nodes
            )
        else:
            save = check == "checkpoint_save"
            allowed = context.name in (index.save_functions if save else index.restore_functions)
        return None if allowed else "outside the checkpoint functions the saver_def names"
    if check == "print_file":
        stream = node.attr["output_stream"].s.decode("utf-8", "replace")
        return f"output_stream={stream!r}" if stream.startswith("file://") else None
    inputs = _data_inputs(node)
    tensor = inputs[rule.path_input] if rule.path_input < len(inputs) else ""
    source = _trace(index, context, tensor)
    if check == "cache_file":
        return None if source == ("const", "") else _describe(source)
    if _is_asset(index, source, set()):
        return None
    return _describe(source) + ", not a file of the model's assets/"


def _describe(source: tuple[Any, ...]) -> str:
    if source[0] == "const":
        return f"path is the constant {source[1]!r}"
    if source[0] == "arg":
        return f"path is argument {source[2]} of {source[1]}, not always an asset"
    return "path is computed in the graph"


def walk(model: Any, *, file: str) -> tuple[list[Finding], Counter[str], int]:
    """Judge every node of a parsed ``SavedModel``.

    Args:
        model: a ``_scan_proto.SavedModel``.
        file: the file it came from, as findings should name it.

    Returns:
        ``(findings, op counts, number of functions walked)``.
    """
    findings: list[Finding] = []
    ops: Counter[str] = Counter()
    walked = 0
    for number, meta in enumerate(model.meta_graphs):
        tags = ",".join(meta.meta_info_def.tags)
        label = "" if len(model.meta_graphs) == 1 else f"[{number}: tags={tags or '-'}]"
        index = _index(meta, label)
        findings.extend(_escaping_assets(meta, label, file))
        for context in (index.graph, *index.functions.values()):
            walked += context is not index.graph
            for node in context.nodes.values():
                findings.extend(_node_findings(index, context, node, ops, file))
    return findings, ops, walked


def _node_findings(
    index: _MetaGraph, context: _Context, node: Any, ops: Counter[str], file: str
) -> Iterator[Finding]:
    for callee in index.callees[context.name, node.name]:
        if callee not in index.functions:
            yield Finding(
                node.op, context.name, node.name, MEDIUM, MISSING_FUNCTION_WHY, file, callee
            )
    if node.op in index.functions:
        return
    ops[node.op] += 1
    rule = DENYLIST.get(node.op)
    if rule is not None:
        detail = _judge(index, context, node, rule)
        if detail is not None:
            yield Finding(node.op, context.name, node.name, rule.severity, rule.why, file, detail)
    elif node.op not in TENSORFLOW_OPS:
        yield Finding(node.op, context.name, node.name, MEDIUM, UNREGISTERED_WHY, file, "")
