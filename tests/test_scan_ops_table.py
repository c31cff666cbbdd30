"""scan_ops.tsv, the scan's allowlist, against the installed TensorFlow and published lists.

The registry is read once, in a child process (TensorFlow's C API lists every op def), so
that TensorFlow's own ops and the ones ``import tensorflow_text`` adds are told apart even
when another test has already imported tensorflow_text here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hublayer.models import _scan_ops
from hublayer.models._scan_ops import CHECKS, libraries_of, op_class, table, table_digest
from hublayer.models._scan_registry import FUNCTION_ATTRS

ROOT = Path(__file__).resolve().parents[1]
TSV = ROOT / "src" / "hublayer" / "models" / "scan_ops.tsv"
TOOL = ROOT / "tools" / "scan_ops_table.py"

#: protectai/modelscan, modelscan/settings.py: DEFAULT_SETTINGS["scanners"]
#: ["modelscan.scanners.SavedModelTensorflowOpScan"]["unsafe_tf_operators"] (ReadFile,
#: WriteFile), plus the ops a later modelscan change adds to that table and tests
#: (MatchingFiles, PyFunc, EagerPyFunc, WholeFileReader).
MODELSCAN_UNSAFE_TF_OPERATORS = (
    "ReadFile",
    "WriteFile",
    "MatchingFiles",
    "PyFunc",
    "EagerPyFunc",
    "WholeFileReader",
)
#: tensorflow/python/tools/saved_model_cli.py, ``_OP_DENYLIST`` (``saved_model_cli scan``).
SAVED_MODEL_CLI_OP_DENYLIST = ("WriteFile", "ReadFile", "PrintV2")
#: ZJU-SEC/TensorAbuse (the TensorAbuse paper's code), TensorDetect/settings.py,
#: ``malicious_op_list``.
TENSORABUSE_MALICIOUS_OPS = (
    "ReadFile",
    "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2",
    "CSVDataset",
    "CSVDatasetV2",
    "ExperimentalCSVDataset",
    "ImmutableConst",
    "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2",
    "WriteFile",
    "SaveV2",
    "Save",
    "SaveSlices",
    "PrintV2",
    "MatchingFiles",
    "MatchingFilesDataset",
    "ExperimentalMatchingFilesDataset",
    "DebugIdentity",
    "DebugIdentityV2",
    "DebugIdentityV3",
    "DistributedSave",
    "RpcCall",
    "RpcClient",
    "RpcServer",
    "RpcServerRegister",
    "RegisterDataset",
    "RegisterDatasetV2",
    "DataServiceDataset",
    "DataServiceDatasetV2",
    "DataServiceDatasetV3",
    "DataServiceDatasetV4",
)
#: Ops today's denylist misses, which the allowlist must not let through.
MUST_NOT_ALLOW = (
    "Abort",
    "DebugIdentityV2",
    "CalibrationStatisticsSaver",
    "GenerateVocabRemapping",
    "DecodeProtoV2",
    "EncodeProto",
    "LMDBDataset",
    "ExperimentalLMDBDataset",
    "_Send",
    "_Recv",
    "Send",
    "Recv",
    "CollectiveReduceV2",
    "NcclAllReduce",
    "CreateSummaryFileWriter",
    "WriteScalarSummary",
    "WriteSummary",
    "FixedUnigramCandidateSampler",
    "Skipgram",
    "DumpTensor",
    "DatasetFromGraph",
    "RemoteCall",
    "XlaCallModule",
    "XlaCustomCall",
    "Empty",
)
#: The denylist the allowlist replaces (``_scan_rules.DENYLIST`` before the switch): every
#: op it named stays deny or conditional. DeleteFile and RecursivelyCreateDir are not
#: registered ops in TF 2.21.
_OLD_DENYLIST = """
    CSVDataset CSVDatasetV2 CacheDataset CacheDatasetV2 CreateSummaryDbWriter
    CreateSummaryFileWriter DTensorRestoreV2 DataServiceDataset DataServiceDatasetV2
    DataServiceDatasetV3 DataServiceDatasetV4 DatasetFromGraph DatasetToTFRecord
    DebugIdentity DebugIdentityV2 DebugIdentityV3 DebugNanCount DebugNumericSummary
    DeleteFile DeleteRpcFutureResource DistributedSave EagerPyFunc
    ExperimentalCSVDataset ExperimentalDatasetToTFRecord
    ExperimentalMatchingFilesDataset ExperimentalSqlDataset FileSystemSetConfiguration
    FixedLengthRecordDataset FixedLengthRecordDatasetV2 FixedLengthRecordReader
    FixedLengthRecordReaderV2 ImmutableConst InitializeTableFromTextFile
    InitializeTableFromTextFileV2 LMDBReader ListSnapshotChunksDataset
    LoadAndRemapMatrix LoadDataset MatchingFiles MatchingFilesDataset MergeV2Checkpoints
    PrintV2 PyFunc PyFuncStateless ReadFile RecordInput RecursivelyCreateDir
    RegisterDataset RegisterDatasetV2 Restore RestoreSlice RestoreV2 RpcCall
    RpcCheckStatus RpcClient RpcGetValue RpcServer RpcServerRegister RpcServerStart Save
    SaveDataset SaveDatasetV2 SaveSlices SaveV2 SnapshotChunkDataset SnapshotDataset
    SnapshotDatasetReader SnapshotDatasetV2 SnapshotNestedDatasetReader SqlDataset
    TFRecordDataset TFRecordDatasetV2 TFRecordReader TFRecordReaderV2 TextLineDataset
    TextLineReader TextLineReaderV2 WholeFileReader WholeFileReaderV2 WriteFile
