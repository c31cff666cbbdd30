"""The secret a corpus's leaking models read, planted after they are built.

A harmful model counts as leaking only when a secret written *after* the build reaches
its output, so nothing of the secret can be baked into the model. :func:`plant_secret`
writes it in every form the models read: a text file (rewritten in place, so a hard
link made at build time sees it), a one-record TFRecord file and a protobuf descriptor
whose field default is the secret; a ``<token>.listed`` file beside them marks it.

Example:
    >>> import pathlib, tempfile
    >>> secret = pathlib.Path(tempfile.mkdtemp()) / "secret.txt"
    >>> plant_secret(secret, "0123456789abcdef0123456789abcdef")
    >>> secret.read_text()
    '0123456789abcdef0123456789abcdef\\n'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["plant_secret"]


def plant_secret(secret: str | os.PathLike[str], token: str) -> None:
    """Write the secret (``token``) in place, in every form the harmful models read.

    The text file is rewritten in place, so a hard link made at build time sees the new
    content. A no-op when ``token`` is already planted.

    Args:
        secret: the secret file ``scan_corpus`` was given.
        token: 32 hex characters.

    Raises:
        ValueError: ``token`` is not 32 hex characters.
    """
    from hublayer.testing._scan_corpus_payload import TOKEN_LENGTH

    if len(token) != TOKEN_LENGTH or any(c not in "0123456789abcdef" for c in token):
        raise ValueError(
            f"Expected token to be {TOKEN_LENGTH} lowercase hex characters. "
            f"Received: token={token!r}. Use secrets.token_hex({TOKEN_LENGTH // 2})."
        )
    path = Path(secret)
    marker = path.parent / f"{token}.listed"
    if marker.exists() and path.read_text() == token + "\n":
        return
    for old in path.parent.glob("*.listed"):
        old.unlink()
    with path.open("r+" if path.exists() else "w") as handle:  # same inode: keep links
        handle.seek(0)
        handle.truncate()
        handle.write(token + "\n")
    Path(f"{path}.tfrecord").write_bytes(_tfrecord(token.encode()))
    Path(f"{path}.desc").write_bytes(_descriptor(token))
    marker.write_text("")


def _tfrecord(payload: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the data, its masked CRC."""
    import struct

    from hublayer.records._framing import masked_crc

    length = struct.pack("<Q", len(payload))
    return (
        length
        + struct.pack("<I", masked_crc(length))
        + payload
        + struct.pack("<I", masked_crc(payload))
    )


def _descriptor(token: str) -> bytes:
    """A FileDescriptorSet whose message ``m.M`` has a string field defaulting to ``token``."""
    from google.protobuf import descriptor_pb2

    files = descriptor_pb2.FileDescriptorSet()
    file = files.file.add(name="m.proto", package="m", syntax="proto2")
    message = file.message_type.add(name="M")
    message.field.add(
        name="s",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        default_value=token,
    )
    data: bytes = files.SerializeToString()
    return data
