"""The motion input in the model: a second temporal model per stream, cached with the features,
and the same input at inference (the checkpoint's ClipSpec carries it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidrec.checkpoint import load_checkpoint
from vidrec.data.clips import ClipSpec, read_clip
from vidrec.data.motion import FLOW_STATS_DIM, motion_input
from vidrec.data.transforms import IMAGENET
from vidrec.inference.predictor import Predictor
from vidrec.models.net import build_recognizer
from vidrec.training.cli import cli_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HP = {"classes": ["a", "b"], "backbone": "resnet18", "weights": "none", "hidden_size": 8, "motion_hidden_size": 4,
      "temporal_dropout": 0.0, "head_dropout": 0.0}


@pytest.mark.parametrize("motion, width", [("none", 0), ("feature_diff", 0), ("flow", 512), ("flow_stats", FLOW_STATS_DIM)])
def test_each_motion_input_has_its_own_temporal_model(motion, width):
    torch.manual_seed(0)
    net = build_recognizer({**HP, "motion": motion}).eval()
    frames = torch.randn(2, 4, 3, 32, 32)
    data_motion = {"flow": torch.randn(2, 4, 3, 32, 32), "flow_stats": torch.randn(2, 4, FLOW_STATS_DIM)}.get(motion)
    features = net.frame_features(frames, data_motion)
    assert features.shape == (2, 4, 512 + width)  # what the cache stores: RGB [+ motion] per frame
    sequence, encoding = net.encode(features=features)
    extra = 0 if motion == "none" else 4
    assert sequence.shape == (2, 4, 8 + extra) and encoding.shape == (2, 8 + extra)
    if motion == "none":
        return
    # The motion stream reaches the logits through its own branch.
    stream = features.clone().requires_grad_(True)
    net.action_head(net.encode(features=stream)[1]).sum().backward()
    assert net.motion_temporal is not None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.motion_temporal.parameters() if p.requires_grad)


def test_feature_diff_of_a_static_clip_gives_the_motion_branch_zeros():
    torch.manual_seed(0)
    net = build_recognizer({**HP, "motion": "feature_diff"}).eval()
    still = net.frame_features(torch.randn(1, 1, 3, 32, 32).expand(1, 5, 3, 32, 32).contiguous())
    moving = net.frame_features(torch.randn(1, 5, 3, 32, 32))
    zeros = net.motion_temporal(torch.zeros(1, 5, 512))[1]
    assert torch.allclose(net.encode(features=still)[1][:, 8:], zeros, atol=1e-6)
    assert not torch.allclose(net.encode(features=moving)[1][:, 8:], zeros, atol=1e-3)


def test_read_clip_computes_flow_statistics_that_see_a_pan(tmp_path, make_video, panning):
    pan = panning(16, speed=2)  # the camera pans right: content moves left
    video = make_video(tmp_path / "pan.avi", pan)
    spec = ClipSpec(num_frames=8, frame_size=32, motion="flow_stats")
    clip = read_clip(video, spec, spec.eval_transform(IMAGENET))
    assert clip.frames.shape == (8, 3, 32, 32) and clip.motion.shape == (8, FLOW_STATS_DIM)
    assert torch.equal(clip.motion[0], torch.zeros(FLOW_STATS_DIM))  # no motion before the first frame
    pan_x = clip.motion[1:, FLOW_STATS_DIM - 9]  # camera_motion's tx, % of the frame width per step
    assert (pan_x < 0).all()
    assert motion_input(np.repeat(pan[:1], 4, axis=0), "flow_stats")[1:].__abs__().max() < 1e-3  # still: ~0


@pytest.mark.slow
def test_a_flow_stats_model_trains_caches_and_predicts(tiny_dataset, debug_args, tmp_path):
    cli = cli_main([*debug_args(tmp_path / "run", tiny_dataset), "--model.motion", "flow_stats", "--data.cache_dir",
                    str(tmp_path / "cache"), "--trainer.max_epochs", "1"], run=False)
    assert cli.datamodule.spec.motion == "flow_stats"  # linked from the model when the config is parsed
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cached = cli.datamodule.datasets["train"][0]["features"]
    assert cached.shape[-1] == 512 + FLOW_STATS_DIM
    ckpt = sorted((tmp_path / "run").rglob("last.ckpt"))[0]
    loaded = load_checkpoint(ckpt)
    assert loaded.clip.motion == "flow_stats" and loaded.net.motion == "flow_stats"
    video = cli.datamodule.datasets["val"].records[0].video
    pred = Predictor.from_checkpoint(ckpt, device="cpu").predict(video, topk=100)
    assert pred.error is None and sum(a.prob for a in pred.actions) == pytest.approx(1.0, abs=1e-4)
    timeline = Predictor.from_checkpoint(ckpt, device="cpu").predict(video, window=0.5, stride=0.25)
    assert timeline.error is None and len(timeline.timeline) >= 2
