"""VideoDataModule: manifests -> DataLoaders of frame (or cached feature) batches.

The class list and the caption vocabulary come from the training manifest at construction
time, so LightningCLI can link them into the model before either is built. When they are
given instead (evaluating or resuming a checkpoint: the checkpoint's lists win), the
training manifest is not read for them at all, so it need not exist on the machine.

The datamodule never looks at the model. What it needs to know of the backbone (its input
normalisation) is linked in by the CLI when the config is parsed; serving cached features
instead of frames is decided by the training code, which hands over the feature datasets
(``use_dataset``): in memory (``FeatureDataset``) or streamed from a sharded store
(``FeatureStream``, an ``IterableDataset`` that splits itself across ranks and workers; for
training it goes to Lightning in a ``FeatureStreamLoader``, whose position in the epoch every
checkpoint holds, so a run resumed mid-epoch continues the epoch exactly).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from vidrec.data.batch_size import BatchSize, check_batch_size
from vidrec.data.clips import ClipSpec
from vidrec.data.datasets import ClipDataset, FeatureDataset, FeatureStream, collate_clips
from vidrec.data.decode import Backend
from vidrec.data.motion import MotionInput
from vidrec.data.manifest import ClipRecord, ManifestError, check_labels, read_classes, read_manifest
from vidrec.data.sampling import Strategy
from vidrec.data.transforms import IMAGENET, Normalization, three_crop_transform, train_transform
from vidrec.data.vocab import Vocab

__all__ = ["VideoDataModule", "Stage"]

Stage = Literal["train", "val", "test", "predict"]
_DEFAULT = ClipSpec()


class VideoDataModule(pl.LightningDataModule):
    """Loads clips listed in canonical manifests (``.jsonl`` or ``.csv``).

    Args:
        train_manifest / val_manifest / test_manifest / predict_manifest: manifest paths.
        classes_file: ``classes.txt`` fixing class order; default: a ``classes.txt`` beside
            the training manifest if there is one, else the sorted set of training labels.
        classes / vocab: the class list and caption vocabulary, given (a checkpoint's) instead
            of read from the training manifest.
        num_frames, sampling, stride, frame_size, resize, backend, motion, motion_gap, motion_span,
        motion_residual_max:
            the ``ClipSpec`` (``motion`` is linked from the model by the CLI). ``motion_gap``: 0
            measures the motion input between consecutive sampled frames; g > 0 from each
            sampled frame to the frame g later, the same short step in a clip of any length;
            ``auto`` 1 to 4 frames, half the step between samples, reported per frame.
            ``motion_span``: ``gap`` measures that one pair; ``step`` averages the gap-long
            hops from each sampled frame to the next one (up to 8), so the motion of a long
            video's whole step is measured, not only its first frames. ``motion_residual_max``
            (grey levels; None keeps all): a frame pair whose flow does not explain the change
            between its frames by this much (a shot cut, motion too fast for the flow) measures
            no motion, instead of noise that outweighs the step's real motion.
        hflip: random horizontal flips in training. Turn off when classes differ by
            direction (left/right), since a flip swaps them.
        color_jitter: strength of random colour jitter in training (0 = off).
        balanced_sampling: draw training clips with probability 1/frequency of their class.
        test_views: clips per test video, spread over it; their softmax scores are averaged
            (the multi-clip protocol of UCF101 and Kinetics papers). ``test_crops``: 1 (centre
            crop) or 3 (three crops along the long side, each ``frame_size``), averaged too.
        normalization: the backbone's input statistics (linked from the model by the CLI).
        cache_dir: cache frozen-backbone features here (``None`` = decode every epoch).
        extract_batch_size: clips per backbone forward when the cache is filled: ``auto`` (sized
            to the device: the largest that fits in a GPU's memory, or a CPU's best frames per
            forward; see ``vidrec.training.extraction_batch``) or a number. Not ``batch_size``:
            extraction runs no optimiser, so its batch has nothing to do with training's.
        cache_train_views: with the cache, how many augmented views per training clip
            (0 = train on the evaluation-style features, i.e. augmentation off).
        feature_store: how cached features are kept. ``files``: one file per clip, all loaded
            into memory on every rank (fast, for datasets that fit in RAM). ``shards``: LitData
            chunks streamed a few at a time, split across DDP ranks and workers, for datasets
            too large to hold in RAM (Kinetics); ``cache_dir`` may then be a bucket URL to read.
        seed: seeds the training augmentation, and with ``shards`` each epoch's order and the
            view and reference caption drawn for each clip.
    """

    def __init__(
        self,
        train_manifest: str | None = None,
        val_manifest: str | None = None,
        test_manifest: str | None = None,
        predict_manifest: str | None = None,
        classes_file: str | None = None,
        classes: list[str] | None = None,
        vocab: list[str] | None = None,
        num_frames: int = _DEFAULT.num_frames,
        sampling: Strategy = _DEFAULT.sampling,
        stride: int = _DEFAULT.stride,
        frame_size: int = _DEFAULT.frame_size,
        resize: int | None = _DEFAULT.resize,
        hflip: bool = True,
        color_jitter: float = 0.0,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        backend: Backend | None = _DEFAULT.backend,
        motion: MotionInput = _DEFAULT.motion,
        motion_gap: int | Literal["auto"] = _DEFAULT.motion_gap,
        motion_span: Literal["gap", "step"] = _DEFAULT.motion_span,
        motion_residual_max: float | None = _DEFAULT.motion_residual_max,
        batch_size: int = 16,
        num_workers: int = 2,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        balanced_sampling: bool = False,
        test_views: int = 1,
        test_crops: Literal[1, 3] = 1,
        caption_min_count: int = 1,
        max_caption_len: int = 20,
        normalization: Normalization | None = None,
        cache_dir: str | None = None,
        extract_batch_size: BatchSize = "auto",
        cache_train_views: int = 0,
        feature_store: Literal["files", "shards"] = "files",
        seed: int | None = None,
    ):
        super().__init__()
        # Saved into checkpoints: inference needs the same frames, size and sampling. The
        # normalisation, classes and vocabulary are the model's to tell (it saves them).
        self.save_hyperparameters(ignore=["normalization", "classes", "vocab"])
        self.manifests = {"train": train_manifest, "val": val_manifest, "test": test_manifest, "predict": predict_manifest}
        self.spec = ClipSpec(num_frames, sampling, stride, frame_size, resize, backend, motion, motion_gap, motion_span,
                             motion_residual_max)
        self.hflip, self.color_jitter, self.crop_scale = hflip, color_jitter, tuple(crop_scale)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.balanced_sampling, self.max_caption_len = balanced_sampling, max_caption_len
        if test_views < 1 or test_crops not in (1, 3):
            raise ValueError(f"test_views must be >= 1 and test_crops 1 or 3, got {test_views} and {test_crops}")
        self.test_views, self.test_crops = test_views, test_crops
        self.normalization = normalization or IMAGENET
        self.cache_dir, self.cache_train_views, self.seed = cache_dir, cache_train_views, seed
        self.extract_batch_size = check_batch_size(extract_batch_size, "extract_batch_size")
        if feature_store not in ("files", "shards"):
            raise ValueError(f"feature_store must be 'files' or 'shards', got {feature_store!r}")
        if balanced_sampling and feature_store == "shards" and cache_dir is not None:
            # A streamed store is read chunk by chunk in its own order; it cannot draw by class weights.
            raise ValueError("balanced_sampling needs random access to the clips: use feature_store='files' (or no cache_dir)")
        if cache_dir is not None and "://" in cache_dir and feature_store != "shards":
            raise ValueError(f"cache_dir {cache_dir} is a URL: only feature_store='shards' reads features from a bucket")
        self.feature_store = feature_store
        self.records: dict[str, list[ClipRecord]] = {}
        self.datasets: dict[str, Dataset] = {}

        # None = learn it from the training manifest; a list (even empty) = given, e.g. by a checkpoint.
        train = self._read("train") if classes is None or vocab is None else []
        self.classes = list(classes) if classes is not None else self._class_list(classes_file, train)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        if vocab is not None:
            self.vocab: Vocab | None = Vocab(vocab) if vocab else None
        else:
            captions = [c for r in train for c in r.captions]
            self.vocab = Vocab.build(captions, caption_min_count) if captions else None

    # -- what the model needs to know, linked by LightningCLI ---------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def vocab_tokens(self) -> list[str] | None:
        return self.vocab.itos if self.vocab is not None else None

    def _read(self, stage: Stage) -> list[ClipRecord]:
        if stage not in self.records:
            path = self.manifests[stage]
            # A given but empty evaluation manifest is a mistake worth stopping for.
            self.records[stage] = read_manifest(path, allow_empty=stage == "train") if path else []
        return self.records[stage]

    def _records(self, stage: Stage) -> list[ClipRecord]:
        """The stage's clips, their labels checked against the class list (``file:line`` on failure).

        Checked when the stage is set up, before any feature extraction: a typo in a test
        label should cost seconds, not an hour of extraction.
        """
        records = self._read(stage)
        if self.manifests[stage]:
            check_labels(records, self.classes, self.manifests[stage])
        return records

    def _class_list(self, classes_file: str | None, train: list[ClipRecord]) -> list[str]:
        if classes_file is None and self.manifests["train"]:
            beside = Path(self.manifests["train"]).parent / "classes.txt"
            classes_file = str(beside) if beside.is_file() else None
        if classes_file:
            classes = read_classes(classes_file)
            check_labels(train, classes, self.manifests["train"])
            return classes
        return sorted({r.label for r in train if r.label is not None})

    # -- datasets ------------------------------------------------------------------------
    def transform(self, train: bool):
        """The train (augmenting) or eval transform, normalised for the backbone."""
        if train:
            return train_transform(self.spec.frame_size, self.normalization, self.crop_scale, self.hflip, self.color_jitter)
        return self.spec.eval_transform(self.normalization)

    def clip_dataset(self, records: list[ClipRecord], train: bool, test: bool = False) -> ClipDataset:
        """A dataset of ``records``; ``test`` uses the test protocol (``test_views`` x ``test_crops``)."""
        three_crop = test and self.test_crops == 3
        return ClipDataset(
            records,
            self.spec,
            three_crop_transform(self.spec.frame_size, self.normalization) if three_crop else self.transform(train),
            views=self.test_views if test else 1,
            train=train,
            class_to_idx=self.class_to_idx,
            vocab=self.vocab,
            max_caption_len=self.max_caption_len,
            seed=self.seed,
        )

    def stages(self, stage: str | None) -> list[Stage]:
        """The manifests a trainer stage (``fit``, ``validate``, ``test``, ``predict``) reads."""
        return {"fit": ["train", "val"], "validate": ["val"], "test": ["test"], "predict": ["predict"]}.get(
            stage or "", ["train", "val", "test", "predict"]
        )

    def setup(self, stage: str | None = None) -> None:
        for name in self.stages(stage):
            records = self._records(name)
            if records and name not in self.datasets:
                self.datasets[name] = self.clip_dataset(records, train=name == "train", test=name == "test")

    def use_dataset(self, name: Stage, dataset: FeatureDataset | FeatureStream) -> None:
        """Serve ``name`` from ``dataset`` (cached features of the same records) instead of decoding."""
        if [r.video for r in dataset.records] != [r.video for r in self._records(name)]:
            raise ValueError(f"the {name} feature dataset does not hold the {name} manifest's clips")
        self.datasets[name] = dataset

    # -- loaders -------------------------------------------------------------------------
    def _loader(self, name: Stage, shuffle: bool) -> DataLoader:
        if name not in self.datasets:
            self.setup({"train": "fit", "val": "validate"}.get(name, name))
        if name not in self.datasets:
            path = self.manifests[name]
            if path:
                raise ManifestError(f"{path}: manifest has no clips")
            raise ManifestError(f"no {name} manifest given: pass --data.{name}_manifest")
        dataset = self.datasets[name]
        if isinstance(dataset, FeatureStream):
            return self._stream_loader(dataset)
        sampler = None
        if name == "train" and self.balanced_sampling:
            labels = [r.label for r in dataset.records]
            counts = Counter(labels)
            weights = torch.tensor([1.0 / counts[label] for label in labels], dtype=torch.double)
            sampler, shuffle = WeightedRandomSampler(weights, num_samples=len(labels), replacement=True), False
        elif name != "train" and self._evaluation_sampler_needed(len(dataset)):
            # Under DDP Lightning would give val/test a DistributedSampler, which pads the last
            # rank with repeats of the first clips: they were scored twice (test/top1, mean class
            # accuracy, the losses, BLEU/CIDEr of the gathered captions, the val metric that picks
            # the best checkpoint). Each clip once instead; ranks may then take unequal numbers of
            # batches, which evaluation allows (its metrics and logs sync once, at the epoch's end).
            from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler

            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
            )
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

    def _evaluation_sampler_needed(self, clips: int) -> bool:
        """An evaluation loader under DDP with at least one clip per rank (a rank without any
        would miss the epoch-end syncs the others wait in: then Lightning's padding stays)."""
        trainer = self.trainer
        return trainer is not None and trainer.world_size > 1 and clips >= trainer.world_size

    def _stream_loader(self, dataset: FeatureStream) -> DataLoader:
        # No shuffle or sampler: the store shuffles and splits itself across ranks and workers
        # (Lightning injects no DistributedSampler into an IterableDataset's loader). Workers read
        # chunks beside the training step. Not persistent: each epoch's workers take a fresh
        # copy of the dataset, with the epoch's shuffle.
        pin_memory = self.pin_memory and torch.cuda.is_available()
        if dataset.train:
            # LitData's loader, whose position Lightning checkpoints: a run resumed mid-epoch
            # continues the epoch's order (see vidrec.data.stream_loader).
            from vidrec.data.stream_loader import FeatureStreamLoader

            epoch = (lambda: self.trainer.current_epoch) if self.trainer is not None else None
            return FeatureStreamLoader(dataset, self.batch_size, self.num_workers, epoch=epoch, pin_memory=pin_memory)
        dataset.set_loader(self.batch_size, self.num_workers)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=pin_memory,
            collate_fn=collate_clips,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", shuffle=False)
