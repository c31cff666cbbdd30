"""Regenerate the golden TFRecord files with TensorFlow's own writer (run once, commit).

.venv/bin/python tests/data/records/make_golden.py
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

HERE = Path(__file__).parent

RAW = [b"", b"a", b"hello world", bytes(range(256)), b"\x00" * 1000]


def examples() -> list[bytes]:
    def feature(**kind: object) -> tf.train.Feature:
        return tf.train.Feature(**kind)  # type: ignore[arg-type]

    out = []
    for i in range(3):
        example = tf.train.Example(
            features=tf.train.Features(
                feature={
                    "label": feature(int64_list=tf.train.Int64List(value=[i])),
                    "score": feature(float_list=tf.train.FloatList(value=[0.5 * i, -1.25])),
                    "name": feature(bytes_list=tf.train.BytesList(value=[f"item-{i}".encode()])),
                    "ids": feature(int64_list=tf.train.Int64List(value=list(range(i)))),
                }
            )
        )
        out.append(example.SerializeToString(deterministic=True))
    return out


def main() -> None:
    records = RAW + examples()
    for name, options in (
        ("plain.tfrecord", ""),
        ("gzip.tfrecord.gz", "GZIP"),
        ("zlib.tfrecord.zz", "ZLIB"),
    ):
        with tf.io.TFRecordWriter(str(HERE / name), options=options) as writer:
            for record in records:
                writer.write(record)
    (HERE / "records.hex").write_text("\n".join(r.hex() for r in records) + "\n")


if __name__ == "__main__":
    main()
