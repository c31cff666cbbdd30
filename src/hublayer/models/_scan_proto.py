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

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["SCHEMA", "AssetFileDef", "SavedModel"]

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "tensorflow"
_STRING, _BYTES, _INT64, _INT32 = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_INT64, _F.TYPE_INT32
_MESSAGE = _F.TYPE_MESSAGE

#: message -> [(field, number, type, message type or None, repeated)]; ``map:`` types are maps.
SCHEMA: dict[str, list[tuple[str, int, int, str | None, bool]]] = {
    "SavedModel": [("meta_graphs", 2, _MESSAGE, "MetaGraphDef", True)],
    "MetaGraphDef": [
        ("meta_info_def", 1, _MESSAGE, "MetaInfoDef", False),
        ("graph_def", 2, _MESSAGE, "GraphDef", False),
        ("saver_def", 3, _MESSAGE, "SaverDef", False),
        ("collection_def", 4, _MESSAGE, "map:CollectionDef", True),
        ("signature_def", 5, _MESSAGE, "map:SignatureDef", True),
        ("asset_file_def", 6, _MESSAGE, "AssetFileDef", True),
        ("object_graph_def", 7, _MESSAGE, "SavedObjectGraph", False),
    ],
    "MetaInfoDef": [("tags", 4, _STRING, None, True)],
    "SaverDef": [
        ("filename_tensor_name", 1, _STRING, None, False),
        ("save_tensor_name", 2, _STRING, None, False),
        ("restore_op_name", 3, _STRING, None, False),
    ],
    "AssetFileDef": [
        ("tensor_info", 1, _MESSAGE, "TensorInfo", False),
        ("filename", 2, _STRING, None, False),
    ],
    "TensorInfo": [("name", 1, _STRING, None, False)],
    "CollectionDef": [
        ("node_list", 1, _MESSAGE, "NodeList", False),
        ("any_list", 5, _MESSAGE, "AnyList", False),
    ],
    "NodeList": [("value", 1, _STRING, None, True)],
    "AnyList": [("value", 1, _MESSAGE, "Any", True)],
    "Any": [("type_url", 1, _STRING, None, False), ("value", 2, _BYTES, None, False)],
    "SignatureDef": [
        ("inputs", 1, _MESSAGE, "map:TensorInfo", True),
        ("outputs", 2, _MESSAGE, "map:TensorInfo", True),
    ],
    "GraphDef": [
        ("node", 1, _MESSAGE, "NodeDef", True),
        ("library", 2, _MESSAGE, "FunctionDefLibrary", False),
    ],
    "FunctionDefLibrary": [("function", 1, _MESSAGE, "FunctionDef", True)],
    "FunctionDef": [
        ("signature", 1, _MESSAGE, "OpDef", False),
        ("node_def", 3, _MESSAGE, "NodeDef", True),
        ("attr", 5, _MESSAGE, "map:AttrValue", True),
    ],
    "OpDef": [
        ("name", 1, _STRING, None, False),
        ("input_arg", 2, _MESSAGE, "ArgDef", True),
    ],
    "ArgDef": [("name", 1, _STRING, None, False)],
    "NodeDef": [
        ("name", 1, _STRING, None, False),
        ("op", 2, _STRING, None, False),
        ("input", 3, _STRING, None, True),
        ("attr", 5, _MESSAGE, "map:AttrValue", True),
    ],
    "AttrValue": [
        ("list", 1, _MESSAGE, "ListValue", False),
        ("s", 2, _BYTES, None, False),
        ("i", 3, _INT64, None, False),
        ("tensor", 8, _MESSAGE, "TensorProto", False),
        ("func", 10, _MESSAGE, "NameAttrList", False),
    ],
    "ListValue": [
        ("s", 2, _BYTES, None, True),
        ("type", 6, _INT32, None, True),
        ("tensor", 8, _MESSAGE, "TensorProto", True),
        ("func", 9, _MESSAGE, "NameAttrList", True),
    ],
    "NameAttrList": [
        ("name", 1, _STRING, None, False),
        ("attr", 2, _MESSAGE, "map:AttrValue", True),
    ],
    "TensorProto": [
        ("dtype", 1, _INT32, None, False),
        ("tensor_shape", 2, _MESSAGE, "TensorShapeProto", False),
        ("tensor_content", 4, _BYTES, None, False),
        ("string_val", 8, _BYTES, None, True),
    ],
    "TensorShapeProto": [("dim", 2, _MESSAGE, "Dim", True)],
    "Dim": [("size", 1, _INT64, None, False)],
    "SavedObjectGraph": [
        ("nodes", 1, _MESSAGE, "SavedObject", True),
        ("concrete_functions", 2, _MESSAGE, "map:SavedConcreteFunction", True),
    ],
    "SavedObject": [
        ("asset", 5, _MESSAGE, "SavedAsset", False),
        ("function", 6, _MESSAGE, "SavedFunction", False),
        ("bare_concrete_function", 8, _MESSAGE, "SavedBareConcreteFunction", False),
    ],
    "SavedAsset": [("asset_file_def_index", 1, _INT32, None, False)],
    "SavedFunction": [("concrete_functions", 1, _STRING, None, True)],
    "SavedBareConcreteFunction": [("concrete_function_name", 1, _STRING, None, False)],
    "SavedConcreteFunction": [("bound_inputs", 2, _INT32, None, True)],
}

#: Messages whose fields share one ``oneof`` (TensorFlow's ``AttrValue.value``, and
#: ``SavedObject.kind``), so ``WhichOneof`` works as it does on TensorFlow's classes.
_ONEOF = {"AttrValue": "value", "SavedObject": "kind"}


def _build() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="hublayer/models/saved_model_scan.proto", package=_PACKAGE, syntax="proto3"
    )
    for name, fields in SCHEMA.items():
        message = file.message_type.add(name=name)
        oneof = _ONEOF.get(name)
        if oneof is not None:
            message.oneof_decl.add(name=oneof)
        for field_name, number, kind, type_name, repeated in fields:
            field = message.field.add(
                name=field_name,
                number=number,
                type=kind,  # type: ignore[arg-type]
                label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
            )
            if type_name is not None and type_name.startswith("map:"):
                entry = "".join(part.title() for part in field_name.split("_")) + "Entry"
                nested = message.nested_type.add(name=entry)
                nested.options.map_entry = True
                nested.field.add(name="key", number=1, type=_STRING, label=_F.LABEL_OPTIONAL)
                nested.field.add(
                    name="value",
                    number=2,
                    type=_MESSAGE,
                    type_name=f".{_PACKAGE}.{type_name[4:]}",
                    label=_F.LABEL_OPTIONAL,
                )
                field.type_name = f".{_PACKAGE}.{name}.{entry}"
            elif type_name is not None:
                field.type_name = f".{_PACKAGE}.{type_name}"
            if oneof is not None and not repeated:
                field.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in ("SavedModel", "AssetFileDef")
    }


_CLASSES = _build()
SavedModel: Any = _CLASSES["SavedModel"]
AssetFileDef: Any = _CLASSES["AssetFileDef"]
