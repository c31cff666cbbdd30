"""Protobuf message classes built at run time from a small schema, without TensorFlow.

Importing any ``tensorflow.*`` module, even a generated ``*_pb2``, runs TensorFlow's
``__init__`` (seconds, and hundreds of MB). The scanner (``saved_model.proto``) and the
record codec (``example.proto``) need only a few of TensorFlow's messages, so they write
the fields they read as a schema and get classes that produce and accept the same bytes.
Each call builds its own private descriptor pool, so the classes never clash with
TensorFlow's own when both are loaded.

A schema maps a message name to its fields, each
``(name, number, type, message type or None, repeated)``; a message type ``"map:V"``
makes a ``map<string, V>`` field (its entry type ``<FieldName>Entry`` is nested, as
``protoc`` names it). Repeated numeric fields are packed, as proto3 packs them::

    {"Int64List": [("value", 1, INT64, None, True)],
     "Features":  [("feature", 1, MESSAGE, "map:Feature", True)], ...}

Example:
    >>> classes = message_classes(
    ...     "example/demo.proto",
    ...     {"Point": [("x", 1, INT64, None, False)], "Path": [("p", 1, MESSAGE, "Point", True)]},
    ...     ["Path"],
    ... )
    >>> path = classes["Path"]()
    >>> path.p.add(x=3).x
    3
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["BYTES", "FLOAT", "INT32", "INT64", "MESSAGE", "STRING", "Field", "message_classes"]

_F = descriptor_pb2.FieldDescriptorProto
STRING, BYTES, MESSAGE = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_MESSAGE
INT32, INT64, FLOAT = _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_FLOAT
_NOT_PACKED = frozenset({STRING, BYTES, MESSAGE, _F.TYPE_GROUP})
_MAP = "map:"

#: ``(name, number, type, message type or None, repeated)``.
Field = tuple[str, int, int, str | None, bool]


def message_classes(
    file_name: str,
    schema: Mapping[str, Sequence[Field]],
    names: Iterable[str],
    *,
    oneofs: Mapping[str, str] | None = None,
    package: str = "tensorflow",
) -> dict[str, Any]:
    """The message classes ``names`` of ``schema``, in a pool of their own.

    Args:
        file_name: the ``.proto`` file the descriptor says it comes from (any unique name).
        schema: message name -> its fields (see the module docstring).
        names: the messages to return classes for.
        oneofs: message name -> the name of one ``oneof`` that holds all its non-repeated
            fields (TensorFlow's ``AttrValue.value``, ``Feature.kind``), so
            ``WhichOneof`` works as on TensorFlow's classes.
        package: the proto package; ``tensorflow`` keeps TensorFlow's full names.

    Returns:
        name -> message class, for each of ``names``.

    Raises:
        TypeError: the schema names a message type it does not define (from protobuf).
    """
    file = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax="proto3")
    for name, fields in schema.items():
        _add_message(file, package, name, fields, (oneofs or {}).get(name))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
        for name in names
    }


def _add_message(
    file: descriptor_pb2.FileDescriptorProto,
    package: str,
    name: str,
    fields: Sequence[Field],
    oneof: str | None,
) -> None:
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
        if type_name is not None and type_name.startswith(_MAP):
            entry = "".join(part.title() for part in field_name.split("_")) + "Entry"
            nested = message.nested_type.add(name=entry)
            nested.options.map_entry = True
            nested.field.add(name="key", number=1, type=STRING, label=_F.LABEL_OPTIONAL)
            nested.field.add(
                name="value",
                number=2,
                type=MESSAGE,
                type_name=f".{package}.{type_name[len(_MAP) :]}",
                label=_F.LABEL_OPTIONAL,
            )
            field.type_name = f".{package}.{name}.{entry}"
        elif type_name is not None:
            field.type_name = f".{package}.{type_name}"
        if repeated and kind not in _NOT_PACKED:
            field.options.packed = True
        if oneof is not None and not repeated:
            field.oneof_index = 0
