"""Keep ``src/hublayer/models/scan_ops.tsv`` (the scan's allowlist) equal to TensorFlow's registry.

The table classifies every op that the pinned TensorFlow registers, plus the ops that
``import tensorflow_text`` adds, as ``allow``, ``deny`` or ``conditional`` (the format is
described in the table's own header and in ``hublayer/models/_scan_ops.py``). This
script reads the registry of the installed TensorFlow, keeps every row already in the
table exactly as it is (a row is a reviewed decision), and proposes a row for each op
that is registered but not yet in the table, from the op's name, its input and attribute
names (``filename``, ``prefix``, ``logdir``, ``debug_urls``, ``address``, ...) and the
``tf.raw_ops`` module that defines it. A proposal is never ``conditional``: an op that
touches a path is proposed ``deny``, and only a reviewer may relax it.

On a TensorFlow (or TensorFlow Text) upgrade::

    .venv/bin/python tools/scan_ops_table.py --check    # what changed; exit 1 if anything
    .venv/bin/python tools/scan_ops_table.py            # add proposals for the new ops
    git diff src/hublayer/models/scan_ops.tsv            # review every new row by hand:
    #   read the op's doc (tf.raw_ops.<Op>.__doc__) and its kernel; an op you are unsure
    #   about stays deny, with a why. Then remove rows of ops no longer registered:
    .venv/bin/python tools/scan_ops_table.py --prune
    .venv/bin/python -m pytest tests/test_scan_ops_table.py -q

``--check`` exits non-zero and names every op that is registered but missing from the
table, and every row whose op is no longer registered. ``tests/test_scan_ops_table.py``
runs the same comparison, so a TensorFlow upgrade cannot silently widen what loads.

The registry comes from TensorFlow's C API (``TF_GetAllOpList``), which lists every op
def, including the internal and test ops that ``tf.raw_ops`` does not export.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE = Path(__file__).resolve().parents[1] / "src" / "hublayer" / "models" / "scan_ops.tsv"
TENSORFLOW = "tensorflow"
TENSORFLOW_TEXT = "tensorflow_text"

#: The header written above the rows when the table is created from nothing.
HEADER = """\
# The scan's allowlist: every op TensorFlow registers, one row each (hublayer/models/_scan_ops.py).
# Columns, tab-separated: op, library, class, check, why.
#   library  tensorflow (TensorFlow's own ops) or tensorflow_text (what import tensorflow_text adds)
#   class    allow: computes only from its inputs; deny: can reach outside them; conditional:
#            reads or writes a path, allowed only when the scan proves the path is the model's own
#   check    conditional rows only, else "-": path:<i>, checkpoint_save:<i>,
#            checkpoint_restore:<i>, print_stream, memory_cache:<i>, descriptor_source
#            (<i>: input indices holding the path, comma-separated)
#   why      deny/conditional: what the op can do, in one line a user reads; allow: a category
# Review rule: every row is a human decision. tools/scan_ops_table.py adds proposals for new
# ops of a TensorFlow upgrade and never changes an existing row; an op you are unsure about
# is deny, with a why. Rows are sorted by op name.
"""

#: The checks a conditional row may name (the suffix ``:<i>`` lists input indices).
CHECKS_WITH_INPUTS = ("path", "checkpoint_save", "checkpoint_restore", "memory_cache")
CHECKS_WITHOUT_INPUTS = ("print_stream", "descriptor_source")

# Input or attribute names that hold a path, a URL, an address or a program hidden from
# the scan. An op with one of these is proposed deny.
_PATHLIKE = re.compile(
    r"^(filenames?|file_pattern|patterns?|prefix|path|.*_path|.*_dir|dir|logdir|directory|"
    r"db_uri|ckpt_path|.*vocab_file|memory_region_name|dump_root|debug_urls|debug_ops_spec|"
    r"log_dir_path|file_name|output_file_path|chunk_file|address|server_address|target|"
    r"descriptor_source|output_stream|call_target_name|target_name|.*mlir_module|module)$"
)
# Op names that say the op reaches outside its inputs.
_DENY_NAME = re.compile(
    r"File|Reader|Save|Restore|Checkpoint|Summary|Debug|Rpc|PyFunc|Abort|Snapshot|Dump|"
    r"Service|Send|Recv|Collective|Nccl|DTensor|TPU|Tpu|Infeed|Outfeed|Remote|Host|Lmdb|LMDB|"
    r"Sql|CSV|Record|Mlir|CustomCall|Calibration|Session|StringHandle"
)
_SAFE_SUMMARY = re.compile(r"^(Audio|Histogram|Image|Merge|Scalar|Tensor)Summary(V2)?$")

#: tf.raw_ops module (last part) -> category of an allowed op.
_CATEGORY = {
    "gen_array_ops": "array",
    "gen_audio_ops": "audio",
    "gen_batch_ops": "control",
    "gen_bitwise_ops": "math",
    "gen_boosted_trees_ops": "trees",
    "gen_candidate_sampling_ops": "random",
    "gen_clustering_ops": "nn",
    "gen_composite_tensor_ops": "internal",
    "gen_control_flow_ops": "control",
    "gen_count_ops": "math",
    "gen_ctc_ops": "nn",
    "gen_cudnn_rnn_ops": "nn",
    "gen_data_flow_ops": "dataflow",
    "gen_dataset_ops": "dataset",
    "gen_experimental_dataset_ops": "dataset",
    "gen_functional_ops": "control",
    "gen_image_ops": "image",
    "gen_linalg_ops": "linalg",
    "gen_list_ops": "array",
    "gen_logging_ops": "logging",
    "gen_lookup_ops": "lookup",
    "gen_manip_ops": "array",
    "gen_map_ops": "array",
    "gen_math_ops": "math",
    "gen_nn_ops": "nn",
    "gen_optional_ops": "dataset",
    "gen_parsing_ops": "parsing",
    "gen_ragged_array_ops": "ragged",
    "gen_ragged_conversion_ops": "ragged",
    "gen_ragged_math_ops": "ragged",
    "gen_random_index_shuffle_ops": "random",
    "gen_random_ops": "random",
    "gen_resource_variable_ops": "variable",
    "gen_rnn_ops": "nn",
    "gen_sdca_ops": "training",
    "gen_set_ops": "sparse",
    "gen_sparse_csr_matrix_ops": "sparse",
    "gen_sparse_ops": "sparse",
    "gen_special_math_ops": "math",
    "gen_spectral_ops": "spectral",
    "gen_state_ops": "variable",
    "gen_stateful_random_ops": "random",
    "gen_stateless_random_ops": "random",
    "gen_stateless_random_ops_v2": "random",
    "gen_string_ops": "string",
    "gen_sync_ops": "internal",
    "gen_training_ops": "training",
    "gen_uniform_quant_ops": "quantized",
    "gen_user_ops": "internal",
}
#: tf.raw_ops modules whose every op is proposed deny, with why.
_DENY_MODULE = {
    "gen_checkpoint_ops": "reads checkpoint or vocabulary files at a path the graph chooses",
    "gen_collective_ops": "a collective: exchanges tensors with other devices or processes",
    "gen_debug_ops": "tfdbg: dumps tensors to files or URLs named in the graph",
    "gen_filesystem_ops": "changes the process's file-system settings",
    "gen_io_ops": "reads, lists or writes files at a path the graph chooses",
    "gen_nccl_ops": "a collective: exchanges tensors with other devices (NCCL)",
    "gen_script_ops": "calls back into Python code of the loading process, unseen by the scan",
    "gen_sendrecv_ops": "sends or receives tensors across devices or processes (rendezvous)",
    "gen_summary_ops": "writes event files or a database at a path the graph chooses",
    "gen_tpu_ops": "a TPU system op: configures, feeds or runs a TPU, not a model computation",
    "gen_tpu_partition_ops": "a TPU op: not a model computation on CPU or GPU",
}


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    op: str
    library: str
    kind: str
    check: str
    why: str

    def line(self) -> str:
        return "\t".join((self.op, self.library, self.kind, self.check, self.why))


@dataclass(frozen=True)
class OpInfo:
    """What the proposal reads of one registered op."""

    name: str
    library: str
    module: str | None  # the tf.raw_ops module, None when tf.raw_ops lacks the op
    inputs: tuple[str, ...]
    attrs: tuple[str, ...]


def registry() -> dict[str, OpInfo]:
    """Every op the installed TensorFlow registers, and those ``import tensorflow_text`` adds."""
    import tensorflow as tf
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api

    def op_list() -> Any:
        buffer = c_api.TF_GetAllOpList()
        try:
            return op_def_pb2.OpList.FromString(c_api.TF_GetBuffer(buffer))
        finally:
            c_api.TF_DeleteBuffer(buffer)

    own = {op.name for op in op_list().op}
    try:
        import tensorflow_text  # noqa: F401  (registers its ops)
    except ImportError:
        print("tensorflow_text is not installed: its rows are left as they are", file=sys.stderr)
    infos: dict[str, OpInfo] = {}
    for op in op_list().op:
        raw = getattr(tf.raw_ops, op.name, None)
        infos[op.name] = OpInfo(
            name=op.name,
            library=TENSORFLOW if op.name in own else TENSORFLOW_TEXT,
            module=getattr(raw, "__module__", None) if raw is not None else None,
            inputs=tuple(arg.name for arg in op.input_arg),
            attrs=tuple(attr.name for attr in op.attr),
        )
    return infos


def propose(info: OpInfo) -> Row:
    """A first, paranoid guess for an op nobody has reviewed yet."""
    module = (info.module or "").rsplit(".", 1)[-1]

    def deny(why: str) -> Row:
        return Row(info.name, info.library, "deny", "-", why + " (proposed: review)")

    def allow(category: str) -> Row:
        return Row(info.name, info.library, "allow", "-", category)

    pathlike = [name for name in info.inputs + info.attrs if _PATHLIKE.match(name)]
    if pathlike:
        return deny(f"names a path, URL or program in {', '.join(pathlike)}")
    if module in _DENY_MODULE:
        return deny(_DENY_MODULE[module])
    if _DENY_NAME.search(info.name) and not _SAFE_SUMMARY.match(info.name):
        return deny("its name says it reaches outside its inputs (files, network, devices)")
    if info.library != TENSORFLOW:
        return allow("text")
    if module in _CATEGORY:
        return allow(_CATEGORY[module])
    if info.name.startswith(("_Mkl", "__Mkl", "_Fused", "_Quantized")):
        return allow("internal")
    return deny("not in tf.raw_ops: an internal or test op no saved model should hold")


def read_table(path: Path) -> tuple[list[str], dict[str, Row]]:
    """The header lines and the rows (op -> Row) of the table."""
    header: list[str] = []
    rows: dict[str, Row] = {}
    if not path.exists():
        return HEADER.splitlines(), rows
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("#") or not line.strip():
            if not rows:
                header.append(line)
            continue
        fields = line.split("\t")
        if len(fields) != 5:
            raise SystemExit(f"{path}:{number}: expected 5 tab-separated fields: {line!r}")
        row = Row(*fields)
        if row.op in rows:
            raise SystemExit(f"{path}:{number}: {row.op} is listed twice")
        rows[row.op] = row
    return header, rows


def write_table(path: Path, header: Sequence[str], rows: Iterable[Row]) -> None:
    body = [row.line() for row in sorted(rows, key=lambda row: row.op)]
    path.write_text("\n".join([*header, *body]) + "\n", encoding="utf-8")


def compare(
    infos: dict[str, OpInfo], rows: dict[str, Row], *, libraries: set[str]
) -> tuple[list[str], list[str]]:
    """Ops registered but missing from the table, and rows whose op is not registered."""
    missing = sorted(set(infos) - set(rows))
    stale = sorted(op for op, row in rows.items() if row.library in libraries and op not in infos)
    return missing, stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--table", type=Path, default=TABLE, help="the table (default: %(default)s)"
    )
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 listing what differs"
    )
    parser.add_argument(
        "--prune", action="store_true", help="also remove rows of ops no longer registered"
    )
    args = parser.parse_args(argv)

    infos = registry()
    libraries = {info.library for info in infos.values()} | {TENSORFLOW}
    header, rows = read_table(args.table)
    missing, stale = compare(infos, rows, libraries=libraries)
    if args.check:
        for op in missing:
            print(f"registered, not in the table: {op} ({infos[op].library})")
        for op in stale:
            print(f"in the table, no longer registered: {op} ({rows[op].library})")
        if missing or stale:
            print(f"{len(missing)} missing, {len(stale)} stale: run {sys.argv[0]} and review")
            return 1
        print(f"{args.table.name}: all {len(infos)} registered ops are classified")
        return 0

    proposals = [propose(infos[op]) for op in missing]
    for row in proposals:
        print(f"new, review: {row.line()}")
    for op in stale:
        print(f"{'removed' if args.prune else 'stale (kept; --prune removes)'}: {op}")
    kept = {op: row for op, row in rows.items() if not (args.prune and op in stale)}
    write_table(args.table, header, [*kept.values(), *proposals])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
