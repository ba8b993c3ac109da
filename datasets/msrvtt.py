"""MSR-VTT recipe: the official ``*_videodatainfo.json`` files -> canonical manifests.

    python datasets/msrvtt.py --videos MSRVTT/videos \\
        --annotations train_val_videodatainfo.json --annotations test_videodatainfo.json --out data/msrvtt

Each JSON holds ``videos: [{video_id: "video0", category: 9, split: "train"|"validate"|"test", ...}]``
and ``sentences: [{video_id, caption, sen_id}]``. Every clip gets its category as
label, named with the 20 official MSR-VTT category names, and all its sentences as
captions (in ``sen_id`` order). Videos are looked for at ``ROOT/<video_id>.mp4``, then
in the ``TrainValVideo/`` and ``TestVideo/`` folders of the official archives, then in
``ROOT/all/`` (the common re-packed download, ``MSRVTT/videos/all/video0.mp4``); ROOT is
``--videos``. Other nestings are not searched.

Writes ``train.jsonl`` / ``val.jsonl`` / ``test.jsonl`` for whichever splits appear
(``validate`` becomes ``val``) and ``classes.txt`` (the 20 categories in official index
order) under ``--out``; a split manifest of an earlier run that this run did not write is
left as it was, with a warning naming it. Missing videos are dropped, counted and listed in ``missing.txt``.

Malformed files raise ``ManifestError`` naming the file and the line (for JSON syntax
errors) or the entry, e.g. ``videos[12]`` (JSON entries have no line of their own).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from vidrec.data.manifest import ClipRecord, ManifestError, write_classes
from vidrec.data.recipe_tools import run_main, write_missing, write_splits

# Official category index -> name (MSR-VTT category.txt).
CATEGORIES = [
    "music",
    "people",
    "gaming",
    "sports/actions",
    "news/events/politics",
    "education",
    "tv shows",
    "movie/comedy",
    "animation",
    "vehicles/autos",
    "howto",
    "travel",
    "science/technology",
    "animals/pets",
    "kids/family",
    "documentary",
    "food/drink",
    "cooking",
    "beauty/fashion",
    "advertisement",
]
_SPLITS = {"train": "train", "validate": "val", "val": "val", "test": "test"}
# Flat, then the official archives' folders, then all/: the widely shared re-packed
# download (MSRVTT/videos/all/video0.mp4) keeps all 10k videos there.
_VIDEO_FOLDERS = ("", "TrainValVideo", "TestVideo", "all")


@dataclass
class Video:
    video_id: str
    label: str
    split: str  # "train" | "val" | "test"
    sentences: list[tuple[float, int, str]] = field(default_factory=list)  # (sen_id, file order, caption)


def load_json(path: Path) -> dict:
    if not path.is_file():
        raise SystemExit(f"error: {path} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list):
        raise ManifestError(f"{path}: expected an object with a 'videos' list")
    if not isinstance(data.get("sentences", []), list):
        raise ManifestError(f"{path}: 'sentences' must be a list")
    return data


def parse_video(entry: object, where: str) -> Video:
    """One ``videos`` entry -> a Video with its category name as label."""
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected an object")
    video_id = entry.get("video_id")
    if not isinstance(video_id, str) or not video_id:
        raise ManifestError(f"{where}: missing 'video_id'")
    category = entry.get("category")
    # Ints in the official files; a digit string is tolerated.
    if isinstance(category, str) and category.strip().isdigit():
        category = int(category)
    if isinstance(category, bool) or not isinstance(category, int) or not 0 <= category < len(CATEGORIES):
        raise ManifestError(f"{where} ({video_id}): 'category' must be 0..19, got {entry.get('category')!r}")
    index = category
    split = _SPLITS.get(entry.get("split"))
    if split is None:
        got = entry.get("split")
        raise ManifestError(f"{where} ({video_id}): 'split' must be train, validate or test, got {got!r}")
    return Video(video_id=video_id, label=CATEGORIES[index], split=split)


def read_annotations(paths: list[Path]) -> dict[str, Video]:
    """All annotation files -> videos by id, in file order, with their sentences attached.

    Sentences are matched after all files are read, so they may sit in a different
    file from their video.
    """
    videos: dict[str, Video] = {}
    sentences: list[tuple[object, str]] = []
    for path in paths:
        data = load_json(path)
        for i, entry in enumerate(data["videos"]):
            where = f"{path}: videos[{i}]"
            video = parse_video(entry, where)
            if video.video_id in videos:
                raise ManifestError(f"{where}: {video.video_id!r} appears twice")
            videos[video.video_id] = video
        sentences += [(s, f"{path}: sentences[{i}]") for i, s in enumerate(data.get("sentences", []))]
    for order, (sentence, where) in enumerate(sentences):
        if not isinstance(sentence, dict) or not isinstance(sentence.get("caption"), str):
            raise ManifestError(f"{where}: expected an object with a 'caption' string")
        video = videos.get(sentence.get("video_id"))
        if video is None:
            raise ManifestError(f"{where}: video_id {sentence.get('video_id')!r} is not in any --annotations file")
        caption = sentence["caption"].strip()
        if caption:
            sen_id = sentence.get("sen_id")
            # sen_id gives the official order; file order breaks ties or stands in when it is absent.
            key = float(sen_id) if isinstance(sen_id, (int, float)) else float("inf")
            video.sentences.append((key, order, caption))
    return videos


def find_video(root: Path, video_id: str) -> Path | None:
    for folder in _VIDEO_FOLDERS:
        path = root / folder / f"{video_id}.mp4"
        if path.is_file():
            return path
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--videos",
        required=True,
        type=Path,
        help="folder with video0.mp4 ... video9999.mp4: flat, in all/, or in TrainValVideo/ + TestVideo/",
    )
    parser.add_argument(
        "--annotations",
        required=True,
        type=Path,
        action="append",
        help="train_val_videodatainfo.json and/or test_videodatainfo.json; repeatable",
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for the manifests")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    root = args.videos.resolve()
    videos = read_annotations(args.annotations)
    records: dict[str, list[ClipRecord]] = {}
    missing: dict[str, list[str]] = {}
    for video in videos.values():
        split_records = records.setdefault(video.split, [])
        split_missing = missing.setdefault(video.split, [])
        path = find_video(root, video.video_id)
        if path is None:
            split_missing.append(f"{video.video_id}.mp4")
            continue
        captions = [caption for _, _, caption in sorted(video.sentences)]
        split_records.append(ClipRecord(video=str(path), label=video.label, captions=captions))
    if videos and not any(records.values()):
        # Almost certainly a wrong --videos folder: fail rather than write empty manifests.
        raise SystemExit(f"error: none of the {len(videos)} videos were found under {args.videos}")

    out = args.out
    write_splits(out, records, missing, order=("train", "val", "test"), captions=True)
    write_classes(out / "classes.txt", CATEGORIES)
    write_missing(out, missing)


if __name__ == "__main__":
    run_main(main)
