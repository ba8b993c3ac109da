"""``check``: find the clips of a manifest that would fail or mislead training, before training.

    python -m vidrec.apps.check data/ucf101/train.jsonl --classes data/ucf101/classes.txt --out checked/
    python infer.py check MANIFEST ...            (or the console script: vidrec-check MANIFEST ...)

Every video is opened once, in a pool of worker processes, with the decoder training uses
(``vidrec.data.decode.open_video``), and its last promised frame is requested, so a
container that over-reports its frames (a truncated download) is caught here rather than as
a shorter clip mid-epoch. Writes ``DIR/clean.jsonl`` (the clips that are kept, a manifest) and
``DIR/report.json`` (every clip with its frame counts, duration and problems, plus the class
histogram), and prints a summary. With ``--classes``, the class list is copied to
``DIR/classes.txt``: training on ``clean.jsonl`` reads it from beside the manifest, so the
classes keep their order and number even where the check dropped all of a class's clips.

What happens to a clip:

* dropped: ``missing``, ``empty`` (0 bytes), ``unreadable`` (the decoder's reason),
  ``too_short`` (fewer than ``--min-frames`` frames in its time range), ``unknown_label``
  (not in ``--classes``), ``start_past_end`` (``start`` at or after the video's last frame:
  loading it would fail);
* kept with a warning (``--strict`` drops these too): ``frame_count`` (the container promises
  more frames than decode; readers recover by sampling from the true count), ``end_past_end``
  (``end`` past the video's end by more than a frame; the clip is cut there, which is common
  and harmless for Kinetics-style 10 s ranges on 9.97 s videos).

Exit status: 0 when nothing was dropped, 1 when any clip was, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, Sequence, get_args

from vidrec.data.clips import frame_range
from vidrec.data.decode import Backend, FrameCountError, VideoDecodeError, open_video
from vidrec.data.video_reader import short
from vidrec.data.manifest import ClipRecord, ManifestError, read_classes, read_manifest, write_classes, write_manifest

__all__ = [
    "DROPS", "WARNS", "Problem", "VideoProbe", "ClipCheck", "CheckReport",
    "probe_video", "probe_videos", "judge", "check_manifest", "write_report", "print_summary", "main",
]

#: problem kinds that drop a clip from clean.jsonl
DROPS = ("missing", "empty", "unreadable", "too_short", "unknown_label", "start_past_end")
#: problem kinds that keep the clip but are reported (dropped too with --strict)
WARNS = ("frame_count", "end_past_end")
SHOW_ROWS = 30  # problem rows printed before "... see report.json"
DETAIL_CHARS = 140  # a problem's text in the printed table is cut to this
SOURCE_LOCATION = re.compile(r"[\w./-]+\.(?:cpp|cc|c|h):\d+,?\s*")  # "/__w/.../SingleStreamDecoder.cpp:41, "
NO_LABEL = "(no label)"  # histogram key for clips without a label (JSON keys are strings)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a clip: a kind from ``DROPS`` or ``WARNS`` and a sentence saying what."""

    kind: str
    detail: str


@dataclass(frozen=True)
class VideoProbe:
    """What opening one video found: frame counts and rate, or why it could not be read.

    ``reported_frames`` is the count the reader gave at open (the container's), ``frames``
    how many really decode (found by requesting the last reported one); equal for a sound file.
    """

    video: str
    reported_frames: int | None = None
    frames: int | None = None
    fps: float | None = None
    error: Problem | None = None  # missing, empty or unreadable

    @property
    def duration(self) -> float | None:
        """Seconds of decodable video, None when unreadable."""
        return None if self.error is not None or not self.fps else self.frames / self.fps


@dataclass
class ClipCheck:
    """One manifest clip and its verdict. ``clip_frames``: frames inside its ``[start, end)``."""

    record: ClipRecord
    probe: VideoProbe
    problems: list[Problem] = field(default_factory=list)
    clip_frames: int | None = None

    @property
    def seconds(self) -> float:
        """Seconds of video the clip covers (0 when unreadable or past the end)."""
        return self.clip_frames / self.probe.fps if self.clip_frames and self.probe.fps else 0.0

    def kept(self, strict: bool = False) -> bool:
        bad = DROPS + WARNS if strict else DROPS
        return not any(p.kind in bad for p in self.problems)

    def to_dict(self, strict: bool = False) -> dict:
        duration = self.probe.duration
        return {
            "video": os.path.abspath(self.record.video),  # report.json may sit anywhere
            "source": self.record.source,
            "label": self.record.label,
            "start": self.record.start,
            "end": self.record.end,
            "kept": self.kept(strict),
            "reported_frames": self.probe.reported_frames,
            "frames": self.probe.frames,
            "fps": self.probe.fps,
            "duration": None if duration is None else round(duration, 3),
            "clip_frames": self.clip_frames,
            "clip_seconds": round(self.seconds, 3),
            "problems": [{"kind": p.kind, "detail": p.detail} for p in self.problems],
        }


