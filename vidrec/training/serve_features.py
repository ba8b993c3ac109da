"""Switch a datamodule's clip datasets to frozen-backbone features: per-clip files or a sharded store."""

from __future__ import annotations

import warnings

from vidrec.data.datasets import ClipDataset
from vidrec.models.backbone import FrozenBackbone
from vidrec.training.feature_store import FeatureStore
from vidrec.training.features import FeatureCache

__all__ = ["serve_cached_features"]


def serve_cached_features(trainer, backbone: FrozenBackbone, datamodule, stage: str | None) -> None:
    """Switch the datamodule's datasets for ``stage`` to cached backbone features.

    Called from the LightningModule's ``setup`` (after the datamodule's): only the training
    code holds both the backbone and the data. Does nothing without ``cache_dir``. A backbone
    being fine-tuned changes its features every step, so its frames are decoded every epoch.
    ``datamodule.feature_store`` picks the layout: ``files`` (``FeatureCache``: one file per
    clip, all loaded into memory) or ``shards`` (``FeatureStore``: chunks streamed per batch).
    """
    if getattr(datamodule, "cache_dir", None) is None:
        return
    if not backbone.frozen:
        warnings.warn("feature cache disabled: the backbone is being fine-tuned (trainable_layers > 0)")
        return
    shards = getattr(datamodule, "feature_store", "files") == "shards"
    strategy = trainer.strategy
    for name in datamodule.stages(stage):
        dataset = datamodule.datasets.get(name)
        if not isinstance(dataset, ClipDataset):  # no manifest, or already served from the cache
            continue
        augmented = name == "train" and datamodule.cache_train_views > 0
        if name == "train" and not augmented:
            dataset = datamodule.clip_dataset(dataset.records, train=False)  # evaluation-style features
        kw = dict(
            views=datamodule.cache_train_views if augmented else 1,
            train=name == "train",
            batch_size=datamodule.extract_batch_size,  # not the training batch: see VideoDataModule
            num_workers=datamodule.num_workers,
            device=strategy.root_device,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            barrier=lambda: strategy.barrier("vidrec-feature-cache"),
        )
        if shards:
            # The same seed on every rank: they must agree on each epoch's order to split it.
            seed = datamodule.seed if datamodule.seed is not None else 0
            features = FeatureStore(datamodule.cache_dir, backbone).feature_dataset(dataset, seed=seed, **kw)
        else:
            features = FeatureCache(datamodule.cache_dir, backbone).feature_dataset(dataset, **kw)
        datamodule.use_dataset(name, features)
