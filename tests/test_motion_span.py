"""``motion_span: step``: each step's motion measured in gap-long hops all the way from its
sampled frame to the next one and averaged, where ``gap`` measures only the first hop."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from vidrec.data.clips import ClipSpec, clip_indices, read_clip, read_views
from vidrec.data.datasets import ClipDataset
from vidrec.data.decode import open_video
from vidrec.data.manifest import read_manifest
from vidrec.data.motion import FLOW_STATS_DIM, flow_statistics_between, flow_to_image, motion_input_between, optical_flow_between
from vidrec.data.sampling import MAX_MOTION_HOPS, auto_motion_gap, motion_hop_indices, motion_hops, segment_indices
from vidrec.data.transforms import IMAGENET
from vidrec.training.cli import cli_main
from vidrec.training.features import store_key

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TX = FLOW_STATS_DIM - 9  # camera_motion's pan x, % of the frame width per step


def test_hops_run_end_to_end_to_the_next_sample():
    # 8 evaluation samples of a 16-, 64-, 160- and 5000-frame video, each with its auto gap (1, 4, 4, 4)
    hops = []
    for n in (16, 64, 160, 5000):
        indices = segment_indices(n, 8, train=False)
        hops.append(motion_hops(indices, auto_motion_gap(indices)))
    assert hops == [2, 2, 5, MAX_MOTION_HOPS]
    assert motion_hops(np.array([0, 3, 6]), gap=4) == 1  # samples closer than the gap: the one pair
    assert motion_hops(np.array([5]), gap=2) == 1  # one frame: no step
    before, after = motion_hop_indices(np.array([0, 10]), n=14, gap=4, hops=3)  # (2, 3) each
    assert before.tolist() == [[0, 4, 8], [6, 9, 9]] and after.tolist() == [[4, 8, 12], [10, 13, 13]]
    # one hop is motion_pair_indices; a short video's hops repeat its last pair, never leave it
    assert [x.tolist() for x in motion_hop_indices(np.array([2]), n=3, gap=2, hops=1)] == [[[0]], [[2]]]
    assert [x.tolist() for x in motion_hop_indices(np.array([0]), n=1, gap=1, hops=2)] == [[[0, 0]], [[0, 0]]]
    with pytest.raises(ValueError, match="hops must be >= 1"):
        motion_hop_indices(np.array([0]), n=5, gap=1, hops=0)


def test_a_steps_motion_is_the_mean_of_its_hops(panning):
    """Two steps of two hops each: still then moving, and moving twice. The first hop alone reads
    no motion in step 0; the span reads half the pan there and the whole pan in step 1."""
    frames = panning(9, speed=2)
    still = frames[[0, 0]]
    before = np.concatenate([still[:1], frames[[0]], frames[[2, 4]]])  # (4, H, W, 3): step 0 hop 0/1, step 1 hop 0/1
    after = np.concatenate([still[1:], frames[[2]], frames[[4, 6]]])
    step_of = np.array([0, 0, 1, 1])
    stats = flow_statistics_between(before, after)  # (4, 63)
    spanned = motion_input_between(before, after, "flow_stats", step_of=step_of)
    assert spanned.shape == (2, FLOW_STATS_DIM) and spanned.dtype == np.float32
    np.testing.assert_allclose(spanned, [stats[:2].mean(0), stats[2:].mean(0)], rtol=1e-5, atol=1e-6)
    assert abs(stats[0, TX]) < 0.05 and spanned[0, TX] == pytest.approx(stats[1, TX] / 2, rel=1e-5)
    assert spanned[1, TX] < -0.5  # the content moves left, every hop
    # per frame (auto): each pair divided by its own gap before the mean
    apart = np.array([1, 2, 2, 2])
    np.testing.assert_allclose(motion_input_between(before, after, "flow_stats", apart, step_of),
                               [(stats[0] + stats[1] / 2) / 2, stats[2:].mean(0) / 2], rtol=1e-5, atol=1e-6)
    # flow images: the mean flow of each step, drawn once
    images = motion_input_between(before, after, "flow", step_of=step_of)
    flow = optical_flow_between(before, after)  # (4, H, W, 2)
    assert np.array_equal(images, flow_to_image(np.stack([flow[:2].mean(0), flow[2:].mean(0)])))
    with pytest.raises(ValueError, match="every step present"):
        motion_input_between(before, after, "flow_stats", step_of=np.array([0, 0, 2, 2]))


def test_read_clip_spans_each_step_of_a_long_video(tmp_path, make_video, panning):
    """A 160-frame pan at 1 px per frame: auto measures 4 frames of each 20-frame step; with
    ``motion_span: step`` five hops of 4, exactly the mean of those pairs decoded on their own.
    On a steady pan both read 1 px per frame."""
    video = make_video(tmp_path / "pan.avi", panning(160))
    auto = ClipSpec(num_frames=8, frame_size=32, motion="flow_stats", motion_gap="auto")
    spanned = replace(auto, motion_span="step")
    transform = auto.eval_transform(IMAGENET)
    clip = read_clip(video, spanned, transform)
    assert clip.motion.shape == (8, FLOW_STATS_DIM)
    with open_video(video) as reader:
        indices = clip_indices(reader, spanned)
        gap = auto_motion_gap(indices)
        assert (gap, motion_hops(indices, gap)) == (4, 5)
        before, after = motion_hop_indices(indices, reader.num_frames, gap, 5)  # (8, 5) each
        stats = flow_statistics_between(reader.get_frames(before.reshape(-1).tolist()),
                                        reader.get_frames(after.reshape(-1).tolist()))  # (40, 63)
        sampled = read_clip(reader, ClipSpec(num_frames=8, frame_size=32), transform).frames
    np.testing.assert_allclose(clip.motion.numpy(), stats.reshape(8, 5, -1).mean(1) / 4, rtol=1e-4, atol=1e-5)
    assert torch.equal(clip.frames, sampled)  # the frames are the sampled ones, not the hops'
    one_hop = read_clip(video, auto, transform).motion
    assert -clip.motion[:, TX].mean().item() == pytest.approx(-one_hop[:, TX].mean().item(), rel=0.1)
    assert -clip.motion[:, TX].mean().item() > 0.5  # 1 px per frame of 96: about 1% of the width


def test_the_command_line_takes_the_span_and_the_cache_tells_it_apart(tiny_dataset, debug_args, tmp_path):
    specs = {}
    for span in ("step", "gap"):
        cli = cli_main([*debug_args(tmp_path / "run", tiny_dataset), "--model.motion", "flow_stats",
                        "--data.motion_gap", "auto", "--data.motion_span", span], run=False)
        specs[span] = cli.datamodule.spec
        assert ClipSpec.from_hparams(cli.datamodule.hparams) == specs[span]  # what a checkpoint restores
    assert specs["step"].motion_span == "step" and specs["gap"].motion_span == "gap"
    assert ClipSpec.from_hparams({"motion_gap": "auto"}).motion_span == "gap"  # a checkpoint from before the setting
    records = read_manifest(tiny_dataset / "train.jsonl")
    keys = {span: store_key(ClipDataset(records, spec, spec.eval_transform(IMAGENET)), views=1) for span, spec in specs.items()}
    assert keys["step"] != keys["gap"]
    with pytest.raises(ValueError, match="motion_span must be 'gap' or 'step', got 'all'"):
        ClipSpec(motion_span="all")


def test_hops_stay_inside_a_clip_cut_from_a_longer_video(tmp_path, make_video, panning):
    """Frames 0-79 still, then a pan: the clip ``[0, 8 s)`` (frames 0-79 at 10 fps) is still, and
    its last step's hops must not reach into the pan that follows it."""
    frames = np.concatenate([np.repeat(panning(1), 80, axis=0), panning(80, speed=2)])
    video = make_video(tmp_path / "still_then_pan.avi", frames)
    spec = ClipSpec(num_frames=8, frame_size=32, motion="flow_stats", motion_gap="auto", motion_span="step")
    transform = spec.eval_transform(IMAGENET)
    clip = read_clip(video, spec, transform, end=8.0)
    assert np.abs(clip.motion[:, TX].numpy()).max() < 0.01  # still, the last step too
    views = read_views(video, spec, transform, views=2, end=8.0)
    assert np.abs(views.motion[..., TX].numpy()).max() < 0.01
    # The same frames sampled from the whole video (explicit indices, as timeline windows read):
    # the last step's second hop, frames 79 -> 83, reaches 3 frames into the pan.
    with open_video(video) as reader:
        indices = clip_indices(reader, spec, end=8.0)
        whole = read_clip(reader, spec, transform, indices=indices.tolist())
    assert indices[-1] == 75 and np.abs(whole.motion[:-1, TX].numpy()).max() < 0.01
    assert whole.motion[-1, TX] < -0.1  # 6 px in 4 frames, per frame, halved by the still first hop


