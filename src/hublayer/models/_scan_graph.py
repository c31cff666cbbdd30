"""Walk every node of a ``saved_model.pb``, TF-free, and judge it against the op rules.

Every meta graph's top-level graph and *every* function of its library is walked, not
only the ones a signature names: a ``While`` body, an ``If``/``Case`` branch, a tf.data
``map`` function, a function called by another function, or one Grappler may swap in
(the same ``api_implements``) is a ``FunctionDef`` like any other. A function-valued
attribute that names a function the library lacks is refused.

Each op is judged by its rule (``_scan_rules.py``): allowed, refused, or allowed only
under a proof. The proofs are structural (where the node sits: the checkpoint parts of
the graph that ``saver_def`` names, found in ``_scan_index.py``) and by value (what its
path input can be at run time, followed back to a root the loader supplies:
``_scan_values.py``).

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
    _Context,
    _data_inputs,
    _MetaGraph,
    escaping_assets,
    index_meta_graph,
)
from hublayer.models._scan_report import Finding
from hublayer.models._scan_rules import HIGH, MISSING_FUNCTION_WHY, Rule, rule_for
from hublayer.models._scan_values import trace

__all__ = ["walk"]

#: ``descriptor_source`` values that read no file: the binary's own pool, or the graph.
_LOCAL_DESCRIPTORS = ("local://", "bytes://")


def _placed(index: _MetaGraph, context: _Context, node: Any, save: bool) -> bool:
    """Whether a checkpoint node sits only where the loader runs it with its own path."""
    if context is index.graph:
        # A top-level node runs only when fetched: by a signature, an init op, or the
        # saver's save or restore part; each part may hold only its own kind of op.
        mine, other = (
            (index.save_nodes, index.restore_nodes)
            if save
            else (index.restore_nodes, index.save_nodes)
        )
        name = node.name
        return name in mine and name not in other and name not in index.live_nodes
    return context.name in (index.save_functions if save else index.restore_functions)


def _dead(index: _MetaGraph, name: str) -> bool:
    """A top-level node no loader runs: no signature, init op or part of this meta
    graph's saver reaches it (TF1 exports keep other meta graphs' savers in the graph)."""
    return name not in index.live_nodes and name not in index.checkpoint_nodes


def _judge(index: _MetaGraph, context: _Context, node: Any, rule: Rule) -> str | None:
    """``None`` when the node passes its rule's check, else a detail for the finding."""
    check = rule.check
    if check is None:
        return ""
    if check == "print_stream":
        stream = bytes(node.attr["output_stream"].s).decode("utf-8", "replace")
        return f"output_stream={stream!r}" if stream.startswith("file://") else None
    if check == "descriptor_source":
        source = bytes(node.attr["descriptor_source"].s).decode("utf-8", "replace")
        if "descriptor_source" not in node.attr or source.startswith(_LOCAL_DESCRIPTORS):
            return None
        return f"descriptor_source={source!r}, a file"
    save = check == "checkpoint_save"
    if check in ("checkpoint_save", "checkpoint_restore"):
        if context is index.graph and _dead(index, node.name):
            return None  # another saver's node (TF1 multi-graph exports): nothing runs it
        if not _placed(index, context, node, save):
            part = "save" if save else "restore"
            return f"outside the {part} part of the checkpoint functions the saver_def names"
    inputs = _data_inputs(node)
    site = node.name if context is index.graph else None
    for position in rule.inputs:
        if position >= len(inputs):
            return f"input {position} is missing"
        values = trace(index, context, inputs[position], site)
        for value in values:
            if check == "memory_cache":
                if value.root != "const" or value.text != "":
                    return value.describe() + ", not the in-memory cache ('')"
            elif check == "path":
                if not value.inside("asset"):
                    return value.describe() + ", not proven a file of the model's assets/"
            elif not value.inside("saver"):
                return value.describe() + ", not proven the model's own variables/"
    return None


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
            for node in context.listed:
                if context.nodes[node.name] is not node:
                    why = "a second node of the same name, which the scan cannot tell apart"
                    findings.append(Finding(node.op, context.name, node.name, HIGH, why, file))
                    continue
                findings.extend(_node_findings(index, context, node, ops, file))
    return findings, ops, walked


def _node_findings(
    index: _MetaGraph, context: _Context, node: Any, ops: Counter[str], file: str
) -> Iterator[Finding]:
    for callee in index.callees[context.name, node.name]:
        if callee not in index.functions:
            yield Finding(
                node.op, context.name, node.name, HIGH, MISSING_FUNCTION_WHY, file, callee
            )
    if node.op in index.functions:
        return
    ops[node.op] += 1
    rule = rule_for(node.op)
    if rule is not None:
        detail = _judge(index, context, node, rule)
        if detail is not None:
            yield Finding(node.op, context.name, node.name, rule.severity, rule.why, file, detail)
