"""``infer.py``: classify and caption video files, folders and globs from the command line.

    python infer.py clip.mp4 more_videos/ "data/*.avi" --ckpt runs/demo/lstm.ckpt --json out.json
    python infer.py long.mp4 --ckpt runs/demo/lstm.ckpt --window 2 --stride 1 --out annotated.mp4 --plot timeline.png
    python infer.py check MANIFEST [--classes classes.txt] [--out DIR]     (vidrec.apps.check)
    python infer.py extract MANIFEST --ckpt CKPT --out DIR [--per-clip]   (vidrec.apps.extract)
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from pathlib import Path
from typing import Sequence, get_args

from vidrec.checkpoint import CheckpointError
from vidrec.data.decode import Backend
from vidrec.data.sample_videos import VIDEO_EXTENSIONS
from vidrec.inference.predictor import Predictor
from vidrec.inference.results import Prediction

__all__ = ["expand_inputs", "main"]



def _videos_in(folder: Path) -> list[str]:
    return sorted(str(f) for f in folder.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)


def _nested_hint(folder: str) -> str | None:
    """For a folder with no videos of its own: how to read those in its sub-folders (a
    dataset's ROOT/<class>/<video> layout), or None when it has none either."""
    nested = [f for f in Path(folder).rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS]
    if not nested:
        return None
    suffixes = sorted({f.suffix for f in nested})
    pattern = f"'{folder.rstrip('/')}/**/*{suffixes[0]}'" if len(suffixes) == 1 else f"'{folder.rstrip('/')}/**/*.<ext>'"
    return f"{folder} holds no videos itself (folders are read one level deep), but {len(nested)} in its sub-folders: pass {pattern}"


def expand_inputs(items: Sequence[str]) -> list[str]:
    """Files as given, folders as their video files (sorted, not recursive), globs expanded.

    A path that does not exist stays in the list, so it is reported as a failed video; a
    glob that matches nothing stays too, for the same reason. A folder whose videos are all
    in sub-folders gives none, with a note on stderr saying how to read them.
    """
    out: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = _videos_in(p)
            hint = None if found else _nested_hint(item)
            if hint:
                print(f"note: {hint}", file=sys.stderr)
            out += found
        elif p.exists():
            out.append(item)
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            files = [m for m in matches if Path(m).is_file()]
            for m in matches:
                if Path(m).is_dir():
                    files += _videos_in(Path(m))
            out += files if files else [item]
        else:
            out.append(item)
    seen: set[str] = set()
    return [v for v in out if not (v in seen or seen.add(v))]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="infer.py",
        description="Classify and caption videos with a trained vidrec checkpoint.",
        epilog="Also: --export onnx --ckpt CKPT --out model.onnx; --demo --ckpt CKPT [--host H] [--port P]; "
        "check MANIFEST [...] (find bad clips); extract MANIFEST --ckpt CKPT --out DIR [...] (export features).",
    )
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="video files, folders of videos, or glob patterns")
    p.add_argument("--ckpt", required=True, help="checkpoint written by train.py (e.g. .../checkpoints/last.ckpt)")
    p.add_argument("--topk", type=int, default=5, help="actions to report per video / window (default 5)")
    p.add_argument("--json", metavar="OUT.json", help="write all results as a JSON list")
    p.add_argument("--csv", metavar="OUT.csv", help="write one row per video (per window with --window)")
    p.add_argument("--device", default="auto", help="auto (default: CUDA if available), cpu or cuda")
    p.add_argument("--batch-size", type=int, default=8, help="videos per backbone pass (default 8)")
    p.add_argument("--backend", choices=list(get_args(Backend)), help="video decoder (default: the checkpoint's)")
    p.add_argument("--beam-size", type=int, help="caption beam size (default: the checkpoint's)")
    p.add_argument("--views", type=int, default=1, help="clips per video spread over it, scores averaged (default 1)")
    p.add_argument("--crops", type=int, choices=[1, 3], default=1, help="1 centre crop, or 3 crops along the long side (default 1)")
    p.add_argument("--window", type=float, metavar="SECONDS", help="predict a timeline of windows this long")
    p.add_argument("--stride", type=float, metavar="SECONDS", help="seconds between window starts (default: --window)")
    p.add_argument("--out", metavar="PATH", help="annotated video (one input video), or the file --export writes")
    p.add_argument("--plot", metavar="timeline.png",
                   help="plot the timeline's class probabilities (needs --window; several videos: timeline_<video>.png)")
    p.add_argument("--export", choices=["onnx"], help="export the model instead of predicting (writes --out)")
    p.add_argument("--demo", action="store_true", help="start the web demo instead of predicting")
    p.add_argument("--host", default="127.0.0.1", help="demo host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="demo port (default 7860)")
    return p


def _bar_char() -> str:
    try:
        "█".encode(sys.stdout.encoding or "ascii")
        return "█"
    except (UnicodeEncodeError, LookupError):
        return "#"


def _print_prediction(pred: Prediction, bar: str) -> None:
    if pred.error is not None:
        print(f"ERROR {pred.video}: {pred.error}", flush=True)
        return
    head = f"== {pred.video}"
    if pred.timeline is not None:
        end = pred.timeline[-1].end if pred.timeline else 0.0
        head += f"  ({end:.1f} s, {len(pred.timeline)} window{'s' if len(pred.timeline) != 1 else ''})"
    print(head)
    width = max((len(a.label) for a in pred.actions), default=0)
    for a in pred.actions:
        print(f"  {a.prob * 100:6.2f}%  {a.label:<{width}}  {bar * max(int(round(a.prob * 20)), 0)}")
    if pred.caption is not None:
        print(f"  caption: {pred.caption}")
    label_width = max((len(w.actions[0].label) for w in pred.timeline or [] if w.actions), default=0)
    for w in pred.timeline or []:
        top = f"{w.actions[0].label:<{label_width}} {w.actions[0].prob * 100:5.1f}%" if w.actions else ""
        cap = f"  | {w.caption}" if w.caption is not None else ""
        print(f"  [{w.start:7.2f} - {w.end:7.2f} s]  {top}{cap}")
    sys.stdout.flush()


def _write_json(path: str, predictions: list[Prediction]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump([p.to_dict() for p in predictions], f, indent=2, ensure_ascii=False)
        f.write("\n")


def _write_csv(path: str, predictions: list[Prediction], windows: bool) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    header = ["video", "start", "end", "label", "prob", "caption", "error"] if windows else ["video", "label", "prob", "caption", "error"]

    def row(video, actions, caption, error, start=None, end=None) -> list:
        top = actions[0] if actions else None
        cells = [video]
        if windows:
            cells += ["" if start is None else f"{start:.3f}", "" if end is None else f"{end:.3f}"]
        return cells + [top.label if top else "", f"{top.prob:.6f}" if top else "", caption or "", error or ""]

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for p in predictions:
            if windows and p.timeline:
                for w in p.timeline:
                    writer.writerow(row(p.video, w.actions, w.caption, None, w.start, w.end))
            else:
                writer.writerow(row(p.video, p.actions, p.caption, p.error))


def main(argv: Sequence[str] | None = None) -> int:
    """``infer.py``: returns 0 when every video was predicted, 1 when any failed, 2 on bad usage."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # `infer.py check ...` / `infer.py extract ...` are subcommands, unless a file or folder of
    # that name is there: then it is a video to classify, as it always was.
    if argv and argv[0] == "check" and not Path(argv[0]).exists():
        from vidrec.apps.check import main as check_main

        return check_main(argv[1:], prog="infer.py check")
    if argv and argv[0] == "extract" and not Path(argv[0]).exists():
        from vidrec.apps.extract import main as extract_main

        return extract_main(argv[1:], prog="infer.py extract")
    parser = _parser()
    args = parser.parse_args(argv)

    if args.export:
        if not args.out:
            parser.error("--export needs --out (the file to write)")
        from vidrec.inference.export import export_onnx

        try:
            export_onnx(args.ckpt, args.out)
        except (CheckpointError, ValueError) as e:  # a bad file, or a model export does not cover: one line naming it
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {args.out}")
        return 0
    if args.demo:
        from vidrec.apps.web_demo import launch

        launch(args.ckpt, host=args.host, port=args.port, device=args.device, beam_size=args.beam_size)
        return 0

    if not args.videos:
        parser.error("give at least one VIDEO (file, folder or glob)")
    if args.stride is not None and args.window is None:
        parser.error("--stride needs --window")
    if args.plot and args.window is None:
        parser.error("--plot needs --window (it plots the timeline)")
    if args.window is not None and not args.window > 0:
        parser.error("--window must be > 0 seconds")
    if args.stride is not None and not args.stride > 0:
        parser.error("--stride must be > 0 seconds")
    if args.topk < 1 or args.batch_size < 1:
        parser.error("--topk and --batch-size must be >= 1")
    if args.beam_size is not None and args.beam_size < 1:
        parser.error("--beam-size must be >= 1")
    if args.views < 1:
        parser.error("--views must be >= 1")
    videos = expand_inputs(args.videos)
    if not videos:
        parser.error(f"no video files found in {args.videos}")
    if args.out and len(videos) != 1:
        parser.error(f"--out writes one annotated video: give exactly one input video (got {len(videos)})")

    try:
        predictor = Predictor.from_checkpoint(
            args.ckpt, device=args.device, backend=args.backend, beam_size=args.beam_size, views=args.views, crops=args.crops
        )
    except CheckpointError as e:  # already one line naming the file
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError, ValueError) as e:  # an option the checkpoint or machine cannot serve (a device that is not there, say)
        print(f"error: cannot predict with {args.ckpt} as asked: {e}", file=sys.stderr)
        return 2

    bar = _bar_char()
    predictions: list[Prediction] = []
    for pred in predictor.iter_predict(videos, topk=args.topk, batch_size=args.batch_size, window=args.window, stride=args.stride):
        _print_prediction(pred, bar)
        predictions.append(pred)
    failed = [p for p in predictions if p.error is not None]

    if args.json:
        _write_json(args.json, predictions)
    if args.csv:
        _write_csv(args.csv, predictions, windows=args.window is not None)
    status = 1 if failed else 0
    if args.out or args.plot:
        from vidrec.inference import viz
        from vidrec.inference.gate_activity import gate_activity

        good = [p for p in predictions if p.error is None]
        for p in good:
            try:
                if args.out:
                    viz.annotate_video(p.video, args.out, p)
                    print(f"wrote annotated video {args.out}")
                if args.plot:
                    plot = Path(args.plot)
                    if len(videos) > 1:  # one plot per video: timeline_<video name>.png
                        plot = plot.with_name(f"{plot.stem}_{Path(p.video).stem}{plot.suffix or '.png'}")
                    # LSTM/GRU models: their gates over the video's sampled frames, under the timeline.
                    viz.plot_timeline(p, plot, gates=gate_activity(predictor, p.video))
                    print(f"wrote timeline plot {plot}")
            except Exception as e:  # the predictions are still good and already printed
                print(f"ERROR {p.video}: cannot write output: {e}", file=sys.stderr)
                status = 1
    if failed:
        print(f"{len(failed)} of {len(predictions)} video(s) failed", file=sys.stderr)
    return status
