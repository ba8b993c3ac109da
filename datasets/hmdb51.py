"""HMDB51 recipe: the official three-splits files -> canonical manifests.

    python datasets/hmdb51.py --videos hmdb51 --splits testTrainMulti_7030_splits --split 1 --out data/hmdb51

Reads the 51 files ``<class>_test_split<N>.txt`` whose lines are
"<video_name.avi> <id>" with id 1 = train, 2 = test, 0 = not used in this split.
Videos are expected at ``ROOT/<class>/<video_name.avi>`` (the layout of the per-class
archives), or flat at ``ROOT/<video_name.avi>``.

Writes ``train.jsonl``, ``test.jsonl``, ``val.jsonl`` (a copy of test: HMDB51 has no
validation split) and ``classes.txt`` (sorted) under ``--out``. Missing videos are
dropped, counted and listed in ``missing.txt``.

Malformed official files raise ``ManifestError`` naming the file and line.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from vidrec.data.manifest import ClipRecord, ManifestError, write_classes
from vidrec.data.recipe_tools import run_main, write_missing, write_splits

_SPLIT_OF_ID = {"1": "train", "2": "test", "0": None}  # 0: the clip sits this split out


def split_files(folder: Path, split: int) -> dict[str, Path]:
    """Class name -> its ``<class>_test_split<N>.txt``, sorted by class name."""
    suffix = f"_test_split{split}.txt"
    files = {p.name[: -len(suffix)]: p for p in folder.glob(f"*{suffix}") if p.is_file()}
    if not files:
        raise SystemExit(f"error: no '*{suffix}' files in {folder} (is --splits the official split folder?)")
    return dict(sorted(files.items()))


def read_split_file(path: Path) -> list[tuple[str, str]]:
    """One class's split file -> (video name, 'train' | 'test') for the clips this split uses."""
    used = []
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            text = line.strip()
            if not text:
                continue
            # rsplit: the id is the last token; the name is everything before it.
            parts = text.rsplit(maxsplit=1)
            if len(parts) != 2 or parts[1] not in _SPLIT_OF_ID:
                raise ManifestError(f"{path}:{lineno}: expected '<video_name.avi> <0|1|2>', got {text!r}")
            split = _SPLIT_OF_ID[parts[1]]
            if split is not None:
                used.append((parts[0], split))
    return used


def find_video(root: Path, label: str, name: str) -> Path | None:
    """``ROOT/<class>/<name>``, else ``ROOT/<name>``."""
    for path in (root / label / name, root / name):
        if path.is_file():
            return path
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", required=True, type=Path, help="folder with one sub-folder of .avi per class")
    parser.add_argument("--splits", required=True, type=Path, help="folder with the <class>_test_split<N>.txt files")
    parser.add_argument("--split", type=int, default=1, choices=(1, 2, 3), help="official split number")
    parser.add_argument("--out", required=True, type=Path, help="folder for the manifests")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    root = args.videos.resolve()
    files = split_files(args.splits, args.split)
    records: dict[str, list[ClipRecord]] = {"train": [], "test": []}
    missing: dict[str, list[str]] = {"train": [], "test": []}
    for label, path in files.items():
        for name, split in read_split_file(path):
            video = find_video(root, label, name)
            if video is None:
                missing[split].append(f"{label}/{name}")
            else:
                records[split].append(ClipRecord(video=str(video), label=label))
    if not records["train"] and not records["test"]:
        # Almost certainly a wrong --videos folder: fail rather than write empty manifests.
        raise SystemExit(f"error: none of the listed videos were found under {args.videos}")

    out = args.out
    write_splits(out, records, missing)
    # No official val split: reuse test so that training code expecting val still runs.
    shutil.copyfile(out / "test.jsonl", out / "val.jsonl")
    print("val: copy of test (HMDB51 has no validation split)")
    write_classes(out / "classes.txt", list(files))
    write_missing(out, missing)


if __name__ == "__main__":
    run_main(main)
