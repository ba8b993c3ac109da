"""Long-range memory: can the temporal model remember a brief event from the start of a clip?

Each clip's class is the colour of a full-frame tint shown only in its first ~10% of frames; the rest
of the clip is a grey ball bouncing, the same kind for every class (``vidrec.data.memory_clips``).
With ``sampling: uniform`` the event is always in the first sampled frames, so a model that
pools the *last* hidden state must carry it across the other T - 1 steps. The demo sweeps T
and trains ``rnn``, ``gru``, ``lstm`` and the order-blind ``mean`` on the same features:

1. generate the clips (real encoded videos, with train/val/test manifests) unless present;
2. run the frozen backbone (configs/synthetic.yaml's backbone settings) once over every
   frame of every clip. Frozen features do not depend on which other frames are sampled, so
   a T-frame clip is the slice of those features at ``uniform_indices(n, T)``, exactly the
   frames a checkpoint trained with ``sampling: uniform, num_frames: T`` would read;
3. for each T and temporal model, train ``TemporalEncoder`` + ``ActionHead`` in a plain loop
   (the LightningModule's loss, optimiser and clipping from the configs; not ``cli_main``:
   16 Lightning runs would each re-extract features at their own T, ~2x the backbone work
   and the per-run start-up, for the same arithmetic), keep the epoch with the best
   validation top-1, and test it;
4. print and save a markdown table and a plot of test top-1 against T, and pictures of the
   LSTM's and GRU's gates on a test clip at the largest T.

    python -m vidrec.apps.memory_demo [--lengths 8 16 32 64] [--out runs/memory] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from vidrec.data.clips import ClipSpec, read_clip
from vidrec.data.decode import open_video
from vidrec.data.manifest import read_classes, read_manifest
from vidrec.data.memory_clips import EVENT_FRACTION, EVENT_OPACITY, event_length, generate_memory
from vidrec.data.sampling import uniform_indices
from vidrec.models.backbone import FrozenBackbone
from vidrec.models.heads import ActionHead
from vidrec.models.temporal import TemporalEncoder

__all__ = ["DemoSettings", "RunResult", "FeatureSplit", "extract_features", "train_temporal", "markdown_table", "main"]

REPO = Path(__file__).resolve().parents[2]
TEMPORAL_MODELS = ("rnn", "gru", "lstm", "mean")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DemoSettings:
    """What one demo run is made of: the data, and how each temporal model is trained."""

    num_clips: int = 400
    clip_frames: int = 64  # frames per video; T is sampled from these
    size: int = 64  # frame width and height (px), also the backbone's input size
    fps: float = 16.0
    lengths: tuple[int, ...] = (8, 16, 32, 64)
    epochs: int = 40
    batch_size: int = 16  # 280 training clips: 18 steps an epoch (at 32, 30 epochs left the LSTM still climbing)
    hidden_size: int = 128
    seed: int = 0

    @classmethod
    def quick(cls) -> "DemoSettings":
        """Tiny, for tests: seconds, not minutes; the numbers mean nothing."""
        return cls(num_clips=24, clip_frames=32, size=32, lengths=(4, 8), epochs=2, batch_size=8, hidden_size=16)


@dataclass
class FeatureSplit:
    """One split's cached features: ``features`` float32 (N, n, D) for every frame of each clip, ``labels`` int64 (N,)."""

    features: torch.Tensor
    labels: torch.Tensor

    def sampled(self, num_frames: int) -> torch.Tensor:
        """The clips as ``sampling: uniform`` with T = ``num_frames`` reads them: (N, T, D)."""
        return self.features[:, torch.from_numpy(uniform_indices(self.features.shape[1], num_frames))]


@dataclass
class RunResult:
    """One temporal model trained at one T: test and best validation top-1 in [0, 1], the epoch chosen (0-based)."""

    temporal: str
    num_frames: int
    test_top1: float
    val_top1: float
    best_epoch: int
    seconds: float


