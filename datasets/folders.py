"""Your own videos, one sub-folder per class -> canonical manifests with a grouped split.

    python datasets/folders.py --videos my_videos --out data/mine [--val 0.15] [--test 0.15] [--seed 0] [--group REGEX [--across-classes]]

Videos are expected at ``ROOT/<class>/<video>`` (the torchvision DatasetFolder / UCF101
layout), also deeper inside a class folder (``ROOT/<class>/day1/<video>``). A class is an
immediate sub-folder of ROOT that holds at least one video (a suffix from
``VIDEO_EXTENSIONS``, in any letter case); names starting with '.' are skipped, and videos
directly in ROOT are ignored (they have no class).

The split is stratified by class and made of whole **groups**: the videos of one group
never land in two splits, so clips cut from one recording cannot leak from train into
test. By default each video is its own group; with ``--group REGEX`` the group is the
first match of REGEX in the video's path inside its class folder (``'_g\\d+_'`` for
UCF101-style ``v_X_g08_c01.avi``, ``'^[^/]+/'`` for one group per sub-folder, as in
``<class>/day1/<video>``), and a video it does not match is its own group. Groups belong to their class. Within each
class the sorted groups are shuffled with ``random.Random(--seed)`` and ``round(F x groups)``
go to test and to val, at least one each once the class has a group for every split; a
class with fewer groups than that goes wholly to train, with a warning. With
``--across-classes`` the held-out groups are drawn once for all classes (a recording filmed
in several classes stays in one split: test footage is footage training never saw), and the
split is no longer stratified.

Writes ``train.jsonl``, ``val.jsonl``, ``test.jsonl`` (a split with fraction 0, or no
clips, is not written) and ``classes.txt`` (sorted) under ``--out``. Never opens a video.
"""

from __future__ import annotations

import argparse
import os
import random
import re
from pathlib import Path

from vidrec.data.manifest import ClipRecord, write_classes
from vidrec.data.recipe_tools import run_main, write_missing, write_splits
from vidrec.data.sample_videos import VIDEO_EXTENSIONS

SPLITS = ("train", "val", "test")


