"""FeatureCache: features extracted once, equal to a direct forward, recomputed whenever
anything they depend on changes, corrupt videos recorded and skipped; and the datamodule
training on cached features."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch
import torchvision

from vidrec.data.clips import SkippedClip
from vidrec.data.datamodule import VideoDataModule
from vidrec.data.datasets import ClipDataset, FeatureDataset, collate_clips
from vidrec.data.manifest import ClipRecord
from vidrec.data.transforms import TF_MINUS_ONE_ONE
from vidrec.models.backbone import FrozenBackbone
from vidrec.training.features import FeatureCache, backbone_key



pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def clips(tmp_path, make_video, moving_square) -> list[ClipRecord]:
    folder = tmp_path / "videos"
    folder.mkdir()
    return [
        ClipRecord(video=str(make_video(folder / f"clip{i}.avi", moving_square(i))), label="a", captions=["a square moves"])
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


def _eval_data(records, dm: VideoDataModule | None = None) -> ClipDataset:
    """The evaluation-style clip dataset of ``records`` (the datamodule's settings)."""
    return (dm or _dm()).clip_dataset(records, train=False)


def _extract(cache: FeatureCache, dataset: ClipDataset, **kw) -> int:
    return cache.extract(dataset, progress=False, **kw)


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.pt"))


def test_extracted_once_and_equal_to_a_direct_forward(tmp_path, clips, backbone):
    dataset = _eval_data(clips)
    cache = FeatureCache(tmp_path / "cache", backbone)
    assert cache.load(dataset, 0) is None
    assert _extract(cache, dataset) == 3
    assert len(_files(tmp_path / "cache")) == 3
    assert _extract(cache, dataset) == 0  # all cached: nothing decoded or computed
    assert _extract(cache, _eval_data(clips)) == 0  # an equal dataset finds the same files
    assert len(_files(tmp_path / "cache")) == 3

    for i in range(len(clips)):
        cached = cache.load(dataset, i)
        assert isinstance(cached, list) and len(cached) == 1
        feats = cached[0]
        assert feats.dtype == torch.float16 and feats.shape == (4, backbone.out_dim)  # (T, D)
        with torch.no_grad():
            direct = backbone(dataset[i]["frames"][None])[0]  # (T, D)
        torch.testing.assert_close(feats.float(), direct, rtol=2e-3, atol=2e-3)
    # different clips, different features
    assert not torch.allclose(cache.load(dataset, 0)[0], cache.load(dataset, 1)[0], atol=1e-2)


def test_changed_video_file_is_recomputed(tmp_path, clips, backbone, make_video, moving_square):
    dataset = _eval_data(clips)
    cache = FeatureCache(tmp_path / "cache", backbone)
    _extract(cache, dataset)
    old_path = cache.path(dataset, 0)
    old = cache.load(dataset, 0)[0]

    make_video(clips[0].video, moving_square(seed=99, num_frames=12))  # new content, size and mtime
    new_path = cache.path(dataset, 0)
    assert new_path != old_path
    assert _extract(cache, dataset) == 1  # only the changed clip
    new = cache.load(dataset, 0)[0]
    with torch.no_grad():
        direct = backbone(dataset[0]["frames"][None])[0]
    torch.testing.assert_close(new.float(), direct, rtol=2e-3, atol=2e-3)
    assert not torch.allclose(new, old, atol=1e-2)

    # same size, only the modification time differs: still a new key
    st = os.stat(clips[1].video)
    before = cache.path(dataset, 1)
    os.utime(clips[1].video, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert cache.path(dataset, 1) != before
    assert _extract(cache, dataset) == 1


def test_time_range_and_view_are_part_of_the_key(tmp_path, clips, backbone):
    cache = FeatureCache(tmp_path / "cache", backbone)
    whole = clips[0]
    part = ClipRecord(video=whole.video, label=whole.label, start=0.1, end=0.5)
    dataset = _eval_data([whole, part])
    assert cache.path(dataset, 0) != cache.path(dataset, 1)
    assert cache.path(dataset, 0, view=0) != cache.path(dataset, 0, view=1)


def test_backbone_weights_and_pooling_change_the_key(tmp_path, clips, backbone):
    dataset = _eval_data(clips)
    root = tmp_path / "cache"
    base = FeatureCache(root, backbone)
    _extract(base, dataset)
    assert base.root.name == backbone_key(backbone)

    grid = FeatureCache(root, FrozenBackbone("resnet18", "none", spatial_pooling="grid", grid=2))
    assert grid.root != base.root
    assert _extract(grid, dataset) == 3
    feats = grid.load(dataset, 0)[0]
    assert feats.shape[-1] == 4 * backbone.out_dim  # grid features, not the cached avg ones

    cut = FeatureCache(root, FrozenBackbone("resnet18", "none", backbone_blocks=6))
    assert cut.root not in (base.root, grid.root)

    other_arch = FeatureCache(root, FrozenBackbone("mobilenet_v3_small", "none"))
    assert other_arch.root not in (base.root, grid.root, cut.root)

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
    assert backbone_key(FrozenBackbone("resnet18", str(weights))) != from_file.root.name


@pytest.mark.parametrize(
    "change",
    [
        {"num_frames": 6},
        {"frame_size": 40},
        {"resize": 48},
        {"sampling": "dense"},
        {"stride": 2, "sampling": "dense"},
        {"normalization": TF_MINUS_ONE_ONE},
        {"seed": 7},
    ],
    ids=["num_frames", "frame_size", "resize", "sampling", "stride", "normalization", "seed"],
)
def test_sampling_and_transform_change_the_key(tmp_path, clips, backbone, change):
    base_data = _eval_data(clips, _dm(sampling="dense") if "stride" in change else _dm())
    changed_data = _eval_data(clips, _dm(**change))
    cache = FeatureCache(tmp_path / "cache", backbone)
    assert all(cache.path(base_data, i) != cache.path(changed_data, i) for i in range(len(clips)))
    _extract(cache, base_data)
    assert _extract(cache, changed_data) == 3  # recomputed, not reused
    feats = cache.load(changed_data, 0)[0]
    with torch.no_grad():
        direct = backbone(changed_data[0]["frames"][None])[0]
    assert feats.shape == direct.shape
    torch.testing.assert_close(feats.float(), direct, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(
    "change", [{}, {"hflip": False}, {"crop_scale": (0.8, 1.0)}, {"color_jitter": 0.3}],
    ids=["train_vs_eval", "hflip", "crop_scale", "color_jitter"],
)
def test_train_augmentation_changes_the_key(tmp_path, clips, backbone, change):
    cache = FeatureCache(tmp_path / "cache", backbone)
    base = _dm().clip_dataset(clips, train=bool(change))  # {}: the eval dataset against the train one
    changed = _dm(**change).clip_dataset(clips, train=True)
    assert cache.path(base, 0) != cache.path(changed, 0)


def test_augmented_views_are_distinct_and_reproducible(tmp_path, clips, backbone):
    # A seeded training dataset draws a different augmentation per view (its epoch), and the
    # same one again for the same view: K views are extracted once and served at random.
    dm = _dm(seed=0, color_jitter=0.4)
    train = dm.clip_dataset(clips, train=True)
    cache = FeatureCache(tmp_path / "cache", backbone)
    served = cache.feature_dataset(train, views=2, progress=False)
    assert isinstance(served, FeatureDataset) and served.train
    assert len(_files(tmp_path / "cache")) == 2 * len(clips)
    for i in range(len(clips)):
        views = cache.load(train, i, views=2)
        assert len(views) == 2
        assert not torch.allclose(views[0], views[1], atol=1e-2)  # two different augmentations
        for v in range(2):
            with torch.no_grad():
                direct = backbone(train.for_view(v)[i]["frames"][None])[0]
            torch.testing.assert_close(views[v].float(), direct, rtol=2e-3, atol=2e-3)
    # a training item is one of its clip's views
    item = served[1]
    assert any(torch.equal(item["features"], v.float()) for v in cache.load(train, 1, views=2))
    assert _extract(cache, train, views=2) == 0  # all on disk


def test_damaged_cache_file_is_recomputed_with_a_warning(tmp_path, clips, backbone):
    dataset = _eval_data(clips)
    cache = FeatureCache(tmp_path / "cache", backbone)
    _extract(cache, dataset)
    good = cache.load(dataset, 1)[0]
    damaged = cache.path(dataset, 1)
    damaged.write_bytes(b"")  # a killed disk, a zero-byte file
    with pytest.warns(UserWarning, match=f"{damaged.name}.*clip1.avi.*damaged"):
        served = cache.feature_dataset(dataset, progress=False)
    assert damaged.stat().st_size > 0  # rewritten
    torch.testing.assert_close(served[1]["features"], good.float())
    torch.testing.assert_close(cache.load(dataset, 1)[0], good)


def test_corrupt_video_gets_an_error_entry_and_is_skipped(tmp_path, clips, backbone):
    bad = tmp_path / "videos" / "corrupt.mp4"
    bad.write_bytes(os.urandom(3000))
    records = [clips[0], ClipRecord(video=str(bad), label="a"), clips[1]]
    dataset = _eval_data(records)
    cache = FeatureCache(tmp_path / "cache", backbone)
    with pytest.warns(UserWarning, match="corrupt.mp4"):
        done = _extract(cache, dataset)
    assert done == 2
    assert len(_files(tmp_path / "cache")) == 3  # the error is recorded, not retried every epoch
    loaded = [cache.load(dataset, i) for i in range(3)]
    assert isinstance(loaded[1], str) and loaded[1]  # the reason
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _extract(cache, dataset) == 0  # not decoded again

    ds = FeatureDataset(records, loaded, class_to_idx={"a": 0}, vocab=None)
    item = ds[1]
    assert item["skipped"] == SkippedClip(str(bad), loaded[1]) and item["index"] == 1
    batch = collate_clips([ds[i] for i in range(3)])
    assert batch["size"] == 2
    assert batch["features"].shape == (2, 4, backbone.out_dim)
    assert batch["features"].dtype == torch.float32
    assert batch["label"].tolist() == [0, 0]
    assert batch["video"] == [clips[0].video, clips[1].video]
    assert len(batch["skipped"]) == 1 and batch["skipped"][0].video == str(bad)
    assert batch["skipped_index"] == [1]
    assert str(batch["skipped"][0]) == f"{bad}: {loaded[1]}"


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_ranks_split_the_work_whatever_the_timing(tmp_path, clips, backbone, order):
    # Under DDP one rank may finish before another even looks at the cache: the shares
    # must not depend on what is already on disk (no clip missed, none done twice).
    dataset = _eval_data(clips)
    cache = FeatureCache(tmp_path / "cache", backbone)
    done = {rank: _extract(cache, dataset, rank=rank, world_size=2) for rank in order}
    assert done == {0: 2, 1: 1}  # clips 0, 2 and clip 1
    assert all(isinstance(cache.load(dataset, i), list) for i in range(len(clips)))
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


def test_fine_tuned_backbone_decodes_frames_despite_cache_dir(tmp_path, tiny_dataset, debug_args):
    from vidrec.training.cli import cli_main

    cache_dir = tmp_path / "cache"
    with pytest.warns(UserWarning, match="feature cache disabled: the backbone is being fine-tuned"):
        cli = cli_main(
            [
                "fit",
                *debug_args(tmp_path / "run", tiny_dataset),
                "--data.cache_dir", str(cache_dir),
                "--model.trainable_layers", "1",
                "--trainer.max_epochs", "1",
                "--trainer.limit_train_batches", "1",
                "--trainer.limit_val_batches", "1",
            ]
        )
    assert cli.trainer.global_step == 1
    assert isinstance(cli.datamodule.datasets["train"], ClipDataset)
    assert not _files(cache_dir)


def test_extraction_runs_the_backbone_in_full_precision_on_cpu_and_mixed_on_gpu():
    from vidrec.training.features import extraction_autocast

    with extraction_autocast("cpu"):
        assert not torch.is_autocast_enabled("cuda") and not torch.is_autocast_enabled("cpu")
    if torch.cuda.is_available():  # only where a GPU is lent: CI runs on CPU
        with extraction_autocast("cuda"):
            assert torch.is_autocast_enabled("cuda")
            assert torch.get_autocast_dtype("cuda") in (torch.bfloat16, torch.float16)
