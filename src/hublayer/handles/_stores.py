"""Resolvers for object stores (``gs://``, ``s3://`` via fsspec) and ``hf://`` handles.

Both are optional extras, imported only when such a handle is resolved:
``pip install 'hublayer[s3]'`` (s3fs), ``'hublayer[gcs]'`` (gcsfs), ``'hublayer[hf]'``
(huggingface_hub). Credentials and endpoints come from those libraries' own settings
(``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``, ``HF_TOKEN``, ``HF_ENDPOINT``...).

- A store path that is a folder is copied file by file; an archive (by its suffix) is
  unpacked as it streams in; any other file (``model.keras``) becomes a one-file entry
  and resolve returns the file.
- An ``hf://`` handle downloads the repository snapshot (only ``<subfolder>`` if given,
  whose contents become the entry). Offline, a snapshot already in the Hugging Face cache
  is used in place. Hugging Face's own progress bars follow its settings
  (``HF_HUB_DISABLE_PROGRESS_BARS``).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import posixpath
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

from hublayer.errors import DownloadError, HandleError, InsufficientSpaceError, ModelNotFoundError
from hublayer.handles._archive import ArchiveFormatError, unpack
from hublayer.handles._handles import HfHandle, StoreHandle
from hublayer.handles._manifest import HASH_CHUNK
from hublayer.handles._stage import Session, Stage

__all__ = ["HfResolver", "StoreResolver"]

_EXTRAS = {"s3": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "hf": ("huggingface_hub.errors", "hf")}


def _require(scheme: str, handle: str) -> ModuleType:
    module, extra = _EXTRAS[scheme]
    try:
        importlib.import_module(module)
        return importlib.import_module(module.split(".")[0])
    except ImportError:
        module = module.split(".")[0]
        raise HandleError(
            f"Expected the {module} package to resolve {scheme}:// handles. Received: "
            f"handle={handle!r}, and {module} is not installed. Install the extra: "
            f"pip install 'hublayer[{extra}]'.",
            handle=handle,
        ) from None


def _copy(src: Any, dest: Path) -> tuple[int, str]:
    """Copy an open binary file into new file ``dest``, hashing as it goes."""
    digest = hashlib.sha256()
    size = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "xb") as out:
        while chunk := src.read(HASH_CHUNK):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _store_error(url: str, error: OSError, handle: str) -> Exception:
    if isinstance(error, FileNotFoundError):
        return ModelNotFoundError(
            f"Expected a model folder or archive at {url}. Received: nothing there. Check "
            "the bucket and path.",
            handle=handle,
            path=url,
        )
    return DownloadError(
        f"Expected to read {url}. Received: {type(error).__name__}: {error}. Check your "
        "credentials and network, or set HUBLAYER_OFFLINE=1 to use only cached models.",
        url=url,
        handle=handle,
    )


class StoreResolver:
    """``gs://`` and ``s3://`` folders, archives and single files, through fsspec."""

    def locate(self, handle: StoreHandle, session: Session) -> tuple[StoreHandle, str | Path]:
        return handle, handle.key

    def fetch(self, handle: StoreHandle, stage: Stage) -> Path | None:
        _require(handle.protocol, str(handle))
        import fsspec

        url = str(handle)
        fs = fsspec.filesystem(handle.protocol, skip_instance_cache=True)  # settings may change
        root = f"{handle.bucket}/{handle.path}".rstrip("/")
        try:
            info = fs.info(root)
            if info.get("type") == "directory":
                self._copy_folder(fs, root, stage)
            else:
                self._check_space(stage, int(info.get("size") or 0), url)
                with fs.open(root, "rb", block_size=HASH_CHUNK) as src:
                    if handle.is_archive:
                        stage.known = unpack(src, stage.path, limit=stage.session.limit, name=url)
                    else:
                        name = posixpath.basename(root)
                        stage.path.mkdir(parents=True)
                        stage.known = {name: _copy(src, stage.path / name)}
                        stage.main = name
        except ArchiveFormatError as error:
            raise DownloadError(
                f"Expected {url} to be a tar or zip archive. Received: {error}. Check the "
                "object, or point the handle at the unpacked folder.",
                url=url,
                handle=str(handle),
            ) from None
        except OSError as error:
            if isinstance(error, HandleError | InsufficientSpaceError):
                raise
            raise _store_error(url, error, str(handle)) from error
        stage.source = {"url": url}
        return None

    @staticmethod
    def _check_space(stage: Stage, size: int, url: str) -> None:
        stage.session.cache.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(stage.session.cache.root).free
        if free < size:
            raise InsufficientSpaceError(
                f"Expected {size} free bytes to download {url}. Received: {free} bytes free. "
                "Free some space, run `hublayer cache prune`, or point HUBLAYER_CACHE_DIR "
                "elsewhere.",
                path=str(stage.session.cache.root),
                needed=size,
                free=free,
            )

    def _copy_folder(self, fs: Any, root: str, stage: Stage) -> None:
        files = fs.find(root, detail=True)
        self._check_space(stage, sum(int(i.get("size") or 0) for i in files.values()), root)
        stage.path.mkdir(parents=True)
        for name in sorted(files):
            rel = posixpath.relpath(name, root)
            parts = rel.split("/")
            if rel.startswith("/") or ".." in parts or "." in parts:
                raise DownloadError(
                    f"Expected object names under {root}. Received: {name!r}. Check the path.",
                    url=root,
                    handle=stage.handle,
                )
            with fs.open(name, "rb", block_size=HASH_CHUNK) as src:
                stage.known[rel] = _copy(src, stage.path / rel)