@dataclass
class CheckReport:
    """The whole manifest's verdict, in manifest order."""

    manifest: Path
    clips: list[ClipCheck]
    classes: list[str] | None = None
    min_frames: int = 8
    backend: str | None = None
    strict: bool = False

    @property
    def kept(self) -> list[ClipCheck]:
        return [c for c in self.clips if c.kept(self.strict)]

    @property
    def dropped(self) -> list[ClipCheck]:
        return [c for c in self.clips if not c.kept(self.strict)]

    def problem_counts(self) -> dict[str, int]:
        """Clips per problem kind, every kind listed (0 where none), drops first."""
        counts = Counter(kind for c in self.clips for kind in {p.kind for p in c.problems})
        return {kind: counts.get(kind, 0) for kind in DROPS + WARNS}

    def histogram(self, kept_only: bool = False) -> dict[str, int]:
        """Clips per label: the ``--classes`` order (0 for a class without clips), then other
        labels sorted, then ``NO_LABEL``."""
        clips = self.kept if kept_only else self.clips
        counts = Counter(c.record.label if c.record.label is not None else NO_LABEL for c in clips)
        order = list(self.classes or [])
        order += sorted(k for k in counts if k not in order and k != NO_LABEL)
        if counts.get(NO_LABEL):
            order.append(NO_LABEL)
        return {k: counts.get(k, 0) for k in order}

    def to_dict(self) -> dict:
        kept = self.kept
        return {
            "manifest": os.path.abspath(self.manifest),
            "backend": self.backend,
            "min_frames": self.min_frames,
            "strict": self.strict,
            "classes": self.classes,
            "clips_total": len(self.clips),
            "clips_kept": len(kept),
            "clips_dropped": len(self.clips) - len(kept),
            "kept_seconds": round(sum(c.seconds for c in kept), 3),
            "problems": self.problem_counts(),
            "histogram": self.histogram(),
            "histogram_kept": self.histogram(kept_only=True),
            "clips": [c.to_dict(self.strict) for c in self.clips],
        }


# --------------------------------------------------------------------------------------
# looking at one video (runs in a worker process)
# --------------------------------------------------------------------------------------


def probe_video(video: str, backend: Backend | None = None) -> VideoProbe:
    """Open ``video`` and find how many frames really decode; never raises.

    Requests the last frame the container reports: a reader that cannot decode it lowers
    its ``num_frames`` to the true count and raises ``FrameCountError`` (see decode.py).
    """
    path = Path(video)
    try:
        # Told apart up front: to the readers both are just "cannot open".
        if not path.exists():
            return VideoProbe(video, error=Problem("missing", "file not found"))
        if path.is_file() and path.stat().st_size == 0:
            return VideoProbe(video, error=Problem("empty", "file is empty (0 bytes)"))
    except OSError:
        pass  # a name the file system refuses: open_video says so below
    try:
        with open_video(video, backend) as reader:
            reported, fps = reader.num_frames, reader.fps
            try:
                reader.get_frames([reported - 1])
            except FrameCountError:
                pass  # reader.num_frames is now the count that decodes
            return VideoProbe(video, reported_frames=reported, frames=reader.num_frames, fps=fps)
    except VideoDecodeError as e:
        return VideoProbe(video, error=Problem("unreadable", e.reason))
    except Exception as e:  # a decoder's own bug on a strange file must not stop the scan
        return VideoProbe(video, error=Problem("unreadable", f"{type(e).__name__}: {short(e)}"))


