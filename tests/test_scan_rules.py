"""The scanner's rules on hand-built graphs, its proto mirror and op list against TensorFlow,
and the report kept in a cache entry's manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import hublayer as hub
from hublayer.errors import InvalidModelError, ModelNotFoundError, UnsafeModelError
from hublayer.models import _scan
from hublayer.models._scan_graph import walk
from hublayer.models._scan_ops import table
from hublayer.models._scan_proto import SCHEMA, SavedModel
from hublayer.models._scan_registry import FUNCTION_ATTRS, tensorflow_ops
from hublayer.models._scan_rules import rule_for
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


# ---------------------------------------------------------------------------- op table

_DENIED = sorted(name for name, row in table().items() if row.kind == "deny")


@pytest.mark.parametrize("op", _DENIED)
def test_every_denied_op_is_found_in_a_nested_function(op: str) -> None:
    model, where = _nested(op)
    findings = _findings(model)
    assert [(f.op, f.function, f.node, f.severity) for f in findings] == [
        (op, where, "evil", "high")
    ]
    rule = rule_for(op)
    assert rule is not None
    assert findings[0].why == rule.why


def test_each_rule_says_why() -> None:
    rows = table().values()
    short = [row.op for row in rows if row.kind != "allow" and len(row.why) < 16]
    assert not short, short
    # The ops the earlier issues named are all refused or conditional.
    named = (
        "ReadFile WriteFile MatchingFiles MatchingFilesDataset Save SaveSlices SaveV2 "
        "MergeV2Checkpoints RecursivelyCreateDir PrintV2 PyFunc EagerPyFunc "
        "PyFuncStateless TFRecordDataset FixedLengthRecordDataset TextLineDataset CSVDataset "
        "ExperimentalCSVDataset ImmutableConst DebugIdentityV2 DebugIdentityV3 DistributedSave "
        "RpcCall RpcServer RpcClient RegisterDataset DataServiceDataset DataServiceDatasetV4 "
        "Abort"
    )
    assert all(rule_for(op) is not None for op in named.split())


def test_unregistered_op_and_missing_function_are_refused() -> None:
    model = _model()
    meta = model.meta_graphs.add()
    meta.graph_def.node.add(name="custom", op="EvilCustomOp")
    call = meta.graph_def.node.add(name="call", op="PartitionedCall")
    call.attr["f"].func.name = "not_in_library"
    findings = _findings(model)
    assert sorted((f.op, f.severity, f.detail) for f in findings) == [
        ("EvilCustomOp", "high", ""),
        ("PartitionedCall", "high", "not_in_library"),
    ]
    report = _scan._report(Path("m"), findings, walk(model, file="x")[1], 0, ["x"])
    assert not report.safe
    assert "custom op library" in report.high[-1].why


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
    assert finding.detail.startswith("path is the constant '/etc/passwd'")


def test_a_tf1_constant_is_an_asset_only_when_asset_file_def_names_it() -> None:
    model = _model()
    meta = model.meta_graphs.add()
    _const(meta.graph_def.node, "vocab", b"/build/vocab.txt")
    meta.graph_def.node.add(name="init", op="InitializeTableFromTextFileV2", input=["t", "vocab"])
    [finding] = _findings(model)
    assert finding.detail.startswith("path is the constant '/build/vocab.txt'")
    meta.asset_file_def.add(filename="vocab.txt").tensor_info.name = "vocab:0"
    assert _findings(model) == []


def _varint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        out += bytes([low | (0x80 if n else 0)])
        if not n:
            return out


def test_a_constant_is_judged_by_its_tensor_content_as_tensorflow_reads_it() -> None:
    """TensorFlow reads ``tensor_content`` when it is set and ignores ``string_val``: a
    cache file hidden there is not the in-memory cache its ``string_val`` suggests."""
    model = _model()
    meta = model.meta_graphs.add()
    const = meta.graph_def.node.add(name="name", op="Const")
    tensor = const.attr["value"].tensor
    tensor.dtype = 7
    tensor.string_val.append(b"")
    path = b"/tmp/planted-cache"
    tensor.tensor_content = _varint(len(path)) + path
    meta.graph_def.node.add(name="cache", op="CacheDatasetV2", input=["ds", "name", "r"])
    [finding] = _findings(model)
    assert "/tmp/planted-cache" in finding.detail


def test_a_tf1_asset_constant_read_by_a_signature_is_judged_by_its_value() -> None:
    """The loader feeds a TF1 asset tensor only where it runs the init op; a signature
    reads the constant's own value, whatever asset_file_def says."""
    model = _model()
    meta = model.meta_graphs.add()
    _const(meta.graph_def.node, "vocab", b"/etc/passwd")
    meta.asset_file_def.add(filename="vocab.txt").tensor_info.name = "vocab:0"
    meta.graph_def.node.add(name="read", op="ReadFile", input=["vocab"])
    meta.signature_def["serving_default"].outputs["y"].name = "read:0"
    [finding] = _findings(model)
    assert finding.detail.startswith("path is the constant '/etc/passwd'")


