"""``hublayer.embed``: embed datasets with a pretrained model, here or on Ray."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hublayer import config, records
from hublayer._ray import check_engine
from hublayer._specs import RANGE_ASSUMED, TensorInfo, input_specs_of, with_range
from hublayer.embed._job import Job
from hublayer.embed._output import EMBEDDING, Format, output_paths
from hublayer.embed._record import EmbedRecord
from hublayer.errors import SchemaError

__all__ = ["EmbedResult", "embed"]

logger = logging.getLogger("hublayer")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
_INPUTS_DIR = "_inputs"


@dataclass(frozen=True)
class EmbedResult:
    """What an ``embed`` run did.

    Attributes:
        rows: rows embedded in this run.
        shards_done: output shards written in this run.
        shards_skipped: shards already complete from an earlier run.
        seconds: wall time of the run.
        outputs: every output shard (written now or before), in input order.
        engine: ``"local"`` or ``"ray"``.
        workers: model workers (1 for the local engine).
        preprocessing: how each model input is made from the records (size, dtype and
            the value range used).
        skipped: bad records left out of the shards written in this run (with
            ``on_error="skip"``); the count of each shard is in the output folder's
            ``.hublayer-embed.json``.
        assumed: what the run assumed rather than knew (e.g. an image value range from
            TF Hub's convention), one sentence each; also logged as WARNING.
    """

    rows: int
    shards_done: int
    shards_skipped: int
    seconds: float
    outputs: tuple[Path, ...]
    engine: str
    workers: int
    preprocessing: str
    skipped: int = 0
    assumed: tuple[str, ...] = ()

    @property
    def rows_per_second(self) -> float:
        """Rows embedded per second in this run (0.0 when nothing was left to do)."""
        return self.rows / self.seconds if self.rows and self.seconds > 0 else 0.0

    def __str__(self) -> str:
        skipped = f", {self.skipped:,} bad record(s) skipped" if self.skipped else ""
        return (
            f"{self.rows:,} rows in {self.shards_done} shard(s) "
            f"({self.shards_skipped} already complete{skipped}) in {self.seconds:.1f} s, "
            f"{self.rows_per_second:,.0f} rows/s ({self.engine}, {self.workers} worker(s))"
        )


def _is_image_folder(path: Path) -> bool:
    if not path.is_dir():
        return False
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    return (
        bool(entries)
        and all(p.is_dir() or p.suffix.lower() in _IMAGE_SUFFIXES for p in entries)
        and any(p.is_dir() for p in entries)
    )


def _inputs(inputs: records.Files, out_dir: Path) -> list[str]:
    """TFRecord shards for ``inputs``; an image folder is converted once, into out_dir."""
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    if len(items) == 1 and not records.is_url(items[0]) and _is_image_folder(Path(items[0])):
        folder = Path(items[0])
        converted = out_dir / _INPUTS_DIR
        marker = converted / ".complete"
        if not marker.exists():
            converted.mkdir(parents=True, exist_ok=True)
            for stale in converted.glob(f"{folder.name}-*"):
                stale.unlink()
            count = sum(1 for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
            records.convert_images(
                folder,
                converted / folder.name,
                shards=max(1, min(64, count // 1024)),
                shuffle=False,
                progress=False,
            )
            marker.write_text("converted by hublayer embed\n", encoding="utf-8")
        return [str(p) for p in sorted(converted.glob(f"{folder.name}-*.tfrecord"))]
    return records.expand_files(items, role="input")


def _check(
    batch_size: int, keep: Sequence[str], format: str, num_workers: int | None
) -> tuple[str, ...]:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected batch_size to be a positive int. Received: {batch_size!r}.")
    if format not in ("tfrecord", "parquet"):
        raise ValueError(
            f'Expected format to be "tfrecord" or "parquet". Received: format={format!r}.'
        )
    if num_workers is not None and (
        isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1
    ):
        raise ValueError(
            f"Expected num_workers to be a positive int or None. Received: {num_workers!r}."
        )
    kept = (keep,) if isinstance(keep, str) else tuple(keep)
    if EMBEDDING in kept:
        raise SchemaError(
            f"Expected kept features other than {EMBEDDING!r}, the output column. "
            f"Received: keep={kept!r}. Leave {EMBEDDING!r} out of keep.",
            feature=EMBEDDING,
        )
    return kept


def _identity(
    model_path: str,
    signature: str | None,
    output_key: str | None,
    keep: tuple[str, ...],
    format: str,
    input_range: tuple[float, float] | None,
    image: Any,
    preprocess_path: str | None = None,
) -> dict[str, Any]:
    """What the outputs in a folder depend on: the model and the preprocessor (their
    files' sizes and times) and the settings. A rerun skips complete shards only when
    this is unchanged."""
    preprocess = {}
    if preprocess_path is not None:
        preprocess = {"preprocess": preprocess_path, "preprocess_files": _stamp(preprocess_path)}
    return {
        "model": model_path,
        "model_files": _stamp(model_path),
        **preprocess,
        "signature": signature,
        "output_key": output_key,
        "keep": list(keep),
        "format": format,
        "input_range": None if input_range is None else list(input_range),
        "image": None if image is None else repr(image),
    }


def _stamp(model_path: str) -> str:
    """A short hash of the names, sizes and times of the files of a model folder."""
    files = sorted(p for p in Path(model_path).rglob("*") if p.is_file())
    stamp = hashlib.sha256()
    for path in files if Path(model_path).is_dir() else [Path(model_path)]:
        info = path.stat()
        stamp.update(f"{path.relative_to(model_path) if files else path.name}".encode())
        stamp.update(f"{info.st_size}:{info.st_mtime_ns}".encode())
    return stamp.hexdigest()[:16]


def _model_inputs(layer: Any, input_range: Any) -> tuple[TensorInfo, ...]:
    """The model's input specs, with ``input_range`` given to its image input.

    Raises:
        ValueError: ``input_range`` is no ``(low, high)``, or the model has no image input.
    """
    specs = input_specs_of(layer)
    if input_range is None:
        return specs
    if not any(spec.is_image for spec in specs):
        with_range(specs[0], input_range)  # raises: names the input that is no image
    return tuple(with_range(s, input_range) if s.is_image else s for s in specs)


def _assumptions(parser: records.ExampleParser) -> tuple[str, ...]:
    notes = []
    for item in parser.plan.inputs:
        if getattr(item, "range_source", None) == RANGE_ASSUMED:
            low, high = item.value_range  # type: ignore[union-attr]
            notes.append(
                f"embed: scaling the images of {item.feature!r} to [{low:g}, {high:g}], "
                f"{RANGE_ASSUMED}; pass input_range=(low, high) (--input-range low,high) "
                "if the model expects another range."
            )
    return tuple(notes)


def _progress(total: int | None, enabled: bool | None) -> Any:
    if not config.progress(enabled):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="row", desc="embed", dynamic_ncols=True, leave=False)


class _NoBar:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


def embed(
    model: str | os.PathLike[str],
    inputs: records.Files,
    out_dir: str | os.PathLike[str],
    *,
    signature: str | None = None,
    output_key: str | None = None,
    batch_size: int = 64,
    keep: Sequence[str] = (),
    format: Format = "tfrecord",
    engine: str = "local",
    num_workers: int | None = None,
    address: str | None = None,
    progress: bool | None = None,
    on_error: str = "raise",
    input_range: tuple[float, float] | None = None,
    image: records.ImageOptions | Mapping[str, Any] | str | int | None = None,
    preprocess: str | os.PathLike[str] | None = None,
    text: str | None = None,
) -> EmbedResult:
    """Embed every record of a dataset with a pretrained model, shard by shard.

    Args:
        model: a model handle or folder (resolved into the cache and scanned first).
        inputs: TFRecord files of ``tf.train.Example`` (a path, glob, folder, URL or a
            list, as ``records.expand_files`` reads them),
            or an image folder with one subfolder per class (converted once into
            ``out_dir/_inputs`` as ``image`` and ``label``).
        out_dir: where the outputs go: one shard per input shard, named after it.
        signature, output_key: as for ``KerasLayer``: which function and output.
        batch_size: examples per model call.
        keep: features copied from each input record to its output row.
        format: ``"tfrecord"`` (``tf.train.Example`` rows) or ``"parquet"``.
        engine: ``"local"`` (hublayer's reader and parser on this machine) or ``"ray"``
            (Ray Data, model actors; needs ``pip install "hublayer[ray]"``).
        num_workers: model actors for ``engine="ray"``; default: one per 2 CPUs of the
            cluster, at most one per 2 GiB of its memory (each actor holds the model).
        address: the Ray cluster to join; None starts a local Ray (or uses the one
            already started in this process).
        progress: draw a progress bar (default: ``$HUBLAYER_PROGRESS``, else on a TTY).
        on_error: ``"raise"`` (the default): the first bad record (truncated, a wrong
            CRC, or a value of another kind than the schema says in a feature the model
            or ``keep`` reads) fails its shard with :class:`RecordError` naming the
            file, offset (and feature); ``"skip"``: bad records are left out and
            counted, in ``EmbedResult.skipped`` and per shard in ``.hublayer-embed.json``.
        input_range: ``(low, high)`` the model's images take, such as ``(-1, 1)``, as
            for ``train.fit_classifier``. By default the range the model declares, else
            TF Hub's convention ``(0, 1)``, which is assumed: a WARNING says so.
        image: how images decode, as for ``records.dataset`` (an ``ImageOptions``, a
            dict of its fields, a feature name or a size).
        preprocess: a text preprocessor's handle or folder (TF Hub's
            ``bert_en_uncased_preprocess`` and its kin): the string feature of each
            record goes in raw, the preprocessor's outputs feed ``model``'s inputs by
            name (``hublayer.layers.TextChain``), and ``output_key`` picks the output,
            by default ``"pooled_output"`` (logged once). An empty string embeds like
            ``[CLS] [SEP]``; the sentences that fill the preprocessor's sequence (the
            longer ones are truncated) are counted and logged once (on the local
            engine; Ray's actors embed the same rows without counting).
        text: the string feature to embed, when the records hold several.

    Returns:
        An :class:`EmbedResult`. Each row of an output holds the kept features and
        ``embedding``, the model output flattened to a float list. Inputs are made as
        ``records.dataset(..., for_model=)`` makes them, so the embeddings equal what
        ``KerasLayer`` gives on the same examples; ``EmbedResult.preprocessing`` (also
        logged) says the size, dtype and value range used. Every shard holds its input's
        records less those skipped (checked before it is written), and a shard finished
        before is kept as it is, never replaced.

    Raises:
        RecordError: a missing input, or a bad record (naming the file, offset and, for a
            value of the wrong kind, the feature), or a shard whose rows do not add up;
            the output of that shard is not written, and shards finished before stay.
        SpecMismatchError: the records cannot feed the model.
        SchemaError: an unknown kept feature, or two inputs with the same file name.
        OutputExistsError: ``out_dir`` holds outputs made with another model or other
            settings (recorded in its ``.hublayer-embed.json``), which a rerun would mix;
            or a finished shard whose rows differ from its recorded count.
        MissingExtraError: ``engine="ray"`` without Ray installed, or a preprocessor
            whose TensorFlow Text ops need ``pip install "hublayer[text]"``.
        ValueError: a bad ``engine``, ``format``, ``batch_size``, ``num_workers``,
            ``on_error`` or ``input_range``.

    Example:
        >>> import hublayer
        >>> handle = "https://tfhub.dev/google/imagenet/mobilenet_v3_small_100_224/feature_vector/5"
        >>> result = hublayer.embed(handle, "data/train-*.tfrecord", "embeddings",  # doctest: +SKIP
        ...                         keep=["label"])
        >>> print(result)  # doctest: +SKIP
        <n> rows in 8 shard(s) (0 already complete) in <t> s, <r> rows/s (local, 1 worker(s))
    """
    check_engine(engine)
    kept = _check(batch_size, keep, format, num_workers)
    if on_error not in ("raise", "skip"):
        raise ValueError(
            f'Expected on_error to be "raise" or "skip". Received: on_error={on_error!r}.'
        )
    if engine == "ray":
        from hublayer._ray import require_ray

        require_ray("engine='ray'", "ray.data")
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sources = _inputs(inputs, out)
    targets = output_paths(sources, out, format)
    # A corrupt record fails its shard when it is embedded (naming the file), so the
    # shards before it are kept; the sample that describes the data skips it.
    schema = records.inspect(sources, on_error="skip")
    for name in kept:
        schema[name]
    from hublayer.handles import resolve

    model_path = str(resolve(os.fspath(model)))
    preprocess_path = None if preprocess is None else str(resolve(os.fspath(preprocess)))
    job = Job(
        model_path=model_path,
        signature=signature,
        output_key=output_key,
        schema=schema,
        keep=kept,
        batch_size=batch_size,
        format=format,
        pending=[],
        image=image,
        on_error=on_error,
        preprocess_path=preprocess_path,
        text=text,
    )
    job.for_model = _model_inputs(job.layer(), input_range)
    parser = job.parser()  # a data/model mismatch raises here, before any output
    given = job.for_model if input_range is not None else None
    given_range = next((s.value_range for s in given or () if s.value_range), None)
    identity = _identity(
        model_path, signature, job.output_key, kept, format, given_range, image, preprocess_path
    )
    record = EmbedRecord.claim(out, identity)
    job.record = record
    job.pending = [
        (s, t) for s, t in zip(sources, targets, strict=True) if not record.finished(t, s)
    ]
    pending = job.pending
    preprocessing = parser.describe()
    logger.info("embed: model inputs made from the records as:\n%s", preprocessing)
    assumed = _assumptions(parser)
    for note in assumed:
        logger.warning("%s", note)
    workers = 1
    skipped = 0
    total = schema.total_records or schema.estimated_records
    bar = _progress(total, progress)
    try:
        if not pending:
            rows = 0
        elif engine == "local":
            from hublayer.embed._local import run_local

            rows, skipped = run_local(job, bar)
        else:
            from hublayer.embed._ray_engine import run_ray

            rows, skipped, workers = run_ray(job, bar, num_workers=num_workers, address=address)
    finally:
        bar.close()
    return EmbedResult(
        rows=rows,
        shards_done=len(pending),
        shards_skipped=len(sources) - len(pending),
        seconds=time.perf_counter() - started,
        outputs=tuple(targets),
        engine=engine,
        workers=workers,
        preprocessing=preprocessing,
        skipped=skipped,
        assumed=assumed,
    )
