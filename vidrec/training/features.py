"""Extract backbone features once and cache them on disk (float16).

A frozen backbone gives the same features for the same frames every epoch, so decoding and
running the CNN again is wasted work. The cache key covers everything that changes those
features, and this file alone assembles it: the video file (path, size, mtime), its time
range, the backbone (name, weights, pooling, blocks), the clip spec (sampling, frame count,
stride), the transform, train/eval and seed, and the view number. Change any of them and the
features are recomputed — never silently reused. A damaged cache file (a killed disk, a
zero-byte file) is recomputed with a warning naming it.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from vidrec.data.datasets import ClipDataset, FeatureDataset, collate_clips
from vidrec.data.motion import reads_frames
from vidrec.models.backbone import FrozenBackbone
from vidrec.models.net import frame_features

__all__ = ["FeatureCache", "backbone_key", "serve_cached_features"]


def backbone_key(backbone: FrozenBackbone) -> str:
    """Identity of the features a backbone produces: architecture, weights (file stamp), pooling, cut."""
    weights = backbone.weights
    if weights.lower() not in ("default", "none") and os.path.isfile(weights):
        st = os.stat(weights)
        weights = f"{os.path.abspath(weights)}:{st.st_size}:{st.st_mtime_ns}"
    text = f"{backbone.name}|{weights}|{backbone.spatial_pooling}|{backbone.grid}|{backbone.backbone_blocks}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _setting(dataset: ClipDataset) -> str:
    """What a dataset does to a video before the backbone: train/eval, sampling, seed, transform."""
    spec = dataset.spec
    mode = "train" if dataset.train else "eval"
    # Absent at their defaults, so caches written before these settings existed stay valid.
    views = f"|views={dataset.views}" if dataset.views > 1 else ""
    views += f"|motion={spec.motion}" if reads_frames(spec.motion) else ""
    return f"{mode}|{spec.sampling}|T={spec.num_frames}|stride={spec.stride}|seed={dataset.seed}{views}|{dataset.transform!r}"


class FeatureCache:
    """Feature files under ``root/<backbone key>/``; one ``.pt`` per (clip, setting, view)."""

    def __init__(self, root: str | os.PathLike, backbone: FrozenBackbone):
        if not backbone.frozen:
            raise ValueError("features of a backbone being fine-tuned change every step: disable the cache")
        self.backbone = backbone
        self.root = Path(root) / backbone_key(backbone)

    def path(self, dataset: ClipDataset, index: int, view: int = 0) -> Path:
        """The file holding view ``view`` of clip ``index`` of ``dataset``."""
        record = dataset.records[index]
        try:
            st = os.stat(record.video)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:  # missing, or a name the file system refuses: the decode error is cached
            stamp = "missing"
        text = f"{os.path.abspath(record.video)}|{stamp}|{record.start}|{record.end}|{_setting(dataset)}|{view}"
        return self.root / (hashlib.sha1(text.encode()).hexdigest() + ".pt")

    def load(self, dataset: ClipDataset, index: int, views: int = 1) -> list[torch.Tensor] | str | None:
        """Cached views of a clip (each (T, D) float16), its decode error, or None if not (validly) cached.

        A file that cannot be read is removed with a warning naming it, so the next
        ``extract`` recomputes it instead of every later run failing on it.
        """
        out = []
        for v in range(views):
            p = self.path(dataset, index, v)
            if not p.exists():
                return None
            try:
                item = torch.load(p, map_location="cpu", weights_only=True)
                if isinstance(item, dict) and "error" in item:
                    return str(item["error"])
                out.append(item["features"])
            except Exception as e:  # truncated, zero bytes, foreign: torch raises several types
                warnings.warn(
                    f"feature cache file {p} (for {dataset.records[index].video}) is damaged "
                    f"({type(e).__name__}); recomputing it",
                    stacklevel=2,
                )
                p.unlink(missing_ok=True)
                return None
        return out

    @torch.no_grad()
    def extract(
        self,
        dataset: ClipDataset,
        views: int = 1,
        batch_size: int = 16,
        num_workers: int = 0,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
        progress: bool = True,
    ) -> int:
        """Compute and save features for this rank's share of the uncached clips of ``dataset``.

        View ``v`` is ``dataset.for_view(v)``: a seeded training dataset draws a different
        augmentation per view. Returns how many clip views this rank extracted. Clips whose
        video fails to decode get an error entry, so they are skipped (and reported) without
        being retried each epoch.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # Under DDP each rank extracts its own share. Split *before* looking at what is cached:
        # the others are writing files meanwhile, so a rank that looked later would see a
        # shorter list, and its share of it would shift (clips missed by all, or done twice).
        todo = [(i, v) for i in range(len(dataset)) for v in range(views)][rank::world_size]
        todo = [(i, v) for i, v in todo if not self.path(dataset, i, v).exists()]
        if not todo:
            return 0
        self.backbone.to(device).eval()
        done = 0
        for view in range(views):
            indices = [i for i, v in todo if v == view]
            if not indices:
                continue
            view_data = dataset.for_view(view)
            loader = DataLoader(
                torch.utils.data.Subset(view_data, indices),
                batch_size=batch_size,
                num_workers=num_workers,
                collate_fn=collate_clips,
            )
            it = loader
            if progress:
                from tqdm.auto import tqdm

                it = tqdm(loader, desc=f"extracting features (view {view + 1}/{views})", leave=False)
            for batch in it:
                for i, skipped in zip(batch["skipped_index"], batch["skipped"]):
                    warnings.warn(f"skipping clip: {skipped}", stacklevel=2)
                    self._save(self.path(dataset, i, view), {"error": skipped.reason})
                if not batch["size"]:
                    continue
                frames = batch["frames"].to(device)  # (B, T, 3, S, S), or (B, N, T, 3, S, S) with test views
                lead = frames.shape[:-4]
                motion = batch["motion"].to(device) if "motion" in batch else None  # one view only
                feats = frame_features(self.backbone, frames.flatten(0, len(lead) - 1), motion, dataset.spec.motion)
                feats = feats.unflatten(0, lead)  # (B, [N,] T, D [+ M])
                for j, i in enumerate(batch["index"]):  # dataset indices
                    self._save(self.path(dataset, i, view), {"features": feats[j].half().cpu()})
                done += batch["size"]
        return done

    def feature_dataset(self, dataset: ClipDataset, views: int = 1, train: bool | None = None, **extract_kw) -> FeatureDataset:
        """``dataset`` served from the cache: extracts what is missing (or damaged) first.

        ``train`` (default: ``dataset.train``) makes the feature dataset draw a random view
        and reference caption per item. Under DDP call it on every rank with ``rank`` and
        ``world_size`` in ``extract_kw`` and a ``barrier`` callable: each rank extracts its
        share, then all read everything.
        """
        barrier = extract_kw.pop("barrier", None)
        self.extract(dataset, views, **extract_kw)
        if barrier is not None:
            barrier()  # every rank's share is on disk before anyone reads
        loaded = [self.load(dataset, i, views) for i in range(len(dataset))]
        if any(v is None for v in loaded):  # damaged files were removed: recompute them here
            self.extract(dataset, views, **{**extract_kw, "rank": 0, "world_size": 1})
            loaded = [v if v is not None else self.load(dataset, i, views) for i, v in enumerate(loaded)]
        missing = [dataset.records[i].video for i, v in enumerate(loaded) if v is None]
        if missing:
            raise RuntimeError(f"feature cache incomplete after extraction, e.g. {missing[0]}")
        return FeatureDataset(
            dataset.records, loaded, train=dataset.train if train is None else train, class_to_idx=dataset.class_to_idx, vocab=dataset.vocab,
            max_caption_len=dataset.max_caption_len,
        )

    @staticmethod
    def _save(path: Path, item: dict) -> None:
        # Write then rename: a killed run never leaves a half-written file that looks cached.
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(item, tmp)
        os.replace(tmp, path)


