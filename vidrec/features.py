"""Extract backbone features once and cache them on disk (float16).

A frozen backbone gives the same features for the same frames every epoch, so decoding and
running the CNN again is wasted work. The cache key covers everything that changes those
features: the video file (path, size, mtime), its time range, the backbone (name, weights,
pooling), the sampling (strategy, frame count, stride), the transform, and the view number.
Change any of them and the features are recomputed — never silently reused.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import DataLoader

from vidrec.data.datasets import ClipDataset, collate_clips
from vidrec.data.manifest import ClipRecord
from vidrec.models.backbone import FrozenBackbone

__all__ = ["FeatureCache"]


class FeatureCache:
    """Feature files under ``root/<backbone key>/``; one ``.pt`` per (clip, setting, view).

    ``setting`` is a string describing sampling + transform (+ train/eval), built by the
    datamodule from the real objects (``repr`` of the transform), so any change shows.
    """

    def __init__(self, root: str | os.PathLike, backbone: FrozenBackbone):
        if not backbone.frozen:
            raise ValueError("features of a backbone being fine-tuned change every step: disable the cache")
        self.backbone = backbone
        self.root = Path(root) / backbone.cache_key()

    def path(self, record: ClipRecord, setting: str, view: int = 0) -> Path:
        try:
            st = os.stat(record.video)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        text = f"{os.path.abspath(record.video)}|{stamp}|{record.start}|{record.end}|{setting}|{view}"
        return self.root / (hashlib.sha1(text.encode()).hexdigest() + ".pt")

    def load(self, record: ClipRecord, setting: str, views: int = 1) -> list[torch.Tensor] | str | None:
        """Cached views of a clip (each (T, D) float16), the decode error, or None if not cached."""
        out = []
        for v in range(views):
            p = self.path(record, setting, v)
            if not p.exists():
                return None
            item = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(item, dict) and "error" in item:
                return item["error"]
            out.append(item["features"])
        return out

    @torch.no_grad()
    def extract(
        self,
        records: Sequence[ClipRecord],
        dataset: ClipDataset,
        setting: str,
        views: int = 1,
        batch_size: int = 16,
        num_workers: int = 0,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
        progress: bool = True,
    ) -> int:
        """Compute and save features for this rank's share of the uncached clips.

        ``dataset`` decodes ``records`` (same order) with the setting's sampling/transform.
        Returns how many clips this rank extracted. Clips whose video fails to decode get
        an error entry, so they are skipped (and reported) without being retried each epoch.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # Under DDP each rank extracts its own share. Split *before* looking at what is cached:
        # the others are writing files meanwhile, so a rank that looked later would see a
        # shorter list, and its share of it would shift (clips missed by all, or done twice).
        todo = [(i, v) for i in range(len(records)) for v in range(views)][rank::world_size]
        todo = [(i, v) for i, v in todo if not self.path(records[i], setting, v).exists()]
        if not todo:
            return 0
        self.backbone.to(device).eval()
        done = 0
        for view in range(views):
            indices = [i for i, v in todo if v == view]
            if not indices:
                continue
            dataset.epoch = view  # a seeded dataset draws a different augmentation per view
            loader = DataLoader(
                torch.utils.data.Subset(dataset, indices),
                batch_size=batch_size,
                num_workers=num_workers,
                collate_fn=collate_clips,
            )
            it = loader
            if progress:
                from tqdm.auto import tqdm

                it = tqdm(loader, desc=f"extracting features (view {view + 1}/{views})", leave=False)
            for batch in it:
                for i, err in zip(batch["skipped_index"], batch["skipped"]):
                    warnings.warn(f"skipping clip: {err}", stacklevel=2)
                    self._save(self.path(records[i], setting, view), {"error": err})
                if not batch["size"]:
                    continue
                feats = self.backbone(batch["frames"].to(device))  # (B, T, D)
                for j, i in enumerate(batch["index"]):  # dataset indices, i.e. into ``records``
                    self._save(self.path(records[i], setting, view), {"features": feats[j].half().cpu()})
                done += batch["size"]
        return done

    @staticmethod
    def _save(path: Path, item: dict) -> None:
        # Write then rename: a killed run never leaves a half-written file that looks cached.
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(item, tmp)
        os.replace(tmp, path)