def _config_model(config: Path) -> dict:
    """The ``model:`` section of base.yaml overlaid with ``config``'s (what train.py would use)."""
    merged: dict = {}
    for path in (REPO / "configs" / "base.yaml", config):
        merged.update((yaml.safe_load(Path(path).read_text()) or {}).get("model") or {})
    return merged


def backbone_settings(config: Path) -> dict:
    """The ``FrozenBackbone`` arguments ``config`` sets (e.g. ``backbone_blocks: 12``, ``spatial_pooling: grid``)."""
    names = inspect.signature(FrozenBackbone.__init__).parameters
    return {k: v for k, v in _config_model(config).items() if k in names}


def _training_settings(config: Path) -> dict:
    """Dropouts, label smoothing and AdamW settings from ``config`` (the same names as the LightningModule's)."""
    model = _config_model(config)
    optimizer = (model.get("optimizer") or {}).get("init_args") or {}
    return {
        "temporal_dropout": float(model.get("temporal_dropout", 0.5)),
        "head_dropout": float(model.get("head_dropout", 0.5)),
        "label_smoothing": float(model.get("label_smoothing", 0.0)),
        "lr": float(optimizer.get("lr", 1e-3)),
        "weight_decay": float(optimizer.get("weight_decay", 0.01)),
    }


@torch.inference_mode()
def extract_features(backbone: FrozenBackbone, videos: list[str], size: int) -> torch.Tensor:
    """Every frame of each video through ``backbone`` at ``size`` px: float32 (N, n, D).

    All videos must have the same frame count n (the generator makes them so)."""
    out = []
    for video in videos:
        with open_video(video) as reader:
            n = reader.num_frames
            # uniform over n frames with T = n is every frame, in order
            spec = ClipSpec(num_frames=n, sampling="uniform", frame_size=size, resize=size)
            frames = read_clip(reader, spec, spec.eval_transform(backbone.normalization)).frames  # (n, 3, S, S)
        out.append(backbone(frames[None])[0].float())  # (n, D)
    return torch.stack(out)  # (N, n, D)


class _Classifier(nn.Module):
    """``TemporalEncoder`` + ``ActionHead``: the part of ``VideoRecognizer`` that reads cached features."""

    def __init__(self, temporal: TemporalEncoder, head: ActionHead):
        super().__init__()
        self.temporal, self.head = temporal, head

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> logits (B, C)
        return self.head(self.temporal(features)[1])


