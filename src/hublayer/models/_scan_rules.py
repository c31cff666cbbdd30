"""What the scanner refuses, and why: the one table of unsafe TensorFlow ops.

A SavedModel is a program. Each op below reaches outside the tensors it is given: it
reads, writes or lists files, runs Python code of the loading process, opens network
connections, or hides a graph the scan cannot see. An op found here is a finding of
severity ``high`` (refused on load) unless its :class:`Rule` names a ``check`` that the
node passes:

- ``asset``: the path input is a file of the model's own ``assets/`` folder (a TF2
  ``Asset`` captured by the function, or a TF1 ``asset_file_def`` constant). That is how
  text models read their vocabularies; any other path (a constant such as
  ``/etc/passwd``, or a computed string) is refused.
- ``checkpoint_save`` / ``checkpoint_restore``: the node sits only in the part of the
  graph that the meta graph's ``saver_def`` names (the functions ``tf.saved_model.save``
  generates for checkpointing), which the loader runs to restore variables, with the
  path it chooses.
- ``print_file``: ``PrintV2`` is refused only when its ``output_stream`` is a
  ``file://`` path (printing to stderr is harmless).
- ``cache_file``: ``CacheDataset`` is refused only when its filename is not the
  constant ``""`` (an in-memory cache).

Ops that are not registered TensorFlow ops (custom op libraries, which run native code
the scan cannot see) are reported with severity ``medium``; see ``_scan_registry.py``.

Example:
    >>> DENYLIST["WriteFile"].severity, DENYLIST["ReadFile"].check
    ('high', 'asset')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DENYLIST", "HIGH", "MEDIUM", "Rule", "Severity"]

Severity = Literal["high", "medium"]
HIGH: Severity = "high"
MEDIUM: Severity = "medium"

Check = Literal["asset", "checkpoint_save", "checkpoint_restore", "print_file", "cache_file"]


@dataclass(frozen=True)
class Rule:
    """Why an op is unsafe, and the one narrow case in which it is allowed.

    Attributes:
        why: one line a user reads in the report.
        check: the exception that applies, or ``None`` (always refused).
        path_input: which input holds the path, for ``asset`` and ``cache_file``.
        severity: ``high`` (refused on load) or ``medium`` (reported).
    """

    why: str
    check: Check | None = None
    path_input: int = 0
    severity: Severity = HIGH


def _same(names: str, rule: Rule) -> dict[str, Rule]:
    return dict.fromkeys(names.split(), rule)


_READ = "reads any file the process can read, at a path the graph chooses"
_WRITE = "writes a file at a path the graph chooses"
_DATASET = "a dataset that reads the files it is given at run time"
_SNAPSHOT = "reads or writes tf.data snapshot files at a path the graph chooses"
_PY = "calls back into Python code of the loading process, which the scan cannot see"
_RPC = "opens network connections or serves functions over the network"
_SERVICE = "sends data to, or fetches data from, a remote tf.data service"
_DEBUG = "dumps tensors to files or URLs named in the graph (tfdbg)"
_SUMMARY = "writes event files or a database at a path the graph chooses"
_READER = "a TF1 reader that reads the files it is given at run time"

#: op name -> Rule. The one table; keep each line's ``why`` true to what the op does.
DENYLIST: dict[str, Rule] = {
    # files: read, list, write, delete
    "ReadFile": Rule(_READ, check="asset"),
    "InitializeTableFromTextFile": Rule(_READ, check="asset", path_input=1),
    "InitializeTableFromTextFileV2": Rule(_READ, check="asset", path_input=1),
    "WriteFile": Rule(_WRITE),
    "MatchingFiles": Rule("lists the file system (a glob over any folder)"),
    "MatchingFilesDataset": Rule("lists the file system (a glob over any folder)"),
    "ExperimentalMatchingFilesDataset": Rule("lists the file system (a glob over any folder)"),
    "DeleteFile": Rule("deletes a file at a path the graph chooses"),
    "RecursivelyCreateDir": Rule("creates folders at a path the graph chooses"),
    "ImmutableConst": Rule("memory-maps a file at a path named in the graph"),
    "FileSystemSetConfiguration": Rule("changes the process's file-system settings"),
    "LoadAndRemapMatrix": Rule("reads a checkpoint at a path the graph chooses"),
    # checkpoints: only where the saver_def puts them
    "SaveV2": Rule(_WRITE + " (a checkpoint)", check="checkpoint_save"),
    "MergeV2Checkpoints": Rule(
        "writes, merges and deletes checkpoint files", check="checkpoint_save"
    ),
    "Save": Rule(_WRITE + " (a TF1 checkpoint)"),
    "SaveSlices": Rule(_WRITE + " (a TF1 checkpoint)"),
    "RestoreV2": Rule(_READ + " (a checkpoint)", check="checkpoint_restore"),
    "Restore": Rule(_READ + " (a TF1 checkpoint)", check="checkpoint_restore"),
    "RestoreSlice": Rule(_READ + " (a TF1 checkpoint)", check="checkpoint_restore"),
    "DTensorRestoreV2": Rule(_READ + " (a checkpoint)"),
    # printing and debugging
    "PrintV2": Rule("prints to a file when output_stream is file://", check="print_file"),
    **_same("DebugIdentity DebugIdentityV2 DebugIdentityV3", Rule(_DEBUG)),
    **_same("DebugNanCount DebugNumericSummary", Rule(_DEBUG)),
    **_same("CreateSummaryFileWriter CreateSummaryDbWriter", Rule(_SUMMARY)),
    # Python callbacks
    **_same("PyFunc PyFuncStateless EagerPyFunc", Rule(_PY)),
    # file-backed datasets and readers
    **_same(
        "TFRecordDataset TFRecordDatasetV2 FixedLengthRecordDataset FixedLengthRecordDatasetV2 "
        "TextLineDataset CSVDataset CSVDatasetV2 ExperimentalCSVDataset RecordInput",
        Rule(_DATASET),
    ),
    **_same("SqlDataset ExperimentalSqlDataset", Rule("opens a SQLite database file")),
    **_same(
        "WholeFileReader WholeFileReaderV2 TextLineReader TextLineReaderV2 TFRecordReader "
        "TFRecordReaderV2 FixedLengthRecordReader FixedLengthRecordReaderV2 LMDBReader",
        Rule(_READER),
    ),
    **_same(
        "SaveDataset SaveDatasetV2 DatasetToTFRecord ExperimentalDatasetToTFRecord",
        Rule(_WRITE + " (a dataset)"),
    ),
    "LoadDataset": Rule(_READ + " (a saved dataset)"),
    "DistributedSave": Rule(_WRITE + " (a distributed dataset snapshot)"),
    **_same(
        "SnapshotDataset SnapshotDatasetV2 SnapshotDatasetReader SnapshotNestedDatasetReader "
        "SnapshotChunkDataset ListSnapshotChunksDataset",
        Rule(_SNAPSHOT),
    ),
    "CacheDataset": Rule(_WRITE + " (a dataset cache)", check="cache_file", path_input=1),
    "CacheDatasetV2": Rule(_WRITE + " (a dataset cache)", check="cache_file", path_input=1),
    "DatasetFromGraph": Rule("runs a serialized graph held in a tensor, hidden from the scan"),
    # network
    **_same(
        "RpcServer RpcClient RpcCall RpcServerStart RpcServerRegister RpcCheckStatus "
        "RpcGetValue DeleteRpcFutureResource",
        Rule(_RPC),
    ),
    **_same(
        "RegisterDataset RegisterDatasetV2 DataServiceDataset DataServiceDatasetV2 "
        "DataServiceDatasetV3 DataServiceDatasetV4",
        Rule(_SERVICE),
    ),
}

#: Why an op outside TensorFlow's registry is reported.
UNREGISTERED_WHY = (
    "not a registered TensorFlow op: a custom op library runs native code the scan cannot see"
)
#: Why an asset whose path leaves the model's ``assets/`` folder is refused.
ASSET_ESCAPE_WHY = (
    "an asset path that leaves the model's assets/ folder: reading it reads that file"
)
#: Why an asset that is a link to a file outside the model is refused.
ASSET_LINK_WHY = "an asset is a link to a file outside the model: reading it reads that file"
#: Why a reference to a function the library lacks is reported.
MISSING_FUNCTION_WHY = "calls a function the model's library does not define"
