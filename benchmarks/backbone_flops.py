"""Backbone FLOPs against this machine's matmul throughput: what fraction of the CPU the CNN uses.

FLOPs of one ``FrozenBackbone`` forward come from ``torch.utils.flop_counter.FlopCounterMode``
(multiply-adds counted as 2 FLOPs; it counts convolutions and matmuls, not BatchNorm,
activations or pooling). Dividing by the forward's time gives the achieved GFLOP/s. Two dense
fp32 references are timed interleaved with it at the same thread count:

* ``torch.mm`` of two 2048x2048 matrices: the BLAS (MKL in the PyPI wheels). On AMD CPUs MKL
  may not take its AVX-512 path, so this can sit well below the hardware's peak;
* the same GEMM as a 1x1 convolution in channels_last (32x1024x16x16 input, 1024 filters,
  the same 17.2 GFLOP): oneDNN, the library that runs the backbone's own convolutions, so
  this is the rate those kernels can reach on this CPU.

A separate table row splits the configs' backbone into depthwise convolutions, the other
convolutions and everything else (BatchNorm, ReLU6, residual adds, layout changes), by
FLOPs and by time, to show where the time goes.
"""

from __future__ import annotations

import sys
import time

from benchmarks._common import interleaved, median, paired_ratio, spread

TITLE = "Backbone FLOPs vs this machine's matmul throughput"
FRAMES, SIZE, MM, REPEATS, THREADS = 64, 112, 2048, 5, (1, 2)
# (row label, FrozenBackbone kwargs). resnet18 has no offline weights; random init costs the same.
MODELS = (
    ("Lite0, configs (12 blocks, 3x3 grid)", {"spatial_pooling": "grid", "grid": 3, "backbone_blocks": 12}),
    ("Lite0, whole trunk (avg)", {}),
    ("Lite2, whole trunk (avg)", {"backbone": "efficientnet_lite2"}),
    ("resnet18, whole trunk (avg, random init)", {"backbone": "resnet18", "weights": "none"}),
)
FOLDED = "Lite0, configs, BatchNorm folded (torch.jit.freeze)"
MATMUL = f"torch.mm {MM}x{MM} fp32 (MKL)"
CONV_GEMM = "1x1 conv, same GEMM (oneDNN)"
REFERENCES = (MATMUL, CONV_GEMM)
WHAT = (
    f"FLOPs of one `FrozenBackbone(...)` forward on {FRAMES} frames at {SIZE} px counted by "
    "`torch.utils.flop_counter.FlopCounterMode` (convolutions and matmuls; 1 multiply-add = 2 FLOPs). "
    f"Each forward (`torch.inference_mode()`) is timed interleaved with two dense fp32 references of 2·{MM}³ FLOPs at the same "
    f"torch thread count ({' and '.join(map(str, THREADS))}): `torch.mm` of two {MM}x{MM} matrices (MKL) and the same GEMM "
    "as a 1x1 convolution in channels_last (32x1024x16x16 input, 1024 filters: oneDNN, which runs the backbone's convolutions). "
    f"Median of {REPEATS} repeats after a warm-up. *GFLOP/s* = counted FLOPs ÷ median time. RATIO rows: median over repeats of the "
    "paired (backbone GFLOP/s ÷ reference GFLOP/s), range = min–max. *Split* rows time each convolution of the configs' "
    "backbone through forward hooks (one thread, one batch) to show where the time goes; *not in convolutions* is the "
    "whole forward minus the convolutions (BatchNorm, ReLU6, residual adds, layout changes, pooling). "
    f"*{FOLDED}*: the same backbone with its trunk traced and frozen, which folds eval BatchNorm into the "
    "convolutions (same FLOPs as counted, same features to 1e-4): how much of the non-convolution time a compiler removes."
)


def describe() -> str:
    return WHAT


def _log(msg: str) -> None:
    print(f"[backbone_flops] {msg}", file=sys.stderr, flush=True)


