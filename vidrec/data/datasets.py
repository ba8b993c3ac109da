"""Datasets that return dicts: ``ClipDataset`` decodes frames, ``FeatureDataset`` reads cached features
held in memory, ``FeatureStream`` streams them from a sharded store (an ``IterableDataset``).

A clip whose video fails to decode is not an exception that kills the epoch: the dataset
warns with the file's name and returns an item holding a ``SkippedClip(video, reason)``,
which ``collate_clips`` drops from the batch and lists in ``batch["skipped"]`` so the
training loop can count and report it.
"""

from __future__ import annotations

import copy
import warnings
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from vidrec.data.clips import ClipSpec, SkippedClip, read_clip, read_views
from vidrec.data.decode import VideoDecodeError
from vidrec.data.manifest import ClipRecord
from vidrec.data.vocab import Vocab

__all__ = ["ClipDataset", "FeatureDataset", "FeatureStream", "collate_clips", "label_index"]


def label_index(record: ClipRecord, class_to_idx: dict[str, int] | None) -> int:
    """Class index of a record, -1 when it has no label (or no class list)."""
    if record.label is None or not class_to_idx:
        return -1
    try:
        return class_to_idx[record.label]
    except KeyError:
        raise ValueError(f"{record.video}: label {record.label!r} is not in the class list") from None


def skipped_item(record: ClipRecord, index: int, reason: str) -> dict:
    """The item a dataset returns for a clip it cannot load (``collate_clips`` drops it)."""
    return {"skipped": SkippedClip(record.video, reason, record.source), "index": index}


class _CaptionMixin:
    vocab: Vocab | None
    max_caption_len: int
    train: bool

    def _caption_ids(self, record: ClipRecord, rng: np.random.Generator) -> list[int]:
        # Training sees a random reference each time (all references get learnt); evaluation
        # uses the first one so the validation loss is deterministic.
        if self.vocab is None or not record.captions:
            return []
        caption = record.captions[int(rng.integers(len(record.captions)))] if self.train else record.captions[0]
        return self.vocab.encode(caption, self.max_caption_len)


class ClipDataset(_CaptionMixin, Dataset):
    """Decodes the ``spec``'s T sampled frames per clip and applies ``transform``.

    Item: ``frames`` float (T, 3, S, S), ``label`` int (-1 if none), ``captions`` list[str],
    ``caption_ids`` list[int], ``video`` str, ``index`` int; and ``motion`` (flow images
    (T, 3, S, S) or flow statistics (T, 63)) when the spec asks for a data-side motion input.

    For evaluation with ``views`` > 1, or a ``transform`` that crops several times
    (``three_crop_transform``), ``frames`` holds every view: (N, T, 3, S, S), and ``motion``
    too: (N, T, ...), each view's computed between its own sampled frames.

    ``epoch`` mixes into a seeded dataset's random draws, so epochs (and the feature
    cache's augmented views, see ``for_view``) differ while a run still reproduces.
    """

    def __init__(
        self,
        records: Sequence[ClipRecord],
        spec: ClipSpec,
        transform: Callable,
        train: bool = False,
        class_to_idx: dict[str, int] | None = None,
        vocab: Vocab | None = None,
        max_caption_len: int = 20,
        seed: int | None = None,
        epoch: int = 0,
        views: int = 1,
    ):
        if views > 1 and train:
            raise ValueError("test views are for evaluation; training samples one clip at a time")
        self.records = list(records)
        self.views = views
        self.spec, self.transform, self.train = spec, transform, train
        self.class_to_idx, self.vocab = class_to_idx, vocab
        self.max_caption_len, self.seed, self.epoch = max_caption_len, seed, epoch

    def for_view(self, view: int) -> "ClipDataset":
        """The same dataset drawing view ``view``'s augmentation (a seeded dataset's epoch)."""
        other = copy.copy(self)  # shares records and transform; only the epoch differs
        other.epoch = view
        return other

    def __len__(self) -> int:
        return len(self.records)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            # Drawn from torch's generator, which Lightning's seed_everything seeds and each
            # DataLoader worker re-seeds: runs reproduce, epochs and workers still differ.
            return np.random.default_rng(int(torch.randint(2**62, ()).item()))
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        rng = self._rng(index)
        if self.seed is not None:
            # torchvision's random transforms draw from torch's global generator.
            torch.manual_seed(int(rng.integers(2**31)))
        try:
            if self.views > 1:  # (N, T, 3, S, S) [+ motion (N, T, ...)], each view's motion from its own frames
                loaded = read_views(record.video, self.spec, self.transform, self.views, start=record.start, end=record.end)
            else:  # (T, 3, S, S); a cropping transform gives its crops as views: (C, T, 3, S, S), motion too
                loaded = read_clip(
                    record.video, self.spec, self.transform, start=record.start, end=record.end, train=self.train, rng=rng
                )
            clip, motion = loaded.frames, loaded.motion
        except VideoDecodeError as e:
            item = skipped_item(record, index, e.reason)
            warnings.warn(f"skipping clip: {item['skipped']}", stacklevel=2)
            return item
        return {
            **({"motion": motion} if motion is not None else {}),
            "frames": clip,
            "label": label_index(record, self.class_to_idx),
            "captions": list(record.captions),
            "caption_ids": self._caption_ids(record, rng),
            "video": record.video,
            "index": index,
        }


