"""records.Source without TensorFlow, as a grain source and as a PyTorch Dataset."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hublayer.records import Source, Writer, encode_example, inspect

N = 96


@pytest.fixture
def data(tmp_path: Path) -> Path:
    for shard in range(3):
        with Writer(tmp_path / f"part-{shard}.tfrecord") as writer:
            for i in range(shard * 32, shard * 32 + 32):
                x = np.full(4, i, np.float32)
                writer.write(encode_example({"id": i, "label": i % 3, "x": x, "name": b"n"}))
    return tmp_path


_BLOCKED = """
import sys

class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"TensorFlow is blocked in this test: {name}")
        return None

sys.meta_path.insert(0, NoTensorFlow())
"""


def test_index_and_source_never_import_tensorflow(data: Path, hublayer_env: Path) -> None:
    script = _BLOCKED + textwrap.dedent(
        f"""
        import pickle
        import hublayer
        from hublayer import records
        paths = records.index({str(data)!r})
        src = records.Source({str(data)!r}, schema=records.inspect({str(data)!r}, sample=None))
        assert len(src) == {N}, len(src)
        assert int(src[-1]["id"]) == {N - 1}
        assert [int(v["id"]) for v in src.__getitems__([40, 3])] == [40, 3]
        copy = pickle.loads(pickle.dumps(src))
        assert int(copy[5]["label"]) == 2
        raw = records.Source({str(data)!r}, raw=True)
        assert records.decode_example(raw[7])["id"].tolist() == [7]
        assert "tensorflow" not in sys.modules
        print("ok", len(paths))
        """
    )
    env = {"HUBLAYER_CACHE_DIR": str(hublayer_env), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "3"]


def test_a_shuffled_grain_map_dataset_reads_every_record_once(data: Path) -> None:
    grain = pytest.importorskip("grain")
    src = Source(data, schema=inspect(data, sample=None), columns=["id", "label", "x"])
    ds = grain.MapDataset.source(src).shuffle(seed=7).batch(batch_size=16)
    assert len(ds) == N // 16
    batches = [ds[i] for i in range(len(ds))]
    ids = np.concatenate([b["id"] for b in batches])
    assert sorted(ids.tolist()) == list(range(N))
    assert ids.tolist() != list(range(N))  # shuffled across files
    assert batches[0]["label"].shape == (16,)
    assert batches[0]["x"].shape == (16, 4)
    np.testing.assert_array_equal(batches[0]["label"], batches[0]["id"] % 3)
    again = grain.MapDataset.source(src).shuffle(seed=7).batch(batch_size=16)
    np.testing.assert_array_equal(again[2]["id"], batches[2]["id"])  # the seed decides


def test_a_torch_dataloader_with_two_workers_reads_every_record_once(data: Path) -> None:
    torch = pytest.importorskip("torch")
    src = Source(data, schema=inspect(data, sample=None), columns=["id", "label", "x"])
    loader = torch.utils.data.DataLoader(
        src,  # type: ignore[arg-type]
        batch_size=16,
        shuffle=True,
        num_workers=2,
        multiprocessing_context="spawn",  # workers unpickle the source and reopen its files
        generator=torch.Generator().manual_seed(0),
    )
    seen = []
    for batch in loader:
        assert batch["x"].shape == (16, 4)
        assert batch["x"].dtype == torch.float32
        assert torch.equal(batch["label"], batch["id"] % 3)
        seen.extend(batch["id"].tolist())
    assert sorted(seen) == list(range(N))


def test_the_readmes_records_example_runs(data: Path, hublayer_env: Path) -> None:
    pytest.importorskip("grain")
    pytest.importorskip("torch")
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## TFRecords for every framework", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = code.replace("data/train-*.tfrecord", str(data / "part-*.tfrecord")) + textwrap.dedent(
        """
        batch = ds[0]
        print(len(src), batch["label"].shape, batch["x"].shape)
        print(sum(len(b["label"]) for b in loader))
        """
    )
    env = {"HUBLAYER_CACHE_DIR": str(hublayer_env), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first, seen = done.stdout.splitlines()[-2:]
    assert first == f"{N} ({N},) ({N}, 4)"  # fewer records than one batch of 256
    assert seen == str(N)  # every record once, through 4 DataLoader workers
