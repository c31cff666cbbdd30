"""The ``tf.train.Example`` protobuf classes, built at run time without TensorFlow.

Importing any ``tensorflow.*`` module, even ``tensorflow.core.example.example_pb2``, runs
TensorFlow's ``__init__`` (seconds, and hundreds of MB). These classes are built from a
descriptor that mirrors ``tensorflow/core/example/{feature,example}.proto``, in a private
descriptor pool so they never clash with TensorFlow's own when both are loaded. They
produce and accept the same bytes::

    message BytesList { repeated bytes value = 1; }
    message FloatList { repeated float value = 1 [packed = true]; }
    message Int64List { repeated int64 value = 1 [packed = true]; }
    message Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                                   Int64List int64_list = 3; } }
    message Features { map<string, Feature> feature = 1; }
    message FeatureList { repeated Feature feature = 1; }
    message FeatureLists { map<string, FeatureList> feature_list = 1; }
    message Example { Features features = 1; }
    message SequenceExample { Features context = 1; FeatureLists feature_lists = 2; }

Example:
    >>> example = Example()
    >>> example.features.feature["x"].int64_list.value.append(3)
    >>> Example.FromString(example.SerializeToString()).features.feature["x"].int64_list.value
    [3]
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["Example", "Feature", "SequenceExample"]

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "tensorflow"


def _add_message(
    file: descriptor_pb2.FileDescriptorProto,
    name: str,
    fields: list[tuple[str, int, int, str | None, bool]],
    *,
    oneof: str | None = None,
) -> descriptor_pb2.DescriptorProto:
    """Add a message; each field is (name, number, type, message type, repeated)."""
    message = file.message_type.add(name=name)
    if oneof is not None:
        message.oneof_decl.add(name=oneof)
    for field_name, number, kind, type_name, repeated in fields:
        field = message.field.add(
            name=field_name,
            number=number,
            type=kind,  # type: ignore[arg-type]
            label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
        )
        if type_name is not None:
            field.type_name = f".{_PACKAGE}.{type_name}"
        if repeated and kind in (_F.TYPE_FLOAT, _F.TYPE_INT64):
            field.options.packed = True
        if oneof is not None:
            field.oneof_index = 0
    return message


def _add_map(message: descriptor_pb2.DescriptorProto, field: str, entry: str, value: str) -> None:
    nested = message.nested_type.add(name=entry)
    nested.options.map_entry = True
    nested.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    nested.field.add(
        name="value",
        number=2,
        type=_F.TYPE_MESSAGE,
        type_name=f".{_PACKAGE}.{value}",
        label=_F.LABEL_OPTIONAL,
    )
    message.field.add(
        name=field,
        number=1,
        type=_F.TYPE_MESSAGE,
        type_name=f".{_PACKAGE}.{message.name}.{entry}",
        label=_F.LABEL_REPEATED,
    )


def _build() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="hublayer/records/example.proto", package=_PACKAGE, syntax="proto3"
    )
    message = _F.TYPE_MESSAGE
    _add_message(file, "BytesList", [("value", 1, _F.TYPE_BYTES, None, True)])
    _add_message(file, "FloatList", [("value", 1, _F.TYPE_FLOAT, None, True)])
    _add_message(file, "Int64List", [("value", 1, _F.TYPE_INT64, None, True)])
    _add_message(
        file,
        "Feature",
        [
            ("bytes_list", 1, message, "BytesList", False),
            ("float_list", 2, message, "FloatList", False),
            ("int64_list", 3, message, "Int64List", False),
        ],
        oneof="kind",
    )
    _add_map(_add_message(file, "Features", []), "feature", "FeatureEntry", "Feature")
    _add_message(file, "FeatureList", [("feature", 1, message, "Feature", True)])
    lists = _add_message(file, "FeatureLists", [])
    _add_map(lists, "feature_list", "FeatureListEntry", "FeatureList")
    _add_message(file, "Example", [("features", 1, message, "Features", False)])
    _add_message(
        file,
        "SequenceExample",
        [
            ("context", 1, message, "Features", False),
            ("feature_lists", 2, message, "FeatureLists", False),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in ("Example", "Feature", "SequenceExample")
    }


_CLASSES = _build()
Example: Any = _CLASSES["Example"]
Feature: Any = _CLASSES["Feature"]
SequenceExample: Any = _CLASSES["SequenceExample"]
