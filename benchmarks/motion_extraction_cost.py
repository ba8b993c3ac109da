"""What each motion input and backbone costs to extract, as a ratio to the default (Lite0, no motion).

Per clip: decode + sample + transform (``ClipDataset``, which also computes a data-side motion
input: DIS flow images or flow statistics) + the frozen backbone on the frames (and on the
flow images for ``motion: flow``) — exactly what the feature cache does once per clip. Clips
are real footage: the first clips of the real-footage benchmark's manifest (built if missing).
``feature_diff`` is computed by the model from cached features, so it extracts like ``none``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from benchmarks._common import interleaved, median, paired_ratio, spread

TITLE = "Extraction cost of each motion input and backbone (issue 9)"
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "real_footage"
# The same folds as longer clips: samples 8 (64 frames) and 20 (160 frames) frames apart.
LONG_DATA = {64: ROOT / "data" / "real_footage_64", 160: ROOT / "data" / "real_footage_160"}
CLIPS = 16
REPEATS = 3
# name -> (backbone, blocks): both cut at their stride-16 stage on a 3x3 grid, as configs/custom.yaml.
BACKBONES = {"lite0": ("efficientnet_lite0", 12), "lite2": ("efficientnet_lite2", 16)}
# (motion, motion_gap, motion_span, motion_residual_max): a gap decodes each sampled frame's partner
# too. `motion_gap: auto` is gap 1 on these 16-frame clips and 4 on the long ones; `motion_span: step`
# (with auto) measures 2 hops of it per step on the 16- and 64-frame clips, 5 on the 160-frame ones;
# `motion_residual_max` warps each hop's frame along its flow to check it (configs/custom.yaml: all three).
RESIDUAL = 12.0
MOTIONS = (("none", 0, "gap", None), ("feature_diff", 0, "gap", None), ("flow", 0, "gap", None),
           ("flow_stats", 0, "gap", None), ("flow_stats", 1, "gap", None), ("flow_stats", "auto", "step", None),
           ("flow_stats", "auto", "step", RESIDUAL))
LONG_MOTIONS = {
    64: (("none", 0, "gap", None), ("flow_stats", 1, "gap", None), ("flow_stats", "auto", "gap", None),
         ("flow_stats", "auto", "step", None)),
    160: (("none", 0, "gap", None), ("flow_stats", "auto", "gap", None), ("flow_stats", "auto", "step", None),
          ("flow_stats", "auto", "step", RESIDUAL)),
}


def _label(motion: str, gap: int | str, frames: int | None = None, span: str = "gap", residual: float | None = None) -> str:
    return ((f"{motion}, motion_gap {gap}" if gap else motion) + (", motion_span step" if span == "step" else "")
            + (f", motion_residual_max {residual:g}" if residual is not None else "")
            + (f", {frames}-frame clips" if frames else ""))


def describe() -> str:
    return (
        f"Per clip, {CLIPS} real-footage clips (T=8, 112 px): `ClipDataset` decode + sample + transform (+ the data-side "
        "motion input) and `frame_features` (the frozen backbone on the frames, and on the flow images for `flow`), "
        "batch 8, main process, 3x3 grid pooling. Interleaved, median of "
        f"{REPEATS} repeats after a warm-up. RATIO = seconds per clip ÷ the default's (Lite0, `motion: none`), "
        "median of paired ratios (min–max); the 64- and 160-frame rows ÷ Lite0 without motion on clips of that length."
    )


def _extractor(backbone_name: str, blocks: int, motion: str, gap: int | str, records, span: str = "gap",
               residual: float | None = None):
    from vidrec.data.clips import ClipSpec
    from vidrec.data.datasets import ClipDataset, collate_clips
    from vidrec.models.backbone import FrozenBackbone
    from vidrec.models.net import frame_features

    backbone = FrozenBackbone(backbone_name, "DEFAULT", spatial_pooling="grid", grid=3, backbone_blocks=blocks).eval()
    spec = ClipSpec(num_frames=8, frame_size=112, motion=motion, motion_gap=gap, motion_span=span,
                    motion_residual_max=residual)
    dataset = ClipDataset(records, spec, spec.eval_transform(backbone.normalization))

    @torch.inference_mode()
    def extract() -> int:
        clips = 0
        for batch in DataLoader(dataset, batch_size=8, collate_fn=collate_clips):
            motion_in = batch.get("motion")
            frame_features(backbone, batch["frames"], motion_in, motion)  # (B, T, D [+ M])
            clips += batch["size"]
        return clips

    return extract


def run() -> list[dict]:
    from benchmarks.real_footage import build
    from vidrec.data.manifest import read_manifest

    if not (DATA / "fold0_train.jsonl").is_file():
        build(DATA)
    records = read_manifest(DATA / "fold0_train.jsonl")[:CLIPS]
    long_records = {}
    for frames, folder in LONG_DATA.items():
        if not (folder / "fold0_train.jsonl").is_file():
            build(folder, num_frames=frames)
        long_records[frames] = read_manifest(folder / "fold0_train.jsonl")[:CLIPS]
    cases = {}
    for bname, (backbone, blocks) in BACKBONES.items():
        for motion, gap, span, residual in MOTIONS:
            if motion == "feature_diff":
                continue  # the model differences cached features: the same extraction as `none`
            label = _label(motion, gap, span=span, residual=residual)
            print(f"[motion_extraction_cost] building {bname} / {label}", file=sys.stderr, flush=True)
            cases[f"{bname} / {label}"] = _extractor(backbone, blocks, motion, gap, records, span, residual)
    for frames, motions in LONG_MOTIONS.items():
        for motion, gap, span, residual in motions:
            label = _label(motion, gap, frames, span, residual)
            print(f"[motion_extraction_cost] building lite0 / {label}", file=sys.stderr, flush=True)
            cases[f"lite0 / {label}"] = _extractor(*BACKBONES["lite0"], motion, gap, long_records[frames], span, residual)
    times = interleaved(cases, REPEATS)

    def row(backbone: str, label: str, key: str, base: list[float]) -> dict:
        ratios = [t / b for t, b in zip(times[key], base)]
        return {"backbone": backbone, "motion": label, "ms/clip": median(times[key]) / CLIPS * 1000,
                "clips/s": CLIPS / median(times[key]), "ratio": paired_ratio(times[key], base), "range": spread(ratios)}

    rows = [row(bname, _label(motion, gap, span=span, residual=residual),
                f"{bname} / {'none' if motion == 'feature_diff' else _label(motion, gap, span=span, residual=residual)}",
                times["lite0 / none"])
            for bname in BACKBONES for motion, gap, span, residual in MOTIONS]
    for frames, motions in LONG_MOTIONS.items():
        base = times[f"lite0 / {_label('none', 0, frames)}"]
        rows += [row("lite0", _label(motion, gap, frames, span, residual), f"lite0 / {_label(motion, gap, frames, span, residual)}",
                     base)
                 for motion, gap, span, residual in motions]
    return rows


def interpret(rows: list[dict]) -> str:
    by = {(r["backbone"], r["motion"]): r["ratio"] for r in rows}
    return (
        f"Against today's default (Lite0, no motion input): `flow_stats` costs "
        f"{by[('lite0', 'flow_stats')]:.2f}x (DIS flow on small frames, no extra CNN work), and "
        f"{by[('lite0', 'flow_stats, motion_gap 1')]:.2f}x with `motion_gap: 1` (each sampled frame's partner, the next "
        f"frame, is decoded too), {by[('lite0', _label('flow_stats', 'auto', span='step'))]:.2f}x with "
        f"`motion_gap: auto` and `motion_span: step` (gap 1 in 2 hops on these clips: the frames "
        f"`motion_gap: 1` decodes, twice the flow); `flow` runs the CNN on "
        f"the flow images too, {by[('lite0', 'flow')]:.2f}x; `feature_diff` costs nothing extra at extraction. "
        f"EfficientNet-Lite2 costs {by[('lite2', 'none')]:.2f}x Lite0 for the same frames. On 64-frame clips (ratios to "
        f"Lite0 without motion on those clips) `motion_gap: 1` costs {by[('lite0', _label('flow_stats', 1, 64))]:.2f}x, "
        f"`motion_gap: auto` {by[('lite0', _label('flow_stats', 'auto', 64))]:.2f}x (each partner 4 frames on, not 1) and "
        f"with `motion_span: step` {by[('lite0', _label('flow_stats', 'auto', 64, 'step'))]:.2f}x (2 hops of 4 "
        f"frames per step, the second ending on the next sample: 17 frames decoded per clip instead of 15, twice the flow). "
        f"On 160-frame clips `auto` costs {by[('lite0', _label('flow_stats', 'auto', 160))]:.2f}x and with `motion_span: step` "
        f"{by[('lite0', _label('flow_stats', 'auto', 160, 'step'))]:.2f}x (5 hops: 40 frames decoded per clip instead of 16, "
        f"5 flows per step). Checking each hop's flow against its frames (`motion_residual_max`, custom.yaml: one warp "
        f"per hop) makes that {by[('lite0', _label('flow_stats', 'auto', span='step', residual=RESIDUAL))]:.2f}x on the "
        f"16-frame clips and {by[('lite0', _label('flow_stats', 'auto', 160, 'step', RESIDUAL))]:.2f}x on the 160-frame ones."
    )