def count_flops(module, x) -> int:
    """FLOPs of ``module(x)`` as ``FlopCounterMode`` counts them (one forward, not timed)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module(x)
    return counter.get_total_flops()


def folded(backbone, x):
    """A copy of ``backbone`` whose trunk is ``torch.jit.freeze``-d: eval BatchNorm folded into the convs."""
    import copy
    import warnings

    import torch

    other = copy.deepcopy(backbone)
    frames = x.flatten(0, 1)  # (B*T, 3, H, W), what the trunk sees
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python branches fixed at trace time
        other.feature_map = torch.jit.freeze(torch.jit.trace(other.feature_map.eval(), frames))
    return other


def conv_split(backbone, x) -> dict[str, dict[str, float]]:
    """FLOPs and seconds of the depthwise vs the other convolutions in one forward.

    Forward hooks stamp the time around each ``Conv2d`` call; CPU kernels run synchronously,
    so the gap is the kernel's time (one thread keeps the stamps honest).
    """
    import torch

    split = {"depthwise": {"flops": 0.0, "seconds": 0.0}, "other conv": {"flops": 0.0, "seconds": 0.0}}
    starts: dict[int, float] = {}

    def pre(mod, _inp):
        starts[id(mod)] = time.perf_counter()

    def post(mod, _inp, out):
        dt = time.perf_counter() - starts.pop(id(mod))
        depthwise = mod.groups > 1 and mod.groups == mod.in_channels
        kh, kw = mod.kernel_size
        flops = 2 * out.numel() * (mod.in_channels // mod.groups) * kh * kw  # MACs x 2, as FlopCounterMode counts
        part = split["depthwise" if depthwise else "other conv"]
        part["flops"] += flops
        part["seconds"] += dt

    handles = []
    for m in backbone.modules():
        if isinstance(m, torch.nn.Conv2d):
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        with torch.inference_mode():
            backbone(x)  # warm-up: oneDNN picks its kernels on the first call of each shape
            for part in split.values():
                part["flops"] = part["seconds"] = 0.0
            t0 = time.perf_counter()
            backbone(x)
            total = time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
    convs = sum(p["seconds"] for p in split.values())
    split["not in convolutions"] = {"flops": 0.0, "seconds": max(total - convs, 0.0)}
    split["whole forward"] = {"flops": sum(p["flops"] for p in split.values()), "seconds": total}
    return split


def run() -> list[dict]:
    import torch

    from vidrec.models.backbone import BackboneWeightsError, FrozenBackbone

    threads = torch.get_num_threads()
    torch.manual_seed(0)
    x = torch.randn(1, FRAMES, 3, SIZE, SIZE)  # (B, T, 3, H, W): one batch of frames
    a, b = torch.randn(MM, MM), torch.randn(MM, MM)
    # A GEMM of (32*16*16 = 8192) x 1024 by 1024 x 1024: 2*8192*1024*1024 = 2*2048^3 FLOPs, as the mm.
    fmap = torch.randn(32, 1024, 16, 16).to(memory_format=torch.channels_last)
    filters = torch.randn(1024, 1024, 1, 1).to(memory_format=torch.channels_last)
    mm_flops = 2 * MM**3
    ref_flops = {MATMUL: mm_flops, CONV_GEMM: 2 * fmap.numel() * filters.shape[0]}
    models, flops = {}, {}
    for label, kw in MODELS:
        try:
            models[label] = FrozenBackbone(**kw)
        except (BackboneWeightsError, ImportError) as e:  # Lite2's weights package may be missing: the others still run
            _log(f"skipping {label}: {type(e).__name__}: {e}")
            continue
        flops[label] = count_flops(models[label], x)
    if MODELS[0][0] in models:
        models[FOLDED] = folded(models[MODELS[0][0]], x)
        flops[FOLDED] = flops[MODELS[0][0]]  # FlopCounterMode never counted BatchNorm
        with torch.inference_mode():
            diff = (models[FOLDED](x) - models[MODELS[0][0]](x)).abs().max().item()
        _log(f"folded BatchNorm: max feature difference {diff:.1e}")
    rows: list[dict] = []
    try:
        for t in THREADS:
            torch.set_num_threads(t)
            _log(f"timing {len(models)} backbones and {MATMUL} at {t} thread(s)")
            cases = {label: (lambda m=m: m(x)) for label, m in models.items()}
            cases[MATMUL] = lambda: torch.mm(a, b)
            cases[CONV_GEMM] = lambda: torch.nn.functional.conv2d(fmap, filters)
            with torch.inference_mode():
                times = interleaved(cases, REPEATS)
            for ref in REFERENCES:
                f = ref_flops[ref]
                rows.append({"model": ref, "threads": t, "GFLOP per call": f / 1e9, "ms/call": median(times[ref]) * 1e3, "GFLOP/s": f / median(times[ref]) / 1e9})
            for label in models:
                ts = times[label]
                rows.append(
                    {
                        "model": label, "threads": t, "GFLOP per frame": flops[label] / FRAMES / 1e9,
                        "GFLOP per call": flops[label] / 1e9, "ms/call": median(ts) * 1e3,
                        "frames/s": FRAMES / median(ts), "GFLOP/s": flops[label] / median(ts) / 1e9,
                    }
                )
            if FOLDED in models:
                eager = times[MODELS[0][0]]
                rows.append(
                    {
                        "model": "RATIO speed BatchNorm folded ÷ eager (Lite0, configs)", "threads": t,
                        "ratio": paired_ratio(eager, times[FOLDED]), "range": spread([e / f for e, f in zip(eager, times[FOLDED])]),
                    }
                )
            for ref in REFERENCES:
                for label in models:
                    # paired: reference time ÷ backbone time, scaled by their FLOPs
                    scale = flops[label] / ref_flops[ref]
                    rows.append(
                        {
                            "model": f"RATIO {label} GFLOP/s ÷ {ref} GFLOP/s", "threads": t,
                            "ratio": paired_ratio(times[ref], times[label]) * scale,
                            "range": spread([r / s * scale for r, s in zip(times[ref], times[label])]),
                        }
                    )
        torch.set_num_threads(1)
        label = MODELS[0][0]
        if label in models:
            _log("splitting the configs' backbone into depthwise and other convolutions")
            split = conv_split(models[label], x)
            whole = split["whole forward"]["seconds"]
            for part, v in split.items():
                rows.append(
                    {
                        "model": f"Split {label}: {part}", "threads": 1, "GFLOP per call": v["flops"] / 1e9,
                        "ms/call": v["seconds"] * 1e3, "GFLOP/s": v["flops"] / v["seconds"] / 1e9 if v["seconds"] else None,
                        "share of FLOPs": v["flops"] / split["whole forward"]["flops"], "share of time": v["seconds"] / whole,
                    }
                )
    finally:
        torch.set_num_threads(threads)
    return rows


def interpret(rows: list[dict]) -> str:
    ratios = [r for r in rows if str(r["model"]).startswith("RATIO") and "GFLOP/s ÷" in str(r["model"])]
    if not ratios:
        return "Not measured."
    label = MODELS[0][0]

    def ratio(t: int, model: str, ref: str):
        return next((r for r in ratios if r["threads"] == t and r["model"] == f"RATIO {model} GFLOP/s ÷ {ref} GFLOP/s"), None)

    def rate(t: int, model: str) -> float:
        return next(r["GFLOP/s"] for r in rows if r["model"] == model and r["threads"] == t)

    parts = []
    for t in THREADS:
        mm, conv = ratio(t, label, MATMUL), ratio(t, label, CONV_GEMM)
        if mm is None or conv is None:
            continue
        parts.append(
            f"at {t} thread(s) the configs' Lite0 backbone runs at {rate(t, label):.1f} GFLOP/s: {mm['ratio']:.0%} of "
            f"`torch.mm` ({rate(t, MATMUL):.0f} GFLOP/s, range {mm['range']}) and {conv['ratio']:.0%} of oneDNN's "
            f"1x1-convolution GEMM ({rate(t, CONV_GEMM):.0f} GFLOP/s, range {conv['range']})"
        )
    text = "; ".join(parts) + "."
    t1, t2 = min(THREADS), max(THREADS)
    one, two = (next((r for r in rows if r["model"] == label and r["threads"] == t), None) for t in (t1, t2))
    if one and two and two["ms/call"] > one["ms/call"]:
        text += (
            f" {t2} threads were slower than {t1} ({two['ms/call']:.0f} vs {one['ms/call']:.0f} ms per batch): the machine "
            "was shared with other jobs, and an intra-op thread whose core is taken holds up every op; the 1-thread rows "
            "are the trustworthy ones."
        )
    short = {FOLDED: "Lite0 (configs) with BatchNorm folded", **{m: m.split(" (")[0] for m, _ in MODELS[1:]}}
    others = [(name, ratio(t1, m, CONV_GEMM)) for m, name in short.items()]
    others = [f"{name} {r['ratio']:.0%}" for name, r in others if r is not None]
    if others:
        text += f" Of oneDNN's GEMM rate at {t1} thread: " + ", ".join(others) + "."
    mm1, conv1 = rate(t1, MATMUL), rate(t1, CONV_GEMM)
    if conv1 > 1.5 * mm1:
        text += (
            f" oneDNN's GEMM is {conv1 / mm1:.1f}x `torch.mm` here: MKL picks its kernels by CPU vendor "
            "(`MKL_VERBOSE=1` names only \"Intel(R) Architecture processors\", no AVX-512 code path), so `torch.mm` "
            "understates this machine's fp32 peak and the oneDNN column is the fair one."
        )
    split = {str(r["model"]).rsplit(": ", 1)[-1]: r for r in rows if str(r["model"]).startswith("Split")}
    if {"depthwise", "other conv", "not in convolutions"} <= split.keys():
        dw, other, rest = split["depthwise"], split["other conv"], split["not in convolutions"]
        text += (
            f" Where Lite0's time goes (1 thread): depthwise 3x3 convolutions do {dw['share of FLOPs']:.0%} of its FLOPs in "
            f"{dw['share of time']:.0%} of its time ({dw['GFLOP/s']:.1f} GFLOP/s: a few FLOPs per byte moved, so memory-bound); "
            f"the other convolutions do {other['share of FLOPs']:.0%} of the FLOPs in {other['share of time']:.0%} of the time "
            f"({other['GFLOP/s']:.0f} GFLOP/s); and {rest['share of time']:.0%} of the time is spent outside convolutions "
            "(eval-mode BatchNorm, ReLU6 and residual adds, each a full pass over the feature maps)."
        )
    fold = [r for r in rows if str(r["model"]).startswith("RATIO speed BatchNorm folded")]
    if fold:
        text += (
            " Folding BatchNorm into the convolutions (`torch.jit.freeze` of the traced trunk) speeds the backbone up "
            + ", ".join(f"{r['ratio']:.2f}x at {r['threads']} thread(s) (range {r['range']})" for r in fold)
            + "; the depthwise share is the price of the architecture."
        )
    return text


if __name__ == "__main__":
    for row in run():
        print(row)