def test_a_path_variable_assigned_through_another_handle_is_refused() -> None:
    """A TF2 graph keeps an asset path in a variable; a second handle with the same
    shared_name inside a function can assign it anything."""
    model = _model()
    meta = model.meta_graphs.add()
    nodes = meta.graph_def.node
    meta.asset_file_def.add(filename="vocab.txt").tensor_info.name = "asset_path:0"
    nodes.add(name="asset_path", op="Placeholder")
    var = nodes.add(name="var", op="VarHandleOp")
    var.attr["shared_name"].s = b"path_var"
    nodes.add(name="assign", op="AssignVariableOp", input=["var", "asset_path"])
    nodes.add(name="value", op="ReadVariableOp", input=["var"])
    nodes.add(name="init", op="InitializeTableFromTextFileV2", input=["t", "value"])
    assert _findings(model) == []
    hijack = _function(meta, "hijack")
    twin = hijack.node_def.add(name="twin", op="VarHandleOp")
    twin.attr["shared_name"].s = b"path_var"
    _const(hijack.node_def, "secret", b"/etc/shadow")
    hijack.node_def.add(name="set", op="AssignVariableOp", input=["twin:resource:0", "secret"])
    [finding] = _findings(model)
    assert (finding.op, finding.node) == ("InitializeTableFromTextFileV2", "init")
    assert "other handle" in finding.detail


def _dataset_model(folder: Path, extra: str | None) -> Path:
    """A model counting the lines of its two assets through shuffled, interleaved and
    parallel tf.data readers; ``extra`` adds a path that is not an asset."""
    import tensorflow as tf

    folder.mkdir()
    (folder / "a.txt").write_text("a\nb\nc\n")
    (folder / "b.txt").write_text("d\n")
    with tf.io.TFRecordWriter(str(folder / "r.tfrecord")) as writer:
        writer.write(b"x")

    class Lines(tf.Module):
        def __init__(self) -> None:
            self.a = tf.saved_model.Asset(str(folder / "a.txt"))
            self.b = tf.saved_model.Asset(str(folder / "b.txt"))
            self.r = tf.saved_model.Asset(str(folder / "r.tfrecord"))

        @tf.function(input_signature=[])
        def __call__(self) -> Any:
            paths = [self.a.asset_path, self.b.asset_path] + ([extra] if extra else [])
            names = tf.data.Dataset.from_tensor_slices(tf.stack(paths)).shuffle(3).repeat(2)
            lines = names.interleave(tf.data.TextLineDataset, cycle_length=2)
            records = tf.data.TFRecordDataset(tf.stack([self.r.asset_path]), num_parallel_reads=2)
            count = lines.concatenate(records).reduce(0, lambda n, _: n + 1)
            return count + tf.data.TextLineDataset(self.a).reduce(0, lambda n, _: n + 1)

    out = folder / "model"
    tf.saved_model.save(Lines(), str(out))
    return out


def test_a_dataset_reading_the_models_own_assets_is_allowed(tmp_path: Path) -> None:
    path = _dataset_model(tmp_path / "own", None)
    assert hub.scan(path).findings == ()
    assert int(hub.load(path)()) == 2 * 4 + 1 + 3


def test_a_dataset_reading_one_more_path_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("token\n")
    path = _dataset_model(tmp_path / "evil", str(secret))
    [finding] = hub.scan(path).high
    assert finding.op == "TextLineDataset"
    assert str(secret) in finding.detail


def test_two_nodes_of_one_name_are_refused() -> None:
    model = _model()
    function = _function(model.meta_graphs.add(), "f")
    function.node_def.add(name="x", op="WriteFile")
    function.node_def.add(name="x", op="AddV2")
    ops = sorted((f.op, f.why[:8]) for f in _findings(model))
    assert ops == [("WriteFile", "a second")]


