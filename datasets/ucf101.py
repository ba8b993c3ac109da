"""UCF101 recipe: the official ``ucfTrainTestlist`` files -> canonical manifests.

    python datasets/ucf101.py --videos UCF-101 --splits ucfTrainTestlist --split 1 --out data/ucf101

Reads ``classInd.txt`` ("1 ApplyEyeMakeup"), ``trainlist0N.txt``
("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1") and ``testlist0N.txt``
("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", no label). Videos are expected at
``ROOT/<Class>/v_<Class>_gXX_cYY.avi``.

Writes ``train.jsonl``, ``val.jsonl``, ``test.jsonl`` and ``classes.txt`` (classInd order)
under ``--out``. UCF101 has no validation split: by default ``val.jsonl`` is a copy of
``test.jsonl``; ``--val-from-train F`` instead holds out whole groups (gXX) of the
training list, so no actor/scene appears in both train and val. Missing videos are
dropped, counted and listed in ``missing.txt``.

Malformed official files raise ``ManifestError`` naming the file and line.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vidrec.data.manifest import ClipRecord, ManifestError, write_classes
from vidrec.data.recipe_tools import run_main, write_missing, write_splits

# Official file names are "v_<Class>_g08_c01.avi": the group is the actor/scene id.
_GROUP_RE = re.compile(r"_g(\d+)_c\d+\.[^.]+$", re.IGNORECASE)


@dataclass
class ListEntry:
    """One line of a train/test list: the video path as listed and its class."""

    rel: str  # "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", as written in the list
    label: str
    where: str  # "file:line", for error messages


def _lines(path: Path):
    """Yield (line number, stripped text) for non-blank lines; official files use CRLF."""
    if not path.is_file():
        raise SystemExit(f"error: {path} not found (is --splits the ucfTrainTestlist folder?)")
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            text = line.strip()
            if text:
                yield lineno, text


def read_class_index(path: Path) -> list[str]:
    """``classInd.txt`` -> class names ordered by their official 1-based index."""
    by_index: dict[int, str] = {}
    for lineno, text in _lines(path):
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ManifestError(f"{path}:{lineno}: expected '<index> <ClassName>', got {text!r}")
        index, name = int(parts[0]), parts[1]
        if index in by_index:
            raise ManifestError(f"{path}:{lineno}: index {index} given twice")
        by_index[index] = name
    if not by_index:
        raise ManifestError(f"{path}: no classes")
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        # Train lists refer to classes by index, so a gap would shift every later label.
        raise ManifestError(f"{path}: indices must run 1..{len(by_index)} without gaps")
    names = [by_index[i] for i in sorted(by_index)]
    lowered = [n.lower() for n in names]
    if len(set(lowered)) != len(lowered):
        # Labels are matched case-insensitively, so names differing only in case would clash.
        raise ManifestError(f"{path}: class names must differ in more than letter case")
    return names


def read_split_list(path: Path, class_index: dict[int, str], by_lower: dict[str, str]) -> list[ListEntry]:
    """A train or test list -> entries with labels.

    The label is taken from the folder name, matched case-insensitively against
    classInd, because the official lists spell some folders differently
    (``HandStandPushups`` vs ``HandstandPushups``). A trailing index, when present
    (train lists), must agree with the folder.
    """
    entries = []
    for lineno, text in _lines(path):
        where = f"{path}:{lineno}"
        parts = text.split()
        if len(parts) not in (1, 2) or "/" not in parts[0]:
            raise ManifestError(f"{where}: expected '<Class>/<video>.avi [<index>]', got {text!r}")
        rel = parts[0]
        folder = PurePosixPath(rel).parts[0]
        label = by_lower.get(folder.lower())
        if label is None:
            raise ManifestError(f"{where}: class folder {folder!r} is not in classInd.txt")
        if len(parts) == 2:
            if not parts[1].isdigit() or int(parts[1]) not in class_index:
                raise ManifestError(f"{where}: {parts[1]!r} is not a class index from classInd.txt")
            if class_index[int(parts[1])] != label:
                raise ManifestError(
                    f"{where}: index {parts[1]} is {class_index[int(parts[1])]!r} but the folder says {folder!r}"
                )
        entries.append(ListEntry(rel=rel, label=label, where=where))
    return entries


class CaseInsensitiveFinder:
    """Find ``ROOT/<rel>``, falling back to a case-insensitive match of each path part.

    The official lists and the extracted archive disagree on case for a few classes;
    on a case-sensitive file system an exact lookup alone would lose those videos.
    """

    def __init__(self, root: Path):
        self.root = root
        self._listings: dict[Path, dict[str, str]] = {}

    def _listing(self, folder: Path) -> dict[str, str]:
        if folder not in self._listings:
            try:
                names = os.listdir(folder)
            except OSError:
                names = []
            self._listings[folder] = {n.lower(): n for n in names}
        return self._listings[folder]

    def find(self, rel: str) -> Path | None:
        exact = self.root / rel
        if exact.is_file():
            return exact
        current = self.root
        for part in PurePosixPath(rel).parts:
            name = self._listing(current).get(part.lower())
            if name is None:
                return None
            current = current / name
        return current if current.is_file() else None


def group_of(entry: ListEntry) -> int:
    """The ``gXX`` group number of a list entry."""
    match = _GROUP_RE.search(entry.rel)
    if match is None:
        raise ManifestError(f"{entry.where}: cannot find the group '_gXX_cYY' in {entry.rel!r}")
    return int(match.group(1))


def hold_out_groups(train: list[ListEntry], fraction: float) -> tuple[list[ListEntry], list[ListEntry], list[int]]:
    """Move the highest-numbered ``fraction`` of train groups to val (at least one group).

    Whole groups move because clips of one group share actor and background; splitting
    a group would leak near-duplicates into val. Highest numbers: deterministic, no seed.
    """
    groups = sorted({group_of(e) for e in train})
    count = max(1, round(fraction * len(groups)))
    if count >= len(groups):
        raise SystemExit(f"error: --val-from-train {fraction} would leave no training groups")
    held = set(groups[-count:])
    keep = [e for e in train if group_of(e) not in held]
    val = [e for e in train if group_of(e) in held]
    return keep, val, sorted(held)


def to_records(entries: list[ListEntry], finder: CaseInsensitiveFinder) -> tuple[list[ClipRecord], list[str]]:
    """Entries -> records for the videos that exist, plus the listed paths that do not."""
    records, missing = [], []
    for entry in entries:
        path = finder.find(entry.rel)
        if path is None:
            missing.append(entry.rel)
        else:
            records.append(ClipRecord(video=str(path), label=entry.label))
    return records, missing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", required=True, type=Path, help="the extracted UCF-101 folder (ROOT/<Class>/*.avi)")
    parser.add_argument("--splits", required=True, type=Path, help="the ucfTrainTestlist folder")
    parser.add_argument("--split", type=int, default=1, choices=(1, 2, 3), help="official split number")
    parser.add_argument("--out", required=True, type=Path, help="folder for the manifests")
    parser.add_argument(
        "--val-from-train",
        type=float,
        default=None,
        metavar="FRACTION",
        help="hold out this fraction of the training groups (gXX) as val; default: val = copy of test",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.val_from_train is not None and not 0.0 < args.val_from_train < 1.0:
        raise SystemExit("error: --val-from-train must be between 0 and 1")
    classes = read_class_index(args.splits / "classInd.txt")
    class_index = {i + 1: name for i, name in enumerate(classes)}
    by_lower = {name.lower(): name for name in classes}
    train = read_split_list(args.splits / f"trainlist0{args.split}.txt", class_index, by_lower)
    test = read_split_list(args.splits / f"testlist0{args.split}.txt", class_index, by_lower)

    splits = {"train": train, "test": test}
    if args.val_from_train is not None:
        splits["train"], splits["val"], held = hold_out_groups(train, args.val_from_train)
        print(f"val: groups {held} held out of train")

    finder = CaseInsensitiveFinder(args.videos.resolve())
    out = args.out
    records: dict[str, list[ClipRecord]] = {}
    missing: dict[str, list[str]] = {}
    for split, entries in splits.items():
        records[split], missing[split] = to_records(entries, finder)
    if not any(records.values()):
        # Almost certainly a wrong --videos folder: fail rather than write empty manifests.
        raise SystemExit(f"error: none of the listed videos were found under {args.videos}")
    write_splits(out, records, missing)
    if "val" not in splits:
        # No official val split: reuse test so that training code expecting val still runs.
        shutil.copyfile(out / "test.jsonl", out / "val.jsonl")
        print("val: copy of test (UCF101 has no validation split; see --val-from-train)")
    write_classes(out / "classes.txt", classes)
    write_missing(out, missing)


if __name__ == "__main__":
    run_main(main)
