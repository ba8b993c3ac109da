"""Backbone features in a sharded store that streams (LitData chunks): for datasets too large for RAM.

``FeatureCache`` keeps one ``.pt`` file per clip and view, and every rank loads all of them: for
Kinetics-400 at T=16, D=2048 and 4 views that is ~63 GB per rank. ``FeatureStore`` writes the
same features into LitData chunks (~128 MB each: a few hundred files for Kinetics) and reads
them back with LitData's ``StreamingDataset``, which splits the chunks across DDP ranks and
DataLoader workers and reads a few at a time: memory per rank follows the batch and the
workers, not the dataset.

Layout: ``<cache_dir>/<backbone key>/store-<store key>/`` with ``chunk-R-K.bin`` files and
LitData's ``index.json``. The key (``features.store_key``) hashes what the per-file cache's keys
hash, for every clip in order: any change to a video, the backbone, sampling, transform or
views is a new store, never a silent reuse. The store is written into ``store-<key>.partial``
and renamed once complete, so a killed run leaves nothing that looks complete; a store
folder without ``index.json`` is rebuilt, never read.

One item per clip: ``{"index": record index, "features": (K, T, D) float16 (K views), "error": ""}``,
or for a clip whose video failed to decode ``features`` empty and ``error`` the reason. A store
read for training holds its clips in a fixed random order (its key says so: ``mixed``), since
LitData batches from a chunk at a time; evaluation stores keep the manifest's order.

Under DDP each rank extracts a slice of the clips into its own part and rank 0 merges the parts.
Reading, LitData splits the store across ranks and workers: a training epoch drops fewer than
ranks x batch size clips (different ones each epoch) so that every rank takes as many steps;
evaluation reads every clip exactly once, ranks differing by at most a batch.

Reading from a bucket: ``cache_dir`` may be an object-store URL (``s3://bucket/features``); the
store's URL goes straight to ``StreamingDataset``, which downloads chunks into its own cache
(``~/.lightning/chunks``, or ``$LITDATA_CACHE_DIR``) as they are needed. A store is not written
to a bucket from here: extract with a local ``cache_dir`` and upload the ``store-<key>`` folder
to the same place under the URL. The key covers the videos' paths, sizes and times, so the
machines that read it must see the same video files (a shared file system) — or it is not found.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from vidrec.data.datasets import ClipDataset, FeatureStream
from vidrec.models.backbone import FrozenBackbone
from vidrec.training.extraction_batch import BatchSize
from vidrec.training.features import backbone_key, extract_views, store_key
from vidrec.training.random_state import random_state_kept

__all__ = ["CHUNK_BYTES", "MIN_CHUNKS", "FeatureStore", "ShardWriter", "is_url", "merge_parts", "open_store"]

INDEX = "index.json"  # LitData's name: written last, so its presence means complete
CHUNK_BYTES = 128 * 2**20
# At least this many chunks (when there are enough clips): LitData hands whole chunks or chunk
# slices to each rank and worker, and a store of 2 chunks cannot feed 8 ranks.
MIN_CHUNKS = 64


def is_url(location: str | os.PathLike) -> bool:
    """An object-store URL (``s3://``, ``gs://``, ...; or LitData's ``local:``, a folder read as a
    bucket is) rather than a path on this machine."""
    return "://" in str(location) or str(location).startswith("local:")


def _nbytes(item: dict) -> int:
    return sum(v.nbytes for v in item.values() if isinstance(v, (torch.Tensor, np.ndarray)))


class ShardWriter:
    """One process's items as LitData chunks in ``folder`` (``chunk-*.bin`` and one ``*.index.json``).

    Clips per chunk: ``chunk_items``, or ~``CHUNK_BYTES`` per file but at least ``MIN_CHUNKS``
    files over ``total`` items (the items of every writer of the store), decided from the
    first item that holds features (failed clips, which hold none, wait for it).
    """

    def __init__(self, folder: str | os.PathLike, total: int, chunk_items: int | None = None):
        self.folder, self.total, self.chunk_items = Path(folder), total, chunk_items
        self.writer = None
        self.waiting: list[dict] = []
        self.count = 0

    def add(self, item: dict) -> None:
        if self.writer is None:
            self.waiting.append(item)
            if _nbytes(item):
                self._start(_nbytes(item))
        else:
            self._write(item)

    def _start(self, item_bytes: int) -> None:
        from litdata.streaming.writer import BinaryWriter

        items = self.chunk_items or max(1, min(CHUNK_BYTES // max(item_bytes, 1), math.ceil(self.total / MIN_CHUNKS)))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writer = BinaryWriter(str(self.folder), chunk_size=items)
        waiting, self.waiting = self.waiting, []
        for item in waiting:
            self._write(item)

    def _write(self, item: dict) -> None:
        self.writer.add_item(self.count, item)
        self.count += 1

    def close(self) -> int:
        """Write the last chunk and this writer's index; returns how many items it wrote."""
        if self.writer is None and self.waiting:
            self._start(0)
        if self.writer is not None:
            self.writer.done()
        return self.count