@torch.no_grad()
def _top1(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    hits = sum(int((model(x[i : i + batch]).argmax(-1) == y[i : i + batch]).sum()) for i in range(0, len(y), batch))
    return hits / max(len(y), 1)


def train_temporal(
    kind: str,
    splits: dict[str, FeatureSplit],
    num_frames: int,
    num_classes: int,
    settings: DemoSettings,
    training: dict,
) -> tuple[RunResult, _Classifier]:
    """Train temporal model ``kind`` (rnn | gru | lstm | mean) + a linear head on T = ``num_frames``
    uniformly sampled frames; returns the test result of the best-validation epoch and that model."""
    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)  # the same initial draws and batch order for every kind and T
    # Raw features, as the LightningModule feeds them (no standardisation).
    x = {name: s.sampled(num_frames) for name, s in splits.items()}  # (N, T, D) each
    y = {name: s.labels for name, s in splits.items()}
    temporal = TemporalEncoder(
        x["train"].shape[-1], temporal=kind, hidden_size=settings.hidden_size, temporal_dropout=training["temporal_dropout"]
    )
    model = _Classifier(temporal, ActionHead(temporal.out_dim, num_classes, head_dropout=training["head_dropout"]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=training["lr"], weight_decay=training["weight_decay"])
    best = (-1.0, -1, None)  # (val top-1, epoch, state dict)
    n = len(y["train"])
    for epoch in range(settings.epochs):
        model.train()
        for idx in torch.randperm(n).split(settings.batch_size):
            loss = F.cross_entropy(model(x["train"][idx]), y["train"][idx], label_smoothing=training["label_smoothing"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # base.yaml's gradient_clip_val
            optimizer.step()
        val = _top1(model, x["val"], y["val"])
        if val > best[0]:
            best = (val, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    result = RunResult(kind, num_frames, _top1(model, x["test"], y["test"]), best[0], best[1], time.perf_counter() - t0)
    return result, model


def markdown_table(results: list[RunResult], lengths: tuple[int, ...], num_classes: int) -> str:
    """Test top-1 per temporal model (rows) and T (columns), as a markdown table."""
    by = {(r.temporal, r.num_frames): r.test_top1 for r in results}
    kinds = [k for k in TEMPORAL_MODELS if any(r.temporal == k for r in results)]
    lines = [
        "| temporal model | " + " | ".join(f"T={t}" for t in lengths) + " |",
        "|---|" + "---|" * len(lengths),
        *(f"| `{k}` | " + " | ".join(f"{by[(k, t)]:.1%}" for t in lengths) + " |" for k in kinds),
    ]
    return "\n".join(lines) + f"\n\nTest top-1; chance is {1 / num_classes:.0%} ({num_classes} classes).\n"


def plot_accuracy(results: list[RunResult], lengths: tuple[int, ...], num_classes: int, path: Path) -> Path:
    """Line plot of test top-1 against T (log2 axis), one line per temporal model, chance dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    try:
        for kind in TEMPORAL_MODELS:
            points = sorted((r.num_frames, r.test_top1) for r in results if r.temporal == kind)
            if points:
                ax.plot(*zip(*points), marker="o", linewidth=2, label=kind)
        ax.axhline(1 / num_classes, color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(lengths), [str(t) for t in lengths])
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("sampled frames T (the event is in the first ~10%)")
        ax.set_ylabel("test top-1")
        ax.set_title("Remembering a brief event from the start of the clip")
        ax.grid(True, alpha=0.3)
        ax.legend(frameon=False)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path


def _dataset(data: Path, settings: DemoSettings) -> None:
    """Generate the clips in ``data`` unless the same ones are already there."""
    params = {k: getattr(settings, k) for k in ("num_clips", "clip_frames", "size", "fps", "seed")}
    params.update(event_fraction=EVENT_FRACTION, event_opacity=EVENT_OPACITY)  # what the clips look like
    stamp = data / "memory_params.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == params and (data / "test.jsonl").is_file():
        return
    t = time.perf_counter()
    splits = generate_memory(data, settings.num_clips, settings.seed, settings.clip_frames, settings.size, settings.fps)
    stamp.write_text(json.dumps(params))
    print(f"[memory] generated {sum(map(len, splits.values()))} clips in {time.perf_counter() - t:.1f}s -> {data}")


def _features(data: Path, out: Path, backbone_args: dict, settings: DemoSettings, classes: list[str]) -> dict[str, FeatureSplit]:
    """Every split's features, from ``out/features.pt`` when it was made from the same videos and backbone."""
    records = {name: read_manifest(data / f"{name}.jsonl") for name in SPLITS}
    key = {"videos": {n: [r.video for r in rs] for n, rs in records.items()}, "backbone": backbone_args, "size": settings.size}
    cache = out / "features.pt"
    if cache.is_file():
        stored = torch.load(cache, weights_only=True)
        if json.loads(stored["key"]) == json.loads(json.dumps(key)):
            return {n: FeatureSplit(stored[n].float(), stored[f"{n}_labels"]) for n in SPLITS}
    t = time.perf_counter()
    backbone = FrozenBackbone(**backbone_args)
    splits = {
        name: FeatureSplit(
            extract_features(backbone, [r.video for r in rs], settings.size),
            torch.tensor([classes.index(r.label) for r in rs], dtype=torch.int64),
        )
        for name, rs in records.items()
    }
    frames = sum(s.features.shape[0] * s.features.shape[1] for s in splits.values())
    print(f"[memory] backbone features for {frames} frames in {time.perf_counter() - t:.1f}s (D={backbone.out_dim})")
    stored = {"key": json.dumps(key)}
    for name, s in splits.items():  # float16 on disk: half the size, far below the features' own noise
        stored[name], stored[f"{name}_labels"] = s.features.half(), s.labels
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(stored, cache)
    # Train on what the cache holds, so a first run and a rerun from the cache give the same numbers.
    return {n: FeatureSplit(stored[n].float(), s.labels) for n, s in splits.items()}


def _gate_pictures(models: dict[str, _Classifier], test: FeatureSplit, settings: DemoSettings, out: Path) -> list[str]:
    """The LSTM's and GRU's gates on the first test clip at the largest T, event span shaded."""
    from vidrec.inference.gate_activity import gate_activity_from_features
    from vidrec.inference.viz import plot_gates

    T = max(settings.lengths)
    n = test.features.shape[1]
    times = uniform_indices(n, T) / settings.fps
    event_end = event_length(n) / settings.fps
    paths = []
    for kind, model in models.items():
        activity = gate_activity_from_features(model.temporal.eval(), test.sampled(T)[0], times)
        if activity is None:
            continue
        path = out / f"{kind}_gates_T{T}.png"
        title = f"{kind} gates, T={T}: the event (shaded) decides the class"
        paths.append(str(plot_gates(activity, path, title=title, highlight=(0.0, event_end))))
    return paths


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="long-range memory: rnn vs gru vs lstm vs mean as clips get longer")
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="numbers of sampled frames T (default 8 16 32 64)")
    parser.add_argument("--out", default="runs/memory", help="output folder: table, plot, results, feature cache")
    parser.add_argument("--data", default=None, help="dataset folder (default data/memory; --quick: OUT/data)")
    parser.add_argument("--config", default=str(REPO / "configs" / "synthetic.yaml"), help="backbone and training settings")
    parser.add_argument("--num-clips", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="tiny run for tests (T 4 and 8, 24 clips, 2 epochs)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    overrides = {
        "lengths": tuple(args.lengths) if args.lengths else None, "num_clips": args.num_clips, "epochs": args.epochs,
        "seed": args.seed,
    }
    settings = DemoSettings(**{**asdict(settings), **{k: v for k, v in overrides.items() if v is not None}})
    if max(settings.lengths) > settings.clip_frames:
        parser.error(f"--lengths up to {settings.clip_frames} (the clips' frame count)")
    out = Path(args.out)
    data = Path(args.data) if args.data else out / "data" if args.quick else Path("data/memory")
    out.mkdir(parents=True, exist_ok=True)

    _dataset(data, settings)
    classes = read_classes(data / "classes.txt")
    backbone = backbone_settings(Path(args.config))
    splits = _features(data, out, backbone, settings, classes)
    training = _training_settings(Path(args.config))

    results: list[RunResult] = []
    last_models: dict[str, _Classifier] = {}
    for T in settings.lengths:
        for kind in TEMPORAL_MODELS:
            result, model = train_temporal(kind, splits, T, len(classes), settings, training)
            results.append(result)
            if T == max(settings.lengths):
                last_models[kind] = model
            print(f"[memory] T={T:<3} {kind:<5} test {result.test_top1:6.1%}  val {result.val_top1:6.1%} "
                  f"(epoch {result.best_epoch + 1}/{settings.epochs}, {result.seconds:.0f}s)")

    table = markdown_table(results, settings.lengths, len(classes))
    (out / "table.md").write_text(table)
    plot = plot_accuracy(results, settings.lengths, len(classes), out / "accuracy_vs_T.png")
    gates = _gate_pictures(last_models, splits["test"], settings, out)
    elapsed = time.perf_counter() - t0
    counts = ", ".join(f"{n} {len(s.labels)}" for n, s in splits.items())
    print(f"\n[memory] {counts} clips of {settings.clip_frames} frames; event in the first {event_length(settings.clip_frames)}\n")
    print(table)
    print(f"[memory] done in {elapsed / 60:.1f} min; table {out / 'table.md'}, plot {plot}, gates {', '.join(gates)}")
    summary = {"settings": asdict(settings), "backbone": backbone, "training": training, "results": [asdict(r) for r in results],
               "table": str(out / "table.md"), "plot": str(plot), "gate_pictures": gates, "seconds": elapsed}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
