"""MSVD (Microsoft Research Video Description Corpus) recipe: the corpus CSV -> manifests.

    python datasets/msvd.py --videos YouTubeClips --csv MSRVideoDescription.csv --out data/msvd

Reads ``MSRVideoDescription.csv`` (header
``VideoID,Start,End,WorkerID,Source,AnnotationTime,Language,Description``), keeps the
English descriptions and groups them per clip; a clip is the file
``ROOT/{VideoID}_{Start}_{End}.avi``. MSVD is captioning only: records have no label.

Split: the standard 1200 train / 100 val / rest (670) test split, taken over the clips
whose video exists (the CSV describes ~2,000 clips but only 1,970 were released as
``YouTubeClips``). Clips are ordered by name (``--order sorted``, the default), which
is the order of the widely used ``youtube_mapping.txt`` (vid1 = -4wsuPCjDBc_5_15 ...
vid1970 = zzit5b_-ukg_5_20); ``--order first-appearance`` uses CSV order instead, and
``--mapping youtube_mapping.txt`` orders by its vidN numbers exactly.

Writes ``train.jsonl``, ``val.jsonl`` and ``test.jsonl`` under ``--out``; no
``classes.txt``, since an empty class list would read as a zero-class classifier.
Missing videos are dropped, counted and listed in ``missing.txt``.

Malformed files raise ``ManifestError`` naming the file and line.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from vidrec.data.manifest import ClipRecord, ManifestError
from vidrec.data.recipe_tools import first_few, run_main, write_missing_lines, write_splits

_REQUIRED = ("VideoID", "Start", "End", "Language", "Description")


def _seconds(value: str | None, column: str, where: str) -> int:
    """Start/End are whole seconds; the clip file name is built from them."""
    text = (value or "").strip()
    if not text.isdigit():
        raise ManifestError(f"{where}: {column} must be a whole number of seconds, got {value!r}")
    return int(text)


def read_corpus(path: Path) -> dict[str, list[str]]:
    """The corpus CSV -> English captions per clip name, in first-appearance order."""
    if not path.is_file():
        raise SystemExit(f"error: {path} not found")
    clips: dict[str, list[str]] = {}
    # errors="replace": a stray byte in some non-English row must not sink the English ones.
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.DictReader(f)
        absent = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
        if absent:
            raise ManifestError(f"{path}:1: header lacks {', '.join(absent)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if (row.get("Language") or "").strip() != "English":
                continue
            video_id = (row.get("VideoID") or "").strip()
            if not video_id:
                raise ManifestError(f"{where}: empty VideoID")
            start = _seconds(row.get("Start"), "Start", where)
            end = _seconds(row.get("End"), "End", where)
            if end <= start:
                raise ManifestError(f"{where}: End ({end}) must be after Start ({start})")
            captions = clips.setdefault(f"{video_id}_{start}_{end}", [])
            description = (row.get("Description") or "").strip()
            if description:  # a few rows have an empty description: no caption, but still a clip
                captions.append(description)
    return clips


def read_mapping(path: Path) -> dict[str, int]:
    """``youtube_mapping.txt`` ("-4wsuPCjDBc_5_15 vid1") -> clip name to N."""
    if not path.is_file():
        raise SystemExit(f"error: {path} not found")
    order = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].startswith("vid") or not parts[1][3:].isdigit():
            raise ManifestError(f"{path}:{lineno}: expected '<clip> vid<N>', got {line.strip()!r}")
        order[parts[0]] = int(parts[1][3:])
    return order


def order_clips(names: list[str], order: str, mapping: dict[str, int] | None) -> list[str]:
    """Clip names in split order; with a mapping, clips it does not list are left out."""
    if mapping is not None:
        return sorted((n for n in names if n in mapping), key=mapping.__getitem__)
    if order == "sorted":
        return sorted(names)  # code-point order, like youtube_mapping.txt
    return list(names)  # read_corpus keeps first-appearance order


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", required=True, type=Path, help="the YouTubeClips folder of .avi files")
    parser.add_argument("--csv", required=True, type=Path, help="MSRVideoDescription.csv")
    parser.add_argument("--out", required=True, type=Path, help="folder for the manifests")
    parser.add_argument("--train", type=int, default=1200, help="number of training clips")
    parser.add_argument("--val", type=int, default=100, help="number of validation clips; the rest are test")
    parser.add_argument(
        "--order", choices=("sorted", "first-appearance"), default="sorted", help="clip order the split is cut from"
    )
    parser.add_argument("--mapping", type=Path, help="youtube_mapping.txt: order clips by its vidN numbers")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.train < 0 or args.val < 0:
        raise SystemExit("error: --train and --val must not be negative")
    root = args.videos.resolve()
    clips = read_corpus(args.csv)
    mapping = read_mapping(args.mapping) if args.mapping else None
    names = order_clips(list(clips), args.order, mapping)
    if mapping is not None and len(names) < len(clips):
        print(f"note: {len(clips) - len(names)} clips are not in {args.mapping} and are left out")

    records, missing = [], []
    for name in names:
        path = root / f"{name}.avi"
        if path.is_file():
            records.append(ClipRecord(video=str(path), captions=clips[name]))
        else:
            missing.append(f"{name}.avi")
    if names and not records:
        # Almost certainly a wrong --videos folder: fail rather than write empty manifests.
        raise SystemExit(f"error: none of the {len(names)} clips were found under {args.videos}")
    if missing:
        print(f"{len(missing)} missing videos dropped before splitting ({first_few(missing)})")
    if len(records) <= args.train + args.val:
        print(f"warning: only {len(records)} clips, so test is empty or val/train are short")

    # The split is cut after dropping missing clips so that the released 1,970 give 1200/100/670.
    cut = args.train + args.val
    splits = {"train": records[: args.train], "val": records[args.train : cut], "test": records[cut:]}
    out = args.out
    # Missing clips were dropped before the split was cut: the summary lines have none to
    # name, and missing.txt has no split column, just one clip file per line.
    write_splits(out, splits, {}, captions=True)
    write_missing_lines(out, missing)


if __name__ == "__main__":
    run_main(main)