def merge_parts(folder: str | os.PathLike, parts: list[str | os.PathLike]) -> int:
    """Move the chunks of each ``ShardWriter`` folder in ``parts`` into ``folder`` and write its ``index.json``.

    LitData's own merge (``BinaryWriter.merge``) waits for one index per rank and names files by
    the rank torch.distributed reports; here a rank with no clips writes no index, and the part
    number names the files. Returns the number of chunks.
    """
    folder = Path(folder)
    chunks: list[dict[str, Any]] = []
    config = None
    for r, part in enumerate(map(Path, parts)):
        for index_file in part.glob(f"*.{INDEX}"):  # one per writer; none when it had no items
            data = json.loads(index_file.read_text())
            if config is None:
                config = data["config"]
            elif data["config"]["data_format"] != config["data_format"]:
                raise RuntimeError(f"{index_file}: items differ from the other parts' ({data['config']['data_format']})")
            for k, chunk in enumerate(data["chunks"]):
                name = f"chunk-{r}-{k}.bin"
                os.replace(part / chunk["filename"], folder / name)
                chunks.append({**chunk, "filename": name})
        shutil.rmtree(part, ignore_errors=True)
    if config is None:
        raise ValueError(f"{folder}: no items to store")
    tmp = folder / f"{INDEX}.tmp"
    tmp.write_text(json.dumps({"chunks": chunks, "config": config, "updated_at": str(time.time())}, sort_keys=True))
    os.replace(tmp, folder / INDEX)  # last: its presence means the store is complete
    return len(chunks)


def open_store(
    location: str | os.PathLike,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool | None = None,
    download_dir: str | None = None,
):
    """LitData's ``StreamingDataset`` over a store at a path or URL; call under DDP after the process group starts.

    ``drop_last`` None: LitData's default, True under DDP so every rank gets as many items
    (a training step waits for all ranks); False reads every item exactly once (evaluation,
    where ranks may differ by a batch). ``download_dir``: where chunks of a URL are cached.
    """
    from litdata import StreamingDataset

    location = str(location)
    try:
        # batch_decode=0: one item at a time. LitData's "auto" decodes windows of items together
        # (meant for small text rows); on shuffled tensor items it read ~9x slower (benchmark).
        data = StreamingDataset(location, cache_dir=download_dir, shuffle=shuffle, seed=seed, batch_decode=0)
    except Exception as e:  # a missing bucket, object or index: LitData and the cloud clients raise many types
        raise FileNotFoundError(
            f"no complete feature store at {location} ({type(e).__name__}: {e}); a bucket store is built with a "
            "local --data.cache_dir and its store-<key> folder uploaded to the same place under the URL"
        ) from e
    if drop_last is False:
        data.set_drop_last(False)  # after construction: LitData warns when given False under DDP
    profile = data.posix_fast
    if shuffle and profile is not None and profile.window_shuffle:
        # On a parallel file system (NFS, Lustre: the shared path of a multi-node run) LitData
        # gives each worker the same stripe of whole chunks every epoch and trims every worker
        # to the shortest: with drop_last the same clips would never be trained on. The global
        # shuffle (still reading in place) reshuffles chunks per epoch and drops < ranks x batch.
        data.posix_fast = dataclasses.replace(profile, kind="posix")
    return data


