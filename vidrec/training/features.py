"""Extract backbone features once and cache them on disk (float16).

A frozen backbone gives the same features for the same frames every epoch, so decoding and
running the CNN again is wasted work. The cache key covers everything that changes those
features, and this file alone assembles it: the video file (path, size, mtime), its time
range, the backbone (name, weights, pooling, blocks), the clip spec (sampling, frame count,
stride), the transform, train/eval and seed, and the view number. Change any of them and the
features are recomputed — never silently reused. A damaged cache file (a killed disk, a
zero-byte file) is recomputed with a warning naming it.

Two layouts share that key and one extraction loop (``extract_views``): ``FeatureCache`` here,
one ``.pt`` per clip and view, loaded into memory; and ``feature_store.FeatureStore``, LitData
chunks streamed from disk or a bucket, for datasets too large to hold in RAM (``store_key``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from vidrec.data.datasets import ClipDataset, FeatureDataset, collate_clips
from vidrec.data.motion import MotionInput, reads_frames
from vidrec.models.backbone import FrozenBackbone
from vidrec.models.net import frame_features
from vidrec.training.encode_collate import EncodeCollate
from vidrec.training.extraction_batch import BatchSize, auto_clips, check_batch_size
from vidrec.training.random_state import random_state_kept

__all__ = ["FeatureCache", "backbone_key", "extract_views", "store_key"]


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
    views += f"|motion_gap={spec.motion_gap}" if spec.measures_pairs else ""
    views += "|motion_span=step" if spec.measures_pairs and spec.motion_span == "step" else ""
    has_residual = reads_frames(spec.motion) and spec.motion_residual_max is not None
    views += f"|motion_residual_max={spec.motion_residual_max:g}" if has_residual else ""
    # Training views cached before the motion input was flipped with the frames (motion_tensors) had it wrong.
    views += "|motion-flips" if reads_frames(spec.motion) and dataset.train else ""
    return f"{mode}|{spec.sampling}|T={spec.num_frames}|stride={spec.stride}|seed={dataset.seed}{views}|{dataset.transform!r}"


def _video_text(dataset: ClipDataset, index: int) -> str:
    """The part of a key that names one clip: its video file (absolute path, size:mtime) and time range."""
    record = dataset.records[index]
    try:
        st = os.stat(record.video)
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:  # missing, or a name the file system refuses: the decode error is cached
        stamp = "missing"
    return f"{os.path.abspath(record.video)}|{stamp}|{record.start}|{record.end}"


def store_key(dataset: ClipDataset, views: int, mixed: bool = False) -> str:
    """Key of a whole feature store: every clip's ``_video_text`` in order, the setting and the view count.

    The same facts as ``FeatureCache.path`` hashes per file, so the same changes make a new
    store: one edited video (or a reordered manifest) means a new store, never a stale one.
    ``mixed``: the clips are stored in a random order (for training) rather than in order.
    """
    h = hashlib.sha1()
    for i in range(len(dataset)):
        h.update(_video_text(dataset, i).encode())
        h.update(b"\0")  # cannot occur in a path: no two lists of clips hash alike
    h.update(f"{_setting(dataset)}|views={views}".encode())
    if mixed:
        h.update(b"|mixed")
    return h.hexdigest()


class _ViewPairs(Dataset):
    """Items ``dataset.for_view(v)[i]`` for a list of ``(i, v)`` pairs; ``index`` is the position in that list."""

    def __init__(self, dataset: ClipDataset, pairs: Sequence[tuple[int, int]]):
        views = 1 + max((v for _, v in pairs), default=0)
        self.views = [dataset.for_view(v) for v in range(views)]
        self.pairs = list(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, k: int) -> dict:
        i, v = self.pairs[k]
        return {**self.views[v][i], "index": k}


def extraction_autocast(device: torch.device | str):
    """Mixed precision for the frozen backbone on a GPU: bf16 where the GPU has it, else fp16.

    Features are stored as float16 anyway, so a half-precision forward loses nothing that the
    cache keeps, and it runs on the tensor cores. On the CPU: full precision (no context).
    """
    device = torch.device(device)
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _encode(backbone: FrozenBackbone, frames: torch.Tensor, motion: torch.Tensor | None, kind: MotionInput, device) -> torch.Tensor:
    """The backbone in this process: frames (B, T, 3, S, S), or (B, N, T, 3, S, S) with test views,
    on ``device`` [+ ``motion`` of input ``kind``, (B, [N,] T, ...) like the frames] -> (B, [N,] T, D [+ M]),
    under ``extraction_autocast``."""
    with extraction_autocast(device):
        return frame_features(backbone, frames, motion, kind)


@torch.no_grad()
def extract_views(
    backbone: FrozenBackbone,
    dataset: ClipDataset,
    pairs: Sequence[tuple[int, int]],
    batch_size: BatchSize = 16,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> Iterator[tuple[int, int, torch.Tensor | str]]:
    """Backbone features of the clip views ``pairs`` (``(clip index, view)``), as ``(i, v, features)``.

    View ``v`` is ``dataset.for_view(v)``: a seeded training dataset draws a different
    augmentation per view. ``features`` is float16 on the CPU, (T, D [+ M]) — or (N, T, D)
    with test views or crops — or, for a clip whose video fails to decode, the reason (a
    string, warned about here). DataLoader workers decode (and, on CPU, run the backbone)
    while this process writes; the results come in the order of ``pairs``. ``batch_size``:
    clips per backbone forward, or ``"auto"`` for the device's size (``extraction_batch``).
    """
    check_batch_size(batch_size)
    backbone.to(device).eval()
    items = _ViewPairs(dataset, pairs)
    if batch_size == "auto":
        # The GPU probe is the loop's own forward (below) on copies of one clip.
        batch_size = auto_clips(items, lambda frames, motion: _encode(backbone, frames, motion, dataset.spec.motion, device), device)
    # On CPU the workers run the backbone too, each decoding *and* encoding whole clips on one
    # thread: a decoding worker beside a multi-threaded backbone here stalls it, and beside a
    # one-thread backbone leaves a core idle (benchmarks/extraction_pipeline.py: 0.73x -> 0.98x
    # of the slower stage alone, with 2 workers on 2 cores). A GPU backbone stays here.
    on_cpu = torch.device(device).type == "cpu"
    collate = EncodeCollate(backbone, dataset.spec.motion) if on_cpu else collate_clips
    loader = DataLoader(items, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)
    it = loader
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(loader, desc="extracting features", leave=False)
    for batch in it:
        out: dict[int, torch.Tensor | str] = {}  # position in pairs -> features or error
        for k, skipped in zip(batch["skipped_index"], batch["skipped"]):
            warnings.warn(f"skipping clip: {skipped}", stacklevel=2)
            out[k] = skipped.reason
        if batch["size"]:
            if "features" in batch:  # encoded by EncodeCollate (in a worker, or here without workers)
                feats = batch["features"]  # (B, [N,] T, D [+ M])
            else:
                motion = batch["motion"].to(device) if "motion" in batch else None
                feats = _encode(backbone, batch["frames"].to(device), motion, dataset.spec.motion, device)  # (B, [N,] T, D [+ M])
            feats = feats.half().cpu()
            for j, k in enumerate(batch["index"]):
                # clone: a row is a view of the whole batch, and torch.save would write all of it
                out[k] = feats[j].clone()
        for k in sorted(out):
            yield *pairs[k], out[k]


class FeatureCache:
    """Feature files under ``root/<backbone key>/``; one ``.pt`` per (clip, setting, view)."""

    def __init__(self, root: str | os.PathLike, backbone: FrozenBackbone):
        if not backbone.frozen:
            raise ValueError("features of a backbone being fine-tuned change every step: disable the cache")
        self.backbone = backbone
        self.root = Path(root) / backbone_key(backbone)

    def path(self, dataset: ClipDataset, index: int, view: int = 0) -> Path:
        """The file holding view ``view`` of clip ``index`` of ``dataset``."""
        text = f"{_video_text(dataset, index)}|{_setting(dataset)}|{view}"
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

    @random_state_kept()  # training after extraction draws what it would over a filled cache
    @torch.no_grad()
    def extract(
        self,
        dataset: ClipDataset,
        views: int = 1,
        batch_size: BatchSize = 16,
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
        done = 0
        for i, view, out in extract_views(self.backbone, dataset, todo, batch_size, num_workers, device, progress):
            if isinstance(out, str):
                self._save(self.path(dataset, i, view), {"error": out})
            else:
                self._save(self.path(dataset, i, view), {"features": out})
                done += 1
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