"""
OLD_DENYLIST = _OLD_DENYLIST.split()
#: The attribute each attribute check reads.
ATTR_OF_CHECK = {"print_stream": "output_stream", "descriptor_source": "descriptor_source"}

_DUMP = """
import json, sys
from hublayer._foreign_tf import registered_op_defs

def ops():
    return registered_op_defs().values()

def describe(op):
    return {
        "inputs": [arg.name for arg in op.input_arg],
        "attrs": [attr.name for attr in op.attr],
        "funcs": sorted(a.name for a in op.attr if a.type in ("func", "list(func)")),
    }

own = {op.name: describe(op) for op in ops()}
try:
    import tensorflow_text  # noqa: F401
except ImportError:
    text = None
else:
    text = {op.name: describe(op) for op in ops() if op.name not in own}
json.dump({"tensorflow": own, "tensorflow_text": text}, sys.stdout)
"""


def _need_tensorflow() -> None:
    # Checked without importing it: the registry is read in a child process.
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed: the registry cannot be read")


@pytest.fixture(scope="module")
def registry() -> dict[str, Any]:
    """``{"tensorflow": {op: def}, "tensorflow_text": {op: def} or None}``."""
    _need_tensorflow()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", _DUMP], capture_output=True, text=True, env=env, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def op_defs(registry: dict[str, Any]) -> dict[str, Any]:
    return {**registry["tensorflow"], **(registry["tensorflow_text"] or {})}


def _rows_of(library: str) -> set[str]:
    return {op for op, row in table().items() if row.library == library}


# --- the table against the installed registry ---------------------------------------


def test_every_op_tensorflow_registers_is_classified(registry: dict[str, Any]) -> None:
    missing = sorted(set(registry["tensorflow"]) - set(table()))
    assert not missing, (
        f"{len(missing)} ops the installed TensorFlow registers are not in scan_ops.tsv, so "
        f"the scan refuses them: {missing}. Run tools/scan_ops_table.py and review each row."
    )


def test_no_row_names_an_op_tensorflow_does_not_register(registry: dict[str, Any]) -> None:
    stale = sorted(_rows_of("tensorflow") - set(registry["tensorflow"]))
    assert not stale, f"rows for ops TensorFlow does not register (prune them): {stale}"


def test_tensorflow_text_rows_are_what_import_tensorflow_text_adds(
    registry: dict[str, Any],
) -> None:
    if registry["tensorflow_text"] is None:
        pytest.skip("tensorflow_text is not installed: its rows cannot be checked")
    added = set(registry["tensorflow_text"])
    rows = _rows_of("tensorflow_text")
    assert added - rows == set(), f"tensorflow_text ops without a row: {sorted(added - rows)}"
    assert rows - added == set(), f"rows tensorflow_text does not add: {sorted(rows - added)}"


def test_the_only_libraries_are_tensorflow_and_tensorflow_text() -> None:
    assert {row.library for row in table().values()} == {"tensorflow", "tensorflow_text"}


def test_conditional_checks_name_real_inputs_and_attrs(op_defs: dict[str, Any]) -> None:
    conditional = [row for row in table().values() if row.kind == "conditional"]
    assert conditional
    for row in conditional:
        assert row.check is not None, row
        assert row.check in CHECKS, row
        op_def = op_defs[row.op]
        if CHECKS[row.check]:
            assert row.inputs, row
            for index in row.inputs:
                assert index < len(op_def["inputs"]), (
                    f"{row.op}: {row.check} reads input {index}, "
                    f"but the op has inputs {op_def['inputs']}"
                )
        else:
            assert row.inputs == ()
            assert ATTR_OF_CHECK[row.check] in op_def["attrs"], (row, op_def["attrs"])


def test_path_checks_point_at_the_path_inputs(op_defs: dict[str, Any]) -> None:
    names = {
        row.op: [op_defs[row.op]["inputs"][i] for i in row.inputs]
        for row in table().values()
        if row.kind == "conditional" and row.inputs
    }
    assert names["ReadFile"] == ["filename"]
    assert names["InitializeTableFromTextFileV2"] == ["filename"]
    assert names["TFRecordDatasetV2"] == ["filenames"]
    assert names["SaveV2"] == ["prefix"]
    assert names["RestoreV2"] == ["prefix"]
    assert names["MergeV2Checkpoints"] == ["checkpoint_prefixes", "destination_prefix"]
    assert names["CacheDatasetV2"] == ["filename"]


def test_function_attr_ops_match_the_scan_registry(registry: dict[str, Any]) -> None:
    from_defs = {op: tuple(d["funcs"]) for op, d in registry["tensorflow"].items() if d["funcs"]}
    assert from_defs == {op: tuple(sorted(a)) for op, a in FUNCTION_ATTRS.items()}
    assert set(FUNCTION_ATTRS) <= set(table())


def test_the_tool_check_passes_and_names_what_differs(tmp_path: Path) -> None:
    _need_tensorflow()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, str(TOOL), "--check"]
    ok = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    edited = tmp_path / "scan_ops.tsv"
    lines = TSV.read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if not line.startswith("Abort\t")]
    lines.append("NoSuchOp\ttensorflow\tallow\t-\tmath")
    edited.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = subprocess.run(
        [*command, "--table", str(edited)], capture_output=True, text=True, env=env, check=False
    )
    assert bad.returncode == 1
    assert "registered, not in the table: Abort" in bad.stdout
    assert "in the table, no longer registered: NoSuchOp" in bad.stdout


# --- what the rows say (TF-free) --------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    sorted(
        set(MODELSCAN_UNSAFE_TF_OPERATORS)
        | set(SAVED_MODEL_CLI_OP_DENYLIST)
        | set(TENSORABUSE_MALICIOUS_OPS)
        | set(MUST_NOT_ALLOW)
    ),
)
def test_published_unsafe_ops_are_never_allowed(op: str) -> None:
    row = op_class(op)
    assert row is not None, f"{op} has no row"
    assert row.kind in ("deny", "conditional"), row


def test_abort_is_deny() -> None:
    row = op_class("Abort")
    assert row is not None
    assert row.kind == "deny"
    assert "abort" in row.why


def test_every_deny_and_conditional_row_says_why_in_words() -> None:
    for row in table().values():
        if row.kind == "allow":
            assert " " not in row.why, f"{row.op}: a one-word category"
            assert row.check is None
        else:
            assert len(row.why.split()) >= 3, f"{row.op}: say what the op can do: {row.why!r}"


def test_conditional_stays_small() -> None:
    conditional = {op for op, row in table().items() if row.kind == "conditional"}
    assert conditional == {
        "ReadFile",
        "InitializeTableFromTextFile",
        "InitializeTableFromTextFileV2",
        "TextLineDataset",
        "TFRecordDataset",
        "TFRecordDatasetV2",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "SaveV2",
        "MergeV2Checkpoints",
        "RestoreV2",
        "PrintV2",
        "CacheDataset",
        "CacheDatasetV2",
        "DecodeProtoV2",
        "EncodeProto",
    }


def test_rows_are_sorted_unique_and_well_formed() -> None:
    rows = [
        line.split("\t")
        for line in TSV.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    names = [fields[0] for fields in rows]
    assert names == sorted(names)
    assert len(names) == len(set(names)) == len(table())
    assert all(len(fields) == 5 for fields in rows)


def test_the_old_denylist_is_still_refused_or_checked() -> None:
    for op in OLD_DENYLIST:
        row = op_class(op)
        if op in ("DeleteFile", "RecursivelyCreateDir"):
            assert row is None
        else:
            assert row is not None, op
            assert row.kind in ("deny", "conditional"), row


def test_libraries_of_groups_known_ops_once() -> None:
    ops = ["CaseFoldUTF8", "Conv2D", "NotAnOp", "CaseFoldUTF8", "WordpieceTokenizeWithOffsets"]
    assert libraries_of(ops) == {
        "tensorflow_text": ["CaseFoldUTF8", "WordpieceTokenizeWithOffsets"],
        "tensorflow": ["Conv2D"],
    }
    assert libraries_of([]) == {}


def test_digest_names_the_table_bytes() -> None:
    import hashlib

    digest = hashlib.sha256(TSV.read_bytes()).hexdigest()[:16]
    assert table_digest() == digest == _scan_ops.TABLE_DIGEST


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Foo\ttensorflow\tallow\t-", "5 tab-separated fields"),
        ("Foo\ttensorflow\tmaybe\t-\tmath", "class must be one of"),
        ("Foo\ttensorflow\tdeny\t-\t", "has no why"),
        ("Foo\ttensorflow\tallow\tpath:0\tmath", "only a conditional row"),
        ("Foo\ttensorflow\tconditional\tasset:0\treads", "unknown check"),
        ("Foo\ttensorflow\tconditional\tpath\treads", "needs input indices"),
        ("Foo\ttensorflow\tconditional\tprint_stream:0\tprints", "takes no input index"),
    ],
)
def test_a_malformed_row_is_refused_with_its_line(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        _scan_ops._parse(f"# header\n{line}\n".encode())
    assert "scan_ops.tsv:2" in str(caught.value)


def test_a_row_listed_twice_is_refused() -> None:
    line = "Foo\ttensorflow\tallow\t-\tmath\n"
    with pytest.raises(ValueError, match="has a row already"):
        _scan_ops._parse((line + line).encode())


# --- the tool's proposals (TF-free) ----------------------------------------------------


@pytest.fixture(scope="module")
def tool() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("scan_ops_table", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scan_ops_table"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["scan_ops_table"]


@pytest.mark.parametrize(
    ("name", "module", "inputs", "attrs", "kind"),
    [
        ("NewReadsFile", "tensorflow.python.ops.gen_io_ops", ("x",), (), "deny"),
        ("NewMath", "tensorflow.python.ops.gen_math_ops", ("x",), ("T",), "allow"),
        ("NewMath2", "tensorflow.python.ops.gen_math_ops", ("filename",), (), "deny"),
        ("NewThing", "tensorflow.python.ops.gen_math_ops", ("x",), ("dump_root",), "deny"),
        ("WriteNewSummary", "tensorflow.python.ops.gen_nn_ops", ("x",), (), "deny"),
        ("NotExported", None, ("x",), (), "deny"),
        ("ImageSummary", "tensorflow.python.ops.gen_logging_ops", ("x",), (), "allow"),
    ],
)
def test_the_tool_proposes_paranoid_rows(
    tool: ModuleType,
    name: str,
    module: str | None,
    inputs: tuple[str, ...],
    attrs: tuple[str, ...],
    kind: str,
) -> None:
    row = tool.propose(tool.OpInfo(name, "tensorflow", module, inputs, attrs))
    assert row.kind == kind
    assert row.check == "-"
    if kind == "deny":
        assert "review" in row.why


def test_the_module_example_runs() -> None:
    import doctest

    result = doctest.testmod(_scan_ops)
    assert result.attempted > 0
    assert result.failed == 0
