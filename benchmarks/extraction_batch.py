"""Extraction batch size on the CPU: backbone throughput vs frames per forward, and ``"auto"`` end to end.

Where ``vidrec.training.extraction_batch.CPU_FRAMES`` comes from. The configs' backbone
(EfficientNet-Lite0, 12 blocks, 3x3 grid) on one torch thread, as a DataLoader worker runs it
during CPU extraction, on the same frames split into forwards of F frames, at 112 px (the
configs) and 224 px (to show the budget is pixels, not frames). Then ``FeatureCache.extract`` of
synthetic clips (T = 8, 112 px, 2 workers) with ``batch_size="auto"`` against 16, the training
batch that extraction used before, and whether the two write the same features.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

from benchmarks._common import interleaved, median, paired_ratio, spread

TITLE = "Extraction batch: CPU backbone throughput vs frames per forward, and batch_size auto"
SWEEPS = {112: ((8, 16, 24, 32, 64, 128), 128), 224: ((2, 4, 8, 16), 32)}  # size: (frames per forward, frames per case)
CLIPS, T, WORKERS, OLD_BATCH, REPEATS = 64, 8, 2, 16, 5
WHAT = (
    "`FrozenBackbone(spatial_pooling='grid', grid=3, backbone_blocks=12)` (EfficientNet-Lite0, default weights) in "
    "`torch.inference_mode()` on one torch thread (what a DataLoader worker runs during CPU extraction): the same "
    + ", ".join(f"{n} frames at {s} px split into forwards of F = {', '.join(map(str, fs))}" for s, (fs, n) in SWEEPS.items())
    + f". *CPU ms/frame*: process CPU time per frame (less affected by other jobs than wall time). Then "
    f"`FeatureCache.extract` of {CLIPS} synthetic clips (T = {T}, 112 px, {WORKERS} workers) with `batch_size='auto'` "
    f"against {OLD_BATCH} (the training batch extraction used before), into fresh folders, and the largest difference "
    f"between the features they wrote. All cases interleaved, median of {REPEATS} repeats after a warm-up; RATIO = "
    "median of the paired ratios (min–max)."
)


def describe() -> str:
    return WHAT


def _cpu_metered(fn, out: list[float]):
    """``fn`` that appends the CPU seconds it took to ``out``."""
    def case():
        t0 = time.process_time()
        fn()
        out.append(time.process_time() - t0)
    return case


def run() -> list[dict]:
    import torch

    from vidrec.data.clips import ClipSpec
    from vidrec.data.datasets import ClipDataset
    from vidrec.data.synthetic import generate
    from vidrec.models.backbone import FrozenBackbone
    from vidrec.training.extraction_batch import CPU_FRAME_SIZE, CPU_FRAMES, cpu_clips
    from vidrec.training.features import FeatureCache

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    backbone = FrozenBackbone(spatial_pooling="grid", grid=3, backbone_blocks=12)  # configs/synthetic.yaml
    rows: list[dict] = []
    try:
        for size, (per_forward, frames) in SWEEPS.items():
            x = torch.randn(1, frames, 3, size, size)  # (B=1, T, 3, S, S): one clip, split along T

            def forwards(f: int) -> None:
                with torch.inference_mode():
                    for i in range(0, frames, f):
                        backbone(x[:, i : i + f])  # (1, f, 3, S, S): one forward of f frames

            cpu: dict[int, list[float]] = {f: [] for f in per_forward}
            times = interleaved({f: _cpu_metered(lambda f=f: forwards(f), cpu[f]) for f in per_forward}, REPEATS)
            best = min(per_forward, key=lambda f: median(cpu[f][1:]))  # [1:]: not the warm-up
            for f in per_forward:
                rows.append({"case": f"{size} px, {f} frames per forward", "CPU ms/frame": median(cpu[f][1:]) / frames * 1e3,
                             "ms/frame": median(times[f]) / frames * 1e3})
            rows.append({"case": f"RATIO CPU time per frame ÷ best ({best} frames), {size} px, {max(per_forward)} frames per forward",
                         "ratio": paired_ratio(cpu[max(per_forward)][1:], cpu[best][1:]),
                         "range": spread([a / b for a, b in zip(cpu[max(per_forward)][1:], cpu[best][1:])])})

        with tempfile.TemporaryDirectory(prefix="vidrec-bench-batch-") as tmp:
            root = Path(tmp)
            records = [r for split in generate(root / "data", num_clips=CLIPS, seed=0).values() for r in split]
            spec = ClipSpec(num_frames=T, frame_size=112, resize=112)
            dataset = ClipDataset(records, spec, spec.eval_transform(backbone.normalization))
            runs = itertools.count()
            written: dict[str, Path] = {}

            def extract(size) -> None:
                written[str(size)] = root / "cache" / str(next(runs))
                done = FeatureCache(written[str(size)], backbone).extract(dataset, batch_size=size, num_workers=WORKERS, progress=False)
                assert done == len(dataset), f"extracted {done} of {len(dataset)} clips"

            auto_case, old_case = f"extract, batch_size auto ({cpu_clips(T, 112 * 112)} clips)", f"extract, batch_size {OLD_BATCH}"
            times = interleaved({auto_case: lambda: extract("auto"), old_case: lambda: extract(OLD_BATCH)}, 3)
            feats = {k: torch.stack([FeatureCache(p, backbone).load(dataset, i)[0][0].float() for i in range(len(dataset))])
                     for k, p in written.items()}
            diff = (feats["auto"] - feats[str(OLD_BATCH)]).abs().max().item()
        for case, ts in times.items():
            rows.append({"case": case, "seconds": median(ts), "clips/s": len(dataset) / median(ts)})
        ta, told = times[auto_case], times[old_case]
        rows.append({"case": f"RATIO speed batch_size auto ÷ {OLD_BATCH}", "ratio": paired_ratio(told, ta),
                     "range": spread([o / a for a, o in zip(ta, told)]), "max feature diff": diff,
                     "budget": f"CPU_FRAMES = {CPU_FRAMES} at {CPU_FRAME_SIZE} px"})
    finally:
        torch.set_num_threads(threads)
    return rows


def interpret(rows: list[dict]) -> str:
    sweeps = {}
    for r in rows:
        case = str(r.get("case", ""))
        if " px, " in case and "CPU ms/frame" in r and not case.startswith("RATIO"):
            size = int(case.split(" px")[0])
            sweeps.setdefault(size, []).append((int(case.split(", ")[1].split()[0]), r["CPU ms/frame"]))
    if not sweeps:
        return "Not measured."
    text = ""
    for size, points in sweeps.items():
        best_f, best = min(points, key=lambda p: p[1])
        most_f, most = max(points)
        text += (f" At {size} px one thread spends the least CPU per frame in forwards of {best_f} frames ({best:.1f} ms); "
                 f"forwards of {most_f} cost {most / best:.1f}x as much per frame.")
    end = next((r for r in rows if str(r.get("case", "")).startswith("RATIO speed batch_size auto")), None)
    if end is not None:
        same = "the same features bit for bit" if end["max feature diff"] == 0 else f"features differing by up to {end['max feature diff']:.1e}"
        text += (f" End to end, `batch_size='auto'` ({end['budget']}) extracts at {end['ratio']:.2f}x the speed of "
                 f"{OLD_BATCH} clips per batch (range {end['range']}), with {same}.")
    return text.strip()


if __name__ == "__main__":
    for row in run():
        print(row)
