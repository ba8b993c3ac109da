"""Feature cache: one epoch of training data without the cache vs with it.

Without the cache every epoch decodes each clip, transforms it and runs the frozen backbone
(``ClipDataset`` + ``FrozenBackbone``). With it, the backbone features are extracted once
(``FeatureCache.extract``), loaded once (``FeatureCache.load``), and every epoch only batches
``(T, D)`` tensors from memory (``FeatureDataset``). Both sides use ``collate_clips``, batch 16,
no worker processes, and stop where the trainable model would start.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks._common import interleaved, median, paired_ratio, spread

TITLE = "Feature cache: training epoch with vs without cached backbone features"
NUM_CLIPS, SIZE, BATCH, REPEATS = 120, 112, 16, 2
WHAT = (
    f"{NUM_CLIPS} synthetic clips (`vidrec.data.synthetic.generate`, {SIZE} px, 16 frames at 8 fps), 8 frames "
    f"per clip, EfficientNet-Lite0 as in configs/synthetic.yaml (12 blocks, 3x3 grid, D = 1008), batch {BATCH}, `num_workers=0`. *No cache*: "
    "iterate `dm.clip_dataset(records, train=False)` through a DataLoader and run the backbone on every batch "
    "(what each epoch costs without the cache). *Cache*: iterate `FeatureDataset(records, views)` built from "
    "`FeatureCache.load(dataset, i)`. One-off costs: `FeatureCache.extract(dataset)` (decode + backbone + write float16 files) and "
    f"loading every clip's file. Epochs interleaved, median of {REPEATS} repeats (the extraction is the warm-up)."
)


def run() -> list[dict]:
    import torch
    from torch.utils.data import DataLoader

    from vidrec.data.datamodule import VideoDataModule
    from vidrec.data.datasets import FeatureDataset, collate_clips
    from vidrec.data.synthetic import generate
    from vidrec.models.backbone import FrozenBackbone
    from vidrec.training.features import FeatureCache

    with tempfile.TemporaryDirectory(prefix="vidrec-bench-") as tmp:
        root = Path(tmp)
        splits = generate(root / "data", num_clips=NUM_CLIPS, size=SIZE)
        records = [r for split in ("train", "val", "test") for r in splits[split]]
        backbone = FrozenBackbone(spatial_pooling="grid", grid=3, backbone_blocks=12)  # configs/synthetic.yaml
        dm = VideoDataModule(
            train_manifest=str(root / "data" / "train.jsonl"),
            frame_size=SIZE,
            resize=SIZE,
            cache_dir=str(root / "cache"),
            hflip=False,
            batch_size=BATCH,
            num_workers=0,
            normalization=backbone.normalization,  # what train.py links in from the model's backbone
        )
        dataset = dm.clip_dataset(records, train=False)
        cache = FeatureCache(dm.cache_dir, backbone)

        t0 = time.perf_counter()
        extracted = cache.extract(dataset, batch_size=BATCH, num_workers=0, progress=False)
        t_extract = time.perf_counter() - t0
        t0 = time.perf_counter()
        views = [cache.load(dataset, i) for i in range(len(dataset))]
        t_load = time.perf_counter() - t0
        failed = sum(not isinstance(v, list) for v in views)
        features = FeatureDataset(records, views, class_to_idx=dm.class_to_idx, vocab=dm.vocab)
        nbytes = sum(v[0].numel() * v[0].element_size() for v in views if isinstance(v, list))

        def epoch_no_cache() -> None:
            loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=0, collate_fn=collate_clips)
            with torch.inference_mode():
                for batch in loader:
                    backbone(batch["frames"])  # (B, T, 1008)

        def epoch_cache() -> None:
            loader = DataLoader(features, batch_size=BATCH, shuffle=True, num_workers=0, collate_fn=collate_clips)
            for batch in loader:
                batch["features"]  # (B, T, 1008), already what the temporal model reads

        times = interleaved({"no cache": epoch_no_cache, "cache": epoch_cache}, REPEATS, warmup=0)

    t_no, t_yes = median(times["no cache"]), median(times["cache"])
    saved = t_no - t_yes
    rows = [
        {"what": "epoch without cache (decode + transform + backbone)", "seconds": t_no, "clips/s": NUM_CLIPS / t_no},
        {"what": "epoch with cache (batch cached features)", "seconds": t_yes, "clips/s": NUM_CLIPS / t_yes},
        {"what": f"one-off: extract features of {extracted} clips", "seconds": t_extract, "clips/s": extracted / t_extract},
        {"what": f"one-off: load {len(records)} feature files ({nbytes / 2**20:.1f} MiB float16, {failed} failed)", "seconds": t_load, "clips/s": len(records) / t_load},
        {
            "what": "RATIO epoch speedup with cache",
            "ratio": paired_ratio(times["no cache"], times["cache"]),
            "range": spread([a / b for a, b in zip(times["no cache"], times["cache"])]),
        },
        {
            "what": "break-even: (extract + load) ÷ time saved per epoch",
            "epochs": (t_extract + t_load) / saved if saved > 0 else float("inf"),
        },
        {"what": "extraction ÷ uncached epoch", "ratio": t_extract / t_no},
    ]
    return rows


def interpret(rows: list[dict]) -> str:
    speed = next((x["ratio"] for x in rows if x["what"].startswith("RATIO")), None)
    be = next((x["epochs"] for x in rows if x["what"].startswith("break-even")), None)
    ext = next((x["ratio"] for x in rows if x["what"].startswith("extraction")), None)
    if speed is None:
        return "Not measured."
    return (
        f"After the one-off extraction an epoch is {speed:.0f}x faster with the cache (it only batches in-memory "
        f"tensors); the extraction costs {ext:.2f}x one uncached epoch, so the cache has paid for itself after "
        f"{be:.1f} epochs — any run of 2 or more epochs gains, and a 30-epoch run does ~1 epoch of backbone work "
        f"instead of 30."
    )


if __name__ == "__main__":
    for row in run():
        print(row)
