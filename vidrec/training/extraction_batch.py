"""Clips per backbone forward when extracting features, for a batch size of ``"auto"``.

Extraction batches are not training batches: the frozen backbone runs without gradients, so
the right size depends on the device, not on the optimiser. On a GPU ``"auto"`` is the
largest power of two of clips whose real forward (the extraction's own backbone call, on
frames of the real shape, under its autocast) stays within ``MEMORY_FRACTION`` of the free
memory, found by doubling; on the CPU it is a fixed budget of frames per forward, where
throughput was best. An integer is used as given.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable

import torch

from vidrec.data.batch_size import BatchSize, check_batch_size
from vidrec.training.random_state import random_state_kept

__all__ = ["BatchSize", "auto_clips", "check_batch_size", "clips_per_forward", "cpu_clips", "cuda_clips", "largest_fitting", "sample_item"]

# Headroom for what the probe does not see: the allocator's fragmentation, cuDNN workspaces
# picked for other shapes, and (for extract --per-clip) the small temporal model after the backbone.
MEMORY_FRACTION = 0.8
# Every batch in flight sits in host memory too (DataLoader workers x 2 prefetched, in shared
# memory): 1024 frames at 224 px are 0.6 GB each. A GPU CNN usually gains little beyond a few
# hundred frames (not measured here: no GPU has been lent to this project yet).
MAX_FRAMES = 1024
# CPU (benchmarks/extraction_batch.py, on the 2-core dev box): EfficientNet-Lite0 as configured
# (12 blocks, 112 px), on one thread as in a DataLoader worker, spends the least CPU per frame in
# forwards of 16-24 frames (1.9-2.0 ms), 2.6 ms at 8, 3.1 at 32, 4.7 at 64 and 8.2 at 128 (the 16
# clips x 8 frames extraction used before). Most likely the activations of larger forwards
# outgrow the caches and every element-wise pass (BatchNorm, ReLU6, depthwise) goes to memory.
# At 224 px the best was 2-4 frames, the same pixels, so the budget is pixels. End to end,
# FeatureCache.extract with 2 clips of 8 frames per batch ran 2.8x faster than with 16 (1.9x
# in an earlier run). The demo keeps 16 anyway: see configs/synthetic.yaml.
CPU_FRAMES, CPU_FRAME_SIZE = 16, 112


def largest_fitting(fits: Callable[[int], bool], cap: int) -> int:
    """The largest n in 1, 2, 4, ... <= ``cap`` for which ``fits(n)`` holds; 1 if none does.

    ``fits`` may raise ``torch.OutOfMemoryError``: that n does not fit, and the search stops
    there (larger n would not fit either). The CUDA cache is emptied after it, so the memory
    the failed try reserved goes back before extraction starts.
    """
    best, n = 1, 1
    while n <= cap:
        try:
            ok = fits(n)
        except torch.OutOfMemoryError:
            ok = False
        if not ok:
            # Outside the except block: the exception's traceback (and the tensors its frames
            # hold) is gone by now, so the cache can really be freed. A no-op without CUDA.
            torch.cuda.empty_cache()
            break
        best, n = n, n * 2
    return best


def cpu_clips(frames_per_item: int, pixels_per_frame: int) -> int:
    """Clips per forward on the CPU: ``CPU_FRAMES`` frames of ``CPU_FRAME_SIZE``² pixels, in items of
    ``frames_per_item`` frames (views x crops x T) of ``pixels_per_frame``; at least 1."""
    budget = CPU_FRAMES * CPU_FRAME_SIZE**2 // pixels_per_frame  # frames per forward at this size
    return max(1, min(budget, MAX_FRAMES) // frames_per_item)


def cuda_clips(forward: Callable[[int], Any], frames_per_item: int, device: torch.device | str) -> int:
    """Clips per forward on a GPU: the largest power of two whose ``forward(n)`` (the real forward
    on n items) peaks within ``MEMORY_FRACTION`` of the memory free now; at most ``MAX_FRAMES`` frames."""
    device = torch.device(device)
    torch.cuda.empty_cache()  # what the cache holds but nothing uses counts as free
    free, _ = torch.cuda.mem_get_info(device)
    base = torch.cuda.memory_allocated(device)  # the backbone's weights, and anything else already held

    def fits(n: int) -> bool:
        torch.cuda.reset_peak_memory_stats(device)
        forward(n)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base <= MEMORY_FRACTION * free

    return largest_fitting(fits, max(1, MAX_FRAMES // frames_per_item))


def sample_item(dataset, indices: Iterable[int], tries: int = 8) -> dict | None:
    """The first item among the first ``tries`` of ``indices`` that has ``frames`` (decodes); None if none does.

    Decoded here only to learn the real shape (views, crops, frame size, motion input), with
    torch's random state kept (``random_state``): training after extraction must see the same
    random stream whatever the batch size. Its warnings come again when the clip is extracted.
    """
    with random_state_kept(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, index in enumerate(indices):
            if k == tries:
                break
            item = dataset[index]
            if "frames" in item:
                return item
    return None


def clips_per_forward(
    requested: BatchSize, item: dict | None, forward: Callable[[int], Any] | None, device: torch.device | str
) -> int:
    """``requested`` if an integer; for ``"auto"`` the size for ``device`` from ``item`` (a dataset
    item with ``frames`` ([N,] T, 3, S, S)) and, on a GPU, ``forward(n)`` (the real forward on n
    copies of it). Without an item (no clip decodes) there is nothing to size: 1."""
    requested = check_batch_size(requested)
    if requested != "auto":
        return requested
    if item is None:
        return 1
    frames = item["frames"]
    per_item = frames.shape[:-3].numel()  # views x crops x T
    if torch.device(device).type == "cuda":
        return cuda_clips(forward, per_item, device)
    return cpu_clips(per_item, frames.shape[-1] * frames.shape[-2])


def auto_clips(items, encode: Callable[[torch.Tensor, torch.Tensor | None], Any], device: torch.device | str) -> int:
    """``clips_per_forward("auto", ...)`` for a dataset ``items`` of clips, sized on its first clip
    that decodes (``sample_item``). On a GPU the probe is the caller's own ``encode(frames,
    motion)`` on n copies of it: frames (n, [N,] T, 3, S, S), motion (n, ...) or None."""
    item = sample_item(items, range(len(items)))

    def forward(n: int) -> None:
        frames = item["frames"].to(device).expand(n, *item["frames"].shape).contiguous()
        motion = item["motion"].to(device).expand(n, *item["motion"].shape).contiguous() if "motion" in item else None
        encode(frames, motion)

    return clips_per_forward("auto", item, forward, device)
