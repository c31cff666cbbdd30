"""The ops TensorFlow 2.21.0 registers, and the ones that take functions: a TF-free scan.

The registered ops are the ``tensorflow`` rows of the scan's reviewed op table
(``scan_ops.tsv``), the one list of them; ``tests/test_scan_ops_table.py`` keeps it equal
to the installed TensorFlow's registry. An op in a SavedModel that is neither registered
nor a function of the model's library comes from a custom op library, which runs native
code of its own. ``FUNCTION_ATTRS`` names, for each op that takes functions, the
attributes that hold them (``While``: ``body``, ``cond``), generated from TensorFlow's
op defs when TensorFlow is upgraded (``hublayer._foreign_tf`` reads every registered op
def through TF's C API)::

    from hublayer._foreign_tf import registered_op_defs
    funcs = {op.name: sorted(a.name for a in op.attr if a.type in ("func", "list(func)"))
             for op in registered_op_defs().values()}

``tests/test_scan_rules.py`` checks them against the installed TensorFlow: exactly the
function attributes each op def declares.
"""

from __future__ import annotations

import functools

from hublayer.models._scan_ops import table

__all__ = ["FUNCTION_ATTRS", "TF_VERSION", "tensorflow_ops"]

#: The TensorFlow version the list was generated from.
TF_VERSION = "2.21.0"


@functools.lru_cache(maxsize=1)
def tensorflow_ops() -> frozenset[str]:
    """Every op the pinned TensorFlow registers (the op table's ``tensorflow`` rows)."""
    return frozenset(op for op, row in table().items() if row.library == "tensorflow")


#: op -> its attributes of type ``func`` / ``list(func)`` (80 ops have any), as
#: ``Op:attr,attr`` words. A registered op calls functions only through these.
_FUNCTION_ATTRS = """
BatchFunction:f Case:branches ChooseFastestBranchDataset:branches
DataServiceDatasetV3:uncompress_fn DataServiceDatasetV4:uncompress_fn
ExperimentalGroupByReducerDataset:finalize_func,init_func,key_func,reduce_func
ExperimentalGroupByWindowDataset:key_func,reduce_func,window_size_func
ExperimentalMapAndBatchDataset:f ExperimentalMapDataset:f
ExperimentalParallelInterleaveDataset:f ExperimentalScanDataset:f
ExperimentalTakeWhileDataset:predicate FilterDataset:predicate FlatMapDataset:f For:body
FuncAttr:f FuncListAttr:f GeneratorDataset:finalize_func,init_func,next_func
GroupByReducerDataset:finalize_func,init_func,key_func,reduce_func
GroupByWindowDataset:key_func,reduce_func,window_size_func If:else_branch,then_branch
IndexFlatMapDataset:index_map_func,map_func InterleaveDataset:f
LegacyParallelInterleaveDatasetV2:f LoadDataset:reader_func MapAndBatchDataset:f MapDataset:f
MapDefun:f OneShotIterator:dataset_factory ParallelFilterDataset:predicate
ParallelInterleaveDataset:f ParallelInterleaveDatasetV2:f ParallelInterleaveDatasetV3:f
ParallelInterleaveDatasetV4:f ParallelMapDataset:f ParallelMapDatasetV2:f PartitionedCall:f
ReduceDataset:f RemoteCall:f RiscCondition:func_false,func_true RiscWhile:body,cond
RpcServerRegister:f SaveDataset:shard_func SaveDatasetV2:shard_func ScanDataset:f
SnapshotDatasetV2:reader_func,shard_func StatefulPartitionedCall:f StatelessCase:branches
StatelessIf:else_branch,then_branch StatelessWhile:body,cond SymbolicGradient:f
TPUCompile:function TPUPartitionedCall:f TakeWhileDataset:predicate While:body,cond
XlaCallModule:function_list XlaHostCompute:shape_inference_graph XlaIf:else_branch,then_branch
XlaLaunch:function XlaLaunchV2:function XlaReduce:reducer XlaReduceWindow:computation
XlaScatter:update_computation XlaSelectAndScatter:scatter,select
XlaSparseDenseMatmulCustomCombinerOnTcGradWithAdagradAndCsrInput:combiner_table_vjp_computation,combiner_weights_vjp_computation
XlaSparseDenseMatmulCustomCombinerOnTcGradWithAdagradMomentumAndCsrInput:combiner_table_vjp_computation,combiner_weights_vjp_computation
XlaSparseDenseMatmulCustomCombinerOnTcGradWithAdamAndCsrInput:combiner_table_vjp_computation,combiner_weights_vjp_computation
XlaSparseDenseMatmulCustomCombinerOnTcGradWithCsrInput:combiner_table_vjp_computation,combiner_weights_vjp_computation,optimizer_custom_computation
XlaSparseDenseMatmulCustomCombinerOnTcGradWithFtrlAndCsrInput:combiner_table_vjp_computation,combiner_weights_vjp_computation
XlaSparseDenseMatmulCustomCombinerOnTcGradWithSgdAndCsrInput:combiner_table_vjp_computation,combiner_weights_vjp_computation
XlaSparseDenseMatmulCustomCombinerOnTcWithCsrInput:combiner_computation
XlaSparseDenseMatmulGradWithCsrInput:custom_computation XlaVariadicReduce:reducer
XlaVariadicReduceV2:reducer XlaVariadicSort:comparator XlaWhile:body,cond
_If:else_branch,then_branch _TPUReplicate:computation _While:body,cond _XlaCompile:function
"""

#: For each registered op that takes functions, the attributes that name them.
FUNCTION_ATTRS: dict[str, tuple[str, ...]] = {
    op: tuple(attrs.split(","))
    for op, _, attrs in (w.partition(":") for w in _FUNCTION_ATTRS.split())
}