def _saver(meta: Any) -> tuple[Any, Any]:
    """The top-level saver wiring ``tf.saved_model.save`` writes: a filename placeholder
    passed to a save function and a restore function, each checkpoint op reading it."""
    meta.saver_def.filename_tensor_name = "saver_filename:0"
    meta.saver_def.save_tensor_name = "save_call:0"
    meta.saver_def.restore_op_name = "restore_call"
    meta.graph_def.node.add(name="saver_filename", op="Placeholder")
    for node, function in (("save_call", "traced_save"), ("restore_call", "traced_restore")):
        call = meta.graph_def.node.add(name=node, op="StatefulPartitionedCall")
        call.input.append("saver_filename")
        call.attr["f"].func.name = function
    save = _function(meta, "traced_save", ("file_prefix",))
    _const(save.node_def, "suffix", b"_temp/part")
    join = save.node_def.add(name="join", op="StringJoin")
    join.input.extend(["file_prefix", "suffix:output:0"])
    save.node_def.add(name="shard", op="ShardedFilename", input=["join:output:0", "i", "n"])
    save.node_def.add(name="save", op="SaveV2", input=["shard:filename:0", "names", "slices"])
    pack = save.node_def.add(name="pack", op="Pack", input=["shard:filename:0"])
    merge = save.node_def.add(name="merge", op="MergeV2Checkpoints")
    merge.input.extend([pack.name + ":output:0", "file_prefix"])
    restore = _function(meta, "traced_restore", ("file_prefix",))
    restore.node_def.add(name="restore", op="RestoreV2", input=["file_prefix", "n", "s"])
    return save, restore


def test_checkpoint_ops_only_inside_the_saver_functions() -> None:
    model = _model()
    meta = model.meta_graphs.add()
    _saver(meta)
    assert _findings(model) == []
    # A signature function that also calls the save function makes it reachable by users.
    meta.object_graph_def.concrete_functions["serve"].SetInParent()
    serve = _function(meta, "serve")
    serve.node_def.add(name="c", op="PartitionedCall").attr["f"].func.name = "traced_save"
    # And a SaveV2 of its own, outside any saver function.
    serve.node_def.add(name="own", op="SaveV2", input=["x", "n", "s"])
    found = sorted((f.function, f.node) for f in _findings(model))
    assert found == [("serve", "own"), ("traced_save", "merge"), ("traced_save", "save")]


def test_a_write_in_the_restore_function_is_refused() -> None:
    model = _model()
    meta = model.meta_graphs.add()
    _, restore = _saver(meta)
    restore.node_def.add(name="plant", op="SaveV2", input=["file_prefix", "n", "s"])
    [finding] = _findings(model)
    assert (finding.function, finding.node) == ("traced_restore", "plant")
    assert "save part" in finding.detail


def test_a_checkpoint_op_must_use_the_savers_own_path() -> None:
    model = _model()
    meta = model.meta_graphs.add()
    save, restore = _saver(meta)
    _const(restore.node_def, "elsewhere", b"/home/user/.ssh/id_rsa")
    restore.node_def.add(name="peek", op="RestoreV2", input=["elsewhere:output:0", "n", "s"])
    _const(save.node_def, "up", b"/../../../tmp/planted")
    up = save.node_def.add(name="up_join", op="StringJoin", input=["file_prefix", "up:output:0"])
    save.node_def.add(name="escape", op="SaveV2", input=[up.name + ":output:0", "n", "s"])
    found = {f.node: f.detail for f in _findings(model)}
    assert sorted(found) == ["escape", "peek"]
    assert "/home/user/.ssh/id_rsa" in found["peek"]
    assert "leaves it" in found["escape"]


def test_grappler_alternatives_are_reachable_like_the_function_they_replace() -> None:
    """A function with the same ``api_implements`` as a model function may run in its
    place, so it is part of the model, not a save function."""
    model = _model()
    meta = model.meta_graphs.add()
    _saver(meta)
    meta.object_graph_def.concrete_functions["serve"].SetInParent()
    serve = _function(meta, "serve")
    serve.attr["api_implements"].s = b"lstm"
    twin = _function(meta, "twin")
    twin.attr["api_implements"].s = b"lstm"
    twin.node_def.add(name="c", op="PartitionedCall").attr["f"].func.name = "traced_save"
    assert {f.function for f in _findings(model)} == {"traced_save"}


def test_unparseable_file_is_an_invalid_model_error_and_no_model_too(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xff\xff not a protobuf")
    with pytest.raises(InvalidModelError, match="do not parse"):
        hub.scan(tmp_path)
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
        tensor_shape_pb2,
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
        tensor_shape_pb2,
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
    missing = sorted(raw - tensorflow_ops())
    assert not missing, f"add them to scan_ops.tsv (tools/scan_ops_table.py): {missing[:10]}"


def test_function_attrs_match_every_op_def_of_the_installed_tensorflow() -> None:
    """The walk reads only these attributes of a registered op; none may be missing."""
    import tensorflow as tf

    from hublayer._foreign_tf import registered_op_defs

    defs = registered_op_defs()
    for name in dir(tf.raw_ops):
        op_def = defs.get(name)
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
    with pytest.raises(InvalidModelError, match="zip"):
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
    assert hub.scan(folder).safe
    (folder / "assets" / "vocab.txt").symlink_to("/etc/passwd")
    report = hub.scan(folder)
    assert [(f.op, f.node, f.detail) for f in report.high] == [
        ("(link)", "assets/vocab.txt", "/etc/passwd")
    ]