class FeatureDataset(_CaptionMixin, Dataset):
    """Backbone features from the cache: ``features`` float (T, D) instead of ``frames``.

    ``views[i]`` holds one or more cached feature tensors (K augmented views) for record i,
    or the reason (a string) its video failed to decode at extraction time.
    """

    def __init__(
        self,
        records: Sequence[ClipRecord],
        views: Sequence[list[torch.Tensor] | str],
        train: bool = False,
        class_to_idx: dict[str, int] | None = None,
        vocab: Vocab | None = None,
        max_caption_len: int = 20,
    ):
        if len(records) != len(views):
            raise ValueError("one list of views per record")
        self.records, self.views, self.train = list(records), list(views), train
        self.class_to_idx, self.vocab, self.max_caption_len = class_to_idx, vocab, max_caption_len

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        return self.item(index, self.views[index])

    def item(
        self, index: int, views: Sequence[torch.Tensor] | torch.Tensor | str, rng: np.random.Generator | None = None
    ) -> dict:
        """The item of record ``index`` from its K views (a list, or a (K, T, D) tensor) or its decode error.

        ``rng`` draws the training view and reference caption (default: from torch's generator).
        """
        record = self.records[index]
        if isinstance(views, str):
            return skipped_item(record, index, views)
        if rng is None:
            rng = np.random.default_rng(int(torch.randint(2**62, ()).item()))  # seeded by seed_everything
        view = views[int(rng.integers(len(views)))] if self.train else views[0]
        return {
            "features": view.float(),  # (T, D)
            "label": label_index(record, self.class_to_idx),
            "captions": list(record.captions),
            "caption_ids": self._caption_ids(record, rng),
            "video": record.video,
            "index": index,
        }


class FeatureStream(IterableDataset):
    """``FeatureDataset``'s items, streamed: for datasets whose features do not fit in memory.

    ``source`` yields ``{"index": record index, "features": (K, T, D) float16, "error": str}``
    (a LitData ``StreamingDataset`` over a feature store, which splits the items across DDP
    ranks and DataLoader workers, and shuffles them; it has ``set_epoch``, ``set_batch_size``
    and ``set_num_workers``). Labels and captions come from
    ``records`` by that index, so only the features travel; an item with an ``error`` is a
    skipped item, as in ``FeatureDataset``. ``len`` is this rank's share.
    """

    def __init__(
        self,
        records: Sequence[ClipRecord],
        source: IterableDataset,
        train: bool = False,
        class_to_idx: dict[str, int] | None = None,
        vocab: Vocab | None = None,
        max_caption_len: int = 20,
    ):
        # A FeatureDataset without features: it turns (index, views) into the item.
        self.items = FeatureDataset(records, [""] * len(records), train, class_to_idx, vocab, max_caption_len)
        self.records, self.source, self.train = self.items.records, source, train

    def __len__(self) -> int:
        return len(self.source)

    def set_loader(self, batch_size: int, num_workers: int) -> None:
        """How the DataLoader batches it: the source splits items so each worker's share is whole batches."""
        self.source.set_batch_size(batch_size)
        self.source.set_num_workers(num_workers)

    def set_epoch(self, epoch: int) -> None:
        """Shuffle for ``epoch`` (call before iterating: an iterable dataset has no sampler for Lightning to tell)."""
        self.source.set_epoch(epoch)

    def __iter__(self):
        for raw in self.source:
            index = int(raw["index"])
            yield self.items.item(index, raw["error"] or raw["features"])  # features (K, T, D) -> item (T, D)


def collate_clips(items: list[dict]) -> dict:
    """Stack good items; failed ones go to ``skipped`` as ``SkippedClip``s.

    Batch: ``frames`` (B, T, 3, H, W) [+ ``motion``] or ``features`` (B, T, D), ``label`` (B,),
    ``caption_ids`` (B, L) padded with 0 (empty rows are all padding), ``captions``,
    ``video``, ``index`` lists; ``skipped`` and ``skipped_index`` lists; ``size`` = B.
    """
    good = [it for it in items if "skipped" not in it]
    bad = [it for it in items if "skipped" in it]
    batch: dict = {"skipped": [it["skipped"] for it in bad], "skipped_index": [it["index"] for it in bad], "size": len(good)}
    if not good:
        return batch
    key = "features" if "features" in good[0] else "frames"
    batch[key] = torch.stack([it[key] for it in good])
    if "motion" in good[0]:
        batch["motion"] = torch.stack([it["motion"] for it in good])  # (B, [N,] T, 3, S, S) or (B, [N,] T, 63)
    batch["label"] = torch.tensor([it["label"] for it in good], dtype=torch.long)
    # At least 2 columns: the decoder reads ids[:, :-1] and predicts ids[:, 1:].
    batch["caption_ids"] = Vocab.pad_batch([it["caption_ids"] for it in good], min_length=2)
    for k in ("captions", "video", "index"):
        batch[k] = [it[k] for it in good]
    return batch