class HfResolver:
    """``hf://<org>/<repo>[@<revision>][/<subfolder>]`` via huggingface_hub."""

    def locate(self, handle: HfHandle, session: Session) -> tuple[HfHandle, str | Path]:
        if session.offline and not session.force:
            hit = session.cache.lookup(handle.key)
            if hit.path is None:
                hub = _require("hf", str(handle))
                try:
                    folder = hub.snapshot_download(
                        handle.repo_id,
                        revision=handle.revision,
                        allow_patterns=[f"{handle.subfolder}/**"] if handle.subfolder else None,
                        local_files_only=True,
                    )
                except (OSError, ValueError, hub.errors.LocalEntryNotFoundError):
                    return handle, handle.key  # resolve raises NotCachedError
                path = Path(folder) / handle.subfolder
                if path.exists():
                    return handle, path
        return handle, handle.key

    def fetch(self, handle: HfHandle, stage: Stage) -> Path | None:
        hub = _require("hf", str(handle))
        download = stage.path.with_name(stage.path.name + ".hf")
        try:
            hub.snapshot_download(
                handle.repo_id,
                revision=handle.revision,
                allow_patterns=[f"{handle.subfolder}/**"] if handle.subfolder else None,
                local_dir=download,
            )
        except (OSError, ValueError, hub.errors.HfHubHTTPError) as error:
            shutil.rmtree(download, ignore_errors=True)
            status = getattr(getattr(error, "response", None), "status_code", None)
            first_line = str(error).splitlines()[0] if str(error) else ""
            raise DownloadError(
                f"Expected to download {handle} from the Hugging Face Hub. Received: "
                f"{type(error).__name__}: {first_line}. Check the repository, revision and "
                "your HF_TOKEN or HF_ENDPOINT, or set HUBLAYER_OFFLINE=1.",
                url=f"hf://{handle.repo_id}",
                status=status,
                handle=str(handle),
            ) from None
        try:
            shutil.rmtree(download / ".cache", ignore_errors=True)
            root = download / handle.subfolder if handle.subfolder else download
            if not root.is_dir():
                raise ModelNotFoundError(
                    f"Expected the folder {handle.subfolder!r} in {handle.repo_id}. Received: "
                    "no such folder at that revision. Check the handle's subfolder.",
                    handle=str(handle),
                    path=handle.subfolder,
                )
            os.rename(root, stage.path)  # the subfolder's contents become the entry
        finally:
            shutil.rmtree(download, ignore_errors=True)
        stage.source = {"repo_id": handle.repo_id, "revision": handle.revision or "main"}
        return None
