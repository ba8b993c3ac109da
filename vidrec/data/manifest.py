"""The canonical clip manifest: JSON Lines (or CSV), one clip per line.

```json
{"video": "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "label": "ApplyEyeMakeup"}
{"video": "video0.mp4", "label": "music", "captions": ["a man plays the guitar"]}
{"video": "abc.mp4", "label": "bowling", "start": 12.0, "end": 22.0}
```

Relative ``video`` paths resolve against the manifest's folder, so a dataset folder
can be moved as a whole. ``label`` and ``captions`` are each optional.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

__all__ = ["ClipRecord", "ManifestError", "read_manifest", "write_manifest", "read_classes", "write_classes"]


class ManifestError(ValueError):
    """A manifest line that cannot be understood; the message names file and line."""


@dataclass
class ClipRecord:
    """One clip: a video file (or a time range of it) with an optional label and captions."""

    video: str
    label: str | None = None
    captions: list[str] = field(default_factory=list)
    start: float | None = None  # seconds
    end: float | None = None  # seconds

    def to_json(self, relative_to: Path | None = None) -> dict:
        video = self.video
        if relative_to is not None:
            try:
                video = Path(video).resolve().relative_to(relative_to.resolve()).as_posix()
            except ValueError:
                # outside the manifest's folder: absolute, because a relative path would be
                # read back against the manifest's folder, not the current directory
                video = str(Path(video).absolute())
        row: dict = {"video": video}
        if self.label is not None:
            row["label"] = self.label
        if self.captions:
            row["captions"] = list(self.captions)
        if self.start is not None:
            row["start"] = self.start
        if self.end is not None:
            row["end"] = self.end
        return row


def _record_from_row(row: dict, root: Path, where: str) -> ClipRecord:
    video = row.get("video")
    if not video or not isinstance(video, str):
        raise ManifestError(f"{where}: missing 'video' field")
    captions = row.get("captions") or []
    if isinstance(captions, str):
        # CSV cells hold several captions separated by '|'.
        captions = [c.strip() for c in captions.split("|") if c.strip()]
    if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
        raise ManifestError(f"{where}: 'captions' must be a list of strings")
    label = row.get("label")
    if label is not None and not isinstance(label, str):
        label = str(label)
    if label == "":
        label = None

    def seconds(key: str) -> float | None:
        value = row.get(key)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ManifestError(f"{where}: '{key}' must be a number of seconds, got {value!r}") from None

    start, end = seconds("start"), seconds("end")
    if start is not None and end is not None and end <= start:
        raise ManifestError(f"{where}: 'end' ({end}) must be after 'start' ({start})")
    path = Path(video)
    if not path.is_absolute():
        path = root / path
    return ClipRecord(video=str(path), label=label, captions=captions, start=start, end=end)


def read_manifest(path: str | Path) -> list[ClipRecord]:
    """Read a ``.jsonl`` (or ``.csv``) manifest; video paths come back absolute-or-rooted.

    Raises ``ManifestError`` naming the file and line for anything malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    root = path.parent
    records: list[ClipRecord] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "video" not in reader.fieldnames:
                raise ManifestError(f"{path}:1: CSV header must contain a 'video' column")
            for row in reader:
                # line_num is the physical line just read (blank lines and quoted newlines
                # included), unlike a count of rows
                records.append(_record_from_row(row, root, f"{path}:{reader.line_num}"))
        return records
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ManifestError(f"{path}:{lineno}: expected a JSON object")
            records.append(_record_from_row(row, root, f"{path}:{lineno}"))
    return records


def write_manifest(path: str | Path, records: Iterable[ClipRecord]) -> Path:
    """Write JSON Lines; video paths inside the manifest's folder are stored relative."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record.to_json(relative_to=path.parent), ensure_ascii=False) + "\n")
    return path


def read_classes(path: str | Path) -> list[str]:
    """``classes.txt``: one class name per line, in index order."""
    path = Path(path)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(set(names)) != len(names):
        raise ManifestError(f"{path}: duplicate class names")
    return names


def write_classes(path: str | Path, names: Iterable[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return path
