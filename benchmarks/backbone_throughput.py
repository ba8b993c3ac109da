"""Backbone throughput: FrozenBackbone with channels_last weights (the class default) vs NCHW.

EfficientNet-Lite0 with its default pretrained weights as in configs/synthetic.yaml (first 12 blocks, 3x3 grid, D = 1008), 112 px
frames, one batch of 64 frames, under ``torch.inference_mode``. The contiguous-format model
is a deep copy converted with ``.to(memory_format=torch.contiguous_format)``; the input is the
same NCHW tensor for both, as the datasets produce it.
"""

from __future__ import annotations

import copy

from benchmarks._common import interleaved, median, paired_ratio, spread

TITLE = "Backbone throughput: channels_last vs contiguous (NCHW)"
WHAT = (
    "`FrozenBackbone(spatial_pooling='grid', grid=3, backbone_blocks=12)` (EfficientNet-Lite0, default weights) forward on one batch of "
    "{frames} frames at {size} px in `torch.inference_mode()`, weights in channels_last (what the class "
    "does) vs a deep copy converted to `torch.contiguous_format`. Interleaved, median of {repeats} repeats "
    "after a warm-up; the two outputs are compared to show the layouts compute the same features."
)
FRAMES, SIZE, REPEATS = 64, 112, 6


def run() -> list[dict]:
    import torch

    from vidrec.models.backbone import FrozenBackbone

    torch.manual_seed(0)
    nhwc = FrozenBackbone(spatial_pooling="grid", grid=3, backbone_blocks=12)  # configs/synthetic.yaml
    nchw = copy.deepcopy(nhwc).to(memory_format=torch.contiguous_format)
    conv = next(m for m in nchw.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(), "the copy did not convert"
    x = torch.randn(1, FRAMES, 3, SIZE, SIZE)  # (B, T, 3, H, W): one clip-batch of 64 frames

    with torch.inference_mode():
        diff = (nhwc(x) - nchw(x)).abs().max().item()
        times = interleaved({"channels_last": lambda: nhwc(x), "contiguous": lambda: nchw(x)}, REPEATS)
    rows = []
    for name, ts in times.items():
        t = median(ts)
        rows.append({"weights layout": name, "ms/batch": t * 1e3, "frames/s": FRAMES / t, "out dim": nhwc.out_dim})
    ratios = [c / n for c, n in zip(times["contiguous"], times["channels_last"])]
    rows.append(
        {
            "weights layout": "RATIO speed channels_last ÷ contiguous",
            "ratio": paired_ratio(times["contiguous"], times["channels_last"]),
            "range": spread(ratios),
            "max abs feature diff": diff,
        }
    )
    return rows


def describe() -> str:
    return WHAT.format(frames=FRAMES, size=SIZE, repeats=REPEATS)


def interpret(rows: list[dict]) -> str:
    r = next((r for r in rows if "ratio" in r), None)
    if r is None:
        return "Not measured."
    if r["ratio"] > 1.05:
        verdict = "channels_last is faster"
    elif r["ratio"] < 0.95:
        verdict = "channels_last is slower"
    else:
        verdict = "no clear difference in this run"
    return (
        f"channels_last runs at {r['ratio']:.2f}x the speed of NCHW on this CPU ({verdict}; range over repeats "
        f"{r['range']}), and both layouts give the same features (max difference {r['max abs feature diff']:.1e})."
    )


if __name__ == "__main__":
    for row in run():
        print(row)
