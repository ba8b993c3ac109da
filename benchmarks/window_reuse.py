"""Windowed inference on long videos: frames encoded vs naive, and peak memory vs video length.

``Predictor.predict(video, window=2, stride=0.5)`` slides 2-second windows every 0.5 s. Each
window reads T = 8 frames on a shared time grid, so overlapping windows share frames; the
predictor encodes each grid frame once and keeps only a window's worth of features, so
memory should not grow with the video's length. Each video runs in a fresh subprocess so
its peak RSS is its own.

The model comes from ``$VIDREC_BENCH_CKPT`` or ``runs/demo/lstm.ckpt`` (``make demo``) when
one exists; otherwise an untrained network of the same architecture is built in memory with
``build_recognizer`` (pretrained backbone, random LSTM/heads) — costs do not depend on trained weights.

    python -m benchmarks.window_reuse                                          # the benchmark
    python -m benchmarks.window_reuse --worker VIDEO --warm SHORT [--ckpt PATH]  # one measurement, JSON out
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TITLE = "Windowed inference on long videos: frame reuse and memory"
WINDOW, STRIDE, FPS, SIZE = 2.0, 0.5, 8, 112
MINUTES = (1, 5)
WHAT = (
    f"`Predictor.predict(video, window={WINDOW:g}, stride={STRIDE:g})` on synthetic videos of "
    f"{' and '.join(str(m) for m in MINUTES)} minutes ({SIZE} px, {FPS} fps, shapes doing actions), each in a fresh "
    "process after a warm-up prediction on a 4-second video. *frames encoded* is the prediction's `stats.frames_encoded`; "
    "*naive* is windows × T (every window decoded and encoded on its own). *peak RSS growth* is the process's "
    "peak RSS during the prediction (kernel high-water mark, reset after the warm-up) minus its RSS before it; "
    "*tracemalloc peak* counts Python/numpy allocations only (decoded frames), not torch's."
)
DEMO_CKPT = Path(__file__).resolve().parent.parent / "runs" / "demo" / "lstm.ckpt"  # written by `make demo`


def checkpoint() -> str | None:
    env = os.environ.get("VIDREC_BENCH_CKPT")
    if env:
        return env
    return str(DEMO_CKPT) if DEMO_CKPT.is_file() else None


def make_video(path: Path, seconds: int, seed: int = 0) -> None:
    """Clips of the built-in actions back to back (16 frames each), written at FPS."""
    import numpy as np

    from vidrec.data.synthetic import ACTIONS, COLORS, SHAPES, ClipSpec, render_clip, write_video

    rng = np.random.default_rng(seed)
    n = seconds * FPS
    clips = []
    while sum(len(c) for c in clips) < n:
        spec = ClipSpec(
            str(rng.choice(ACTIONS)), str(rng.choice(list(COLORS))), str(rng.choice(SHAPES)), int(rng.integers(2**31))
        )
        clips.append(render_clip(spec, 16, SIZE))
    write_video(path, np.concatenate(clips)[:n], fps=FPS, fourcc="mp4v")


def build_predictor(ckpt: str | None):
    from vidrec.inference.predictor import Predictor

    if ckpt:
        return Predictor.from_checkpoint(ckpt, device="cpu"), f"checkpoint {ckpt}"
    from vidrec.data.clips import ClipSpec
    from vidrec.data.synthetic import ACTIONS, CAPTIONS, COLORS, SHAPES
    from vidrec.data.vocab import Vocab
    from vidrec.models.net import build_recognizer

    captions = [t.format(c=c, s=s) for ts in CAPTIONS.values() for t in ts for c in COLORS for s in SHAPES]
    vocab = Vocab.build(captions)
    hparams = {  # configs/synthetic.yaml (base.yaml's EfficientNet-Lite0, pretrained)
        "classes": list(ACTIONS), "vocab": vocab.itos, "backbone_blocks": 12, "spatial_pooling": "grid", "grid": 3,
        "hidden_size": 256, "caption_hidden_size": 256, "caption_embed_dim": 128,
    }
    net = build_recognizer(hparams)
    predictor = Predictor(net, classes=list(ACTIONS), vocab=vocab, clip=ClipSpec(num_frames=8, frame_size=SIZE, resize=SIZE),
                          device="cpu")
    return predictor, "untrained network (configs/synthetic.yaml sizes: 12 blocks, 3x3 grid, LSTM, caption decoder)"


def worker(video: str, warm: str, ckpt: str | None) -> dict:
    import dataclasses
    import gc
    import time
    import tracemalloc

    import torch

    from benchmarks._common import reset_peak_rss, rss_mib

    predictor, model = build_predictor(ckpt)
    predictor.predict(warm, window=WINDOW, stride=STRIDE)  # lazy allocations happen here, not below
    gc.collect()
    reset = reset_peak_rss()
    before, peak_before = rss_mib()
    tracemalloc.start()
    t0 = time.perf_counter()
    pred = predictor.predict(video, window=WINDOW, stride=STRIDE)
    seconds = time.perf_counter() - t0
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    _, peak = rss_mib()
    stats = dataclasses.asdict(pred.stats) if pred.stats is not None else {}
    return {
        "error": pred.error,
        "model": model,
        "seconds": seconds,
        "stats": stats,
        "num_frames": predictor.clip.num_frames,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
        # without a reset the high-water mark may be the model loading's; then growth is a lower bound
        "peak_growth_mib": peak - before if reset else max(peak - peak_before, 0.0),
        "peak_reset": reset,
        "tracemalloc_peak_mib": traced_peak / 2**20,
        "torch_threads": torch.get_num_threads(),
    }


def run() -> list[dict]:
    if importlib.util.find_spec("vidrec.inference.predictor") is None:
        return [{"video": "-", "note": "skipped: vidrec.inference.predictor does not exist yet"}]
    import vidrec.inference.predictor as vp

    if not hasattr(vp, "Predictor"):
        return [{"video": "-", "note": "skipped: vidrec.inference.predictor has no Predictor yet"}]
    ckpt = checkpoint()
    if ckpt and not Path(ckpt).is_file():
        return [{"video": "-", "note": f"skipped: checkpoint {ckpt} ($VIDREC_BENCH_CKPT) not found"}]

    root = Path(__file__).resolve().parent.parent
    results = {}
    with tempfile.TemporaryDirectory(prefix="vidrec-bench-") as tmp:
        warm = Path(tmp) / "warm.mp4"
        make_video(warm, 4, seed=1)
        for minutes in MINUTES:
            video = Path(tmp) / f"{minutes}min.mp4"
            make_video(video, minutes * 60)
            cmd = [sys.executable, "-m", "benchmarks.window_reuse", "--worker", str(video), "--warm", str(warm)]
            if ckpt:
                cmd += ["--ckpt", ckpt]
            proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                return [{"video": f"{minutes} min", "note": f"worker failed (rc {proc.returncode}): {tail[0][:200]}"}]
            results[minutes] = json.loads(lines[-1])

    rows = []
    for minutes, r in results.items():
        st = r["stats"]
        naive = st.get("windows", 0) * r["num_frames"]
        encoded = st.get("frames_encoded")
        rows.append(
            {
                "video": f"{minutes} min ({minutes * 60 * FPS} frames)",
                "windows": st.get("windows"),
                "frames encoded": encoded,
                "naive frames (windows × T)": naive,
                "naive ÷ encoded": naive / encoded if encoded else None,
                "seconds": r["seconds"],
                "s per video-minute": r["seconds"] / minutes,
                "max buffered features": st.get("max_buffered_frames"),
                "peak RSS MiB": r["peak_rss_mib"],
                "peak RSS growth MiB": r["peak_growth_mib"],
                "tracemalloc peak MiB": r["tracemalloc_peak_mib"],
                "note": r["error"] or "",
            }
        )
    lo, hi = results[MINUTES[0]], results[MINUTES[-1]]
    k = MINUTES[-1] / MINUTES[0]
    label = f"RATIO {MINUTES[-1]} min ÷ {MINUTES[0]} min (video {k:g}x longer)"
    rows.append(
        {
            "video": label,
            "peak RSS MiB": hi["peak_rss_mib"] / lo["peak_rss_mib"],
            "peak RSS growth MiB": hi["peak_growth_mib"] / lo["peak_growth_mib"] if lo["peak_growth_mib"] > 0 else None,
            "tracemalloc peak MiB": hi["tracemalloc_peak_mib"] / lo["tracemalloc_peak_mib"],
            "max buffered features": hi["stats"].get("max_buffered_frames") / max(lo["stats"].get("max_buffered_frames") or 1, 1),
            "s per video-minute": (hi["seconds"] / MINUTES[-1]) / (lo["seconds"] / MINUTES[0]),
            "note": f"model: {lo['model']}" + ("" if lo["peak_reset"] else "; peak RSS could not be reset (growth is a lower bound)"),
        }
    )
    return rows


def interpret(rows: list[dict]) -> str:
    if len(rows) < 2:
        return rows[0].get("note", "Not measured.") if rows else "Not measured."
    ratio = rows[-1]
    reuse = [r["naive ÷ encoded"] for r in rows[:-1] if r.get("naive ÷ encoded")]
    growth = ratio["peak RSS growth MiB"]
    longer = MINUTES[-1] / MINUTES[0]
    frames_long = MINUTES[-1] * 60 * FPS
    all_frames_mib = frames_long * 3 * SIZE * SIZE * 4 / 2**20
    return (
        f"Overlapping windows share frames: the predictor encodes {min(reuse):.1f}–{max(reuse):.1f}x fewer frames "
        f"than encoding every window on its own. For a {longer:g}x longer video, peak RSS is {ratio['peak RSS MiB']:.2f}x, "
        f"the feature buffer {ratio['max buffered features']:.0f}x (always one window) and the peak growth over the "
        f"loaded model {growth if growth is not None else float('nan'):.2f}x — far from the {longer:g}x of a "
        f"length-proportional buffer (the {MINUTES[-1]}-min video's {frames_long} frames as float input would alone "
        f"take {all_frames_mib:.0f} MiB). Time per video-minute {ratio['s per video-minute']:.2f}x (1 = time linear in length)."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one windowed-inference measurement (used by run())")
    parser.add_argument("--worker", help="video to predict (without it: run the whole benchmark)")
    parser.add_argument("--warm", help="short video for the warm-up prediction")
    parser.add_argument("--ckpt", default=None)
    args = parser.parse_args(argv)
    if args.worker is None:
        for row in run():
            print(row)
        return
    if args.warm is None:
        parser.error("--worker needs --warm")
    print(json.dumps(worker(args.worker, args.warm, args.ckpt)))


if __name__ == "__main__":
    main()
