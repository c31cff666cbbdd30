"""The parts of ``saved_model.proto`` the scanner reads, built at run time without TensorFlow.

Importing ``tensorflow.core.protobuf.saved_model_pb2`` runs TensorFlow's ``__init__``
(seconds, hundreds of MB), and the scan must run before TensorFlow is trusted with the
model. These classes mirror only the fields the scanner reads, with TensorFlow's field
numbers; protobuf skips every other field, so they parse any ``saved_model.pb``. They live
in a private descriptor pool, so they never clash with TensorFlow's own classes::

    SavedModel      { repeated MetaGraphDef meta_graphs = 2; }
    MetaGraphDef    { MetaInfoDef meta_info_def = 1; GraphDef graph_def = 2;
                      SaverDef saver_def = 3; map<string, CollectionDef> collection_def = 4;
                      map<string, SignatureDef> signature_def = 5;
                      repeated AssetFileDef asset_file_def = 6;
                      SavedObjectGraph object_graph_def = 7; }
    CollectionDef   { NodeList node_list = 1; AnyList any_list = 5; }
    NodeList        { repeated string value = 1; }
    AnyList         { repeated google.protobuf.Any value = 1; }  (TF1 builders keep their
                    AssetFileDefs here, in collection "saved_model_assets")
    Any             { string type_url = 1; bytes value = 2; }
    SignatureDef    { map<string, TensorInfo> inputs = 1; map<string, TensorInfo> outputs = 2; }
    MetaInfoDef     { repeated string tags = 4; }
    SaverDef        { string filename_tensor_name = 1; string save_tensor_name = 2;
                      string restore_op_name = 3; }
    AssetFileDef    { TensorInfo tensor_info = 1; string filename = 2; }
    TensorInfo      { string name = 1; }
    GraphDef        { repeated NodeDef node = 1; FunctionDefLibrary library = 2; }
    FunctionDefLibrary { repeated FunctionDef function = 1; }
    FunctionDef     { OpDef signature = 1; repeated NodeDef node_def = 3;
                      map<string, AttrValue> attr = 5; }  (``api_implements`` lives here)
    OpDef           { string name = 1; repeated ArgDef input_arg = 2; }
    ArgDef          { string name = 1; }
    NodeDef         { string name = 1; string op = 2; repeated string input = 3;
                      map<string, AttrValue> attr = 5; }
    AttrValue       { oneof value { ListValue list = 1; bytes s = 2; int64 i = 3;
                      TensorProto tensor = 8; NameAttrList func = 10; } }
    ListValue       { repeated bytes s = 2; repeated DataType type = 6;
                      repeated TensorProto tensor = 8;
                      repeated NameAttrList func = 9; }
    NameAttrList    { string name = 1; map<string, AttrValue> attr = 2; }
    TensorProto     { int32 dtype = 1; TensorShapeProto tensor_shape = 2;
                      bytes tensor_content = 4; repeated bytes string_val = 8; }
    TensorShapeProto { repeated Dim dim = 2; }      Dim { int64 size = 1; }
    SavedObjectGraph { repeated SavedObject nodes = 1;
                       map<string, SavedConcreteFunction> concrete_functions = 2; }
    SavedObject     { SavedAsset asset = 5; SavedFunction function = 6;
                      SavedBareConcreteFunction bare_concrete_function = 8; }
    SavedFunction   { repeated string concrete_functions = 1; }
    SavedBareConcreteFunction { string concrete_function_name = 1; }
    SavedConcreteFunction { repeated int32 bound_inputs = 2; }

``tests/test_scan_proto.py`` checks every field here against TensorFlow's descriptors.

Example:
    >>> model = SavedModel()
    >>> model.meta_graphs.add().graph_def.node.add(name="x", op="Const").name
    'x'
"""

from __future__ import annotations

from typing import Any

from hublayer._proto_classes import BYTES, INT32, INT64, MESSAGE, STRING, Field, message_classes

__all__ = ["SCHEMA", "AssetFileDef", "SavedModel"]

