"""vidrec.data.manifest: JSONL/CSV round trips, path resolution, and errors naming file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidrec.data.manifest import (
    ClipRecord,
    ManifestError,
    read_classes,
    read_manifest,
    write_classes,
    write_manifest,
)


# --------------------------------------------------------------------------------------
# round trips and paths
# --------------------------------------------------------------------------------------


def test_round_trip_keeps_every_field(tmp_path):
    records = [
        ClipRecord(video=str(tmp_path / "a" / "v1.avi"), label="ApplyEyeMakeup"),
        ClipRecord(video=str(tmp_path / "v2.mp4"), label="music", captions=["a man plays the guitar", "some music"]),
        ClipRecord(video=str(tmp_path / "v3.mp4"), label="bowling", start=12.0, end=22.5),
        ClipRecord(video=str(tmp_path / "v4.mp4")),  # inference only: no label, no captions
        ClipRecord(video=str(tmp_path / "v5.mp4"), captions=["un café à Zürich"], start=0.0),
    ]
    path = write_manifest(tmp_path / "train.jsonl", records)
    assert read_manifest(path) == records


def test_paths_inside_the_folder_are_stored_relative_and_resolved_on_read(tmp_path):
    folder = tmp_path / "dataset"
    rec = ClipRecord(video=str(folder / "videos" / "x" / "clip.mp4"), label="a")
    write_manifest(folder / "train.jsonl", [rec])
    row = json.loads((folder / "train.jsonl").read_text())
    assert row["video"] == "videos/x/clip.mp4"
    # the whole folder can move: paths follow the manifest
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    (back,) = read_manifest(moved / "train.jsonl")
    assert Path(back.video) == moved / "videos" / "x" / "clip.mp4"


def test_absolute_paths_outside_the_folder_are_kept(tmp_path):
    outside = tmp_path / "shared" / "clip.mp4"
    write_manifest(tmp_path / "manifests" / "train.jsonl", [ClipRecord(video=str(outside), label="a")])
    row = json.loads((tmp_path / "manifests" / "train.jsonl").read_text())
    assert row["video"] == str(outside)
    (back,) = read_manifest(tmp_path / "manifests" / "train.jsonl")
    assert back.video == str(outside)


def test_relative_path_outside_the_folder_still_points_at_the_same_file(tmp_path, monkeypatch):
    # A relative ClipRecord.video means "relative to the current directory" (that is what
    # read_manifest returns for a relative manifest path). Written next to a manifest in
    # another folder, it must still name the same file when read back.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"x")
    write_manifest(tmp_path / "m" / "train.jsonl", [ClipRecord(video="clips/a.mp4")])
    (back,) = read_manifest(tmp_path / "m" / "train.jsonl")
    assert Path(back.video).resolve() == (tmp_path / "clips" / "a.mp4").resolve()


def test_relative_manifest_path_gives_paths_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text('{"video": "v/a.mp4", "label": "x"}\n')
    (rec,) = read_manifest(Path("data") / "train.jsonl")
    assert Path(rec.video) == Path("data") / "v" / "a.mp4"
    # writing it back to the same manifest stores the same relative path
    write_manifest(Path("data") / "train.jsonl", [rec])
    assert json.loads((tmp_path / "data" / "train.jsonl").read_text())["video"] == "v/a.mp4"


def test_optional_fields_are_omitted_and_read_back_as_defaults(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", [ClipRecord(video=str(tmp_path / "a.mp4"))])
    assert json.loads(path.read_text()) == {"video": "a.mp4"}
    (rec,) = read_manifest(path)
    assert rec.label is None and rec.captions == [] and rec.start is None and rec.end is None


def test_jsonl_reader_tolerates_blank_lines_comments_and_loose_types(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        "# a comment\n"
        "\n"
        '{"video": "a.mp4", "label": 3}\n'
        '{"video": "b.mp4", "label": "", "captions": "one | two"}\n'
        '{"video": "c.mp4", "label": null, "start": "1.5", "end": 4}\n'
    )
    a, b, c = read_manifest(path)
    assert a.label == "3"
    assert b.label is None and b.captions == ["one", "two"]
    assert c.label is None and c.start == 1.5 and c.end == 4.0
    assert Path(a.video) == tmp_path / "a.mp4"


# --------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------


def test_csv_manifest_with_pipe_separated_captions(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        "video,label,captions,start,end\n"
        "a.mp4,run,a man runs|someone is running| ,,\n"
        "/abs/b.mp4,,,2.0,3.5\n"
        '"sub/c d.mp4",jump,"he jumps, high",,\n'
    )
    a, b, c = read_manifest(path)
    assert a == ClipRecord(video=str(tmp_path / "a.mp4"), label="run", captions=["a man runs", "someone is running"])
    assert b == ClipRecord(video="/abs/b.mp4", label=None, captions=[], start=2.0, end=3.5)
    assert c.video == str(tmp_path / "sub" / "c d.mp4") and c.captions == ["he jumps, high"]


def test_csv_with_only_a_video_column(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("video\nx.mp4\ny.mp4\n")
    assert [Path(r.video).name for r in read_manifest(path)] == ["x.mp4", "y.mp4"]


# --------------------------------------------------------------------------------------
# errors name file:line
# --------------------------------------------------------------------------------------


# The bad entry is on line 4 of each file: what comes before it and after it.
BAD_LINE_4 = {
    # the comment and the blank line still count as lines
    "jsonl": ('{"video": "ok.mp4"}\n# comment\n\n', '\n{"video": "ok2.mp4"}\n'),
    # header, one good row, a blank line (skipped by the CSV reader), then the bad row
    "csv": ("video,label,captions,start,end\nok.mp4,x,,,\n\n", "\n"),
}


@pytest.mark.parametrize(
    "fmt,bad_line,message",
    [
        ("jsonl", '{"video": "a.mp4", "label": "x"', "invalid JSON"),
        ("jsonl", '{"label": "x"}', "missing 'video'"),
        ("jsonl", '{"video": "", "label": "x"}', "missing 'video'"),
        ("jsonl", '{"video": 42}', "missing 'video'"),
        ("jsonl", '["a.mp4", "x"]', "JSON object"),
        ("jsonl", '{"video": "a.mp4", "start": "soon"}', "'start'"),
        ("jsonl", '{"video": "a.mp4", "end": [1]}', "'end'"),
        ("jsonl", '{"video": "a.mp4", "start": 5.0, "end": 5.0}', "'end'"),
        ("jsonl", '{"video": "a.mp4", "start": 9, "end": 2}', "'end'"),
        ("jsonl", '{"video": "a.mp4", "captions": [1, 2]}', "'captions'"),
        ("csv", ",x,,,", "missing 'video'"),
        ("csv", "a.mp4,x,,abc,", "'start'"),
        ("csv", "a.mp4,x,,3,1", "'end'"),
    ],
)
def test_errors_name_file_and_physical_line(tmp_path, fmt, bad_line, message):
    before, after = BAD_LINE_4[fmt]
    path = tmp_path / f"m.{fmt}"
    path.write_text(before + bad_line + after)
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    assert f"{path}:4" in str(info.value)
    assert message in str(info.value)


def test_csv_without_video_column(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("path,label\na.mp4,x\n")
    with pytest.raises(ManifestError, match=r"m\.csv:1: .*'video'"):
        read_manifest(path)


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "nope.jsonl")


# --------------------------------------------------------------------------------------
# classes.txt
# --------------------------------------------------------------------------------------


def test_classes_round_trip_keeps_order(tmp_path):
    names = ["zebra", "apple", "Mango", "apply eye makeup"]
    path = write_classes(tmp_path / "sub" / "classes.txt", names)
    assert read_classes(path) == names


def test_classes_ignore_blank_lines_and_reject_duplicates(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("a\n\n  b  \n")
    assert read_classes(path) == ["a", "b"]
    path.write_text("a\nb\na\n")
    with pytest.raises(ManifestError, match="duplicate"):
        read_classes(path)
