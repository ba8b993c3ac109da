"""Real-footage benchmark through the project's own commands: ``train.py fit`` per fold, then
top-1 and "does the caption name the right action" on seen and unseen sources.

    python -m benchmarks.real_footage --out data/real_footage
    python -m benchmarks.real_footage_eval --data data/real_footage --config configs/custom.yaml [--folds 0 1 2] [--seeds 0 1 2] [train.py args]
    python -m benchmarks.real_footage_eval ... --test 1x1 3x1 3x3 [--reuse]

Unseen = every clip of the fold's two held-out source videos (never in training); seen = other
segments of the training sources. A caption names the right action when it holds one of the
class's words and none of its reversed partner's.

``--test VxC ...`` scores each fold's checkpoint with V test views x C crops (the Predictor's
``views``/``crops``), every setting on the same trained model; the first one is the run's
``seen``/``unseen`` (and ``summary``), each one under ``tests`` and ``summary_by_test``.
``--reuse`` scores a fold's existing checkpoint under ``--out`` instead of training it again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from benchmarks.real_footage import FOLDS, PAIRS
from vidrec.data.manifest import read_manifest
from vidrec.inference.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]

# Words a caption uses for each class (the builder's caption templates).
ACTION_WORDS = {
    "forward": ("forward", "forwards"),
    "backward": ("backward", "reverse"),
    "zoom_in": ("zooms in", "zoom in"),
    "zoom_out": ("zooms out", "zoom out"),
    "pan_left": ("left",),
    "pan_right": ("right",),
    "pan_up": ("up", "upwards"),
    "pan_down": ("down", "downwards"),
    "brighten": ("brighter", "brightens"),
    "darken": ("darker", "darkens"),
}
PARTNER = {a: b for p in PAIRS for a, b in (p, p[::-1])}


def names_action(caption: str | None, label: str) -> bool:
    """The caption holds one of ``label``'s words and none of its reversed partner's."""
    words = f" {caption or ''} "
    def has(cls: str) -> bool:
        return any(f" {w} " in words or f" {w}," in words for w in ACTION_WORDS[cls])
    return has(label) and not has(PARTNER[label])


@dataclass
class Score:
    top1: float
    caption_action: float
    clips: int


def score(predictor: Predictor, manifest: Path) -> Score:
    records = read_manifest(manifest)
    preds = predictor.predict_many([r.video for r in records], topk=1)
    ok = [(p, r) for p, r in zip(preds, records) if p.error is None]
    top1 = sum(p.actions[0].label == r.label for p, r in ok) / max(len(ok), 1)
    named = sum(names_action(p.caption, r.label) for p, r in ok) / max(len(ok), 1)
    return Score(top1, named, len(ok))


def test_setting(text: str) -> tuple[int, int]:
    """``"3x1"`` -> (views 3, crops 1): one test protocol for ``--test``."""
    try:
        views, crops = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected VIEWSxCROPS such as 3x1, got {text!r}") from None
    if views < 1 or crops not in (1, 3):
        raise argparse.ArgumentTypeError(f"views must be >= 1 and crops 1 or 3, got {text!r}")
    return views, crops


def run_fold(
    data: Path, config: str, fold: int, seed: int, out: Path, extra: list[str],
    tests: Sequence[tuple[int, int]] = ((1, 1),), reuse: bool = False,
) -> dict:
    root = out / f"fold{fold}_seed{seed}"
    # The same --out serves several runs (the README's lstm run, then --model.temporal mean):
    # their checkpoints share root/checkpoints, and Lightning never overwrites one (a second
    # best-epoch=07.ckpt is written as best-epoch=07-v1.ckpt). So score the one this run wrote,
    # not the last name in sorted order, which was often an earlier run's model.
    before = set(root.rglob("best-*.ckpt"))
    if not (reuse and before):
        cmd = [sys.executable, str(REPO / "train.py"), "fit", "--config", config,
               "--data.train_manifest", str(data / f"fold{fold}_train.jsonl"), "--data.val_manifest", str(data / f"fold{fold}_val.jsonl"),
               "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(root),
               "--seed_everything", str(seed), "--data.cache_dir", str(out / "cache"), *extra]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        written = set(root.rglob("best-*.ckpt")) - before
        if not written:
            raise RuntimeError(f"train.py fit wrote no best-*.ckpt under {root}")
    else:
        written = before
    ckpt = max(written, key=lambda p: p.stat().st_mtime_ns)  # --reuse: the most recently trained
    scores = {}
    for views, crops in tests:  # the same trained model under each test protocol
        predictor = Predictor.from_checkpoint(ckpt, device="cpu", views=views, crops=crops)
        scores[f"{views}x{crops}"] = {"seen": asdict(score(predictor, data / f"fold{fold}_test_seen.jsonl")),
                                      "unseen": asdict(score(predictor, data / f"fold{fold}_test_unseen.jsonl"))}
    first = scores[f"{tests[0][0]}x{tests[0][1]}"]
    return {"fold": fold, "seed": seed, "checkpoint": str(ckpt), **first, "tests": scores}


def summary(runs: list[dict]) -> dict:
    out = {}
    for split in ("seen", "unseen"):
        for key in ("top1", "caption_action"):
            values = [r[split][key] for r in runs]
            out[f"{split}_{key}"] = (statistics.mean(values), min(values), max(values))
    return out


def summary_by_test(runs: list[dict]) -> dict:
    """``summary`` of each ``--test`` setting: {"3x1": {"unseen_top1": (mean, min, max), ...}}."""
    return {name: summary([r["tests"][name] for r in runs]) for name in runs[0]["tests"]} if runs else {}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/real_footage")
    p.add_argument("--config", default="configs/custom.yaml")
    p.add_argument("--folds", type=int, nargs="+", default=list(range(len(FOLDS))))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--out", default="runs/real_footage")
    p.add_argument("--test", type=test_setting, nargs="+", default=[(1, 1)], metavar="VxC",
                   help="test views x crops to score each checkpoint with (default 1x1)")
    p.add_argument("--reuse", action="store_true", help="score a fold's existing checkpoint under --out, do not train it again")
    # Anything else is handed to train.py, e.g. --model.temporal mean
    args, extra = p.parse_known_args(argv)
    runs = [run_fold(Path(args.data), args.config, f, s, Path(args.out), extra, args.test, args.reuse)
            for f in args.folds for s in args.seeds]
    result = {"config": args.config, "extra": extra, "runs": runs, "summary": summary(runs), "summary_by_test": summary_by_test(runs)}
    print(json.dumps(result["summary_by_test"] if len(args.test) > 1 else result["summary"], indent=1))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "result.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
