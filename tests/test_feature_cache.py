"""FeatureCache: features extracted once, equal to a direct forward, recomputed whenever
anything they depend on changes, corrupt videos recorded and skipped; and the datamodule
training on cached features."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from vidrec.data.datamodule import VideoDataModule
from vidrec.data.datasets import FeatureDataset, collate_clips
from vidrec.data.manifest import ClipRecord
from vidrec.training.features import FeatureCache
from vidrec.models.backbone import FrozenBackbone

SIZE = 48


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _content(seed: int, num_frames: int = 8) -> np.ndarray:
    """uint8 (T, SIZE, SIZE, 3): a bright square moving across a random dark background."""
    rng = np.random.default_rng(seed)
    frames = np.repeat(rng.integers(0, 60, (1, SIZE, SIZE, 3), dtype=np.uint8), num_frames, axis=0)
    for t in range(num_frames):
        x = 4 + t * 3
        frames[t, 16:32, x : x + 12] = rng.integers(150, 255, 3, dtype=np.uint8)
    return frames


@pytest.fixture
def clips(tmp_path, make_video) -> list[ClipRecord]:
    folder = tmp_path / "videos"
    folder.mkdir()
    return [
        ClipRecord(video=str(make_video(folder / f"clip{i}.avi", _content(i))), label="a", captions=["a square moves"])
        for i in range(3)
    ]


@pytest.fixture(scope="module")
def backbone() -> FrozenBackbone:
    # resnet18, not mobilenet_v3_small: a random-init MobileNetV3 gives ~1e-9 features, which
    # float16 rounds to 0 — every comparison below would pass vacuously.
    bb = FrozenBackbone("resnet18", "none")
    assert bb(torch.zeros(1, 1, 3, 32, 32) + 1).abs().mean() > 1e-2
    return bb


def _dm(**kw) -> VideoDataModule:
    kw = {"num_frames": 4, "frame_size": 32, "num_workers": 0, "batch_size": 2, **kw}
    return VideoDataModule(**kw)


def _extract(cache: FeatureCache, records, dm: VideoDataModule, **kw) -> int:
    return cache.extract(records, dm.clip_dataset(records, train=False), dm.cache_setting(train=False), progress=False, **kw)


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.pt"))


def test_extracted_once_and_equal_to_a_direct_forward(tmp_path, clips, backbone):
    dm = _dm()
    cache = FeatureCache(tmp_path / "cache", backbone)
    setting = dm.cache_setting(train=False)
    assert cache.load(clips[0], setting) is None
    assert _extract(cache, clips, dm) == 3
    assert len(_files(tmp_path / "cache")) == 3
    assert _extract(cache, clips, dm) == 0  # all cached: nothing decoded or computed
    assert len(_files(tmp_path / "cache")) == 3

    dataset = dm.clip_dataset(clips, train=False)
    for i, record in enumerate(clips):
        cached = cache.load(record, setting)
        assert isinstance(cached, list) and len(cached) == 1
        feats = cached[0]
        assert feats.dtype == torch.float16 and feats.shape == (4, backbone.out_dim)  # (T, D)
        with torch.no_grad():
            direct = backbone(dataset[i]["frames"][None])[0]  # (T, D)
        torch.testing.assert_close(feats.float(), direct, rtol=2e-3, atol=2e-3)
    # different clips, different features
    assert not torch.allclose(cache.load(clips[0], setting)[0], cache.load(clips[1], setting)[0], atol=1e-2)


def test_changed_video_file_is_recomputed(tmp_path, clips, backbone, make_video):
    dm = _dm()
    cache = FeatureCache(tmp_path / "cache", backbone)
    setting = dm.cache_setting(train=False)
    _extract(cache, clips, dm)
    old_path = cache.path(clips[0], setting)
    old = cache.load(clips[0], setting)[0]

    make_video(clips[0].video, _content(seed=99, num_frames=12))  # new content, size and mtime
    new_path = cache.path(clips[0], setting)
    assert new_path != old_path
    assert _extract(cache, clips, dm) == 1  # only the changed clip
    new = cache.load(clips[0], setting)[0]
    with torch.no_grad():
        direct = backbone(dm.clip_dataset(clips, train=False)[0]["frames"][None])[0]
    torch.testing.assert_close(new.float(), direct, rtol=2e-3, atol=2e-3)
    assert not torch.allclose(new, old, atol=1e-2)

    # same size, only the modification time differs: still a new key
    st = os.stat(clips[1].video)
    before = cache.path(clips[1], setting)
    os.utime(clips[1].video, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert cache.path(clips[1], setting) != before
    assert _extract(cache, clips, dm) == 1


def test_time_range_is_part_of_the_key(tmp_path, clips, backbone):
    cache = FeatureCache(tmp_path / "cache", backbone)
    setting = _dm().cache_setting(train=False)
    whole = clips[0]
    part = ClipRecord(video=whole.video, label=whole.label, start=0.1, end=0.5)
    assert cache.path(whole, setting) != cache.path(part, setting)
    assert cache.path(whole, setting, view=0) != cache.path(whole, setting, view=1)


def test_backbone_weights_and_pooling_change_the_key(tmp_path, clips, backbone):
    dm = _dm()
    root = tmp_path / "cache"
    base = FeatureCache(root, backbone)
    _extract(base, clips, dm)

    grid = FeatureCache(root, FrozenBackbone("resnet18", "none", pooling="grid", grid=2))
    assert grid.root != base.root
    assert _extract(grid, clips, dm) == 3
    feats = grid.load(clips[0], dm.cache_setting(train=False))[0]
    assert feats.shape[-1] == 4 * backbone.out_dim  # grid features, not the cached avg ones

    other_arch = FeatureCache(root, FrozenBackbone("mobilenet_v3_small", "none"))
    assert other_arch.root not in (base.root, grid.root)

    weights = tmp_path / "w.pth"
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    from_file = FeatureCache(root, FrozenBackbone("resnet18", str(weights)))
    assert from_file.root != base.root
    # overwriting the weights file (same path) gives a new key too
    torch.manual_seed(2)
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    st = os.stat(weights)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert FrozenBackbone("resnet18", str(weights)).cache_key() != from_file.root.name


@pytest.mark.parametrize(
    "change",
    [
        {"num_frames": 6},
        {"frame_size": 40},
        {"resize": 48},
        {"sampling": "dense"},
        {"stride": 2, "sampling": "dense"},
    ],
    ids=["num_frames", "frame_size", "resize", "sampling", "stride"],
)
def test_sampling_and_transform_change_the_key(tmp_path, clips, backbone, change):
    base_dm = _dm(sampling="dense") if "stride" in change else _dm()
    changed_dm = _dm(**change)
    cache = FeatureCache(tmp_path / "cache", backbone)
    assert base_dm.cache_setting(False) != changed_dm.cache_setting(False)
    _extract(cache, clips, base_dm)
    assert _extract(cache, clips, changed_dm) == 3  # recomputed, not reused
    feats = cache.load(clips[0], changed_dm.cache_setting(False))[0]
    with torch.no_grad():
        direct = backbone(changed_dm.clip_dataset(clips, train=False)[0]["frames"][None])[0]
    assert feats.shape == direct.shape
    torch.testing.assert_close(feats.float(), direct, rtol=2e-3, atol=2e-3)


def test_train_and_eval_settings_differ():
    dm = _dm()
    assert dm.cache_setting(train=True) != dm.cache_setting(train=False)


def test_corrupt_video_gets_an_error_entry_and_is_skipped(tmp_path, clips, backbone):
    bad = tmp_path / "videos" / "corrupt.mp4"
    bad.write_bytes(os.urandom(3000))
    records = [clips[0], ClipRecord(video=str(bad), label="a"), clips[1]]
    dm = _dm()
    setting = dm.cache_setting(train=False)
    cache = FeatureCache(tmp_path / "cache", backbone)
    with pytest.warns(UserWarning, match="corrupt.mp4"):
        done = _extract(cache, records, dm)
    assert done == 2
    assert len(_files(tmp_path / "cache")) == 3  # the error is recorded, not retried every epoch
    loaded = [cache.load(r, setting) for r in records]
    assert isinstance(loaded[1], str) and "corrupt.mp4" in loaded[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _extract(cache, records, dm) == 0  # not decoded again

    ds = FeatureDataset(records, loaded, class_to_idx={"a": 0}, vocab=None)
    item = ds[1]
    assert "error" in item and item["video"] == str(bad)
    batch = collate_clips([ds[i] for i in range(3)])
    assert batch["size"] == 2
    assert batch["features"].shape == (2, 4, backbone.out_dim)
    assert batch["features"].dtype == torch.float32
    assert batch["label"].tolist() == [0, 0]
    assert len(batch["skipped"]) == 1 and "corrupt.mp4" in batch["skipped"][0]


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_ranks_split_the_work_whatever_the_timing(tmp_path, clips, backbone, order):
    # Under DDP one rank may finish before another even looks at the cache: the shares
    # must not depend on what is already on disk (no clip missed, none done twice).
    dm = _dm()
    cache = FeatureCache(tmp_path / "cache", backbone)
    done = {rank: _extract(cache, clips, dm, rank=rank, world_size=2) for rank in order}
    assert done == {0: 2, 1: 1}  # clips 0, 2 and clip 1
    setting = dm.cache_setting(train=False)
    assert all(isinstance(cache.load(r, setting), list) for r in clips)
    assert len(_files(tmp_path / "cache")) == 3


def test_trainable_backbone_refuses_the_cache(tmp_path):
    with pytest.raises(ValueError, match="fine-tuned"):
        FeatureCache(tmp_path / "cache", FrozenBackbone("mobilenet_v3_small", "none", trainable_layers=1))


def test_datamodule_trains_on_cached_features(tmp_path, tiny_dataset, debug_args):
    from vidrec.training.cli import cli_main

    cache_dir = tmp_path / "cache"
    cli = cli_main(
        [
            "fit",
            *debug_args(tmp_path / "run", tiny_dataset),
            "--data.cache_dir", str(cache_dir),
            "--trainer.max_epochs", "1",
            # resnet18: random-init MobileNetV3 features are ~1e-9, i.e. 0 in the float16 cache
            "--model.backbone", "resnet18",
        ]
    )
    dm = cli.datamodule
    assert isinstance(dm.datasets["train"], FeatureDataset)
    assert isinstance(dm.datasets["val"], FeatureDataset)
    n_clips = len(dm.records["train"]) + len(dm.records["val"])
    files = _files(cache_dir)
    assert len(files) == n_clips
    assert len({f.parent for f in files}) == 1  # one backbone key
    assert cli.trainer.global_step > 0
    assert list((tmp_path / "run").rglob("last.ckpt"))
    batch = next(iter(dm.train_dataloader()))
    assert "features" in batch and "frames" not in batch
    assert batch["features"].shape[1:] == (4, cli.model.net.backbone.out_dim)
    assert batch["features"].abs().mean() > 1e-2