class FeatureStore:
    """Feature stores under ``root/<backbone key>/``: one ``store-<key>`` folder per dataset setting.

    ``root`` is a folder or an object-store URL (read only: see the module docstring).
    """

    def __init__(self, root: str | os.PathLike, backbone: FrozenBackbone, download_dir: str | None = None):
        if not backbone.frozen:
            raise ValueError("features of a backbone being fine-tuned change every step: disable the cache")
        self.backbone = backbone
        self.root = f"{str(root).rstrip('/')}/{backbone_key(backbone)}"
        self.download_dir = download_dir

    def location(self, dataset: ClipDataset, views: int = 1, mixed: bool = False) -> str:
        """The store of ``dataset`` with ``views`` views per clip (a path, or a URL under a URL root).

        ``mixed``: its clips stored in a random order, for training (see ``extract``).
        """
        return f"{self.root}/store-{store_key(dataset, views, mixed)}"

    def complete(self, dataset: ClipDataset, views: int = 1, mixed: bool = False) -> bool:
        """Whether the local store of ``dataset`` has been written in full."""
        return os.path.isfile(os.path.join(self.location(dataset, views, mixed), INDEX))

    @torch.no_grad()
    @random_state_kept()  # training after extraction draws what it would over a filled store
    def extract(
        self,
        dataset: ClipDataset,
        views: int = 1,
        mixed: bool = False,
        batch_size: BatchSize = 16,
        num_workers: int = 0,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
        barrier: Callable[[], None] | None = None,
        progress: bool = True,
        chunk_items: int | None = None,
    ) -> int:
        """Write the store of ``dataset`` unless it is complete; returns how many clips this rank extracted.

        Under DDP call it on every rank with ``rank``, ``world_size`` and a ``barrier``: each rank
        extracts its share into its own part, then rank 0 merges the parts and renames the
        store into place, and every rank returns once it is complete. ``chunk_items`` fixes
        the clips per chunk (default: see ``ShardWriter``).

        ``mixed`` stores the clips in a fixed random order, for training: LitData reads a chunk
        at a time and batches from it, so each chunk must be a random sample of the dataset,
        not a class or two of a manifest sorted by label. Otherwise they keep the manifest's
        order (evaluation and prediction read them back in order).
        """
        if is_url(self.root):
            raise ValueError(f"{self.root}: a store is written to a local folder (then uploaded), not to a URL")
        final = Path(self.location(dataset, views, mixed))
        if (final / INDEX).is_file():
            return 0
        if world_size > 1 and barrier is None:
            raise ValueError("extracting a store under DDP needs a barrier: the ranks merge it together")
        wait = barrier or (lambda: None)
        partial = final.with_name(final.name + ".partial")
        if rank == 0:
            shutil.rmtree(partial, ignore_errors=True)  # a killed run's leftovers
            partial.mkdir(parents=True)
        wait()  # nobody writes before rank 0 has cleared the folder
        order = np.random.default_rng(0).permutation(len(dataset)) if mixed else np.arange(len(dataset))
        share = np.array_split(order, world_size)[rank].tolist()  # parts merge in rank order: the order holds
        part = partial / f"part-{rank:05d}"
        writer = ShardWriter(part, total=len(dataset), chunk_items=chunk_items)
        pending: dict[int, dict[int, torch.Tensor | str]] = {}  # the views of a clip until all are in
        for i, v, out in extract_views(
            self.backbone, dataset, [(i, v) for i in share for v in range(views)], batch_size, num_workers, device, progress
        ):
            got = pending.setdefault(i, {})
            got[v] = out
            if len(got) < views:
                continue
            del pending[i]
            errors = [o for o in got.values() if isinstance(o, str)]
            if errors:
                writer.add({"index": i, "features": torch.zeros(0, dtype=torch.float16), "error": errors[0]})
            else:
                writer.add({"index": i, "features": torch.stack([got[k] for k in range(views)]), "error": ""})  # (K, T, D)
        done = writer.close()
        wait()  # every part is written
        if rank == 0:
            merge_parts(partial, [partial / f"part-{r:05d}" for r in range(world_size)])
            if final.exists():  # incomplete (no index.json): never read, replaced
                shutil.rmtree(final)
            os.replace(partial, final)
        wait()  # the store is in place before anyone reads it
        return done

    def feature_dataset(
        self,
        dataset: ClipDataset,
        views: int = 1,
        train: bool | None = None,
        seed: int = 0,
        **extract_kw,
    ) -> FeatureStream:
        """``dataset`` streamed from its store, extracted first unless complete (locally; a URL is only read).

        ``train`` (default ``dataset.train``) shuffles (by ``seed`` and the epoch: ``set_epoch``),
        draws a random view and reference caption per item, and under DDP drops the last
        few clips of an epoch (fewer than ranks x batch size, different ones each epoch) so
        every rank takes as many steps. Evaluation reads every clip exactly once, in order.
        ``extract_kw`` go to ``extract`` (``rank``, ``world_size``, ``barrier``, ...).
        """
        train = dataset.train if train is None else train
        if not is_url(self.root):
            self.extract(dataset, views, mixed=train, **extract_kw)
        source = open_store(
            self.location(dataset, views, mixed=train), shuffle=train, seed=seed, drop_last=None if train else False, download_dir=self.download_dir
        )
        return FeatureStream(
            dataset.records, source, train=train, class_to_idx=dataset.class_to_idx, vocab=dataset.vocab,
            max_caption_len=dataset.max_caption_len,
        )