def is_video(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def videos_under(folder: Path) -> list[Path]:
    """Every video below ``folder``, hidden files and folders skipped, sorted by relative path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # pruned: os.walk skips them
        found += [Path(dirpath, f) for f in filenames if is_video(f)]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def find_classes(root: Path) -> dict[str, list[Path]]:
    """Class name -> its videos, for the sub-folders of ``root`` that hold any; sorted."""
    if not root.is_dir():
        raise SystemExit(f"error: --videos {root} is not a folder")
    loose = sum(1 for p in root.iterdir() if p.is_file() and is_video(p.name))
    if loose:
        print(f"ignored {loose} video(s) directly in {root}: a video needs a class folder")
    classes = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        videos = videos_under(sub)
        if videos:
            classes[sub.name] = videos
    if not classes:
        raise SystemExit(f"error: no class folder in {root} holds a video (expected ROOT/<class>/<video>, "
                         f"one of {' '.join(VIDEO_EXTENSIONS)})")
    return classes


def group_key(video: Path, folder: Path, pattern: re.Pattern | None) -> tuple[int, str]:
    """The video's group within its class. Tagged (0: regex match, 1: the file itself) so a
    file name can never collide with a matched group. An empty match counts as none: it
    would lump every video of the class into one group."""
    where = video.relative_to(folder).as_posix()  # "day1/clip.mp4": sub-folders can name the recording
    match = pattern.search(where) if pattern else None
    if match and match.group(0):
        return 0, match.group(0)
    return 1, where


def held_out_counts(groups: int, val: float, test: float) -> tuple[int, int] | None:
    """(val groups, test groups) of a class, or None when it has too few to give each
    split with a fraction > 0 a group and still keep one for training."""
    needed = 1 + (val > 0) + (test > 0)
    if groups < needed:
        return None
    n_val = max(round(val * groups), 1 if val > 0 else 0)
    n_test = max(round(test * groups), 1 if test > 0 else 0)
    # Rounding both up can leave train nothing (val 0.4, test 0.4, 4 groups): shrink the larger.
    while n_val + n_test >= groups:
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def draw_splits(groups, args) -> dict | None:
    """Group -> "train" | "val" | "test": the groups sorted (so the same seed gives the same
    split), shuffled with ``--seed``, the first ones held out; None when there are too few."""
    order = sorted(groups)
    random.Random(args.seed).shuffle(order)
    counts = held_out_counts(len(order), args.val, args.test)
    if counts is None:
        return None
    n_val, n_test = counts
    return {g: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, g in enumerate(order)}


def split_class(label: str, folder: Path, videos: list[Path], args, pattern) -> dict[str, list[ClipRecord]]:
    """One class's videos -> records per split, whole groups at a time."""
    by_group: dict[tuple[int, str], list[Path]] = {}
    for video in videos:
        by_group.setdefault(group_key(video, folder, pattern), []).append(video)
    split_of = draw_splits(by_group, args)
    if split_of is None:
        held = [s for s, f in (("val", args.val), ("test", args.test)) if f > 0]
        print(f"warning: class {label!r} has {len(by_group)} group(s), too few to split: all go to train "
              f"(it is absent from {' and '.join(held)})")
        split_of = dict.fromkeys(by_group, "train")
    records: dict[str, list[ClipRecord]] = {s: [] for s in SPLITS}
    for video in videos:  # in file order, not shuffled order, so manifests read like the folder
        records[split_of[group_key(video, folder, pattern)]].append(ClipRecord(video=str(video), label=label))
    return records


def split_across_classes(classes: dict[str, list[Path]], root: Path, args, pattern) -> dict[str, list[ClipRecord]]:
    """``--across-classes``: one draw of held-out groups for all classes together. A recording
    (source video, actor, scene) filmed in several classes then lies wholly in one split, so
    the test clips come from footage that training never saw in any class. A video the
    regex does not match stays a group of its own (of its class)."""
    def key(label: str, video: Path) -> tuple[int, str]:
        tag, name = group_key(video, root / label, pattern)
        return (tag, name) if tag == 0 else (tag, f"{label}/{name}")

    groups = {key(label, v) for label, videos in classes.items() for v in videos}
    split_of = draw_splits(groups, args)
    if split_of is None:
        raise SystemExit(f"error: --across-classes found {len(groups)} group(s) in all, too few to give "
                         "train and each held-out split one")
    records: dict[str, list[ClipRecord]] = {s: [] for s in SPLITS}
    for label, videos in classes.items():
        for video in videos:
            records[split_of[key(label, video)]].append(ClipRecord(video=str(video), label=label))
    for split in SPLITS:  # not stratified: say which classes a split lacks
        absent = [c for c in classes if records[split] and not any(r.label == c for r in records[split])]
        if absent:
            print(f"warning: {split} has no clip of {len(absent)} class(es): {', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}")
    return records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", required=True, type=Path, help="folder with one sub-folder of videos per class")
    parser.add_argument("--out", required=True, type=Path, help="folder for the manifests")
    parser.add_argument("--val", type=float, default=0.15, help="fraction of each class's groups for val (0: none)")
    parser.add_argument("--test", type=float, default=0.15, help="fraction of each class's groups for test (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle that picks the held-out groups")
    parser.add_argument("--group", metavar="REGEX", default=None,
                        help="a video's group is the first match of REGEX in its path inside the class folder "
                             "(e.g. '_g\\d+_', or '^[^/]+/' for one group per sub-folder); "
                             "default: every video is its own group")
    parser.add_argument("--across-classes", action="store_true",
                        help="hold out the same groups from every class (one recording filmed in several classes "
                             "stays in one split); needs --group")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not (0 <= args.val < 1 and 0 <= args.test < 1 and args.val + args.test < 1):
        raise SystemExit(f"error: --val {args.val} and --test {args.test} must each be in [0, 1) "
                         "and sum to less than 1 (train needs videos)")
    try:
        pattern = re.compile(args.group) if args.group is not None else None
    except re.error as e:
        raise SystemExit(f"error: --group '{args.group}' is not a valid regular expression: {e}") from None
    if args.across_classes and pattern is None:
        raise SystemExit("error: --across-classes holds out groups named by --group REGEX: give one")
    root = args.videos.resolve()
    classes = find_classes(root)

    if pattern is not None:
        # Each name the regex misses silently becomes a group of its own: say how many, so a
        # mistyped REGEX (which would split clips of one recording apart) does not go unnoticed.
        tags = [group_key(v, root / label, pattern)[0] for label, videos in classes.items() for v in videos]
        if sum(tags):
            print(f"--group '{args.group}' did not match {sum(tags)} of {len(tags)} videos: each is its own group")

    if args.across_classes:
        records = split_across_classes(classes, root, args, pattern)
    else:
        records = {s: [] for s in SPLITS}
        for label, videos in classes.items():
            for split, recs in split_class(label, root / label, videos, args, pattern).items():
                records[split] += recs
    # Only non-empty splits are written; order= names the others so a stale one is warned about.
    write_splits(args.out, {s: r for s, r in records.items() if r}, {}, order=SPLITS)
    write_classes(args.out / "classes.txt", list(classes))
    write_missing(args.out, {})  # nothing is ever missing here: remove a stale missing.txt


if __name__ == "__main__":
    run_main(main)
