"""``predict`` on records of which only some carry the label: every record is predicted,
and the accuracy is scored on the labelled ones, saying how many."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hublayer import records, testing
from hublayer.cli._app import cli

SIZE = 16


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from hublayer.train import fit_classifier

    root = tmp_path_factory.mktemp("partial")
    model = testing.image_feature_vector(root / "ifv", image_size=SIZE, dim=16)
    testing.image_records(root / "train" / "train", 48, size=SIZE, seed=1)
    fit_classifier(model, root / "train", epochs=2, batch_size=16, out_dir=root / "out")
    testing.image_records(root / "full" / "data", 21, size=SIZE, seed=2)
    seen = 0
    for shard in records.expand_files(root / "full"):  # the same shards, some labels dropped
        with records.Writer(root / "partial" / Path(shard).name) as writer:
            for record in records.read_records(shard):
                row = records.decode_example(record)
                if seen % 3 == 0:
                    del row["label"]  # 7 of 21 records have no label
                seen += 1
                writer.write(records.encode_example(row))
    return {"out": root / "out", "full": root / "full", "partial": root / "partial"}


def test_predict_scores_the_labelled_records_and_predicts_all(run: dict[str, Path]) -> None:
    from hublayer.train import predict

    whole = predict(run["out"], run["full"])
    partial = predict(run["out"], run["partial"])
    assert len(partial.probabilities) == 21
    assert partial.labelled == 14
    assert partial.labels is not None
    assert int((partial.labels == -1).sum()) == 7
    # The same records in the same order: the same predictions, and each label kept
    # stays with its record; the accuracy is over the 14 with a label.
    np.testing.assert_allclose(partial.probabilities, whole.probabilities, atol=1e-6)
    has = partial.labels >= 0
    assert whole.labels is not None
    np.testing.assert_array_equal(partial.labels[has], whole.labels[has])
    expected = float((partial.indices[has] == partial.labels[has]).mean())
    assert partial.accuracy == pytest.approx(expected)
    assert whole.labelled == 21

    stream = io.StringIO()
    partial.to_csv(stream)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert len(rows) == 21
    assert sum(1 for r in rows if r["label"] == "") == 7
    assert all(r["prediction"] for r in rows)


def test_cli_predict_says_how_many_records_were_scored(
    run: dict[str, Path], tmp_path: Path
) -> None:
    target = tmp_path / "preds.csv"
    args = ["predict", "--model", str(run["out"]), "--data", str(run["partial"])]
    result = CliRunner().invoke(cli, [*args, "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert "predicted 21 records; accuracy" in result.output
    assert "against the 14 labelled ones (7 have no label)" in result.output
    assert len(target.read_text().splitlines()) == 22
    unlabelled = tmp_path / "none" / "data"
    rows = [records.decode_example(r) for r in records.read_records(run["full"])]
    with records.Writer(unlabelled) as writer:
        for row in rows[:5]:
            del row["label"]
            writer.write(records.encode_example(row))
    result = CliRunner().invoke(
        cli, ["predict", "--model", str(run["out"]), "--data", str(unlabelled)]
    )
    assert result.exit_code == 0, result.output
    assert "predicted 5 records" in result.output
    assert "accuracy" not in result.output
