"""Datasets that return dicts: ``ClipDataset`` decodes frames, ``FeatureDataset`` reads cached features.

A clip whose video fails to decode is not an exception that kills the epoch: the dataset
warns with the file's name and returns an ``{"video", "error"}`` item, which ``collate_clips``
drops from the batch and reports in ``batch["skipped"]`` so the training loop can count it.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from vidrec.data.decode import Backend, VideoDecodeError, open_video
from vidrec.data.manifest import ClipRecord
from vidrec.data.sampling import Strategy, sample_indices
from vidrec.data.transforms import to_video_tensor
from vidrec.data.vocab import Vocab

__all__ = ["ClipDataset", "FeatureDataset", "collate_clips", "label_index"]


def label_index(record: ClipRecord, class_to_idx: dict[str, int] | None) -> int:
    """Class index of a record, -1 when it has no label (or no class list)."""
    if record.label is None or not class_to_idx:
        return -1
    try:
        return class_to_idx[record.label]
    except KeyError:
        raise ValueError(f"{record.video}: label {record.label!r} is not in the class list") from None


def _frame_range(record: ClipRecord, num_frames: int, fps: float) -> tuple[int, int]:
    """[first, last) frame of the record's time range (whole video when it has none)."""
    first = 0 if record.start is None else min(int(math.floor(record.start * fps)), num_frames - 1)
    last = num_frames if record.end is None else min(max(int(math.ceil(record.end * fps)), first + 1), num_frames)
    return max(first, 0), last


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
    """Decodes ``num_frames`` sampled frames per clip and applies ``transform``.

    Item: ``frames`` float (T, 3, H, W), ``label`` int (-1 if none), ``captions`` list[str],
    ``caption_ids`` list[int], ``video`` str, ``index`` int.
    """

    def __init__(
        self,
        records: Sequence[ClipRecord],
        transform: Callable,
        num_frames: int = 8,
        sampling: Strategy = "segment",
        train: bool = False,
        class_to_idx: dict[str, int] | None = None,
        vocab: Vocab | None = None,
        backend: Backend = "decord",
        stride: int = 1,
        max_caption_len: int = 20,
        seed: int | None = None,
    ):
        self.records = list(records)
        self.transform, self.num_frames, self.sampling, self.train = transform, num_frames, sampling, train
        self.class_to_idx, self.vocab, self.backend, self.stride = class_to_idx, vocab, backend, stride
        self.max_caption_len, self.seed = max_caption_len, seed
        self.epoch = 0  # mixes into the seed so a seeded dataset still varies between epochs

    def __len__(self) -> int:
        return len(self.records)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            # Drawn from torch's generator, which Lightning's seed_everything seeds and each
            # DataLoader worker re-seeds: runs reproduce, epochs and workers still differ.
            return np.random.default_rng(int(torch.randint(2**62, ()).item()))
        return np.random.default_rng([self.seed, self.epoch, index])

    def load_frames(self, record: ClipRecord, rng: np.random.Generator) -> np.ndarray:
        """uint8 (T, H, W, 3) for one record; raises ``VideoDecodeError``."""
        with open_video(record.video, self.backend) as reader:
            if record.start is not None and record.start * reader.fps >= reader.num_frames:
                # Usually a manifest in milliseconds or frames: say so instead of training on the last frame.
                raise VideoDecodeError(
                    record.video, f"start {record.start}s is past the end of the video ({reader.num_frames / reader.fps:.1f}s)"
                )
            first, last = _frame_range(record, reader.num_frames, reader.fps)
            idx = sample_indices(self.sampling, last - first, self.num_frames, self.train, rng, self.stride) + first
            return reader.get_frames(idx.tolist())

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        rng = self._rng(index)
        if self.seed is not None:
            # torchvision's random transforms draw from torch's global generator.
            torch.manual_seed(int(rng.integers(2**31)))
        try:
            frames = self.load_frames(record, rng)
        except VideoDecodeError as e:
            warnings.warn(f"skipping clip: {e}", stacklevel=2)
            return {"video": record.video, "error": str(e), "index": index}
        clip = self.transform(to_video_tensor(frames))  # (T, 3, H, W)
        return {
            "frames": torch.as_tensor(clip),
            "label": label_index(record, self.class_to_idx),
            "captions": list(record.captions),
            "caption_ids": self._caption_ids(record, rng),
            "video": record.video,
            "index": index,
        }


class FeatureDataset(_CaptionMixin, Dataset):
    """Backbone features from the cache: ``features`` float (T, D) instead of ``frames``.

    ``views[i]`` holds one or more cached feature tensors (K augmented views) for record i,
    or ``None`` / an error string when its video failed to decode at extraction time.
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
        record, views = self.records[index], self.views[index]
        if isinstance(views, str):
            return {"video": record.video, "error": views, "index": index}
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


def collate_clips(items: list[dict]) -> dict:
    """Stack good items; failed ones go to ``skipped`` as "path: reason" strings.

    Batch: ``frames`` (B, T, 3, H, W) or ``features`` (B, T, D), ``label`` (B,),
    ``caption_ids`` (B, L) padded with 0 (empty rows are all padding), ``captions``,
    ``video``, ``index`` lists, ``skipped`` list.
    """
    good = [it for it in items if "error" not in it]
    bad = [it for it in items if "error" in it]
    batch: dict = {"skipped": [it["error"] for it in bad], "skipped_index": [it["index"] for it in bad], "size": len(good)}
    if not good:
        return batch
    key = "features" if "features" in good[0] else "frames"
    batch[key] = torch.stack([it[key] for it in good])
    batch["label"] = torch.tensor([it["label"] for it in good], dtype=torch.long)
    # At least 2 columns: the decoder reads ids[:, :-1] and predicts ids[:, 1:].
    batch["caption_ids"] = Vocab.pad_batch([it["caption_ids"] for it in good], min_length=2)
    for k in ("captions", "video", "index"):
        batch[k] = [it[k] for it in good]
    return batch
