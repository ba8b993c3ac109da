"""Ablation: motion input x caption decoder x backbone, on the real-footage benchmark and the demo.

    python -m benchmarks.ablation                       # both grids, writes benchmarks/ABLATION.md
    python -m benchmarks.ablation --grid real           # only the real-footage grid
    python -m benchmarks.ablation --grid demo --motions none flow_stats

Every cell is a run of the project's own commands, so anyone can repeat one alone:

* real footage: ``python -m benchmarks.real_footage_eval --data data/real_footage --config
  configs/custom.yaml <the cell's options>`` (``train.py fit`` on each of the three folds, then
  the Predictor on the seen and the unseen test manifests);
* demo: ``python -m vidrec.apps.order_demo --skip-baseline <the cell's options>`` (``train.py
  fit`` + ``test`` with ``configs/synthetic.yaml``).

A cell's result is kept in ``runs/ablation/<real | demo-<N>clips>/<cell>/ablation_result.json`` and reused when the grid
is run again, so an interrupted ablation continues where it stopped. All cells of a grid share
one feature cache: the cache key tells the backbones and motion inputs apart.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "runs" / "ablation"

# Each axis value is the train.py options that select it.
MOTIONS = ("none", "feature_diff", "flow", "flow_stats")
CAPTIONS = {"pooled": ["--model.caption_attention", "false"], "attention": ["--model.caption_attention", "true"]}
# Both cut at their stride-16 stage (Lite0: 112 channels after block 12; Lite2: 120 after block 16),
# pooled on the 3x3 grid the configs use.
BACKBONES = {
    "lite0": ["--model.backbone", "efficientnet_lite0", "--model.backbone_blocks", "12"],
    "lite2": ["--model.backbone", "efficientnet_lite2", "--model.backbone_blocks", "16"],
}


def cell_options(motion: str, caption: str, backbone: str, temporal: str = "lstm") -> list[str]:
    """The train.py options of one cell of the grid."""
    return ["--model.motion", motion, *CAPTIONS[caption], *BACKBONES[backbone], "--model.temporal", temporal]


def cell_name(motion: str, caption: str, backbone: str, temporal: str = "lstm") -> str:
    return f"{motion}-{caption}-{backbone}-{temporal}"


def run_real(cell: list[str], out: Path, data: Path) -> dict:
    """Three folds through train.py; mean (min-max) of top-1 and caption-names-the-action."""
    from benchmarks.real_footage import build
    from benchmarks.real_footage_eval import main as evaluate

    if not (data / "fold0_train.jsonl").is_file():
        build(data)
    # The shared cache comes last so it wins over real_footage_eval's per-run default.
    args = ["--data", str(data), "--config", str(ROOT / "configs" / "custom.yaml"), "--out", str(out), *cell]
    summary = evaluate([*args, "--data.cache_dir", str(out.parent / "cache")])["summary"]
    return {k: list(v) for k, v in summary.items()}


def run_demo(cell: list[str], out: Path, data: Path) -> dict:
    """The demo's LSTM run with the cell's options (``--num-clips`` among them): top-1 on the reversed pairs, the rest, all; BLEU-4."""
    from vidrec.apps.order_demo import main as demo

    # The demo's appearance model stays as configs/synthetic.yaml has it; only the cell's options differ.
    summary = demo(["--data", str(data), "--out", str(out), "--skip-baseline", "--cache-dir", str(out.parent / "cache"), *cell])
    r = summary["runs"]["lstm"]
    return {k: r.get(k) for k in ("reversed_pairs_top1", "symmetric_top1", "test/top1", "test/bleu4")}


def grid_cells(grid: str, motions, captions, backbones) -> list[tuple[str, str, str, str]]:
    """Every (motion, caption, backbone) with the LSTM, plus the order-blind mean on each motion input."""
    cells = [(m, c, b, "lstm") for m, c, b in itertools.product(motions, captions, backbones)]
    # The order-blind baseline gets the same inputs, with a fixed decoder (attention on real footage,
    # pooled on the demo, as the first ablation ran it) and Lite0.
    base_caption = "attention" if grid == "real" else "pooled"
    cells += [(m, base_caption, "lite0", "mean") for m in motions]
    return cells


def run_grid(grid: str, motions, captions, backbones, data: Path, demo_clips: int = 2400) -> list[dict]:
    rows = []
    # A demo dataset of another size is another benchmark: its cells go in their own folder.
    folder = OUT / (grid if grid == "real" else f"demo-{demo_clips}clips")
    for cell in grid_cells(grid, motions, captions, backbones):
        out = folder / cell_name(*cell)
        result_file = out / "ablation_result.json"
        if result_file.is_file():
            result = json.loads(result_file.read_text())
        else:
            print(f"[ablation] {grid}: {cell_name(*cell)}", file=sys.stderr, flush=True)
            run = run_real if grid == "real" else run_demo
            options = cell_options(*cell) + ([] if grid == "real" else ["--num-clips", str(demo_clips)])
            result = run(options, out, data)
            out.mkdir(parents=True, exist_ok=True)
            result_file.write_text(json.dumps(result, indent=1))
        rows.append({"motion": cell[0], "caption": cell[1], "backbone": cell[2], "temporal": cell[3], **result})
    return rows


def _span(value) -> str:
    mean, lo, hi = value
    return f"{mean:.3f} ({lo:.2f}–{hi:.2f})"


def markdown(real: list[dict], demo: list[dict]) -> str:
    lines = ["# Ablation: motion input x caption decoder x backbone", "", (__doc__ or "").split("\n\n", 1)[1].strip(), ""]
    if real:
        lines += [
            "## Real footage (10 classes in 5 reversed pairs; 3 folds, seed 0; mean (min–max) over folds)",
            "",
            "| motion | caption decoder | backbone | temporal | unseen top-1 | unseen: caption names the action | seen top-1 | seen: caption |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in real:
            lines.append(
                f"| {r['motion']} | {r['caption']} | {r['backbone']} | {r['temporal']} | {_span(r['unseen_top1'])} | "
                f"{_span(r['unseen_caption_action'])} | {_span(r['seen_top1'])} | {_span(r['seen_caption_action'])} |"
            )
        lines.append("")
    if demo:
        lines += [
            "## Built-in demo (12 shape actions, 5 reversed pairs; test split, seed 0)",
            "",
            "| motion | caption decoder | backbone | temporal | reversed pairs | symmetric | all | BLEU-4 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in demo:
            lines.append(
                f"| {r['motion']} | {r['caption']} | {r['backbone']} | {r['temporal']} | {r['reversed_pairs_top1']:.1%} | "
                f"{r['symmetric_top1']:.1%} | {r['test/top1']:.1%} | {r['test/bleu4']:.3f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", choices=("real", "demo", "both"), default="both")
    p.add_argument("--motions", nargs="+", default=list(MOTIONS), choices=MOTIONS)
    p.add_argument("--captions", nargs="+", default=list(CAPTIONS), choices=list(CAPTIONS))
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    p.add_argument("--real-data", default=str(ROOT / "data" / "real_footage"))
    p.add_argument("--demo-data", default=str(ROOT / "data" / "synthetic"))
    p.add_argument("--demo-clips", type=int, default=2400, help="clips in the demo's dataset (make demo's: 2400; the first ablation used 1200)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "ABLATION.md"))
    args = p.parse_args(argv)
    axes = (args.motions, args.captions, args.backbones)
    real = run_grid("real", *axes, Path(args.real_data)) if args.grid in ("real", "both") else []
    demo = run_grid("demo", *axes, Path(args.demo_data), args.demo_clips) if args.grid in ("demo", "both") else []
    text = markdown(real, demo)
    Path(args.out).write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
