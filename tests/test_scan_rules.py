"""The scanner's rules on hand-built graphs, its proto mirror and op list against TensorFlow,
and the report kept in a cache entry's manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import hublayer as hub
from hublayer.errors import ModelNotFoundError, UnsafeModelError
from hublayer.models import _scan
from hublayer.models._scan_graph import walk
from hublayer.models._scan_proto import SCHEMA, SavedModel
from hublayer.models._scan_registry import FUNCTION_ATTRS, TENSORFLOW_OPS
from hublayer.models._scan_rules import DENYLIST
from hublayer.testing import unsafe_model

# ---------------------------------------------------------------------------- helpers


def _model() -> Any:
    return SavedModel()


def _function(meta: Any, name: str, args: tuple[str, ...] = ()) -> Any:
    function = meta.graph_def.library.function.add()
    function.signature.name = name
    for arg in args:
        function.signature.input_arg.add(name=arg)
    return function


def _const(container: Any, name: str, value: bytes) -> None:
    node = container.add(name=name, op="Const")
    node.attr["value"].tensor.dtype = 7
    node.attr["value"].tensor.string_val.append(value)


def _nested(op: str) -> tuple[Any, str]:
    """``op`` in ``inner``, run by a While body ``body`` inside ``outer``, called from the
    top-level graph by a PartitionedCall: the deepest hiding place."""
    model = _model()
    meta = model.meta_graphs.add()
    call = meta.graph_def.node.add(name="call", op="StatefulPartitionedCall")
    call.attr["f"].func.name = "outer"
    outer = _function(meta, "outer")
    loop = outer.node_def.add(name="loop", op="While")
    loop.attr["body"].func.name = "body"
    loop.attr["cond"].func.name = "cond"
    _function(meta, "cond")
    body = _function(meta, "body")
    body.node_def.add(name="go", op="inner")  # a direct call by function name
    inner = _function(meta, "inner")
    evil = inner.node_def.add(name="evil", op=op)
    if op == "PrintV2":
        evil.attr["output_stream"].s = b"file:///tmp/out.txt"
    return model, "inner"


def _findings(model: Any) -> list[Any]:
    return walk(model, file="saved_model.pb")[0]


# ---------------------------------------------------------------------------- denylist


@pytest.mark.parametrize("op", sorted(DENYLIST))
def test_every_denylisted_op_is_found_in_a_nested_function(op: str) -> None:
    model, where = _nested(op)
    findings = _findings(model)
    assert [(f.op, f.function, f.node, f.severity) for f in findings] == [
        (op, where, "evil", "high")
    ]
    assert findings[0].why == DENYLIST[op].why


def test_each_rule_says_why() -> None:
    assert all(len(rule.why) > 20 for rule in DENYLIST.values())
    # The ops the issue names are all in the table.
    named = (
        "ReadFile WriteFile MatchingFiles MatchingFilesDataset Save SaveSlices SaveV2 "
        "MergeV2Checkpoints DeleteFile RecursivelyCreateDir PrintV2 PyFunc EagerPyFunc "
        "PyFuncStateless TFRecordDataset FixedLengthRecordDataset TextLineDataset CSVDataset "
        "ExperimentalCSVDataset ImmutableConst DebugIdentityV2 DebugIdentityV3 DistributedSave "
        "RpcCall RpcServer RpcClient RegisterDataset DataServiceDataset DataServiceDatasetV4"
    )
    assert set(named.split()) <= set(DENYLIST)


def test_unregistered_op_and_missing_function_are_medium() -> None:
    model = _model()
    meta = model.meta_graphs.add()
    meta.graph_def.node.add(name="custom", op="SentencepieceOp")
    call = meta.graph_def.node.add(name="call", op="PartitionedCall")
    call.attr["f"].func.name = "not_in_library"
    findings = _findings(model)
    assert sorted((f.op, f.severity, f.detail) for f in findings) == [
        ("PartitionedCall", "medium", "not_in_library"),
        ("SentencepieceOp", "medium", ""),
    ]
    report = _scan._report(Path("m"), findings, walk(model, file="x")[1], 0, ["x"])
    assert report.safe  # medium findings are reported, not refused


def test_print_to_stderr_and_in_memory_cache_are_allowed() -> None:
    model = _model()
    meta = model.meta_graphs.add()
    fine = meta.graph_def.node.add(name="print", op="PrintV2")
    fine.attr["output_stream"].s = b"stderr"
    bad = meta.graph_def.node.add(name="print_file", op="PrintV2")
    bad.attr["output_stream"].s = b"file:///tmp/x"
    _const(meta.graph_def.node, "empty", b"")
    _const(meta.graph_def.node, "disk", b"/tmp/cache")
    meta.graph_def.node.add(name="memory", op="CacheDatasetV2", input=["ds", "empty", "r"])
    meta.graph_def.node.add(name="cache_file", op="CacheDatasetV2", input=["ds", "disk", "r"])
    findings = _findings(model)
    assert sorted(f.node for f in findings) == ["cache_file", "print_file"]
    assert "file:///tmp/x" in {f.detail for f in findings if f.op == "PrintV2"}.pop()


def _asset_reader(meta: Any, name: str) -> Any:
    function = _function(meta, name, ("path",))
    function.node_def.add(name="read", op="ReadFile", input=["path"])
    return function


def test_an_argument_is_an_asset_only_when_every_caller_passes_one() -> None:
    model = _model()
    meta = model.meta_graphs.add()
    _asset_reader(meta, "reader")
    objects = meta.object_graph_def
    objects.nodes.add().asset.asset_file_def_index = 0
    objects.concrete_functions["reader"].bound_inputs.append(0)
    assert _findings(model) == []  # bound to a SavedAsset by the object graph
    # A second caller passes a constant path: the same function now reads /etc/passwd.
    sneaky = _function(meta, "sneaky")
    _const(sneaky.node_def, "passwd", b"/etc/passwd")
    call = sneaky.node_def.add(name="call", op="PartitionedCall", input=["passwd:output:0"])
    call.attr["f"].func.name = "reader"
    [finding] = _findings(model)
    assert (finding.op, finding.function) == ("ReadFile", "reader")
    assert "argument 0 of reader" in finding.detail


def test_a_tf1_constant_is_an_asset_only_when_asset_file_def_names_it() -> None:
    model = _model()
    meta = model.meta_graphs.add()
    _const(meta.graph_def.node, "vocab", b"/build/vocab.txt")
    meta.graph_def.node.add(name="init", op="InitializeTableFromTextFileV2", input=["t", "vocab"])
    [finding] = _findings(model)
    assert finding.detail.startswith("path is the constant '/build/vocab.txt'")
    meta.asset_file_def.add(filename="vocab.txt").tensor_info.name = "vocab:0"
    assert _findings(model) == []


def test_checkpoint_ops_only_inside_the_saver_functions() -> None:
    model = _model()
    meta = model.meta_graphs.add()
    meta.saver_def.save_tensor_name = "save_call:0"
    meta.saver_def.restore_op_name = "restore_call"
    for node, function in (("save_call", "traced_save"), ("restore_call", "traced_restore")):
        meta.graph_def.node.add(name=node, op="StatefulPartitionedCall").attr[
            "f"
        ].func.name = function
    _function(meta, "traced_save").node_def.add(name="save", op="SaveV2")
    _function(meta, "traced_restore").node_def.add(name="restore", op="RestoreV2")
    assert _findings(model) == []
    # A signature function that also calls the save function makes it reachable by users.
    meta.object_graph_def.concrete_functions["serve"].SetInParent()
    serve = _function(meta, "serve")
    serve.node_def.add(name="c", op="PartitionedCall").attr["f"].func.name = "traced_save"
    # And a SaveV2 of its own, outside any saver function.
    serve.node_def.add(name="own", op="SaveV2")
    found = sorted((f.function, f.node) for f in _findings(model))
    assert found == [("serve", "own"), ("traced_save", "save")]


def test_unparseable_file_is_a_high_finding_and_no_model_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xff\xff not a protobuf")
    report = hub.scan(tmp_path)
    assert not report.safe
    assert report.high[0].op == "(unparseable)"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="neither"):
        hub.scan(empty)


def test_pbtxt_is_scanned_too(tmp_path: Path) -> None:
    from google.protobuf import text_format

    model, _ = _nested("WriteFile")
    (tmp_path / "saved_model.pbtxt").write_text(text_format.MessageToString(model))
    assert [f.op for f in hub.scan(tmp_path).high] == ["WriteFile"]


def test_report_round_trips_and_prints_a_table() -> None:
    model, _ = _nested("WriteFile")
    findings, ops, functions = walk(model, file="saved_model.pb")
    report = _scan._report(Path("/m"), findings, ops, functions, ["saved_model.pb"])
    assert type(report).from_dict(json.loads(json.dumps(report.to_dict()))) == report
    text = str(report)
    assert text.splitlines()[0] == "/m: UNSAFE (1 high, 0 medium)"
    assert "severity" in text
    assert "WriteFile" in text
    assert "inner" in text


# ------------------------------------------------------------------- TensorFlow parity


def test_proto_mirror_matches_tensorflow_field_numbers() -> None:
    from tensorflow.core.framework import (
        attr_value_pb2,
        function_pb2,
        graph_pb2,
        node_def_pb2,
        op_def_pb2,
        tensor_pb2,
    )
    from tensorflow.core.protobuf import (
        meta_graph_pb2,
        saved_model_pb2,
        saved_object_graph_pb2,
        saver_pb2,
    )

    modules = (
        attr_value_pb2,
        function_pb2,
        graph_pb2,
        node_def_pb2,
        op_def_pb2,
        tensor_pb2,
        meta_graph_pb2,
        saved_model_pb2,
        saved_object_graph_pb2,
        saver_pb2,
    )
    tf_messages: dict[str, Any] = {}

    def collect(descriptor: Any) -> None:
        tf_messages.setdefault(descriptor.name, descriptor)
        for nested in descriptor.nested_types:
            collect(nested)

    for module in modules:
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            collect(descriptor)
    tf_messages["Any"] = __import__("google.protobuf.any_pb2").protobuf.any_pb2.Any.DESCRIPTOR
    for name, fields in SCHEMA.items():
        theirs = tf_messages[name]
        for field_name, number, _kind, _type, repeated in fields:
            field = theirs.fields_by_name[field_name]
            assert field.number == number, (name, field_name)
            assert field.is_repeated == repeated, (name, field_name)


def test_registry_lists_every_op_of_the_installed_tensorflow() -> None:
    import tensorflow as tf

    raw = {name for name in dir(tf.raw_ops) if not name.startswith("_")}
    missing = sorted(raw - TENSORFLOW_OPS)
    assert not missing, f"regenerate _scan_registry.py: {missing[:10]}"


def test_function_attrs_match_every_op_def_of_the_installed_tensorflow() -> None:
    """The walk reads only these attributes of a registered op; none may be missing."""
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry

    for name in dir(tf.raw_ops):
        op_def = op_def_registry.get(name)
        if op_def is None:
            continue
        declared = sorted(a.name for a in op_def.attr if a.type in ("func", "list(func)"))
        assert sorted(FUNCTION_ATTRS.get(name, ())) == declared, name


def test_function_attrs_of_an_unregistered_op_are_all_read() -> None:
    model = _model()
    meta = model.meta_graphs.add()
    custom = meta.graph_def.node.add(name="custom", op="MyCustomCall")
    custom.attr["anything"].func.name = "hidden"
    _function(meta, "hidden").node_def.add(name="w", op="WriteFile")
    found = {(f.op, f.function) for f in _findings(model)}
    assert found == {("MyCustomCall", "(graph)"), ("WriteFile", "hidden")}


# ----------------------------------------------------------------------- cache notes


def test_report_is_kept_in_the_cache_manifest_and_reused(
    tmp_path: Path, hublayer_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = hub.testing.image_feature_vector(tmp_path / "good", image_size=8, dim=4)
    bad = unsafe_model(tmp_path / "bad", "write", "nested_function", target=tmp_path / "victim")
    good_entry = Path(hub.resolve(hub.testing.archive(good, tmp_path / "good.tar.gz")))
    bad_entry = Path(hub.resolve(hub.testing.archive(bad, tmp_path / "bad.tar.gz")))
    assert hublayer_env in good_entry.parents
    assert _scan.check_safe(good_entry) is not None
    with pytest.raises(UnsafeModelError):
        _scan.check_safe(bad_entry)
    manifests = {
        json.loads(p.read_text())["notes"]["scan"]["value"]["report"]["safe"]
        for p in (hublayer_env / "manifests").rglob("*.json")
    }
    assert manifests == {True, False}

    def no_scan(path: Any) -> Any:
        raise AssertionError("scanned again")

    monkeypatch.setattr(_scan, "scan_path", no_scan)
    assert _scan.check_safe(good_entry).safe  # type: ignore[union-attr]
    with pytest.raises(UnsafeModelError):  # the stored verdict still refuses
        _scan.check_safe(bad_entry)
    # A local folder (not a cache entry) is scanned on every load.
    with pytest.raises(AssertionError, match="scanned again"):
        _scan.check_safe(good)


def test_a_changed_entry_is_scanned_again(tmp_path: Path, hublayer_env: Path) -> None:
    good = hub.testing.image_feature_vector(tmp_path / "good", image_size=8, dim=4)
    entry = Path(hub.resolve(hub.testing.archive(good, tmp_path / "good.tar.gz")))
    _scan.check_safe(entry)
    [marker] = (hublayer_env / "manifests").rglob("*.json")
    data = json.loads(marker.read_text())
    data["notes"]["scan"]["files"]["saved_model.pb"] = "0" * 64  # hashes no longer match
    data["notes"]["scan"]["value"]["report"]["findings"] = [
        {"op": "X", "function": "f", "node": "n", "severity": "high", "why": "stale"}
    ]
    marker.write_text(json.dumps(data))
    assert _scan.check_safe(entry).findings == ()  # type: ignore[union-attr]


def test_safe_mode_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from hublayer import config

    assert config.safe_mode() is True
    monkeypatch.setenv("HUBLAYER_SAFE_MODE", "0")
    assert config.safe_mode() is False
    assert config.safe_mode(True) is True
    monkeypatch.setenv("HUBLAYER_SAFE_MODE", "maybe")
    with pytest.raises(ValueError, match="HUBLAYER_SAFE_MODE"):
        config.safe_mode()


def test_keras_config_naming_a_foreign_module_is_medium(tmp_path: Path) -> None:
    import zipfile

    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "m",
            "layers": [
                {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense"}},
                {"module": "evil.layers", "class_name": "Backdoor", "config": {"name": "bd"}},
            ],
        },
    }
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", "{}")
    report = hub.scan(tmp_path / "m.keras")
    assert report.safe
    assert [(f.op, f.node, f.severity, f.detail) for f in report.findings] == [
        ("Backdoor", "bd", "medium", "evil.layers")
    ]
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelNotFoundError, match="zip"):
        hub.scan(tmp_path / "broken.keras")


def test_unsafe_model_error_pickles_with_its_findings() -> None:
    import pickle

    model, _ = _nested("WriteFile")
    findings = _findings(model)
    report = _scan._report(Path("/m"), findings, walk(model, file="x")[1], 1, ["x"])
    error = _scan._unsafe(report, "handle", "/m")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, UnsafeModelError)
    assert copy.findings == error.findings
    assert str(copy) == str(error)


def test_assets_that_leave_the_model_are_refused(tmp_path: Path) -> None:
    model = _model()
    meta = model.meta_graphs.add()
    _const(meta.graph_def.node, "vocab", b"vocab.txt")
    meta.graph_def.node.add(name="init", op="InitializeTableFromTextFileV2", input=["t", "vocab"])
    meta.asset_file_def.add(filename="../../../etc/passwd").tensor_info.name = "vocab:0"
    [finding] = _findings(model)
    assert (finding.op, finding.node, finding.severity) == (
        "(asset)",
        "../../../etc/passwd",
        "high",
    )
    # A vocabulary that is a link to a file outside the model folder.
    folder = tmp_path / "model"
    (folder / "assets").mkdir(parents=True)
    meta.asset_file_def[0].filename = "vocab.txt"
    (folder / "saved_model.pb").write_bytes(model.SerializeToString())
    (folder / "assets" / "inside.txt").write_text("a\n")
    (folder / "assets" / "alias.txt").symlink_to(folder / "assets" / "inside.txt")
    assert hub.scan(folder).safe
    (folder / "assets" / "vocab.txt").symlink_to("/etc/passwd")
    report = hub.scan(folder)
    assert [(f.op, f.node, f.detail) for f in report.high] == [
        ("(link)", "assets/vocab.txt", "/etc/passwd")
    ]
