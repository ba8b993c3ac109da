"""``extract``: a trained model's features for every clip of a manifest, as plain arrays for use outside vidrec.

    python -m vidrec.apps.extract data/test.jsonl --ckpt runs/demo/lstm.ckpt --out feats/
    python -m vidrec.apps.extract data/test.jsonl --ckpt CKPT --out feats/ --per-clip --format safetensors
    python -m vidrec.apps.extract data/train.jsonl --ckpt CKPT --out feats/ --format litdata
    python infer.py extract MANIFEST --ckpt CKPT --out DIR ...      (or: vidrec-extract ...)

Each clip is decoded, sampled and transformed exactly as evaluation does (``read_clip``, i.e.
``load_clip`` plus any data-side motion input, with the checkpoint's ``ClipSpec`` and
``eval_transform(ckpt.normalization)``; ``read_views`` for ``--views N``), then run through the
checkpoint's network in batches:

* ``--per-frame`` (default): the frozen backbone's features, float32 ``(T, D)`` (for a model
  with a data-side motion input, ``--model.motion flow|flow_stats``, the motion features are
  appended as the feature cache stores them: ``(T, D + M)``);
* ``--per-clip``: the temporal model's clip encoding (what the heads read), float32 ``(H',)``;
* with ``--views N`` > 1 both gain a leading views axis: ``(N, T, D)`` / ``(N, H')``.

Written to ``DIR/<index>_<video stem>.npy`` (``--format npy``), as tensors of those names in
one ``DIR/features.safetensors`` (held in memory until the end), or as a LitData store in
``DIR/litdata/`` (``--format litdata``: chunks written as they come, one item per clip,
``{"index", "key", "features"}``, for ``litdata.StreamingDataset("DIR/litdata")``, which
streams it from disk or, uploaded, from a bucket), plus ``DIR/index.jsonl``: one
line per manifest clip with its video (relative to DIR where inside it, so the index reads as
a manifest too), label, captions, start, end, ``key``, ``file`` and ``shape``, or its
``error`` when the video failed to decode (such clips are skipped, never stopping the run).

Imports no Lightning. Exit status: 0 when every clip was extracted, 1 when any failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence, get_args

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vidrec.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from vidrec.data.clips import Clip, ClipSpec, read_clip, read_views
from vidrec.data.decode import Backend, VideoDecodeError
from vidrec.data.video_reader import short
from vidrec.data.manifest import ClipRecord, ManifestError, read_manifest
from vidrec.inference.predictor import resolve_device
from vidrec.models.net import VideoRecognizer
from vidrec.training.extraction_batch import BatchSize, auto_clips, check_batch_size
from vidrec.training.feature_store import ShardWriter, merge_parts

__all__ = ["ExtractOptions", "ExtractedClip", "clip_keys", "check_options", "encode_batch", "extract_features", "write_index", "main"]

Format = Literal["npy", "safetensors", "litdata"]
SAFETENSORS_FILE = "features.safetensors"
LITDATA_DIR = "litdata"
INDEX_FILE = "index.jsonl"


@dataclass(frozen=True)
class ExtractOptions:
    """What to export and how: ``per_clip`` encodings instead of per-frame features, ``views``
    test views per clip, the file ``format``, clips per network pass (``"auto"``: sized to the
    device, see ``vidrec.training.extraction_batch``), decoding processes."""

    per_clip: bool = False
    views: int = 1
    format: Format = "npy"
    batch_size: BatchSize = 8
    workers: int = 0


@dataclass
class ExtractedClip:
    """One manifest clip's line in ``index.jsonl``: where its array went, or why it has none."""

    index: int
    record: ClipRecord
    key: str  # the .npy file's stem, or the tensor's name in features.safetensors
    file: str | None = None  # relative to DIR; None when the clip failed
    shape: tuple[int, ...] | None = None
    error: str | None = None

    def to_json(self, out: Path) -> dict:
        row = self.record.to_json(relative_to=out)
        row.update(index=self.index, key=self.key if self.error is None else None, file=self.file,
                   shape=list(self.shape) if self.shape is not None else None, error=self.error)
        return row


