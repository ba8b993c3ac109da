"""Which clips chose a checkpoint, so that testing on them can be called what it is.

``ModelCheckpoint`` keeps the epoch with the best validation score. Tested on those same clips,
that score is optimistic: the epoch was picked for them. UCF101 and HMDB51 ship no validation
split, so their converters copy the test list to ``val.jsonl`` by default (datasets/README.md),
and a user can pass one manifest for both without noticing. A checkpoint written during
``fit`` therefore carries a fingerprint of its validation clips (``vidrec_val_clips``), and
``train.py test`` warns when test clips are among them.

A clip is its video file (resolved path) and time range: a copied or re-written manifest that
lists the same clips matches, whatever its name.
"""

from __future__ import annotations

import hashlib
import os
from typing import Sequence

import torch

from vidrec.data.manifest import ClipRecord

__all__ = ["clip_fingerprints", "selected_on", "selection_warning"]


def _fingerprint(record: ClipRecord) -> int:
    text = f"{os.path.realpath(record.video)}|{record.start}|{record.end}"
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little", signed=True)


def clip_fingerprints(records: Sequence[ClipRecord]) -> torch.Tensor:
    """int64 ``(N,)``, sorted: one 64-bit hash per clip (8 bytes each: 160 kB for Kinetics' 20k val clips)."""
    return torch.tensor(sorted({_fingerprint(r) for r in records}), dtype=torch.int64)


def selected_on(records: Sequence[ClipRecord], fingerprints: torch.Tensor) -> int:
    """How many of ``records`` are among the clips ``fingerprints`` was made from."""
    if not len(records) or not fingerprints.numel():
        return 0
    mine = torch.tensor([_fingerprint(r) for r in records], dtype=torch.int64)
    return int(torch.isin(mine, fingerprints).sum())


def selection_warning(records: Sequence[ClipRecord], fingerprints: torch.Tensor | None, manifest: str | None) -> str | None:
    """The warning for a test set that shares clips with the checkpoint's validation set, else None."""
    if fingerprints is None:
        return None  # a checkpoint from before fingerprints, or not written by fit
    shared = selected_on(records, fingerprints)
    if not shared:
        return None
    where = f" ({manifest})" if manifest else ""
    return (
        f"{shared} of {len(records)} test clips{where} were validation clips of the run that wrote this "
        "checkpoint: the best epoch was chosen on them, so this test score is optimistic. For numbers to "
        "report, validate on clips held out of training instead (e.g. datasets/ucf101.py --val-from-train)."
    )
