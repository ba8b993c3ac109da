"""The canonical clip manifest: JSON Lines (or CSV), one clip per line.

```json
{"video": "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "label": "ApplyEyeMakeup"}
{"video": "video0.mp4", "label": "music", "captions": ["a man plays the guitar"]}
{"video": "abc.mp4", "label": "bowling", "start": 12.0, "end": 22.0}
```

Relative ``video`` paths resolve against the manifest's folder, so a dataset folder
can be moved as a whole. ``label`` and ``captions`` are each optional. ``start`` and
``end`` are seconds from the video's start: finite, 0 or more, and ``end`` after
``start`` (0 when not given). Files are UTF-8, with or without the byte-order mark
that Excel writes. Each record remembers its ``file:line`` (``ClipRecord.source``) so
that checks made later, such as ``check_labels``, can point at the line to fix.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

__all__ = [
    "ClipRecord",
    "ManifestError",
    "ManifestWarning",
    "read_manifest",
    "write_manifest",
    "check_labels",
    "read_classes",
    "write_classes",
]

SHOW = 5  # names quoted in a message before "..."


class ManifestError(ValueError):
    """A manifest line that cannot be understood; the message names file and line."""


class ManifestWarning(UserWarning):
    """A manifest that can be read but is probably not what was meant (e.g. duplicate lines)."""


@dataclass
class ClipRecord:
    """One clip: a video file (or a time range of it) with an optional label and captions.

    ``source`` is where the record was read (``"path/to/train.jsonl:12"``), or None for a
    record made in code. It is for error messages only: equality ignores it and
    ``to_json`` does not write it, so moving a line does not change the clip.
    """

    video: str
    label: str | None = None
    captions: list[str] = field(default_factory=list)
    start: float | None = None  # seconds
    end: float | None = None  # seconds
    source: str | None = field(default=None, compare=False)

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


def _seconds(row: dict, key: str, where: str) -> float | None:
    """``row[key]`` as seconds from the video's start, None when absent or empty."""
    value = row.get(key)
    if value is None or value == "":
        return None
    # float(True) is 1.0: a JSON boolean is a mistake, not a time
    number = None if isinstance(value, bool) else _to_float(value)
    if number is None:
        raise ManifestError(f"{where}: '{key}' must be a number of seconds, got {value!r}")
    # Python's json reads NaN and Infinity, and float() reads "nan" and "inf" from CSV;
    # neither picks any frame.
    if not math.isfinite(number):
        raise ManifestError(f"{where}: '{key}' must be a finite number of seconds, got {value!r}")
    # The frame range clamps to the video, so a negative time would quietly train on
    # frame 0 alone (or fail later as "no frames" without naming the manifest).
    if number < 0:
        raise ManifestError(f"{where}: '{key}' must be 0 or more seconds from the video's start, got {value!r}")
    return number


def _to_float(value: object) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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
    start, end = _seconds(row, "start", where), _seconds(row, "end", where)
    # A missing start means the video's first frame, so 'end' alone must still be after 0.
    if end is not None and end <= (start or 0.0):
        shown = start if start is not None else "not given, so 0"
        raise ManifestError(f"{where}: 'end' ({end}) must be after 'start' ({shown})")
    path = Path(video)
    if not path.is_absolute():
        path = root / path
    return ClipRecord(video=str(path), label=label, captions=captions, start=start, end=end, source=where)


def _read_text(path: Path) -> str:
    """The file as text: UTF-8, without the byte-order mark Excel and Notepad put first."""
    data = path.read_bytes()
    # Stripped by hand, not with "utf-8-sig", so the error offset below counts from the
    # same byte as the lines do.
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        # Typically a CSV saved by Excel as "Windows-1252": name the line, not a byte offset.
        line = data.count(b"\n", 0, e.start) + 1
        raise ManifestError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the manifest as UTF-8"
        ) from None


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    # newline="" hands line ends to the csv module, which needs them for quoted newlines.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        return  # an empty file: no header, no clips
    if "video" not in reader.fieldnames:
        found = ", ".join(repr(name) for name in reader.fieldnames)
        raise ManifestError(f"{path}:1: CSV header must contain a 'video' column (found {found})")
    for row in reader:
        # line_num is the physical line just read (blank lines and quoted newlines
        # included), unlike a count of rows; it is the row's last line, so step back over
        # the newlines inside quoted cells to the line where the row starts.
        cells = [c for v in row.values() for c in (v if isinstance(v, list) else [v]) if c]
        yield reader.line_num - sum(c.count("\n") for c in cells), row


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    # newline=None splits at \n, \r\n and \r alone, as a text-mode file does (and as
    # editors count lines); str.splitlines would also split at \u2028 inside a string.
    for lineno, line in enumerate(io.StringIO(text, newline=None), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise ManifestError(f"{path}:{lineno}: expected a JSON object")
        yield lineno, row


def _warn_duplicates(path: Path, records: Sequence[ClipRecord], lines: Sequence[int]) -> None:
    """One ``ManifestWarning`` per file for lines naming a clip (video, start, end) again.

    Duplicates are kept: a repeat may be deliberate oversampling, but usually it is two
    lists concatenated, and it silently weighs those clips double in the loss and metrics.
    """
    first_line: dict[tuple, int] = {}
    repeats: list[tuple[int, int]] = []  # (line, the earlier line it repeats)
    for record, line in zip(records, lines):
        key = (record.video, record.start, record.end)
        if key in first_line:
            repeats.append((line, first_line[key]))
        else:
            first_line[key] = line
    if repeats:
        line, earlier = repeats[0]
        count = f"{len(repeats)} duplicate clip" + ("s" if len(repeats) > 1 else "")
        warnings.warn(
            f"{path}: {count} (same video, start and end as an earlier line), the first at "
            f"{path}:{line}, a repeat of line {earlier}; duplicates are kept and count more than once",
            ManifestWarning,
            stacklevel=3,  # the caller of read_manifest
        )


# The keys a manifest line may have; others (a recipe's own metadata) are ignored.
FIELDS = ("video", "label", "captions", "start", "end")


def _misspelt_fields(row: dict) -> list[tuple[str, str]]:
    """(key, the field it is probably meant to be) for keys of ``row`` that are not fields but
    nearly are: 'lable', 'caption', 'Label'. Such a typo silently drops the label or captions.
    A key beside the field it resembles ('video_id' next to 'video') is metadata, not a typo."""
    found = []
    for key in row:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key).lower(), FIELDS, n=1, cutoff=0.75)
            if close and close[0] not in row:
                found.append((key, close[0]))
    return found


