"""Run every benchmark, write ``BENCHMARKS.md`` and print it: ``python -m benchmarks.run_all``.

``python -m benchmarks.run_all decode_speed backbone_throughput`` runs only those (and
prints without writing, unless ``--out`` is given). A benchmark that fails is reported in
its section instead of stopping the others.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import time
import traceback
from pathlib import Path

# OpenCV logs every codec it fails to open (e.g. no H.264 encoder) at ERROR level; the
# benchmarks fall back to MPEG-4 on purpose, so that noise is turned off.
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")

from benchmarks._common import machine_info  # noqa: E402

BENCHMARKS = (
    "decode_speed", "backbone_throughput", "backbone_flops", "motion_extraction_cost", "extraction_pipeline",
    "extraction_batch", "feature_cache", "feature_store_scale", "window_reuse", "timeline_peers", "training_step", "real_footage_bench",
)
ROOT = Path(__file__).resolve().parent.parent


def fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == 0:
            return "0"
        a = abs(value)
        if a >= 1000:
            return f"{value:,.0f}"
        if a >= 100:
            return f"{value:.0f}"
        if a >= 10:
            return f"{value:.1f}"
        if a >= 0.01:
            return f"{value:.2f}"
        return f"{value:.1e}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    lines = ["| " + " | ".join(fmt(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for c in columns:
            text = fmt(row.get(c))
            if c == "ratio" and text:
                text = f"**{text}x**"
            cells.append(text)
        first = str(row.get(columns[0], ""))
        if first.startswith("RATIO"):
            cells[0] = f"**{cells[0]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_one(name: str) -> str:
    t0 = time.perf_counter()
    try:
        mod = importlib.import_module(f"benchmarks.{name}")
        title = getattr(mod, "TITLE", name)
        what = mod.describe() if hasattr(mod, "describe") else getattr(mod, "WHAT", (mod.__doc__ or "").strip())
        rows = mod.run()
        body = table(rows) if rows else "_no rows_"
        note = mod.interpret(rows) if hasattr(mod, "interpret") else ""
    except Exception as e:  # one broken benchmark must not hide the others' numbers
        title, what = getattr(locals().get("mod"), "TITLE", name), ""
        body = "```\n" + traceback.format_exc(limit=4).strip() + "\n```"
        note = f"**Failed**: {type(e).__name__}: {e}"
    took = time.perf_counter() - t0
    print(f"[bench] {name}: {took:.0f}s", file=sys.stderr, flush=True)
    parts = [f"## {title}", "", f"`benchmarks/{name}.py` ({took:.0f} s). {what}", "", body, ""]
    if note:
        parts += [f"**Reading:** {note}", ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--out", default=None, help="markdown file to write (default: BENCHMARKS.md when running all)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    out = Path(args.out) if args.out else (ROOT / "BENCHMARKS.md" if not args.names else None)

    t0 = time.perf_counter()
    info = machine_info()
    sections = [run_one(name) for name in names]
    total = time.perf_counter() - t0
    header = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks.run_all`). The machine may be shared with other jobs, so",
        "absolute times are only indicative: each comparison runs its cases interleaved in one process and the",
        "**RATIO** rows give the median over repeats of the paired ratio (with its min–max range), which slow",
        "background load largely cancels out of.",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {fmt(v)} |" for k, v in info.items()],
        f"| total run time | {total:.0f} s |",
        "",
    ]
    text = "\n".join(header) + "\n" + "\n".join(sections)
    if out is not None:
        out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
