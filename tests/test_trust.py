"""Evaluation you can believe and inputs that cannot stop a run (end to end through train.py).

- ``test`` with a checkpoint needs no training manifest, even when the config names one that
  is not on this machine; the checkpoint's classes and vocabulary win over any manifest's.
- A test label the checkpoint does not know stops with ``file:line``, before any work.
- ``--trainer.logger false`` and ``--trainer.enable_progress_bar false`` work with every config.
- A damaged feature-cache file is recomputed with a warning naming it.
- A clip whose path the file system refuses (name too long) is a skipped clip, not a crash.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from vidrec.data.datamodule import VideoDataModule
from vidrec.data.manifest import ClipRecord, ManifestError, read_manifest, write_manifest
from vidrec.models.backbone import FrozenBackbone
from vidrec.training.features import FeatureCache

REPO = Path(__file__).resolve().parents[1]


def _train_py(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _metrics(out: str) -> dict:
    """The test metrics that ``train.py test`` prints in its results table."""
    found = {}
    for line in out.splitlines():
        parts = line.replace("│", " ").replace("|", " ").split()
        if len(parts) == 2 and parts[0].startswith("test/"):
            try:
                found[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return found


@pytest.mark.slow
def test_test_needs_no_train_manifest_and_scores_with_the_checkpoints_classes(tiny_checkpoint, tiny_dataset, tmp_path):
    common = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)]
    ckpt = ["--ckpt_path", str(tiny_checkpoint), "--data.test_manifest", str(tiny_dataset / "test.jsonl")]
    # configs/synthetic.yaml names data/synthetic/train.jsonl, which does not exist in tmp_path.
    synthetic = _train_py("test", "--config", str(REPO / "configs" / "synthetic.yaml"), "--config", str(REPO / "configs" / "debug.yaml"),
                          *common, *ckpt, cwd=tmp_path)
    assert synthetic.returncode == 0, synthetic.stderr[-3000:]
    baseline = _metrics(synthetic.stdout)
    assert "test/top1" in baseline, synthetic.stdout[-2000:]

    # A train manifest whose labels sort into another order (renamed classes): before, the
    # model was scored against the wrong class indices (top-1 0.000, exit 0).
    records = read_manifest(tiny_dataset / "train.jsonl")
    shuffled = [ClipRecord(r.video, "zz_" + r.label if r.label and r.label < "m" else r.label, r.captions) for r in records]
    other = write_manifest(tmp_path / "other_train.jsonl", shuffled)
    with_other = _train_py("test", "--config", str(REPO / "configs" / "debug.yaml"), *common, *ckpt,
                           "--data.train_manifest", str(other), cwd=tmp_path)
    assert with_other.returncode == 0, with_other.stderr[-3000:]
    assert _metrics(with_other.stdout)["test/top1"] == pytest.approx(baseline["test/top1"])


def test_a_test_label_the_checkpoint_does_not_know_names_file_and_line(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    (tmp_path / "test.jsonl").write_text(json.dumps({"video": "v.mp4", "label": "a"}) + "\n" + json.dumps({"video": "v.mp4", "label": "jump"}) + "\n")
    dm = VideoDataModule(test_manifest=str(tmp_path / "test.jsonl"), classes=["a", "b"], vocab=[], num_workers=0)
    with pytest.raises(ManifestError, match=r"test.jsonl:2: label 'jump'"):
        dm.setup("test")


@pytest.mark.parametrize("config", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_every_config_accepts_no_logger_and_no_progress_bar(config, tmp_path):
    proc = _train_py("fit", "--config", str(REPO / "configs" / config), "--trainer.logger", "false",
                     "--trainer.enable_progress_bar", "false", "--print_config", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from vidrec.training.cli import cli_main

    cli = cli_main(["--config", str(REPO / "configs" / config), "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
                    "--data.classes", "[a, b]", "--data.vocab", "[]", "--model.weights", "none",
                    "--trainer.default_root_dir", str(tmp_path)], run=False)
    assert cli.trainer.logger is None
    assert cli.trainer.progress_bar_callback is None


def test_a_damaged_feature_file_is_recomputed_with_a_warning(tmp_path, make_video):
    import numpy as np

    frames = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    record = ClipRecord(str(make_video(tmp_path / "clip.avi", frames)), label="a")
    dm = VideoDataModule(classes=["a"], vocab=[], num_frames=4, frame_size=32, num_workers=0)
    dataset = dm.clip_dataset([record], train=False)
    cache = FeatureCache(tmp_path / "cache", FrozenBackbone("resnet18", "none"))
    first = cache.feature_dataset(dataset, progress=False)[0]["features"]
    path = cache.path(dataset, 0)
    path.write_bytes(path.read_bytes()[:40])  # a truncated file, as a killed disk leaves it
    with pytest.warns(UserWarning, match=rf"{path.name}.*damaged.*recomputing"):
        again = cache.feature_dataset(dataset, progress=False)[0]["features"]
    assert torch.equal(first, again)
    path.write_bytes(b"")  # and a zero-byte one
    with pytest.warns(UserWarning, match="damaged"):
        assert torch.equal(cache.feature_dataset(dataset, progress=False)[0]["features"], first)


def test_a_path_the_file_system_refuses_is_a_skipped_clip(tmp_path, make_video):
    import numpy as np

    frames = np.random.default_rng(1).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    good = ClipRecord(str(make_video(tmp_path / "good.avi", frames)), label="a")
    too_long = ClipRecord(str(tmp_path / ("x" * 300 + ".mp4")), label="a")  # OSError: File name too long
    dm = VideoDataModule(classes=["a"], vocab=[], num_frames=4, frame_size=32, num_workers=0)
    from vidrec.data.datasets import collate_clips

    dataset = dm.clip_dataset([good, too_long], train=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch = collate_clips([dataset[0], dataset[1]])
    assert batch["size"] == 1 and batch["video"] == [good.video]
    assert [s.video for s in batch["skipped"]] == [too_long.video]
    assert any("x" * 50 in str(w.message) for w in caught)
