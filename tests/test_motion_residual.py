"""``motion_residual_max``: a frame pair whose flow does not explain its frames (a shot cut,
motion too fast for the flow) measures no motion, instead of noise that outweighs the rest."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vidrec.data.clips import ClipSpec, read_clip, read_views
from vidrec.data.datasets import ClipDataset
from vidrec.data.manifest import read_manifest
from vidrec.data.motion import (
    FLOW_STATS_DIM,
    flow_residual,
    flow_statistics_between,
    flow_to_image,
    motion_input,
    motion_input_between,
    optical_flow_between,
)
from vidrec.data.transforms import IMAGENET
from vidrec.inference.export import _motion_recipe
from vidrec.training.cli import cli_main
from vidrec.training.clip_settings import clip_differences
from vidrec.training.features import store_key

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TX = FLOW_STATS_DIM - 9  # camera_motion's pan x, % of the frame width per step
RESIDUAL_MAX = 12.0  # configs/custom.yaml's


def another_shot(panning, size: int = 96) -> np.ndarray:
    """uint8 (size, size, 3): another scene than ``panning``'s texture, as a cut shows one: large
    bright and dark blocks over a different texture (a smooth texture alone is so close to
    ``panning``'s that the flow explains part of one by the other)."""
    texture = panning(1, size=size, seed=7)[0].astype(np.float32)
    ys, xs = np.mgrid[:size, :size]
    blocks = np.where((ys // 24 + xs // 24) % 2 == 1, 200.0, 20.0)[..., None]  # (size, size, 1)
    return np.clip(0.4 * texture + 0.6 * blocks, 0, 255).astype(np.uint8)


def _cut_pairs(panning):
    """A pan (two hops, 2 px each), an exposure ramp on it, and a cut to another scene: (3, H, W, 3) twice."""
    scene = panning(5, speed=2)
    brighter = np.clip(scene[2].astype(np.float32) * 1.3, 0, 255).astype(np.uint8)
    before = np.stack([scene[0], scene[0], scene[2]])
    after = np.stack([scene[2], brighter, another_shot(panning)])
    return before, after


def test_the_residual_is_small_where_the_flow_explains_the_frames_and_large_across_a_cut(panning):
    before, after = _cut_pairs(panning)
    residual = flow_residual(before, after, optical_flow_between(before, after))  # (3,)
    assert residual.shape == (3,) and residual.dtype == np.float32
    pan, exposure, cut = residual.tolist()
    assert pan < 3 and exposure < 3  # a pan, and a pan with 30% more exposure: explained
    assert cut > 2 * RESIDUAL_MAX  # two unrelated textures: no flow maps one onto the other
    with pytest.raises(ValueError, match="flow must be"):
        flow_residual(before, after, np.zeros((3, 4, 4, 2), np.float32))


def test_a_pair_across_a_cut_is_left_out_of_its_steps_mean(panning):
    """Step 0: a pan hop and a cut hop; step 1: the cut alone. With the residual check, step 0
    is its pan hop alone and step 1 reads no motion; without it the cut's noise is averaged in."""
    scene, other = panning(5, speed=2), another_shot(panning)
    before = np.stack([scene[0], scene[2], scene[2]])
    after = np.stack([scene[2], other, other])
    step_of = np.array([0, 0, 1])
    stats = flow_statistics_between(before, after)  # (3, 63)
    checked = motion_input_between(before, after, "flow_stats", step_of=step_of, residual_max=RESIDUAL_MAX)
    assert checked.shape == (2, FLOW_STATS_DIM) and checked.dtype == np.float32
    np.testing.assert_allclose(checked[0], stats[0], rtol=1e-5, atol=1e-6)
    assert not checked[1].any()  # no pair left: no motion
    unchecked = motion_input_between(before, after, "flow_stats", step_of=step_of)
    np.testing.assert_allclose(unchecked, [stats[:2].mean(0), stats[2]], rtol=1e-5, atol=1e-6)
    assert np.abs(unchecked[1]).max() > 1  # what the cut would have given
    # per frame (auto): the kept pair divided by its own gap
    apart = np.array([2, 2, 2])
    np.testing.assert_allclose(motion_input_between(before, after, "flow_stats", apart, step_of, RESIDUAL_MAX)[0],
                               stats[0] / 2, rtol=1e-5, atol=1e-6)
    # one pair per step (motion_span: gap): the cut's step reads zero, the pan's is unchanged
    single = motion_input_between(before, after, "flow_stats", residual_max=RESIDUAL_MAX)
    np.testing.assert_allclose(single[0], stats[0], rtol=1e-5, atol=1e-6)
    assert not single[1:].any()
    single_images = motion_input_between(before, after, "flow", residual_max=RESIDUAL_MAX)  # (3, H, W, 3)
    assert np.array_equal(single_images[0], flow_to_image(optical_flow_between(before[:1], after[:1]))[0])
    assert np.array_equal(single_images[1:], np.full_like(single_images[1:], 128))
    # flow images: the kept flow drawn; a step with none is the grey of no motion
    flow = optical_flow_between(before, after)  # (3, H, W, 2)
    images = motion_input_between(before, after, "flow", step_of=step_of, residual_max=RESIDUAL_MAX)
    assert np.array_equal(images, flow_to_image(np.stack([flow[0], np.zeros_like(flow[0])])))
    assert np.array_equal(images[1], np.full_like(images[1], 128))


def test_between_sampled_frames_too(panning):
    """``motion_gap: 0``: step t is frame t-1 to t; the step across the cut reads no motion."""
    frames = np.concatenate([panning(3, speed=2), np.repeat(another_shot(panning)[None], 2, axis=0)])  # cut after frame 2
    checked = motion_input(frames, "flow_stats", residual_max=RESIDUAL_MAX)  # (5, 63)
    unchecked = motion_input(frames, "flow_stats")
    np.testing.assert_allclose(checked[[0, 1, 2, 4]], unchecked[[0, 1, 2, 4]], rtol=1e-6)
    assert not checked[3].any() and np.abs(unchecked[3]).max() > 1
    assert checked[1, TX] < -0.5 and checked[2, TX] < -0.5  # the pan before the cut is kept


def test_read_clip_of_two_still_shots_reads_no_motion(tmp_path, make_video, panning):
    """A real encoded video: 40 frames of one still shot, then 40 of another. The step whose hops
    cross the cut reads the cut as motion unless its pair is left out; then the whole clip is still,
    in one clip and in every test view."""
    frames = np.concatenate([np.repeat(panning(1), 40, axis=0), np.repeat(another_shot(panning)[None], 40, axis=0)])
    video = make_video(tmp_path / "two_shots.avi", frames)
    spec = ClipSpec(num_frames=8, frame_size=32, motion="flow_stats", motion_gap="auto", motion_span="step")
    checked = replace(spec, motion_residual_max=RESIDUAL_MAX)
    transform = spec.eval_transform(IMAGENET)
    assert np.abs(read_clip(video, spec, transform).motion.numpy()).max() > 1  # the cut, as measured before
    assert np.abs(read_clip(video, checked, transform).motion.numpy()).max() < 0.05
    assert np.abs(read_views(video, checked, transform, views=3).motion.numpy()).max() < 0.05
    between_samples = replace(checked, motion_gap=0, motion_span="gap")  # motion_input, step t from sample t-1
    assert np.abs(read_clip(video, replace(between_samples, motion_residual_max=None), transform).motion.numpy()).max() > 1
    assert np.abs(read_clip(video, between_samples, transform).motion.numpy()).max() < 0.05


def test_the_setting_is_saved_keyed_compared_and_exported(tiny_dataset, debug_args, tmp_path):
    cli = cli_main([*debug_args(tmp_path / "run", tiny_dataset), "--model.motion", "flow_stats",
                    "--data.motion_gap", "auto", "--data.motion_residual_max", "12"], run=False)
    spec = cli.datamodule.spec
    assert spec.motion_residual_max == 12
    assert ClipSpec.from_hparams(cli.datamodule.hparams) == spec  # what a checkpoint restores
    assert ClipSpec.from_hparams({"motion": "flow_stats"}).motion_residual_max is None  # a checkpoint from before
    records = read_manifest(tiny_dataset / "train.jsonl")
    keys = {value: store_key(ClipDataset(records, s, s.eval_transform(IMAGENET)), views=1)
            for value, s in ((12, spec), (20, replace(spec, motion_residual_max=20.0)),
                             (None, replace(spec, motion_residual_max=None)))}
    assert len(set(keys.values())) == 3
    without = replace(spec, motion_residual_max=None).to_dict()
    assert clip_differences(without, spec.to_dict()) == ["motion_residual_max: None in the checkpoint, 12.0 here"]
    no_motion = replace(spec, motion="none")  # nothing measured from the frames: the setting changes nothing
    assert clip_differences(replace(no_motion, motion_residual_max=None).to_dict(), no_motion.to_dict()) == []
    assert "residual_max=12" in _motion_recipe("flow_stats", "auto", "step", 12.0)
    assert "residual_max" not in _motion_recipe("flow_stats", "auto", "step", None)
    with pytest.raises(ValueError, match="motion_residual_max must be"):
        ClipSpec(motion_residual_max=0)