def clip_keys(records: Sequence[ClipRecord]) -> list[str]:
    """``<index>_<video stem>`` per record; the index is zero-padded so the names sort in manifest order
    (and keeps two clips of one video, at different time ranges, apart)."""
    width = len(str(max(len(records) - 1, 0)))
    return [f"{i:0{width}d}_{Path(r.video).stem}" for i, r in enumerate(records)]


class _ClipFrames(Dataset):
    """The manifest's clips as evaluation sees them: ``{"index", "frames" (N, T, 3, S, S)}``
    (+ ``"motion"`` (N, T, ...) for a data-side motion input, each view's from its own frames),
    or ``{"index", "error"}`` for a clip that cannot be loaded."""

    def __init__(self, records: Sequence[ClipRecord], spec: ClipSpec, transform: Callable, views: int):
        self.records, self.spec, self.transform, self.views = list(records), spec, transform, views

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        r = self.records[index]
        try:
            # Like ClipDataset in evaluation: one view is the plain evaluation clip.
            if self.views > 1:
                clip = read_views(r.video, self.spec, self.transform, self.views, start=r.start, end=r.end)  # (N, T, ...)
            else:
                one = read_clip(r.video, self.spec, self.transform, start=r.start, end=r.end)  # (T, ...)
                clip = Clip(one.frames[None], one.motion[None] if one.motion is not None else None)  # (1, T, ...)
        except VideoDecodeError as e:
            return {"index": index, "error": e.reason}
        except Exception as e:  # one strange file must not stop the run; its line says what happened
            return {"index": index, "error": f"{type(e).__name__}: {short(e)}"}
        item = {"index": index, "frames": clip.frames}  # (N, T, 3, S, S)
        if clip.motion is not None:
            item["motion"] = clip.motion  # (N, T, 3, S, S) flow images or (N, T, 63) flow statistics
        return item


@torch.inference_mode()
def encode_batch(
    net: VideoRecognizer, frames: torch.Tensor, motion: torch.Tensor | None = None, per_clip: bool = False
) -> torch.Tensor:
    """``frames`` (B, N, T, 3, S, S) [+ data-side ``motion`` (B, N, T, ...)] -> per-frame features
    (B, N, T, D [+ M]), or with ``per_clip`` the temporal model's clip encodings (B, N, H')."""
    b, n = frames.shape[:2]
    x = frames.flatten(0, 1)  # (B*N, T, 3, S, S)
    m = motion.flatten(0, 1) if motion is not None else None
    out = net.encode(frames=x, motion=m)[1] if per_clip else net.frame_features(x, m)  # (B*N, H') or (B*N, T, D [+ M])
    return out.unflatten(0, (b, n))


class _NpyWriter:
    """One ``<key>.npy`` per clip, written as it comes."""

    def __init__(self, out: Path):
        self.out = out

    def add(self, index: int, key: str, array: np.ndarray) -> str:
        np.save(self.out / f"{key}.npy", array)
        return f"{key}.npy"

    def close(self, metadata: dict[str, str]) -> None:
        pass


class _SafetensorsWriter:
    """All clips in one ``features.safetensors``, written at the end (the format has no append)."""

    def __init__(self, out: Path):
        self.out, self.tensors = out, {}

    def add(self, index: int, key: str, array: np.ndarray) -> str:
        self.tensors[key] = np.ascontiguousarray(array)
        return SAFETENSORS_FILE

    def close(self, metadata: dict[str, str]) -> None:
        from safetensors.numpy import save_file

        save_file(self.tensors, str(self.out / SAFETENSORS_FILE), metadata=metadata)


