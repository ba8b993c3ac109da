"""End to end on the data path: a UCF101-layout folder of real videos -> recipe -> manifests ->
VideoDataModule batches, with one corrupt file that is skipped with a warning naming it."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from vidrec.data.datamodule import VideoDataModule
from vidrec.data.manifest import read_manifest
from vidrec.data.synthetic import ClipSpec, render_clip, write_video

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["ApplyEyeMakeup", "Basketball", "YoYo"]


def _ucf101_folder(root: Path) -> tuple[Path, Path]:
    videos, splits = root / "UCF-101", root / "ucfTrainTestlist"
    splits.mkdir(parents=True)
    (splits / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(CLASSES, 1)))
    train, test = [], []
    for k, cls in enumerate(CLASSES):
        for g in (8, 9, 1):  # groups 8-9 train, group 1 test, as in the official split 1
            name = f"{cls}/v_{cls}_g{g:02d}_c01.avi"
            frames = render_clip(ClipSpec("grow", "red", "circle", seed=k * 10 + g), num_frames=12, size=64)
            write_video(videos / name, frames, fps=10, fourcc="MJPG")
            (train if g != 1 else test).append(name)
    (splits / "trainlist01.txt").write_text("".join(f"{n} {CLASSES.index(n.split('/')[0]) + 1}\n" for n in train))
    (splits / "testlist01.txt").write_text("".join(f"{n}\n" for n in test))
    return videos, splits


def test_ucf101_folder_becomes_batches_and_a_corrupt_clip_is_skipped(tmp_path):
    videos, splits = _ucf101_folder(tmp_path)
    # One training video is corrupt: the header is there, the rest is garbage.
    bad = videos / "Basketball" / "v_Basketball_g09_c01.avi"
    bad.write_bytes(bad.read_bytes()[:200] + np.random.default_rng(0).bytes(3000))

    out = tmp_path / "manifests"
    result = subprocess.run(
        [sys.executable, str(REPO / "datasets" / "ucf101.py"), "--videos", str(videos), "--splits", str(splits),
         "--split", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(read_manifest(out / "train.jsonl")) == 6
    assert len(read_manifest(out / "test.jsonl")) == 3

    dm = VideoDataModule(
        train_manifest=str(out / "train.jsonl"), test_manifest=str(out / "test.jsonl"),
        num_frames=4, frame_size=32, batch_size=3, num_workers=0, hflip=False,
    )
    assert dm.classes == CLASSES  # classInd order, from classes.txt beside the manifest
    dm.setup("fit")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(dm.train_dataloader())
    seen = sum(b["size"] for b in batches)
    skipped = [s for b in batches for s in b["skipped"]]
    assert seen == 5 and len(skipped) == 1
    assert skipped[0].video == str(bad) and skipped[0].reason
    assert any(str(bad) in str(w.message) for w in caught)
    good = next(b for b in batches if b["size"])
    assert good["frames"].shape[1:] == (4, 3, 32, 32) and good["frames"].dtype == torch.float32
    assert set(good["label"].tolist()) <= {0, 1, 2}

    dm.setup("test")
    test_batch = next(iter(dm.test_dataloader()))
    labels = [CLASSES[i] for i in test_batch["label"].tolist()]
    assert labels == [Path(v).parent.name for v in test_batch["video"]]
