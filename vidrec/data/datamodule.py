"""VideoDataModule: manifests -> DataLoaders of frame (or cached feature) batches.

The class list and the caption vocabulary come from the training manifest at construction
time, so LightningCLI can link ``data.classes`` and ``data.vocab`` into the model before
either is built.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from vidrec.data.datasets import ClipDataset, FeatureDataset, collate_clips
from vidrec.data.decode import Backend
from vidrec.data.manifest import ClipRecord, read_classes, read_manifest
from vidrec.data.sampling import Strategy
from vidrec.data.transforms import IMAGENET, Normalization, eval_transform, train_transform
from vidrec.data.vocab import Vocab

__all__ = ["VideoDataModule"]

Stage = Literal["train", "val", "test", "predict"]


class VideoDataModule(pl.LightningDataModule):
    """Loads clips listed in canonical manifests (``.jsonl`` or ``.csv``).

    Args:
        train_manifest / val_manifest / test_manifest / predict_manifest: manifest paths.
        classes_file: ``classes.txt`` fixing class order; default: a ``classes.txt`` beside
            the training manifest if there is one, else the sorted set of training labels.
        num_frames, sampling, stride: how frames are picked (see ``vidrec.data.sampling``).
        frame_size: crop size fed to the backbone; ``resize``: eval short side.
        hflip: random horizontal flips in training. Turn off when classes differ by
            direction (left/right), since a flip swaps them.
        color_jitter: strength of random colour jitter in training (0 = off).
        balanced_sampling: draw training clips with probability 1/frequency of their class.
        cache_dir: cache frozen-backbone features here (``None`` = decode every epoch).
        cache_train_views: with the cache, how many augmented views per training clip
            (0 = train on the evaluation-style features, i.e. augmentation off).
    """

    def __init__(
        self,
        train_manifest: str | None = None,
        val_manifest: str | None = None,
        test_manifest: str | None = None,
        predict_manifest: str | None = None,
        classes_file: str | None = None,
        num_frames: int = 8,
        sampling: Strategy = "segment",
        stride: int = 1,
        frame_size: int = 112,
        resize: int | None = None,
        hflip: bool = True,
        color_jitter: float = 0.0,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        backend: Backend = "decord",
        batch_size: int = 16,
        num_workers: int = 2,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        balanced_sampling: bool = False,
        caption_min_count: int = 1,
        max_caption_len: int = 20,
        cache_dir: str | None = None,
        cache_train_views: int = 0,
        seed: int | None = None,
    ):
        super().__init__()
        # Saved into checkpoints: inference needs the same frames, size and sampling.
        self.save_hyperparameters()
        self.manifests = {"train": train_manifest, "val": val_manifest, "test": test_manifest, "predict": predict_manifest}
        self.num_frames, self.sampling, self.stride = num_frames, sampling, stride
        self.frame_size, self.resize, self.hflip, self.color_jitter = frame_size, resize, hflip, color_jitter
        self.crop_scale, self.backend = tuple(crop_scale), backend
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.balanced_sampling, self.max_caption_len = balanced_sampling, max_caption_len
        self.cache_dir, self.cache_train_views, self.seed = cache_dir, cache_train_views, seed
        self.normalization: Normalization = IMAGENET
        self.records: dict[str, list[ClipRecord]] = {}
        self.datasets: dict[str, torch.utils.data.Dataset] = {}
        self.skipped: dict[str, list[str]] = {}

        train = self._records("train")
        self.classes = self._class_list(classes_file, train)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        captions = [c for r in train for c in r.captions]
        self.vocab = Vocab.build(captions, caption_min_count) if captions else None

    # -- what the model needs to know, linked by LightningCLI ---------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def vocab_tokens(self) -> list[str] | None:
        return self.vocab.itos if self.vocab is not None else None

    def _records(self, stage: Stage) -> list[ClipRecord]:
        if stage not in self.records:
            path = self.manifests[stage]
            self.records[stage] = read_manifest(path) if path else []
        return self.records[stage]

    def _class_list(self, classes_file: str | None, train: list[ClipRecord]) -> list[str]:
        if classes_file is None and self.manifests["train"]:
            beside = Path(self.manifests["train"]).parent / "classes.txt"
            classes_file = str(beside) if beside.is_file() else None
        if classes_file:
            classes = read_classes(classes_file)
            unknown = sorted({r.label for r in train if r.label is not None} - set(classes))
            if unknown:
                raise ValueError(f"{self.manifests['train']}: labels not in {classes_file}: {unknown[:5]}")
            return classes
        return sorted({r.label for r in train if r.label is not None})

    # -- datasets ------------------------------------------------------------------------
    def _transform(self, train: bool):
        if train:
            return train_transform(self.frame_size, self.normalization, self.crop_scale, self.hflip, self.color_jitter)
        return eval_transform(self.frame_size, self.normalization, self.resize)

    def clip_dataset(self, records: list[ClipRecord], train: bool) -> ClipDataset:
        return ClipDataset(
            records,
            self._transform(train),
            num_frames=self.num_frames,
            sampling=self.sampling,
            train=train,
            class_to_idx=self.class_to_idx,
            vocab=self.vocab,
            backend=self.backend,
            stride=self.stride,
            max_caption_len=self.max_caption_len,
            seed=self.seed,
        )

    def cache_setting(self, train: bool) -> str:
        """What the cached features depend on besides video and backbone (for the key)."""
        mode = "train" if train else "eval"
        return f"{mode}|{self.sampling}|T={self.num_frames}|stride={self.stride}|seed={self.seed}|{self._transform(train)!r}"

    def setup(self, stage: str | None = None) -> None:
        backbone = None
        if self.trainer is not None and self.trainer.lightning_module is not None:
            backbone = self.trainer.lightning_module.net.backbone
            self.normalization = backbone.normalization
        stages: list[Stage] = {"fit": ["train", "val"], "validate": ["val"], "test": ["test"], "predict": ["predict"]}.get(
            stage or "", ["train", "val", "test", "predict"]
        )
        for name in stages:
            records = self._records(name)
            if not records or name in self.datasets:
                continue
            use_cache = self.cache_dir is not None and backbone is not None and backbone.frozen
            if self.cache_dir is not None and backbone is not None and not backbone.frozen:
                warnings.warn("feature cache disabled: the backbone is being fine-tuned (trainable_layers > 0)")
            self.datasets[name] = self._cached_dataset(name, records, backbone) if use_cache else self.clip_dataset(
                records, train=name == "train"
            )

    def _cached_dataset(self, name: Stage, records: list[ClipRecord], backbone) -> FeatureDataset:
        from vidrec.features import FeatureCache

        cache = FeatureCache(self.cache_dir, backbone)
        augmented = name == "train" and self.cache_train_views > 0
        setting, views = self.cache_setting(train=augmented), max(self.cache_train_views, 1) if augmented else 1
        strategy = self.trainer.strategy
        device = strategy.root_device
        cache.extract(
            records,
            self.clip_dataset(records, train=augmented),
            setting,
            views=views,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            device=device,
            rank=self.trainer.global_rank,
            world_size=self.trainer.world_size,
        )
        strategy.barrier("vidrec-feature-cache")  # every rank's share is on disk before anyone reads
        loaded = [cache.load(r, setting, views) for r in records]
        missing = [r.video for r, v in zip(records, loaded) if v is None]
        if missing:
            raise RuntimeError(f"feature cache incomplete after extraction, e.g. {missing[0]}")
        return FeatureDataset(records, loaded, train=name == "train", class_to_idx=self.class_to_idx, vocab=self.vocab,
                              max_caption_len=self.max_caption_len)

    # -- loaders -------------------------------------------------------------------------
    def _loader(self, name: Stage, shuffle: bool) -> DataLoader:
        if name not in self.datasets:
            self.setup({"train": "fit", "val": "validate"}.get(name, name))
        if name not in self.datasets:
            raise ValueError(f"no {name} manifest given (--data.{name}_manifest)")
        dataset = self.datasets[name]
        sampler = None
        if name == "train" and self.balanced_sampling:
            labels = [r.label for r in dataset.records]
            counts = Counter(labels)
            weights = torch.tensor([1.0 / counts[label] for label in labels], dtype=torch.double)
            sampler, shuffle = WeightedRandomSampler(weights, num_samples=len(labels), replacement=True), False
        cached = isinstance(dataset, FeatureDataset)
        workers = 0 if cached else self.num_workers  # features are in memory: workers only add start-up cost
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers and workers > 0,
            collate_fn=collate_clips,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", shuffle=False)