def _one_thread_per_worker() -> None:
    # Each worker decodes one video at a time: torch's intra-op threads (loaded with the
    # TorchCodec backend, or inherited by fork) would only compete with the other workers.
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def probe_videos(videos: Sequence[str], backend: Backend | None = None, workers: int = 1) -> Iterator[VideoProbe]:
    """``probe_video`` for each of ``videos``, in order, over ``workers`` processes."""
    if workers <= 1 or len(videos) <= 1:
        yield from (probe_video(v, backend) for v in videos)
        return
    workers = min(workers, len(videos))
    # Chunks amortise the inter-process hop over many tiny files, yet stay small enough
    # that one slow, long video does not leave the other workers idle at the end.
    chunksize = max(1, min(16, len(videos) // (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread_per_worker) as pool:
        yield from pool.map(partial(probe_video, backend=backend), videos, chunksize=chunksize)


# --------------------------------------------------------------------------------------
# judging a clip (pure: a record and what its video holds)
# --------------------------------------------------------------------------------------


def _unknown_label(label: str, classes: Sequence[str]) -> Problem:
    detail = f"label {label!r} is not one of the {len(classes)} classes"
    by_lower = {c.lower(): c for c in classes}  # case-blind: 'applyeyemakeup' is the common slip
    close = difflib.get_close_matches(label.lower(), list(by_lower), n=1)
    if close:
        detail += f" (did you mean {by_lower[close[0]]!r}?)"
    return Problem("unknown_label", detail)


def judge(record: ClipRecord, probe: VideoProbe, min_frames: int = 8, classes: Sequence[str] | None = None) -> ClipCheck:
    """The verdict on one clip, given what its video holds (``probe``)."""
    check = ClipCheck(record, probe)
    problems = check.problems
    if classes is not None and record.label is not None and record.label not in classes:
        problems.append(_unknown_label(record.label, classes))
    if probe.error is not None:
        problems.append(probe.error)
        return check
    frames, fps, duration = probe.frames, probe.fps, probe.duration
    if frames < probe.reported_frames:
        problems.append(Problem("frame_count", f"the container reports {probe.reported_frames} frames, only {frames} decode"))
    # The same test clip_indices makes before it refuses the clip.
    if record.start is not None and record.start * fps >= frames:
        problems.append(Problem("start_past_end", f"start {record.start:g}s is past the end of the video ({duration:.2f}s)"))
        return check
    first, last = frame_range(frames, fps, record.start, record.end)
    check.clip_frames = last - first
    if record.end is not None and record.end > duration + 1.0 / fps:
        problems.append(Problem("end_past_end", f"end {record.end:g}s is past the end of the video ({duration:.2f}s); the clip stops there"))
    if check.clip_frames < min_frames:
        where = " in [start, end)" if record.start is not None or record.end is not None else ""
        problems.append(Problem("too_short", f"{check.clip_frames} frame{'s' if check.clip_frames != 1 else ''}{where}, fewer than {min_frames}"))
    return check


def check_manifest(
    manifest: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    min_frames: int = 8,
    backend: Backend | None = None,
    workers: int = 1,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Read and check a manifest; raises ``ManifestError`` for a missing or malformed one.

    A video listed several times (clips at different time ranges) is opened once.
    ``progress(done, total)`` is called as videos are probed.
    """
    records = read_manifest(manifest)
    videos = list(dict.fromkeys(r.video for r in records))
    probes: dict[str, VideoProbe] = {}
    for probe in probe_videos(videos, backend, workers):
        probes[probe.video] = probe
        if progress is not None:
            progress(len(probes), len(videos))
    clips = [judge(r, probes[r.video], min_frames, classes) for r in records]
    return CheckReport(Path(manifest), clips, list(classes) if classes is not None else None, min_frames, backend, strict)


def write_report(report: CheckReport, out: str | os.PathLike) -> tuple[Path, Path]:
    """``out/clean.jsonl`` (the kept clips; paths relative to ``out`` where they lie under it) and ``out/report.json``;
    ``out/classes.txt`` too when the report has a class list (see the module's docstring)."""
    out = Path(out)
    clean = write_manifest(out / "clean.jsonl", [c.record for c in report.kept])
    if report.classes is not None:
        write_classes(out / "classes.txt", report.classes)
    path = out / "report.json"
    path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return clean, path


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------


def _parser(prog: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Check every clip of a manifest (decodable, long enough, frame counts honest, labels known) "
        "and write a clean manifest of the good ones.",
        epilog="Exit status: 0 nothing dropped, 1 some clips dropped, 2 bad usage.",
    )
    p.add_argument("manifest", metavar="MANIFEST", help="a .jsonl (or .csv) manifest")
    p.add_argument("--classes", metavar="classes.txt", help="class names, one per line: a label outside them is dropped")
    p.add_argument("--out", metavar="DIR", help="where clean.jsonl, report.json (and with --classes, classes.txt) go "
                   "(default: MANIFEST's folder/<name>_check)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes opening videos (default: all cores)")
    p.add_argument("--min-frames", type=int, default=8, help="drop clips with fewer decodable frames than this (default 8)")
    p.add_argument("--backend", choices=list(get_args(Backend)), help="video decoder (default: the best installed)")
    p.add_argument("--strict", action="store_true", help="also drop clips with warnings (frame-count lies, end past the video)")
    return p


def _shown_path(video: str, root: Path) -> str:
    """``video`` relative to the manifest's folder when inside it: shorter in a table."""
    rel = os.path.relpath(os.path.abspath(video), os.path.abspath(root))
    return video if rel.startswith("..") else rel


def print_summary(report: CheckReport, clean: Path, report_path: Path, console=None) -> None:
    """A table of the clips with problems and the class histogram, with Rich."""
    from rich.console import Console
    from rich.markup import escape  # file names and labels may hold [brackets]
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console.width = 120  # a log file or pipe: Rich's 80 columns would fold every path
    root = report.manifest.parent
    flagged = [c for c in report.clips if c.problems]
    if flagged:
        table = Table(title=f"Problems in {escape(str(report.manifest))}", title_justify="left")
        table.add_column("line", justify="right")
        table.add_column("video", overflow="fold")
        table.add_column("verdict")
        table.add_column("problem")
        table.add_column("what", overflow="fold")
        for c in flagged[:SHOW_ROWS]:
            first = [(c.record.source or "").rpartition(":")[2], escape(_shown_path(c.record.video, root)),
                     "kept" if c.kept(report.strict) else "[red]dropped[/]"]
            for k, p in enumerate(c.problems):
                # Decoders' reasons can carry C++ source locations; report.json has them whole.
                what = SOURCE_LOCATION.sub("", p.detail)
                what = what if len(what) <= DETAIL_CHARS else what[: DETAIL_CHARS - 3] + "..."
                table.add_row(*(first if k == 0 else ["", "", ""]), p.kind, escape(what))
        if len(flagged) > SHOW_ROWS:
            table.caption = f"... and {len(flagged) - SHOW_ROWS} more clips with problems: see {escape(str(report_path))}"
        console.print(table)

    everything, kept = report.histogram(), report.histogram(kept_only=True)
    hist = Table(title="Clips per class", title_justify="left")
    hist.add_column("class")
    hist.add_column("clips", justify="right")
    hist.add_column("kept", justify="right")
    hist.add_column("")
    top = max(everything.values(), default=0) or 1
    for label, n in everything.items():
        unknown = report.classes is not None and label not in report.classes and label != NO_LABEL
        hist.add_row(f"[red]{escape(label)}[/] (unknown)" if unknown else escape(label), str(n), str(kept.get(label, 0)),
                     "#" * round(20 * kept.get(label, 0) / top))
    console.print(hist)

    counts = ", ".join(f"{n} {kind}" for kind, n in report.problem_counts().items() if n)
    seconds = sum(c.seconds for c in report.kept)
    console.print(
        f"kept {len(report.kept)} of {len(report.clips)} clips ({seconds / 60:.1f} min of video)"
        + (f"; problems: {counts}" if counts else "; no problems")
    )
    classes = f" ({clean.parent / 'classes.txt'} beside it)" if report.classes is not None else ""
    console.print(f"wrote {clean}{classes} and {report_path}", markup=False)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``check``: 0 when nothing was dropped, 1 when any clip was, 2 on bad usage."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if args.workers < 1 or args.min_frames < 1:
        parser.error("--workers and --min-frames must be >= 1")
    manifest = Path(args.manifest)
    out = Path(args.out) if args.out else manifest.parent / f"{manifest.stem}_check"
    try:
        if not manifest.is_file():
            raise ManifestError(f"{manifest}: manifest not found")
        if (out / "clean.jsonl").resolve() == manifest.resolve():
            raise ManifestError(f"{manifest}: --out {out} would overwrite the manifest with clean.jsonl; pick another folder")
        classes = read_classes(args.classes) if args.classes else None
    except (ManifestError, OSError) as e:  # a missing classes.txt is an OSError
        print(f"error: {e}", file=sys.stderr)
        return 2

    from rich.console import Console
    from rich.progress import Progress

    err = Console(stderr=True)
    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("opening videos", total=None)
        try:
            report = check_manifest(
                manifest, classes=classes, min_frames=args.min_frames, backend=args.backend, workers=args.workers,
                strict=args.strict, progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except ManifestError as e:  # already one line naming file:line
            print(f"error: {e}", file=sys.stderr)
            return 2
    clean, report_path = write_report(report, out)
    print_summary(report, clean, report_path)
    return 1 if report.dropped else 0


if __name__ == "__main__":
    raise SystemExit(main())