def test_a_checkpoint_scored_with_other_clip_settings_says_which(tiny_checkpoint, tiny_dataset, debug_args, tmp_path):
    """``train.py test`` reads clips with the run's --data, not the checkpoint's: a config whose
    motion settings moved on since (custom.yaml's did) is named, setting by setting."""
    from vidrec.training.clip_settings import clip_differences

    saved = {"motion": "flow_stats", "motion_gap": "auto"}  # a checkpoint from before motion_span
    assert clip_differences(saved, {**saved, "motion_span": "step"}) == ["motion_span: 'gap' in the checkpoint, 'step' here"]
    assert clip_differences(saved, {**saved, "motion_span": "gap", "backend": "opencv"}) == []  # the decoder: same frames
    assert clip_differences({"motion": "none"}, {"motion": "none", "motion_gap": "auto", "motion_span": "step"}) == []
    assert clip_differences({"motion": "flow", "motion_gap": 0}, {"motion": "flow", "motion_gap": 0, "motion_span": "step"}) == []

    test = ["test", *debug_args(tmp_path, tiny_dataset), "--data.test_manifest", str(tiny_dataset / "test.jsonl"),
            "--ckpt_path", str(tiny_checkpoint), "--trainer.logger", "false"]
    with pytest.warns(UserWarning, match=r"other clip settings than this run's --data: num_frames: 4 in the checkpoint, 6 here\."):
        cli_main([*test, "--data.num_frames", "6"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli_main(test)  # the checkpoint's own settings: nothing to say
    assert not [w for w in caught if "other clip settings" in str(w.message)]
