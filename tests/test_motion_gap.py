"""``motion_gap``: the motion input measured from each sampled frame to the frame a fixed gap
later, so a clip's motion steps mean the same thing in a short clip and in a long video."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from vidrec.checkpoint import load_checkpoint
from vidrec.data.clips import ClipSpec, clip_indices, read_clip, read_views
from vidrec.data.datasets import ClipDataset
from vidrec.data.decode import open_video
from vidrec.data.manifest import read_manifest
from vidrec.data.motion import FLOW_STATS_DIM, flow_statistics, flow_statistics_between, motion_input_between
from vidrec.data.sampling import AUTO_GAP_MAX, auto_motion_gap, motion_hops, motion_pair_indices, segment_indices
from vidrec.data.transforms import IMAGENET
from vidrec.inference.predictor import Predictor
from vidrec.training.cli import cli_main
from vidrec.training.features import store_key

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TX = FLOW_STATS_DIM - 9  # camera_motion's pan x, % of the frame width per step


def test_pairs_run_forward_from_each_sampled_frame_and_back_from_the_end():
    before, after = motion_pair_indices(np.array([0, 5, 8, 9]), n=10, gap=2)
    assert before.tolist() == [0, 5, 6, 7] and after.tolist() == [2, 7, 8, 9]
    assert (after - before == 2).all()
    # A video shorter than the gap: its whole length; one frame: the frame with itself.
    assert [x.tolist() for x in motion_pair_indices(np.array([0, 1, 2]), n=3, gap=4)] == [[0, 0, 0], [0, 1, 2]]
    assert [x.tolist() for x in motion_pair_indices(np.array([0]), n=1, gap=1)] == [[0], [0]]
    with pytest.raises(ValueError, match="gap must be positive"):
        motion_pair_indices(np.array([0]), n=5, gap=0)
    with pytest.raises(ValueError, match="motion_gap must be 0"):
        ClipSpec(motion_gap=-1)


def test_auto_gap_is_half_the_step_between_samples_from_1_to_4():
    # 8 samples of a 16-frame clip are 2 frames apart: neighbouring frames; of a 64-frame one 9 apart: 4.
    assert [auto_motion_gap(segment_indices(n, 8, train=False)) for n in (8, 16, 32, 48, 64, 175, 5000)] == [1, 1, 2, 3, 4, 4, 4]
    assert AUTO_GAP_MAX == 4
    assert auto_motion_gap(np.array([9, 0, 0, 3, 6])) == 1  # sorted first; repeats of a short video count as steps of 0
    assert auto_motion_gap(np.array([7])) == 1  # one frame: no step to halve
    # one gap per index (views measured over their own gaps)
    before, after = motion_pair_indices(np.array([0, 8, 20, 29]), n=30, gap=np.array([1, 1, 4, 4]))
    assert before.tolist() == [0, 8, 20, 25] and after.tolist() == [1, 9, 24, 29]
    assert ClipSpec(motion_gap="auto").motion_gap == "auto"
    with pytest.raises(ValueError, match="or 'auto', got 'often'"):
        ClipSpec(motion_gap="often")


def test_auto_measures_a_slow_long_video_over_4_frames_per_frame(tmp_path, make_video, panning):
    """A 64-frame pan at 1 px per frame: ``auto`` measures each step over 4 frames and divides by
    4, so it reads the speed per frame, as gap 1 does on a 16-frame clip of the same pan."""
    long, short = make_video(tmp_path / "long.avi", panning(64)), make_video(tmp_path / "short.avi", panning(16))
    auto = ClipSpec(num_frames=8, frame_size=32, motion="flow_stats", motion_gap="auto")
    transform = auto.eval_transform(IMAGENET)
    clip = read_clip(long, auto, transform)
    with open_video(long) as reader:
        indices = clip_indices(reader, auto)
        assert auto_motion_gap(indices) == 4
        before, after = motion_pair_indices(indices, reader.num_frames, 4)
        over_4 = flow_statistics_between(reader.get_frames(before.tolist()), reader.get_frames(after.tolist()))
    np.testing.assert_allclose(clip.motion.numpy(), over_4 / 4, rtol=1e-5, atol=1e-6)
    gap_1 = read_clip(short, replace(auto, motion_gap=1), transform).motion
    assert -clip.motion[:, TX].mean().item() == pytest.approx(-gap_1[:, TX].mean().item(), rel=0.25)
    # On the 16-frame clip auto is gap 1, number for number.
    assert torch.equal(read_clip(short, auto, transform).motion, gap_1)


def test_between_consecutive_frames_it_is_the_flow_statistics_of_the_clip(panning):
    frames = panning(6, speed=2)
    assert np.array_equal(flow_statistics_between(frames[:-1], frames[1:]), flow_statistics(frames))
    still = np.repeat(frames[:1], 3, axis=0)
    assert np.abs(motion_input_between(still, still, "flow_stats")).max() < 1e-3  # a static video: ~0
    images = motion_input_between(still, still, "flow")
    assert images.shape == still.shape and np.abs(images.astype(int) - 128).max() <= 1  # grey: no motion
    assert motion_input_between(still, still, "none") is None
    with pytest.raises(ValueError, match="one shape"):
        flow_statistics_between(frames[:2], frames[:3])


def test_read_clip_measures_every_step_over_the_gap_from_the_decoded_pairs(tmp_path, make_video, panning):
    frames = panning(40, speed=1)
    video = make_video(tmp_path / "pan.avi", frames)
    spec = ClipSpec(num_frames=8, frame_size=32, motion="flow_stats", motion_gap=3)
    clip = read_clip(video, spec, spec.eval_transform(IMAGENET))
    assert clip.frames.shape == (8, 3, 32, 32) and clip.motion.shape == (8, FLOW_STATS_DIM)
    # Every step has motion, the first too (between sampled frames it is zero: nothing before it).
    assert (clip.motion[:, TX] < 0).all()
    # Exactly the statistics of the frames at the pairs' indices, decoded on their own.
    with open_video(video) as reader:
        indices = clip_indices(reader, spec)
        before, after = motion_pair_indices(indices, reader.num_frames, 3)
        expected = flow_statistics_between(reader.get_frames(before.tolist()), reader.get_frames(after.tolist()))
        sampled = read_clip(reader, ClipSpec(num_frames=8, frame_size=32), spec.eval_transform(IMAGENET)).frames
    np.testing.assert_allclose(clip.motion.numpy(), expected, atol=1e-5)
    assert torch.equal(clip.frames, sampled)  # the frames are the sampled ones, not their partners


def test_with_a_gap_a_long_video_moves_as_fast_as_a_short_one(tmp_path, make_video, panning):
    """The same pan speed in a 16-frame clip and a 64-frame video: between sampled frames the long
    video's steps are 4x larger (a model trained on short clips has never seen them); with a gap
    they are the same."""
    short, long = make_video(tmp_path / "short.avi", panning(16)), make_video(tmp_path / "long.avi", panning(64))
    speed = {}
    for gap in (0, 1):
        spec = ClipSpec(num_frames=8, frame_size=32, motion="flow_stats", motion_gap=gap)
        for name, video in (("short", short), ("long", long)):
            motion = read_clip(video, spec, spec.eval_transform(IMAGENET)).motion
            speed[name, gap] = -motion[1:, TX].mean().item()  # steps 1.. (step 0 is zero without a gap)
    assert speed["long", 0] > 3 * speed["short", 0]
    assert speed["long", 1] == pytest.approx(speed["short", 1], rel=0.25)
    assert speed["short", 1] > 0.5  # 1 px per frame of 96: about 1% of the width


@pytest.mark.parametrize("gap, span, length", [(2, "gap", 30), ("auto", "gap", 30), (2, "step", 60), ("auto", "step", 60)])
def test_test_views_with_a_gap_are_the_clips_read_alone(tmp_path, make_video, panning, gap, span, length):
    video = make_video(tmp_path / "pan.avi", panning(length))
    spec = ClipSpec(num_frames=4, frame_size=32, motion="flow_stats", motion_gap=gap, motion_span=span)
    transform = spec.eval_transform(IMAGENET)
    views = read_views(video, spec, transform, views=3)
    assert views.motion.shape == (3, 4, FLOW_STATS_DIM)
    with open_video(video) as reader:
        rows = clip_indices(reader, spec, views=3)  # (3, 4)
        if span == "step":  # there are hops to span (tests/test_motion_span.py)
            assert motion_hops(rows[0], gap if gap != "auto" else auto_motion_gap(rows[0])) > 1
        for v in range(3):
            alone = read_clip(reader, spec, transform, indices=rows[v].tolist())
            assert torch.equal(views.motion[v], alone.motion) and torch.equal(views.frames[v], alone.frames)


def test_the_command_line_takes_auto_and_the_cache_tells_it_from_gap_1(tiny_dataset, debug_args, tmp_path):
    specs = {}
    for gap in ("auto", "1"):
        cli = cli_main([*debug_args(tmp_path / "run", tiny_dataset), "--model.motion", "flow_stats", "--data.motion_gap", gap],
                       run=False)
        specs[gap] = cli.datamodule.spec
        assert ClipSpec.from_hparams(cli.datamodule.hparams) == specs[gap]  # what a checkpoint restores
    assert specs["auto"].motion_gap == "auto" and specs["1"].motion_gap == 1
    records = read_manifest(tiny_dataset / "train.jsonl")
    keys = {gap: store_key(ClipDataset(records, spec, spec.eval_transform(IMAGENET)), views=1) for gap, spec in specs.items()}
    assert keys["auto"] != keys["1"]


@pytest.mark.slow
def test_a_model_trained_with_a_gap_caches_and_predicts_with_it(tiny_dataset, debug_args, tmp_path):
    cli = cli_main([*debug_args(tmp_path / "run", tiny_dataset), "--model.motion", "flow_stats", "--data.motion_gap", "2",
                    "--data.cache_dir", str(tmp_path / "cache"), "--trainer.max_epochs", "1"], run=False)
    assert cli.datamodule.spec.motion_gap == 2
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    # Features cached with a gap are not those without one.
    records = read_manifest(tiny_dataset / "train.jsonl")
    spec = cli.datamodule.spec
    keys = {gap: store_key(ClipDataset(records, replace(spec, motion_gap=gap), spec.eval_transform(IMAGENET)), views=1)
            for gap in (0, 2)}
    assert keys[0] != keys[2]
    ckpt = sorted((tmp_path / "run").rglob("last.ckpt"))[0]
    assert load_checkpoint(ckpt).clip.motion_gap == 2
    predictor = Predictor.from_checkpoint(ckpt, device="cpu")
    video = records[0].video
    motion = predictor._clip_features(video)[0, :, -FLOW_STATS_DIM:]  # (T, 63): what predict reads
    without = read_clip(video, ClipSpec(**{**predictor.clip.to_dict(), "motion_gap": 0}), predictor.transform).motion
    assert torch.allclose(motion, read_clip(video, predictor.clip, predictor.transform).motion)
    assert not torch.allclose(motion, without)
    pred = predictor.predict(video, topk=100)
    assert pred.error is None and sum(a.prob for a in pred.actions) == pytest.approx(1.0, abs=1e-4)


def test_speed_jitter_scales_each_training_clips_flow_statistics_and_leaves_evaluation_alone():
    from vidrec.models.net import build_recognizer

    hp = {"classes": ["a", "b"], "backbone": "resnet18", "weights": "none", "hidden_size": 8, "motion_hidden_size": 4,
          "temporal_dropout": 0.0, "head_dropout": 0.0, "motion": "flow_stats", "motion_speed_jitter": 1.4}
    torch.manual_seed(0)
    net = build_recognizer(hp)
    seen = []
    net.motion_temporal.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    features = torch.cat([torch.randn(6, 4, 512), torch.rand(6, 4, FLOW_STATS_DIM) + 0.5], dim=-1)  # motion > 0
    motion = features[..., 512:]
    net.eval()
    net.encode(features=features)
    assert torch.equal(seen[-1], motion)  # evaluation reads the clip as it is
    net.train()
    net.encode(features=features)
    factors = seen[-1] / motion  # (6, 4, 63): one factor per clip, the same for every step and number
    per_clip = factors[:, :1, :1]
    assert torch.allclose(factors, per_clip.expand_as(factors), rtol=1e-5)
    low, high = torch.exp(torch.tensor(-1.4)), torch.exp(torch.tensor(1.4))  # x1/4 .. x4
    assert ((per_clip >= low - 1e-5) & (per_clip <= high + 1e-5)).all()
    assert per_clip.std() > 0.05  # clips differ
    # gradients still reach the motion model through the scaled stream
    net.action_head(net.encode(features=features)[1]).sum().backward()
    assert all(p.grad is not None for p in net.motion_temporal.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="only with motion: flow_stats"):
        build_recognizer({**hp, "motion": "flow"})
    assert build_recognizer({k: v for k, v in hp.items() if k != "motion_speed_jitter"}).motion_speed_jitter == 0.0
