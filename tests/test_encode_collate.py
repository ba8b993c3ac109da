"""EncodeCollate: the batch a DataLoader worker hands back holds the backbone's features, equal
to running the backbone on the collated frames in the main process (as FeatureCache.extract does)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from vidrec.data.clips import SkippedClip
from vidrec.data.datasets import collate_clips
from vidrec.models.backbone import FrozenBackbone
from vidrec.training.encode_collate import EncodeCollate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def backbone() -> FrozenBackbone:
    # resnet18 at random init: features well away from zero (a random MobileNetV3's are ~1e-9)
    return FrozenBackbone("resnet18", "none")


def _items(n: int, views: int | None = None) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    shape = (views, 4, 3, 32, 32) if views else (4, 3, 32, 32)  # ([N,] T, 3, S, S)
    return [
        {"frames": torch.randn(shape, generator=g), "label": 0, "captions": [], "caption_ids": [], "video": f"v{i}", "index": i}
        for i in range(n)
    ]


@pytest.mark.parametrize("views", [None, 2])
def test_features_equal_the_backbone_on_the_collated_frames(backbone, views):
    items = _items(3, views)
    batch = EncodeCollate(backbone)(items)
    assert "frames" not in batch and batch["index"] == [0, 1, 2]
    frames = collate_clips(items)["frames"]  # (B, [N,] T, 3, S, S)
    with torch.no_grad():
        direct = backbone(frames.flatten(0, 1) if views else frames)  # (B[*N], T, D)
    expected = direct.unflatten(0, (3, views)) if views else direct
    assert batch["features"].shape == (3, *((views,) if views else ()), 4, backbone.out_dim)
    torch.testing.assert_close(batch["features"], expected)


def test_skipped_clips_pass_through(backbone):
    bad = {"skipped": SkippedClip("broken.mp4", "no frames"), "index": 7}
    only_bad = EncodeCollate(backbone)([bad])
    assert only_bad["size"] == 0 and only_bad["skipped_index"] == [7] and "features" not in only_bad
    mixed = EncodeCollate(backbone)([*_items(2), bad])
    assert mixed["size"] == 2 and mixed["features"].shape[0] == 2 and mixed["skipped_index"] == [7]


def test_runs_inside_a_dataloader_worker(backbone):
    items = _items(4)
    loader = DataLoader(items, batch_size=2, num_workers=1, collate_fn=EncodeCollate(backbone))
    got = torch.cat([b["features"] for b in loader])  # (4, T, D), computed in the worker process
    with torch.no_grad():
        direct = backbone(collate_clips(items)["frames"])
    torch.testing.assert_close(got, direct)
