"""Kinetics (400 / 600 / 700) recipe: the official CSV files -> canonical manifests.

    python datasets/kinetics.py --videos kinetics400 --csv train.csv --csv validate.csv --out data/k400

Reads CSVs with the header ``label,youtube_id,time_start,time_end,split`` (``label``
may be absent or empty for test rows). Each row is a clip already cut to its 10 s
window and saved as ``{youtube_id}_{start:06d}_{end:06d}.mp4`` (whole seconds), so the
manifest has no start/end. A clip is looked for, in this order, at

    ROOT/<label>/<file>            ROOT/<split>/<label>/<file>
    ROOT/<split>/<file>            ROOT/<file>

where <label> is tried as written and with spaces turned into underscores, and
<split> as written in the CSV (e.g. ``validate``) and as ``train``/``val``/``test``.

Writes ``train.jsonl`` / ``val.jsonl`` / ``test.jsonl`` for whichever splits appear
(``validate`` becomes ``val``) and ``classes.txt`` (the sorted set of labels) under
``--out``. Clips not downloaded (YouTube videos disappear) are dropped, counted and
listed in ``missing.txt``.

Malformed official files raise ``ManifestError`` naming the file and line.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

from vidrec.data.manifest import ClipRecord, ManifestError, write_classes
from vidrec.data.recipe_tools import run_main, write_missing, write_splits

_SPLITS = {"train": "train", "val": "val", "validate": "val", "test": "test"}
_REQUIRED = ("youtube_id", "time_start", "time_end", "split")


@dataclass
class Row:
    """One CSV row: which clip file, its label (None for unlabeled test rows) and split."""

    file: str  # "{youtube_id}_{start:06d}_{end:06d}.mp4"
    label: str | None
    split: str  # "train" | "val" | "test"
    split_as_written: str  # folder names follow the CSV's spelling, e.g. "validate"


def _whole_seconds(value: str, column: str, where: str) -> int:
    """The clip window in whole seconds; the file names depend on it being exact."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: {column} must be a number of seconds, got {value!r}") from None
    if not seconds.is_integer() or seconds < 0:
        raise ManifestError(f"{where}: {column} must be a whole number of seconds, got {value!r}")
    return int(seconds)


def read_csv(path: Path) -> list[Row]:
    """One official CSV -> rows."""
    if not path.is_file():
        raise SystemExit(f"error: {path} not found")
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        absent = [c for c in _REQUIRED if c not in header]
        if absent:
            expected = ",".join(("label",) + _REQUIRED)
            raise ManifestError(f"{path}:1: header lacks {', '.join(absent)} (expected {expected})")
        for raw in reader:
            where = f"{path}:{reader.line_num}"  # line_num: physical line, right even after quoted newlines
            if None in raw or any(raw.get(c) is None for c in _REQUIRED):
                raise ManifestError(f"{where}: expected {len(header)} columns")
            split_as_written = raw["split"].strip()
            split = _SPLITS.get(split_as_written)
            if split is None:
                raise ManifestError(f"{where}: split must be one of {', '.join(_SPLITS)}, got {split_as_written!r}")
            label = (raw.get("label") or "").strip() or None
            if label is None and split != "test":
                raise ManifestError(f"{where}: a {split_as_written} row needs a label")
            youtube_id = raw["youtube_id"].strip()
            if not youtube_id:
                raise ManifestError(f"{where}: empty youtube_id")
            start = _whole_seconds(raw["time_start"], "time_start", where)
            end = _whole_seconds(raw["time_end"], "time_end", where)
            if end <= start:
                raise ManifestError(f"{where}: time_end ({end}) must be after time_start ({start})")
            rows.append(Row(f"{youtube_id}_{start:06d}_{end:06d}.mp4", label, split, split_as_written))
    return rows


def candidates(root: Path, row: Row) -> list[Path]:
    """Where download tools put a clip, most specific first."""
    labels = [] if row.label is None else list(dict.fromkeys([row.label, row.label.replace(" ", "_")]))
    splits = list(dict.fromkeys([row.split_as_written, row.split]))
    paths = [root / label / row.file for label in labels]
    paths += [root / split / label / row.file for split in splits for label in labels]
    paths += [root / split / row.file for split in splits]
    paths.append(root / row.file)
    return paths


def find_video(root: Path, row: Row) -> Path | None:
    return next((p for p in candidates(root, row) if p.is_file()), None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", required=True, type=Path, help="folder with the downloaded, trimmed clips")
    parser.add_argument(
        "--csv", required=True, type=Path, action="append", help="an official CSV (train/validate/test); repeatable"
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for the manifests")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    root = args.videos.resolve()
    rows = [row for path in args.csv for row in read_csv(path)]
    records: dict[str, list[ClipRecord]] = {}
    missing: dict[str, list[str]] = {}
    for row in rows:
        split_records = records.setdefault(row.split, [])
        split_missing = missing.setdefault(row.split, [])
        video = find_video(root, row)
        if video is None:
            split_missing.append(row.file)
        else:
            split_records.append(ClipRecord(video=str(video), label=row.label))
    if rows and not any(records.values()):
        # Almost certainly a wrong --videos folder: fail rather than write empty manifests.
        raise SystemExit(f"error: none of the {len(rows)} clips were found under {args.videos}")

    out = args.out
    write_splits(out, records, missing, order=("train", "val", "test"))
    # Labels of missing clips count too: the class list must not depend on download luck.
    labels = sorted({row.label for row in rows if row.label is not None})
    if labels:  # the unlabelled test.csv alone has none, and an empty list reads as a zero-class model
        write_classes(out / "classes.txt", labels)
    write_missing(out, missing)


if __name__ == "__main__":
    run_main(main)
