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
``--test-data DIR`` scores on DIR's test manifests: the same folds rendered otherwise (``python -m
benchmarks.real_footage --frames 64``: 8-second clips), for a model trained on clips of another length.

``--without-labels`` trains on the captions alone, as from an MSR-VTT-format manifest whose
category does not name the direction: the train and val manifests are copied without their
labels (under ``--out``), so the model has no action head and its captions must learn the
direction words by themselves. The test manifests keep their labels, to score the captions.

Every run also keeps ``by_source``: per held-out source video and class, how many clips the
top-1 and the caption got right, and every run prints the table pooled over its folds and
seeds (which source videos the errors come from); ``--reuse`` prints it for checkpoints
already trained.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

from benchmarks.real_footage import FOLDS, PAIRS
from vidrec.data.manifest import read_manifest, write_manifest
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
    top1: float | None  # None: the model has no action head (trained --without-labels)
    caption_action: float
    clips: int
    # "<source video>/<class>" -> [top-1 right, caption right, clips]; the source is the clip's folder
    by_source: dict[str, list[int]] = field(default_factory=dict)


def score(predictor: Predictor, manifest: Path) -> Score:
    records = read_manifest(manifest)
    preds = predictor.predict_many([r.video for r in records], topk=1)
    ok = [(p, r) for p, r in zip(preds, records) if p.error is None]
    by_source: dict[str, list[int]] = {}
    for p, r in ok:
        right = by_source.setdefault(f"{Path(r.video).parent.name}/{r.label}", [0, 0, 0])
        right[0] += bool(p.actions) and p.actions[0].label == r.label
        right[1] += names_action(p.caption, r.label)
        right[2] += 1
    n = max(len(ok), 1)
    top1 = sum(v[0] for v in by_source.values()) / n if predictor.classes else None
    return Score(top1, sum(v[1] for v in by_source.values()) / n, len(ok), by_source)


def without_labels(manifest: Path, out: Path) -> Path:
    """A copy of ``manifest`` at ``out`` with every clip's label dropped (captions only)."""
    return write_manifest(out, [replace(r, label=None) for r in read_manifest(manifest)])


def by_source_table(runs: list[dict], split: str = "unseen") -> list[str]:
    """Markdown: per source video and class pair, top-1 (and captions) pooled over ``runs``."""
    pooled: dict[tuple[str, str], list[int]] = {}
    for run in runs:
        for key, (top1, caption, clips) in run[split]["by_source"].items():
            source, label = key.split("/")
            pair = next("/".join(p) for p in PAIRS if label in p)
            cell = pooled.setdefault((source, pair), [0, 0, 0])
            cell[0] += top1
            cell[1] += caption
            cell[2] += clips
    sources = sorted({s for s, _ in pooled})
    pairs = ["/".join(p) for p in PAIRS]
    head = "top-1 (caption)" if runs and runs[0][split]["top1"] is not None else "caption"
    lines = [f"| {split} source: {head} | " + " | ".join(pairs) + " |", "|---|" + "---|" * len(pairs)]
    for source in sources:
        cells = []
        for pair in pairs:
            top1, caption, clips = pooled.get((source, pair), (0, 0, 0))
            if not clips:
                cells.append("")
            elif head == "caption":
                cells.append(f"{caption / clips:.2f}")
            else:
                cells.append(f"{top1 / clips:.2f} ({caption / clips:.2f})")
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    return lines


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
    tests: Sequence[tuple[int, int]] = ((1, 1),), reuse: bool = False, labels: bool = True, test_data: Path | None = None,
) -> dict:
    """Train fold ``fold`` on ``data`` (unless ``reuse``) and score it on ``test_data``'s (default ``data``'s) test manifests."""
    root = out / f"fold{fold}_seed{seed}"
    test_data = test_data or data
    train, val = data / f"fold{fold}_train.jsonl", data / f"fold{fold}_val.jsonl"
    if not labels:
        train = without_labels(train, out / "without_labels" / train.name)
        val = without_labels(val, out / "without_labels" / val.name)
    # The same --out serves several runs (the README's lstm run, then --model.temporal mean):
    # their checkpoints share root/checkpoints, and Lightning never overwrites one (a second
    # best-epoch=07.ckpt is written as best-epoch=07-v1.ckpt). So score the one this run wrote,
    # not the last name in sorted order, which was often an earlier run's model.
    before = set(root.rglob("best-*.ckpt"))
    if not (reuse and before):
        cmd = [sys.executable, str(REPO / "train.py"), "fit", "--config", config,
               "--data.train_manifest", str(train), "--data.val_manifest", str(val),
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
        scores[f"{views}x{crops}"] = {"seen": asdict(score(predictor, test_data / f"fold{fold}_test_seen.jsonl")),
                                      "unseen": asdict(score(predictor, test_data / f"fold{fold}_test_unseen.jsonl"))}
    first = scores[f"{tests[0][0]}x{tests[0][1]}"]
    return {"fold": fold, "seed": seed, "checkpoint": str(ckpt), **first, "tests": scores}


def summary(runs: list[dict]) -> dict:
    out = {}
    for split in ("seen", "unseen"):
        for key in ("top1", "caption_action"):
            values = [r[split][key] for r in runs if r[split][key] is not None]
            if values:
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
    p.add_argument("--without-labels", action="store_true", help="train on the captions alone (no action head)")
    p.add_argument("--test-data", help="score on this folder's test manifests instead of --data's: the same folds rendered "
                   "otherwise (real_footage --frames 64), to test on clips unlike the training ones (result_<folder>.json)")
    # Anything else is handed to train.py, e.g. --model.temporal mean
    args, extra = p.parse_known_args(argv)
    test_data = Path(args.test_data) if args.test_data else None
    runs = [run_fold(Path(args.data), args.config, f, s, Path(args.out), extra, args.test, args.reuse, not args.without_labels, test_data)
            for f in args.folds for s in args.seeds]
    result = {"config": args.config, "extra": extra, "runs": runs, "summary": summary(runs), "summary_by_test": summary_by_test(runs)}
    print(json.dumps(result["summary_by_test"] if len(args.test) > 1 else result["summary"], indent=1))
    print("\n".join(by_source_table(runs)))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    name = f"result_{test_data.name}.json" if test_data else "result.json"  # a training run's result.json is kept
    (Path(args.out) / name).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
