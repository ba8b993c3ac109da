"""Feature extraction must leave torch's random stream where it found it.

Extraction itself is deterministic, but its DataLoader draws a base seed from the global
generator, and a seeded training dataset read in this process (no workers, or the auto batch
size's probe) re-seeds it per clip with ``torch.manual_seed``, which re-seeds every CUDA
generator too. Without this, a run that fills the feature cache trains on another random stream
(shuffle order, dropout masks) than the same command over a filled cache: ``make demo`` printed
99.3% and then 98.7% on the reversed pairs.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__ = ["random_state_kept"]


@contextlib.contextmanager
def random_state_kept() -> Iterator[None]:
    """Torch's CPU and CUDA generators as they were, once the block (or decorated call) ends."""
    gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=gpus):
        yield