#: message -> [(field, number, type, message type or None, repeated)]; ``map:`` types are maps.
SCHEMA: dict[str, list[Field]] = {
    "SavedModel": [("meta_graphs", 2, MESSAGE, "MetaGraphDef", True)],
    "MetaGraphDef": [
        ("meta_info_def", 1, MESSAGE, "MetaInfoDef", False),
        ("graph_def", 2, MESSAGE, "GraphDef", False),
        ("saver_def", 3, MESSAGE, "SaverDef", False),
        ("collection_def", 4, MESSAGE, "map:CollectionDef", True),
        ("signature_def", 5, MESSAGE, "map:SignatureDef", True),
        ("asset_file_def", 6, MESSAGE, "AssetFileDef", True),
        ("object_graph_def", 7, MESSAGE, "SavedObjectGraph", False),
    ],
    "MetaInfoDef": [("tags", 4, STRING, None, True)],
    "SaverDef": [
        ("filename_tensor_name", 1, STRING, None, False),
        ("save_tensor_name", 2, STRING, None, False),
        ("restore_op_name", 3, STRING, None, False),
    ],
    "AssetFileDef": [
        ("tensor_info", 1, MESSAGE, "TensorInfo", False),
        ("filename", 2, STRING, None, False),
    ],
    "TensorInfo": [("name", 1, STRING, None, False)],
    "CollectionDef": [
        ("node_list", 1, MESSAGE, "NodeList", False),
        ("any_list", 5, MESSAGE, "AnyList", False),
    ],
    "NodeList": [("value", 1, STRING, None, True)],
    "AnyList": [("value", 1, MESSAGE, "Any", True)],
    "Any": [("type_url", 1, STRING, None, False), ("value", 2, BYTES, None, False)],
    "SignatureDef": [
        ("inputs", 1, MESSAGE, "map:TensorInfo", True),
        ("outputs", 2, MESSAGE, "map:TensorInfo", True),
    ],
    "GraphDef": [
        ("node", 1, MESSAGE, "NodeDef", True),
        ("library", 2, MESSAGE, "FunctionDefLibrary", False),
    ],
    "FunctionDefLibrary": [("function", 1, MESSAGE, "FunctionDef", True)],
    "FunctionDef": [
        ("signature", 1, MESSAGE, "OpDef", False),
        ("node_def", 3, MESSAGE, "NodeDef", True),
        ("attr", 5, MESSAGE, "map:AttrValue", True),
    ],
    "OpDef": [
        ("name", 1, STRING, None, False),
        ("input_arg", 2, MESSAGE, "ArgDef", True),
    ],
    "ArgDef": [("name", 1, STRING, None, False)],
    "NodeDef": [
        ("name", 1, STRING, None, False),
        ("op", 2, STRING, None, False),
        ("input", 3, STRING, None, True),
        ("attr", 5, MESSAGE, "map:AttrValue", True),
    ],
    "AttrValue": [
        ("list", 1, MESSAGE, "ListValue", False),
        ("s", 2, BYTES, None, False),
        ("i", 3, INT64, None, False),
        ("tensor", 8, MESSAGE, "TensorProto", False),
        ("func", 10, MESSAGE, "NameAttrList", False),
    ],
    "ListValue": [
        ("s", 2, BYTES, None, True),
        ("type", 6, INT32, None, True),
        ("tensor", 8, MESSAGE, "TensorProto", True),
        ("func", 9, MESSAGE, "NameAttrList", True),
    ],
    "NameAttrList": [
        ("name", 1, STRING, None, False),
        ("attr", 2, MESSAGE, "map:AttrValue", True),
    ],
    "TensorProto": [
        ("dtype", 1, INT32, None, False),
        ("tensor_shape", 2, MESSAGE, "TensorShapeProto", False),
        ("tensor_content", 4, BYTES, None, False),
        ("string_val", 8, BYTES, None, True),
    ],
    "TensorShapeProto": [("dim", 2, MESSAGE, "Dim", True)],
    "Dim": [("size", 1, INT64, None, False)],
    "SavedObjectGraph": [
        ("nodes", 1, MESSAGE, "SavedObject", True),
        ("concrete_functions", 2, MESSAGE, "map:SavedConcreteFunction", True),
    ],
    "SavedObject": [
        ("asset", 5, MESSAGE, "SavedAsset", False),
        ("function", 6, MESSAGE, "SavedFunction", False),
        ("bare_concrete_function", 8, MESSAGE, "SavedBareConcreteFunction", False),
    ],
    "SavedAsset": [("asset_file_def_index", 1, INT32, None, False)],
    "SavedFunction": [("concrete_functions", 1, STRING, None, True)],
    "SavedBareConcreteFunction": [("concrete_function_name", 1, STRING, None, False)],
    "SavedConcreteFunction": [("bound_inputs", 2, INT32, None, True)],
}

#: Messages whose fields share one ``oneof`` (TensorFlow's ``AttrValue.value``, and
#: ``SavedObject.kind``), so ``WhichOneof`` works as it does on TensorFlow's classes.
_ONEOF = {"AttrValue": "value", "SavedObject": "kind"}


_CLASSES = message_classes(
    "hublayer/models/saved_model_scan.proto",
    SCHEMA,
    ["SavedModel", "AssetFileDef"],
    oneofs=_ONEOF,
)
SavedModel: Any = _CLASSES["SavedModel"]
AssetFileDef: Any = _CLASSES["AssetFileDef"]