def _warn_misspelt(path: Path, typos: Sequence[tuple[int, str, str]]) -> None:
    """One ``ManifestWarning`` per file naming the first misspelt key, its line and how many lines have one."""
    if typos:
        line, key, field_name = typos[0]
        more = f" ({len(typos)} lines have such a key)" if len(typos) > 1 else ""
        warnings.warn(
            f"{path}:{line}: unknown key {key!r} (did you mean {field_name!r}?) is ignored{more}",
            ManifestWarning,
            stacklevel=3,  # the caller of read_manifest
        )


def read_manifest(path: str | Path, *, allow_empty: bool = True) -> list[ClipRecord]:
    """Read a ``.jsonl`` (or ``.csv``) manifest; video paths come back absolute-or-rooted.

    Each record's ``source`` is its ``file:line``. Raises ``ManifestError`` naming the
    file and line for anything malformed, and, with ``allow_empty=False``, for a file
    that lists no clips (so a val/test split fails before training, not after).
    Lines repeating an earlier clip are kept, with one ``ManifestWarning`` for the file; so
    are keys that look like a misspelt field ('lable'), which are ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    text = _read_text(path)
    rows = _csv_rows(path, text) if path.suffix.lower() == ".csv" else _jsonl_rows(path, text)
    records: list[ClipRecord] = []
    lines: list[int] = []
    typos: list[tuple[int, str, str]] = []
    for lineno, row in rows:
        records.append(_record_from_row(row, path.parent, f"{path}:{lineno}"))
        lines.append(lineno)
        typos += [(lineno, key, field_name) for key, field_name in _misspelt_fields(row)]
    if not records and not allow_empty:
        raise ManifestError(f"{path}: manifest has no clips")
    _warn_misspelt(path, typos)
    _warn_duplicates(path, records, lines)
    return records


def check_labels(records: Iterable[ClipRecord], classes: Sequence[str], manifest: str | Path | None = None) -> None:
    """Raise ``ManifestError`` when a record's label is not one of ``classes``.

    Meant for val/test/predict manifests at setup, so that a typo fails before feature
    extraction rather than at the first batch. The message names the first bad record's
    ``file:line`` (its ``source``, else ``manifest``, else its video), suggests a close
    class name, and counts the clips and distinct labels affected. Records without a
    label pass. An empty ``classes`` means no action head, and labels are then ignored
    (as ``datasets.label_index`` does), so nothing is checked.
    """
    known = set(classes)
    if not known:
        return
    bad = [r for r in records if r.label is not None and r.label not in known]
    if not bad:
        return
    first = bad[0]
    where = first.source or (str(manifest) if manifest is not None else first.video)
    message = f"{where}: label {first.label!r} is not one of the {len(known)} classes"
    # Matched case-blind: 'applyeyemakeup' for 'ApplyEyeMakeup' is the common slip.
    by_lower = {c.lower(): c for c in classes}
    close = difflib.get_close_matches(first.label.lower(), list(by_lower), n=1)
    if close:
        message += f" (did you mean {by_lower[close[0]]!r}?)"
    if len(bad) > 1:
        labels = list(dict.fromkeys(r.label for r in bad))  # in order of first appearance
        shown = ", ".join(repr(label) for label in labels[:SHOW]) + (", ..." if len(labels) > SHOW else "")
        in_file = f" in {manifest}" if manifest is not None else ""
        label_count = f"{len(labels)} label" + ("s" if len(labels) > 1 else "")
        message += f"; {len(bad)} clips{in_file} have unknown labels: {shown} ({label_count})"
    raise ManifestError(message)


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
    # utf-8-sig: a byte-order mark (Notepad, Excel) would otherwise become part of the first name
    names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if not names:
        # An empty list would give a model without classes (an unlabelled test list's converter
        # run used to write one). Without the file, classes come from the training manifest.
        raise ManifestError(f"{path}: no class names (delete it to take the classes from the training manifest)")
    if len(set(names)) != len(names):
        raise ManifestError(f"{path}: duplicate class names")
    return names


def write_classes(path: str | Path, names: Iterable[str]) -> Path:
    """Write ``classes.txt``: one class name per line, in index order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return path
