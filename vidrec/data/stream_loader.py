"""``FeatureStreamLoader``: training batches from a sharded feature store that resume mid-epoch.

A checkpoint written in the middle of an epoch (``every_n_train_steps``, a preempted job) used
to restart that epoch's order on resume: clips seen twice or never in that epoch. LitData's
``StreamingDataLoader`` counts the batches it has handed out and has ``state_dict`` /
``load_state_dict``; Lightning saves that state in every checkpoint (``loops.fit_loop.state_dict
.combined_loader``) and loads it before the resumed epoch starts, and LitData then skips, in each
DataLoader worker, the items that worker had already delivered. This subclass adds what exact
resume needs beyond the order:

- the epoch: each epoch's order is the store's shuffle for the trainer's epoch (as when
  ``FeatureStream.set_epoch`` was called every epoch), read when the epoch's iteration starts, or
  taken from the checkpoint when resuming in the middle of one;
- the random draws: the view and the reference caption of a clip come from
  ``(seed, epoch, clip)``, not from a worker's random stream (which a resumed worker would restart),
  and the DataLoader's worker seed from its own generator, so the resumed run's global random
  state (dropout masks) continues where the checkpoint left it;
- a checkpoint of the same store at another path (a moved cache, another download folder) resumes;
  one of another store starts the epoch over, with a warning.

It resumes exactly (same clips, order and draws as the uninterrupted run) with the same number of
devices, DataLoader workers and batch size. With another, LitData resumes "elastically", with a
warning from here: the rest of the epoch in another order; no clip repeated with other workers, a
few (fewer than devices x batch size) with another batch size or device count.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from litdata import StreamingDataLoader

from vidrec.data.datasets import FeatureDataset, FeatureStream, collate_clips

__all__ = ["FeatureStreamLoader"]


class _StreamCollate:
    """Raw store items -> a ``collate_clips`` batch, in the worker that read them.

    Labels and captions come from the records by index; a clip's view and caption are drawn
    from ``(seed, epoch, index)``, the same in any worker, rank or resumed run.
    """

    def __init__(self, items: FeatureDataset, seed: int):
        self.items, self.seed, self.epoch = items, seed, 0

    def __call__(self, raws: Sequence[dict]) -> dict:
        out = []
        for raw in raws:
            index = int(raw["index"])
            rng = np.random.default_rng([self.seed, self.epoch, index])
            out.append(self.items.item(index, raw["error"] or raw["features"], rng=rng))
        return collate_clips(out)


def _store_name(state: dict) -> str:
    """The ``store-<key>`` folder a LitData state was saved for (its content: the key hashes it)."""
    location = state.get("input_dir_url") or state.get("input_dir_path") or ""
    return os.path.basename(str(location).rstrip("/"))


class FeatureStreamLoader(StreamingDataLoader):
    """Batches of a training ``FeatureStream`` (``collate_clips`` batches), resumable mid-epoch.

    ``epoch``: returns the trainer's current epoch, read when an epoch's iteration starts
    (``None``: the epochs are counted from 0, one per iteration). ``kwargs`` go to the
    DataLoader (``pin_memory``, ...).
    """

    def __init__(
        self,
        stream: FeatureStream,
        batch_size: int,
        num_workers: int = 0,
        epoch: Callable[[], int] | None = None,
        **kwargs: Any,
    ):
        self.collate = _StreamCollate(stream.items, int(stream.source.seed))
        super().__init__(stream.source, batch_size=batch_size, num_workers=num_workers, collate_fn=self.collate, **kwargs)
        self.stream, self.epoch_of = stream, epoch
        self.current_epoch = -1  # StreamingDataLoader counts one up per iteration: the first is epoch 0
        self._restore_pending = False

    def __iter__(self):
        # A generator: this runs when the first batch is asked for, after Lightning has
        # restored the loader's state and begun the epoch.
        if self.restore and not self._restore_pending:
            # A resumed epoch left before its end (limit_train_batches): LitData would replay the
            # checkpoint's position again; the next iteration is a new epoch.
            self.restore = False
        self._restore_pending = False
        if not self.restore and self.epoch_of is not None:
            self.current_epoch = self.epoch_of() - 1  # StreamingDataLoader.__iter__ counts it up to the epoch
        epoch = self.current_epoch if self.restore else self.current_epoch + 1
        self.collate.epoch = epoch
        # The workers' base seed from the seed and epoch, not from the global generator: an
        # iteration resumed mid-epoch would draw again what the interrupted run drew at its start.
        seed = np.random.SeedSequence([self.collate.seed, epoch]).generate_state(1, np.uint64)[0]
        self.generator = torch.Generator().manual_seed(int(seed) & (2**63 - 1))
        yield from super().__iter__()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        # Whether every batch of the epoch has been handed out (the end-of-epoch last.ckpt): Lightning
        # stops at the epoch's length and never asks for more, so LitData's loop never sees its end.
        state["epoch_done"] = self._num_samples_yielded_streaming >= len(self.dataset)
        return state

    def load_state_dict(self, obj: dict[str, Any]) -> None:
        if obj.get("epoch_done") or not obj.get("num_samples_yielded"):
            # No position inside an epoch to restore: the next iteration starts an epoch. (LitData
            # would "resume" a finished epoch when the workers, devices or batch size changed, and
            # fail: its count of a short last batch exceeds the epoch.)
            self.current_epoch = obj["current_epoch"]
            return
        state = dict(obj)
        saved = dict(state["dataset"])
        here = {"input_dir_path": self.dataset.input_dir.path, "input_dir_url": self.dataset.input_dir.url}
        if any(saved.get(k) != v for k, v in here.items()):
            current = os.path.basename(str(here["input_dir_url"] or here["input_dir_path"] or "").rstrip("/"))
            if _store_name(saved) != current:
                warnings.warn(
                    f"the checkpoint's training position is in another feature store ({_store_name(saved)}; this run "
                    f"reads {current}: the features changed): the interrupted epoch starts over",
                    stacklevel=2,
                )
                return
            # The same store, read from another place: the position holds.
            saved.update(here, cache_dir_path=self.dataset.cache_dir.path)
            state["dataset"] = saved
        then = (saved.get("world_size"), saved.get("num_workers"), saved.get("batch_size"))
        now = (self.dataset.distributed_env.world_size, self.num_workers or 1, self.batch_size)
        if then != now:
            warnings.warn(
                f"resuming mid-epoch with {now[0]} device(s), {now[1]} loader worker(s) and batch size {now[2]}, where "
                f"the checkpoint had {then[0]}, {then[1]} and {then[2]}: the rest of the epoch is read in another order "
                "than the uninterrupted run's (LitData's elastic resume), and with another batch size or device count "
                "a few clips (fewer than devices x batch size) may be read twice",
                stacklevel=2,
            )
        super().load_state_dict(state)
        self._restore_pending = self.restore
