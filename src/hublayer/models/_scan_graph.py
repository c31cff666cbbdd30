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
    >>> _ = model.meta_graphs.add().graph_def.node.add(name="w", op="WriteFile")
    >>> findings, ops, _ = walk(model, file="saved_model.pb")
    >>> findings[0].op, findings[0].severity, dict(ops)
    ('WriteFile', 'high', {'WriteFile': 1})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from hublayer.models._scan_index import (
    _ASSET,
    _OTHER,
    _Context,
    _data_inputs,
    _MetaGraph,
    _node_name,
    escaping_assets,
    index_meta_graph,
)
from hublayer.models._scan_registry import TENSORFLOW_OPS
from hublayer.models._scan_report import Finding
from hublayer.models._scan_rules import (
    DENYLIST,
    MEDIUM,
    MISSING_FUNCTION_WHY,
    UNREGISTERED_WHY,
    Rule,
)

__all__ = ["walk"]

_DT_STRING = 7
_PASS_THROUGH = frozenset({"Identity", "Snapshot", "StopGradient"})


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
        index = index_meta_graph(meta, label)
        findings.extend(escaping_assets(meta, label, file))
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