class _LitdataWriter:
    """All clips in one LitData store, ``DIR/litdata/``, written chunk by chunk as they come."""

    def __init__(self, out: Path, total: int):
        self.store = out / LITDATA_DIR
        shutil.rmtree(self.store, ignore_errors=True)  # an earlier run's chunks would mix with these
        self.part = self.store / "part-00000"
        self.writer = ShardWriter(self.part, total)

    def add(self, index: int, key: str, array: np.ndarray) -> str:
        self.writer.add({"index": index, "key": key, "features": array})
        return LITDATA_DIR

    def close(self, metadata: dict[str, str]) -> None:
        if self.writer.close():  # nothing when every clip failed: no store, as no .npy file
            merge_parts(self.store, [self.part])
            (self.store / "metadata.json").write_text(json.dumps(metadata, indent=1) + "\n")
        else:
            shutil.rmtree(self.store, ignore_errors=True)


def check_options(ckpt: Checkpoint, options: ExtractOptions) -> None:
    """Raise ``ValueError`` for options that cannot work, before any clip is decoded."""
    check_batch_size(options.batch_size)
    if options.views < 1 or options.workers < 0:
        raise ValueError(f"views must be >= 1 and workers >= 0, got {options}")


def extract_features(
    records: Sequence[ClipRecord],
    ckpt: Checkpoint,
    out: str | os.PathLike,
    options: ExtractOptions = ExtractOptions(),
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> list[ExtractedClip]:
    """Write the features of ``records`` under ``out`` (arrays, and ``index.jsonl``); one result per record.

    ``ckpt.net`` runs on ``device``; ``progress(done, total)`` is called after each batch.
    """
    check_options(ckpt, options)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    net = ckpt.net.to(device).eval()
    data = _ClipFrames(records, ckpt.clip, ckpt.clip.eval_transform(ckpt.normalization), options.views)
    batch_size = options.batch_size
    if batch_size == "auto":
        # The GPU probe is encode_batch itself on copies of one clip.
        batch_size = auto_clips(data, lambda frames, motion: encode_batch(net, frames, motion, options.per_clip), device)
    # A list per batch: failed clips have no frames to stack, and good ones are stacked below.
    loader = DataLoader(data, batch_size=batch_size, num_workers=options.workers, collate_fn=list)
    writer = (
        _SafetensorsWriter(out) if options.format == "safetensors"
        else _LitdataWriter(out, len(records)) if options.format == "litdata"
        else _NpyWriter(out)
    )
    results = [ExtractedClip(i, r, key) for i, (r, key) in enumerate(zip(records, clip_keys(records)))]
    done = 0
    for batch in loader:
        good = [item for item in batch if "frames" in item]
        for item in batch:
            if "error" in item:
                results[item["index"]].error = item["error"]
        if good:
            frames = torch.stack([item["frames"] for item in good]).to(device)  # (B, N, T, 3, S, S)
            motion = torch.stack([item["motion"] for item in good]).to(device) if "motion" in good[0] else None
            feats = encode_batch(net, frames, motion, options.per_clip).float().cpu().numpy()  # (B, N, T, D) or (B, N, H')
            for item, array in zip(good, feats):
                array = array[0] if options.views == 1 else array  # (T, D) / (H',), or with views (N, ...)
                result = results[item["index"]]
                result.file, result.shape = writer.add(result.index, result.key, array), tuple(array.shape)
        done += len(batch)
        if progress is not None:
            progress(done, len(records))
    writer.close({
        "checkpoint": str(ckpt.path),
        "features": "per-clip" if options.per_clip else "per-frame",
        "views": str(options.views),
        "clip": json.dumps(ckpt.clip.to_dict()),
    })
    write_index(results, out)
    return results


def write_index(results: Sequence[ExtractedClip], out: str | os.PathLike) -> Path:
    """``out/index.jsonl``: one line per clip, in manifest order."""
    path = Path(out) / INDEX_FILE
    with path.open("w", encoding="utf-8") as f:
        for result in results:
            f.write(json.dumps(result.to_json(Path(out)), ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------


def _parser(prog: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Export a trained model's per-frame backbone features (or per-clip encodings) for every clip of a manifest.",
        epilog="Exit status: 0 every clip extracted, 1 some failed to decode (listed in index.jsonl), 2 bad usage.",
    )
    p.add_argument("manifest", metavar="MANIFEST", help="a .jsonl (or .csv) manifest")
    p.add_argument("--ckpt", required=True, help="checkpoint written by train.py")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the arrays and index.jsonl")
    p.add_argument("--format", choices=list(get_args(Format)), default="npy",
                   help=f"one .npy per clip (default), one {SAFETENSORS_FILE}, or a LitData store in {LITDATA_DIR}/ (streams)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--per-frame", dest="per_clip", action="store_false", help="backbone features (T, D) per clip (default)")
    what.add_argument("--per-clip", dest="per_clip", action="store_true", help="the temporal model's clip encoding (H',)")
    p.set_defaults(per_clip=False)  # else --per-frame's store_false default (True) would win
    p.add_argument("--views", type=int, default=1, help="test views per clip, spread over it: arrays gain a leading (N,) axis")
    p.add_argument("--batch-size", type=_batch_size, default=8, metavar="N|auto",
                   help="clips per network pass (default 8); auto: as many as fit the GPU, or the CPU's best")
    p.add_argument("--workers", type=int, default=min(4, max((os.cpu_count() or 1) - 1, 0)),
                   help="processes decoding videos beside the network (default: cores - 1, at most 4)")
    p.add_argument("--device", default="auto", help="auto (default: CUDA if available), cpu or cuda")
    p.add_argument("--backend", choices=list(get_args(Backend)), help="video decoder (default: the checkpoint's)")
    return p


def _batch_size(text: str) -> BatchSize:
    """``--batch-size``: ``auto`` or an integer >= 1 (argparse reports anything else as bad usage)."""
    try:
        return check_batch_size(text if text == "auto" else int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer >= 1, got {text!r}") from None


def _print_summary(results: Sequence[ExtractedClip], options: ExtractOptions, out: Path) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 120  # a log file or pipe: Rich's 80 columns would fold every path
    failed = [r for r in results if r.error is not None]
    if failed:
        table = Table(title="Clips that failed (listed in index.jsonl with their error)", title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("video", overflow="fold")
        table.add_column("error", overflow="fold")
        for r in failed:
            table.add_row(str(r.index), escape(r.record.video), escape(r.error))
        console.print(table)
    shape = next((r.shape for r in results if r.shape is not None), None)
    what = "per-clip encodings" if options.per_clip else "per-frame features"
    where = out / {"safetensors": SAFETENSORS_FILE, "litdata": LITDATA_DIR + "/"}.get(options.format, "<index>_<video>.npy")
    console.print(
        f"extracted {len(results) - len(failed)} of {len(results)} clips: {what}, float32 {shape or '-'} each -> {where}; "
        f"index: {out / INDEX_FILE}",
        markup=False,
    )


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``extract``: 0 when every clip was extracted, 1 when any failed, 2 on bad usage."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if args.views < 1 or args.workers < 0:
        parser.error("--views must be >= 1, --workers >= 0")
    options = ExtractOptions(per_clip=args.per_clip, views=args.views, format=args.format,
                             batch_size=args.batch_size, workers=args.workers)
    if args.format == "safetensors" and importlib.util.find_spec("safetensors") is None:
        print("error: --format safetensors needs the safetensors package (pip install safetensors)", file=sys.stderr)
        return 2
    try:
        records = read_manifest(args.manifest)
        device = resolve_device(args.device)
        ckpt = load_checkpoint(args.ckpt, device=device)
    except (ManifestError, CheckpointError) as e:  # already one line naming the file
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (RuntimeError, ValueError) as e:  # a device that is not there
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.backend is not None:
        ckpt.clip = dataclasses.replace(ckpt.clip, backend=args.backend)
    try:
        check_options(ckpt, options)
    except ValueError as e:
        parser.error(str(e))

    from rich.console import Console
    from rich.progress import Progress

    err = Console(stderr=True)
    out = Path(args.out)
    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("extracting", total=len(records))
        results = extract_features(records, ckpt, out, options, device, progress=lambda done, total: bar.update(task, completed=done))
    _print_summary(results, options, out)
    return 1 if any(r.error is not None for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
