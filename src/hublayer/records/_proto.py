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

from hublayer._proto_classes import BYTES, FLOAT, INT64, MESSAGE, Field, message_classes

__all__ = ["Example", "Feature", "SequenceExample"]

_SCHEMA: dict[str, list[Field]] = {
    "BytesList": [("value", 1, BYTES, None, True)],
    "FloatList": [("value", 1, FLOAT, None, True)],
    "Int64List": [("value", 1, INT64, None, True)],
    "Feature": [
        ("bytes_list", 1, MESSAGE, "BytesList", False),
        ("float_list", 2, MESSAGE, "FloatList", False),
        ("int64_list", 3, MESSAGE, "Int64List", False),
    ],
    "Features": [("feature", 1, MESSAGE, "map:Feature", True)],
    "FeatureList": [("feature", 1, MESSAGE, "Feature", True)],
    "FeatureLists": [("feature_list", 1, MESSAGE, "map:FeatureList", True)],
    "Example": [("features", 1, MESSAGE, "Features", False)],
    "SequenceExample": [
        ("context", 1, MESSAGE, "Features", False),
        ("feature_lists", 2, MESSAGE, "FeatureLists", False),
    ],
}

_CLASSES = message_classes(
    "hublayer/records/example.proto",
    _SCHEMA,
    ["Example", "Feature", "SequenceExample"],
    oneofs={"Feature": "kind"},
)
Example: Any = _CLASSES["Example"]
Feature: Any = _CLASSES["Feature"]
SequenceExample: Any = _CLASSES["SequenceExample"]
