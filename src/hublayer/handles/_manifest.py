"""The completion marker of a cache entry: a manifest of its files.

A manifest is one JSON file, written last and atomically (temp file, then rename), so
its presence means the entry is complete. It lists every file with its relative path,
size and sha256, every symlink with its target, and the entry's content digest (see
:mod:`hublayer.handles._digest`; a pinned handle is checked against it)::

    {"format": 1, "key": "kaggle/google/bert/tensorflow2/en/3",
     "handle": "kaggle://google/bert/tensorFlow2/en/3", "created": 1716400000.0,
     "main": null, "source": {"url": "...", "etag": "..."},
     "files": [["saved_model.pb", 51234, "9f86d0..."], ...],
     "links": [["assets/vocab.txt", "../vocab.txt"]],
     "digest": "sha256:4c1f..."}

Without links, the digest follows from ``files`` alone, and that is the one a pin is
compared with; a recorded digest that disagrees with the file list is a problem
:func:`check_hashes` (``cache verify``) reports.

:func:`check_sizes` is the cheap test every resolve runs (one ``stat`` per file, no
hashing); :func:`check_hashes` re-reads every byte, for ``verify``.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "a.txt").write_text("hi")
    >>> m = Manifest.scan(root, key="demo/a", handle="demo")
    >>> m.files[0][:2], check_sizes(root, m)
    (('a.txt', 2), [])
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hublayer.handles._digest import HASH_CHUNK, content_digest, digest_records, sha256_file

__all__ = ["HASH_CHUNK", "FileRecord", "Manifest", "check_hashes", "check_sizes", "sha256_file"]

FORMAT = 1

#: (relative posix path, size in bytes, sha256 hex)
FileRecord = tuple[str, int, str]


@dataclass(frozen=True)
class Manifest:
    """What a complete entry holds; see the module docstring for the file format."""

    key: str
    handle: str
    files: tuple[FileRecord, ...]
    links: tuple[tuple[str, str], ...] = ()
    main: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    #: Results computed once per entry by layers above (``{"scan": {...}}``), bound to
    #: the files they read; see :mod:`hublayer.handles._notes`.
    notes: dict[str, Any] = field(default_factory=dict)
    #: The entry's content digest, ``"sha256:<hex>"``; empty when unknown (a manifest
    #: written before digests, of an entry with links: the files are hashed then).
    digest: str = ""
    #: The digest as the manifest file recorded it, when it differs from ``digest``.
    recorded_digest: str = field(default="", compare=False, repr=False)

    @property
    def size(self) -> int:
        """Total bytes of the entry's files."""
        return sum(record[1] for record in self.files)

    @classmethod
    def scan(
        cls,
        root: Path,
        *,
        key: str,
        handle: str,
        known: dict[str, tuple[int, str]] | None = None,
        main: str | None = None,
        source: dict[str, Any] | None = None,
    ) -> Manifest:
        """Describe the files under ``root``; hashes in ``known`` are reused, not recomputed.

        Args:
            root: the entry's folder.
            key: the cache key.
            handle: the handle string the entry was made from.
            known: ``{relative path: (size, sha256)}`` computed while the files were
                written (unpacking hashes as it goes); any other file is hashed here.
            main: a file inside the entry that resolve returns instead of the folder.
            source: where the entry came from (url, etag...), kept for reports.
        """
        known = known or {}
        files: list[FileRecord] = []
        links: list[tuple[str, str]] = []
        for folder, dirnames, filenames in os.walk(root):
            base = Path(folder)
            for name in sorted(filenames) + sorted(dirnames):
                path = base / name
                rel = path.relative_to(root).as_posix()
                if path.is_symlink():
                    links.append((rel, os.readlink(path)))
                elif name in filenames:
                    size = path.stat().st_size
                    hit = known.get(rel)
                    digest = hit[1] if hit is not None and hit[0] == size else sha256_file(path)
                    files.append((rel, size, digest))
        # Links count as what they point to, which the file list does not say: read them.
        content = content_digest(root) if links else digest_records(files)
        return cls(
            key,
            handle,
            tuple(sorted(files)),
            tuple(sorted(links)),
            main,
            source or {},
            digest=content,
        )

    def to_json(self) -> str:
        """The manifest as JSON text."""
        return json.dumps(
            {
                "format": FORMAT,
                "key": self.key,
                "handle": self.handle,
                "created": self.created,
                "main": self.main,
                "source": self.source,
                "files": [list(r) for r in self.files],
                "links": [list(r) for r in self.links],
                **({"notes": self.notes} if self.notes else {}),
                **({"digest": self.digest} if self.digest else {}),
            },
            indent=0,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse manifest JSON; raises ValueError (or KeyError/TypeError) when malformed."""
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown manifest format {data.get('format')!r}")
        files = tuple((str(p), int(s), str(h)) for p, s, h in data["files"])
        links = tuple((str(p), str(t)) for p, t in data["links"])
        recorded = str(data.get("digest") or "")
        digest = digest_records(files) if not links else recorded
        return cls(
            key=str(data["key"]),
            handle=str(data["handle"]),
            files=files,
            links=links,
            digest=digest,
            recorded_digest=recorded if recorded != digest else "",
            main=data.get("main"),
            source=dict(data.get("source") or {}),
            created=float(data["created"]),
            notes=dict(data.get("notes") or {}),
        )

    def write(self, path: Path) -> None:
        """Write atomically: a temp file unique to this process, then a rename."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def check_sizes(root: str | Path, manifest: Manifest) -> list[str]:
    """Problems found by one ``stat`` per file (missing, wrong size); empty when fine."""
    problems: list[str] = []
    base = str(root) + os.sep
    for rel, size, _ in manifest.files:
        try:
            actual = os.stat(base + rel).st_size
        except OSError:
            problems.append(f"{rel}: missing")
            continue
        if actual != size:
            problems.append(f"{rel}: {actual} bytes, expected {size}")
    for rel, _target in manifest.links:
        if not os.path.lexists(base + rel):
            problems.append(f"{rel}: missing link")
    return problems


def check_hashes(root: Path, manifest: Manifest) -> list[str]:
    """Problems found by re-hashing every file (and checking links); empty when fine."""
    problems = check_sizes(root, manifest)
    if manifest.recorded_digest:
        problems.append(
            f"manifest: records the digest {manifest.recorded_digest}, its files give "
            f"{manifest.digest}"
        )
    broken = {p.split(":", 1)[0] for p in problems}
    for rel, _size, digest in manifest.files:
        if rel not in broken and sha256_file(root / rel) != digest:
            problems.append(f"{rel}: content changed (sha256 mismatch)")
    for rel, target in manifest.links:
        path = root / rel
        if rel not in broken and (not path.is_symlink() or os.readlink(path) != target):
            problems.append(f"{rel}: link changed")
    if not problems and manifest.links and manifest.digest:
        # Links count as what they point to, which only a new read can tell.
        actual = content_digest(root)
        if actual != manifest.digest:
            problems.append(f"content digest {actual}, recorded {manifest.digest}")
    return problems
