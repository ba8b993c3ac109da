"""Test views and crops with a data-side motion input (flow images, flow statistics): each view's
motion is computed between its own sampled frames, in the datasets, the feature cache, the
Predictor and ``train.py test``; one view of one crop stays the clip validation reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidrec.checkpoint import load_checkpoint
from vidrec.data.clips import ClipSpec, clip_indices, read_clip, read_views
from vidrec.data.datasets import ClipDataset
from vidrec.data.decode import open_video
from vidrec.data.manifest import ClipRecord, read_manifest
from vidrec.data.motion import FLOW_STATS_DIM
from vidrec.data.transforms import IMAGENET, three_crop_transform
from vidrec.inference.predictor import Predictor
from vidrec.models.backbone import FrozenBackbone
from vidrec.training.cli import cli_main
from vidrec.training.features import FeatureCache

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def wide_video(tmp_path_factory, make_video) -> Path:
    """24 frames, 48 x 80: a textured scene panning right under a square moving down, so every
    view (odd or even frames, early or late) and every crop (left, centre, right) moves differently."""
    import cv2

    rng = np.random.default_rng(5)
    noise = cv2.GaussianBlur(rng.random((48, 160, 3)).astype(np.float32), (0, 0), 2)
    scene = ((noise - noise.min()) / (noise.max() - noise.min()) * 200).astype(np.uint8)
    frames = np.stack([scene[:, 3 * t : 3 * t + 80].copy() for t in range(24)])  # (24, 48, 80, 3)
    for t in range(24):
        frames[t, t : t + 12, 50:62] = 250
    return make_video(tmp_path_factory.mktemp("wide") / "wide.avi", frames)


def _indices(video: Path, spec: ClipSpec, views: int) -> np.ndarray:
    with open_video(video, spec.backend) as reader:
        return clip_indices(reader, spec, views=views)  # (V, T)


@pytest.mark.parametrize("motion", ["flow", "flow_stats"])
def test_each_view_has_the_motion_of_its_own_frames(wide_video, motion):
    spec = ClipSpec(num_frames=4, frame_size=32, motion=motion)
    transform = spec.eval_transform(IMAGENET)
    got = read_views(wide_video, spec, transform, 3)
    width = (3, 32, 32) if motion == "flow" else (FLOW_STATS_DIM,)
    assert got.frames.shape == (3, 4, 3, 32, 32) and got.motion.shape == (3, 4, *width)
    idx = _indices(wide_video, spec, 3)
    assert len({tuple(v) for v in idx}) == 3  # three different clips
    for v in range(3):
        alone = read_clip(wide_video, spec, transform, indices=idx[v])
        assert torch.equal(got.frames[v], alone.frames)
        assert torch.equal(got.motion[v], alone.motion)
        assert not torch.equal(got.motion[v][0], got.motion[v][1])  # step 0 has no motion, step 1 has
    assert not torch.equal(got.motion[0], got.motion[1])  # and the views differ


@pytest.mark.parametrize("motion", ["flow", "flow_stats"])
def test_crops_of_each_view_with_motion(wide_video, motion):
    spec = ClipSpec(num_frames=4, frame_size=32, motion=motion)
    crop3 = three_crop_transform(32, IMAGENET)
    got = read_views(wide_video, spec, crop3, 2)
    width = (3, 32, 32) if motion == "flow" else (FLOW_STATS_DIM,)
    assert got.frames.shape == (6, 4, 3, 32, 32) and got.motion.shape == (6, 4, *width)
    idx = _indices(wide_video, spec, 2)
    for v in range(2):
        alone = read_clip(wide_video, spec, crop3, indices=idx[v])  # (3, T, ...) for both
        assert torch.equal(got.frames[3 * v : 3 * v + 3], alone.frames)  # view-major: row v*3 + c
        assert torch.equal(got.motion[3 * v : 3 * v + 3], alone.motion)
    if motion == "flow":  # flow images are cropped with their frames: each crop sees its own region
        assert not torch.equal(got.motion[0], got.motion[2])
        whole = read_clip(wide_video, spec, spec.eval_transform(IMAGENET), indices=idx[0]).motion
        assert not torch.equal(got.motion[1], whole)  # a 32 px crop of the 32 px-high frame, not the resized centre
    else:  # statistics of the whole frame, as one crop has: the same for every crop of a view
        whole = read_clip(wide_video, spec, spec.eval_transform(IMAGENET), indices=idx[0]).motion  # (T, 63)
        assert all(torch.equal(got.motion[c], whole) for c in range(3))
        assert not torch.equal(got.motion[0], got.motion[3])


@pytest.mark.parametrize("motion", ["none", "flow", "flow_stats"])
def test_one_view_one_crop_is_the_evaluation_clip(wide_video, motion):
    spec = ClipSpec(num_frames=4, frame_size=32, motion=motion)
    transform = spec.eval_transform(IMAGENET)
    one = read_views(wide_video, spec, transform, 1)
    clip = read_clip(wide_video, spec, transform)  # what validation and single-view prediction read
    assert torch.equal(one.frames, clip.frames[None])
    assert (one.motion is None) == (clip.motion is None)
    if clip.motion is not None:
        assert torch.equal(one.motion, clip.motion[None])


def test_dataset_views_carry_motion_and_the_cache_keys_differ(tmp_path, wide_video):
    spec = ClipSpec(num_frames=4, frame_size=32, motion="flow_stats")
    records = [ClipRecord(video=str(wide_video), label="a")]
    plain = spec.eval_transform(IMAGENET)
    crop3 = three_crop_transform(32, IMAGENET)
    settings = {(1, 1): (plain, 1), (2, 1): (plain, 2), (1, 3): (crop3, 1), (2, 3): (crop3, 2)}
    datasets = {k: ClipDataset(records, spec, t, views=v, class_to_idx={"a": 0}) for k, (t, v) in settings.items()}
    item = datasets[(2, 3)][0]
    assert item["frames"].shape == (6, 4, 3, 32, 32) and item["motion"].shape == (6, 4, FLOW_STATS_DIM)
    assert datasets[(1, 3)][0]["motion"].shape == (3, 4, FLOW_STATS_DIM)  # one view, three crops
    assert datasets[(1, 1)][0]["motion"].shape == (4, FLOW_STATS_DIM)
    # Any change of views or crops is a new cache file, never the single view's features reused.
    cache = FeatureCache(tmp_path / "cache", FrozenBackbone("resnet18", "none"))
    assert len({cache.path(d, 0) for d in datasets.values()}) == 4


def test_cached_view_features_are_each_views_own(tmp_path, wide_video):
    """The feature cache (EncodeCollate on the CPU) keeps view n's motion beside view n's frames."""
    torch.manual_seed(0)
    backbone = FrozenBackbone("resnet18", "none")
    spec = ClipSpec(num_frames=4, frame_size=32, motion="flow_stats")
    crop3 = three_crop_transform(32, IMAGENET)
    data = ClipDataset([ClipRecord(video=str(wide_video), label="a")], spec, crop3, views=2, class_to_idx={"a": 0})
    FeatureCache(tmp_path / "cache", backbone).extract(data, progress=False)
    cached = FeatureCache(tmp_path / "cache", backbone).load(data, 0)[0]  # (N, T, D + M) float16
    assert cached.shape == (6, 4, 512 + FLOW_STATS_DIM)
    idx = _indices(wide_video, spec, 2)
    with torch.no_grad():
        for v in range(2):
            alone = read_clip(wide_video, spec, crop3, indices=idx[v])  # (3, T, ...)
            rgb = backbone(alone.frames)  # (3, T, 512)
            assert torch.allclose(cached[3 * v : 3 * v + 3, :, :512].float(), rgb, atol=1e-2, rtol=1e-2)
            assert torch.equal(cached[3 * v : 3 * v + 3, :, 512:], alone.motion.half())


@pytest.fixture(scope="module")
def motion_checkpoint(tiny_dataset, debug_args, tmp_path_factory) -> Path:
    """configs/debug.yaml with ``--model.motion flow_stats``, one epoch."""
    root = tmp_path_factory.mktemp("motion_run")
    cli_main(["fit", *debug_args(root, tiny_dataset), "--model.motion", "flow_stats", "--trainer.max_epochs", "1"])
    return sorted(root.rglob("last.ckpt"))[0]


def _probs(prediction) -> dict[str, float]:
    return {a.label: a.prob for a in prediction.actions}


def test_predictor_one_view_is_the_single_clip(motion_checkpoint, tiny_dataset):
    ckpt = load_checkpoint(motion_checkpoint)
    video = Path(read_manifest(tiny_dataset / "test.jsonl")[0].video)
    pred = Predictor.from_checkpoint(motion_checkpoint, device="cpu", views=1, crops=1).predict(str(video), topk=100)
    assert pred.error is None and pred.stats.frames_encoded == 4
    # The same clip by hand: read_clip, the backbone beside the flow statistics, the heads.
    clip = read_clip(video, ckpt.clip, ckpt.clip.eval_transform(ckpt.normalization))
    with torch.inference_mode():
        features = ckpt.net.eval().frame_features(clip.frames[None], clip.motion[None])  # (1, T, 512 + 63)
        probs = ckpt.net.action_head(ckpt.net.encode(features=features)[1]).float().softmax(-1)[0]
    assert _probs(pred) == {c: float(p) for c, p in zip(ckpt.classes, probs)}


def test_predictor_views_and_crops_average_each_views_probabilities(motion_checkpoint, tiny_dataset):
    ckpt = load_checkpoint(motion_checkpoint)
    video = Path(read_manifest(tiny_dataset / "test.jsonl")[0].video)
    single = _probs(Predictor.from_checkpoint(motion_checkpoint, device="cpu").predict(str(video), topk=100))
    for views, crops in ((3, 1), (3, 3)):
        pred = Predictor.from_checkpoint(motion_checkpoint, device="cpu", views=views, crops=crops).predict(str(video), topk=100)
        assert pred.error is None and pred.stats.frames_encoded == views * crops * 4
        got = _probs(pred)
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-5)
        # Each view by hand, from its own frame indices alone (its crops' rows), then the mean.
        spec = ckpt.clip
        transform = three_crop_transform(spec.frame_size, ckpt.normalization) if crops == 3 else spec.eval_transform(ckpt.normalization)
        per_view = []
        with torch.inference_mode():
            for idx in _indices(video, spec, views):
                alone = read_clip(video, spec, transform, indices=idx)
                frames = alone.frames if crops == 3 else alone.frames[None]  # (C, T, 3, S, S)
                motion = alone.motion if crops == 3 else alone.motion[None]  # (C, T, 63)
                features = ckpt.net.eval().frame_features(frames, motion)
                per_view.append(ckpt.net.action_head(ckpt.net.encode(features=features)[1]).float().softmax(-1))  # (C, classes)
        mean = torch.cat(per_view).mean(0)
        assert torch.allclose(torch.tensor([got[c] for c in ckpt.classes]), mean, atol=1e-5)
        assert got != single or views * crops == 1


def test_extract_views_of_a_motion_model(motion_checkpoint, tiny_dataset, tmp_path):
    from vidrec.apps.extract import ExtractOptions, extract_features

    ckpt = load_checkpoint(motion_checkpoint)
    records = read_manifest(tiny_dataset / "test.jsonl")[:2]
    results = extract_features(records, ckpt, tmp_path / "feats", ExtractOptions(views=3))
    assert [r.error for r in results] == [None, None]
    array = np.load(tmp_path / "feats" / results[0].file)  # (N, T, D + M)
    assert array.shape == (3, 4, 512 + FLOW_STATS_DIM)
    idx = _indices(Path(records[0].video), ckpt.clip, 3)
    alone = read_clip(records[0].video, ckpt.clip, ckpt.clip.eval_transform(ckpt.normalization), indices=idx[2])
    assert np.array_equal(array[2, :, 512:], alone.motion.numpy())  # the last view's own motion


@pytest.mark.slow
def test_train_py_test_with_views_on_a_motion_model(motion_checkpoint, tiny_dataset, tmp_path):
    args = [sys.executable, str(REPO / "train.py"), "test", "--config", str(REPO / "configs" / "debug.yaml"),
            "--model.motion", "flow_stats", "--ckpt_path", str(motion_checkpoint),
            "--data.test_manifest", str(tiny_dataset / "test.jsonl"), "--data.test_views", "2",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)]
    # Decoded frames (the test step encodes views and motion), then the feature cache with crops too.
    for extra in ([], ["--data.test_crops", "3", "--data.cache_dir", str(tmp_path / "cache")]):
        proc = subprocess.run(args + extra, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "test/top1" in proc.stdout
    cached = [torch.load(p, weights_only=True) for p in (tmp_path / "cache").rglob("*.pt")]
    assert cached and all(c["features"].shape == (6, 4, 512 + FLOW_STATS_DIM) for c in cached if "features" in c)


@pytest.mark.parametrize(("views", "crops", "row"), [(1, 1, 0), (3, 1, 1), (2, 1, 1), (1, 3, 1), (3, 3, 4), (2, 3, 4), (4, 3, 7)])
def test_captions_come_from_the_central_clips_centre_crop(views, crops, row):
    # Rows are view-major (v * C + c). N // 2 was the centre crop only for odd view counts:
    # 2 views x 3 crops gave row 3, view 1's first crop (a side of the frame).
    from vidrec.data.clips import central_row
    from vidrec.training.lit_module import central_view

    n = views * crops
    assert central_row(n, crops) == row and row % crops == crops // 2
    encoding = torch.arange(n, dtype=torch.float32).repeat(2, 1)[..., None]  # (B=2, N, 1): each row holds its index
    sequence = encoding[:, :, None].expand(2, n, 4, 1)  # (B, N, T, 1)
    enc, seq = central_view(encoding, sequence, crops)
    assert enc.flatten().tolist() == [row, row] and seq[:, :, 0].flatten().tolist() == [row] * 8