def serve_cached_features(trainer, backbone: FrozenBackbone, datamodule, stage: str | None) -> None:
    """Switch the datamodule's datasets for ``stage`` to cached backbone features.

    Called from the LightningModule's ``setup`` (after the datamodule's): only the training
    code holds both the backbone and the data. Does nothing without ``cache_dir``. A backbone
    being fine-tuned changes its features every step, so its frames are decoded every epoch.
    """
    if getattr(datamodule, "cache_dir", None) is None:
        return
    if not backbone.frozen:
        warnings.warn("feature cache disabled: the backbone is being fine-tuned (trainable_layers > 0)")
        return
    cache = FeatureCache(datamodule.cache_dir, backbone)
    strategy = trainer.strategy
    for name in datamodule.stages(stage):
        dataset = datamodule.datasets.get(name)
        if not isinstance(dataset, ClipDataset):  # no manifest, or already served from the cache
            continue
        augmented = name == "train" and datamodule.cache_train_views > 0
        if name == "train" and not augmented:
            dataset = datamodule.clip_dataset(dataset.records, train=False)  # evaluation-style features
        features = cache.feature_dataset(
            dataset,
            views=datamodule.cache_train_views if augmented else 1,
            train=name == "train",
            batch_size=datamodule.batch_size,
            num_workers=datamodule.num_workers,
            device=strategy.root_device,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            barrier=lambda: strategy.barrier("vidrec-feature-cache"),
        )
        datamodule.use_dataset(name, features)
