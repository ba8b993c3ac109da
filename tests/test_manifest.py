"""vidrec.data.manifest: JSONL/CSV round trips, path resolution, errors naming file:line,
time ranges, byte-order marks, duplicate lines, label checks and empty manifests."""

from __future__ import annotations

import codecs
import json
import warnings
from pathlib import Path

import pytest

from vidrec.data.manifest import (
    ClipRecord,
    ManifestError,
    ManifestWarning,
    check_labels,
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
        # negative times: the frame range clamps them to frame 0 instead of failing
        ("jsonl", '{"video": "a.mp4", "end": -1}', "'end' must be 0 or more seconds"),
        ("jsonl", '{"video": "a.mp4", "start": -5, "end": -3}', "'start' must be 0 or more seconds"),
        ("jsonl", '{"video": "a.mp4", "start": -0.5, "end": 2}', "'start' must be 0 or more seconds"),
        ("csv", "a.mp4,x,,,-1", "'end' must be 0 or more seconds"),
        ("csv", "a.mp4,x,,-2.5,4", "'start' must be 0 or more seconds"),
        # an end with no start is measured from 0
        ("jsonl", '{"video": "a.mp4", "end": 0}', "'end' (0.0) must be after 'start' (not given, so 0)"),
        ("csv", "a.mp4,x,,,0", "'end' (0.0) must be after 'start'"),
        # json reads NaN and Infinity (and overflows 1e400 to inf); float() reads them from CSV
        ("jsonl", '{"video": "a.mp4", "start": NaN, "end": 2}', "'start' must be a finite number"),
        ("jsonl", '{"video": "a.mp4", "start": 1, "end": Infinity}', "'end' must be a finite number"),
        ("jsonl", '{"video": "a.mp4", "start": 1, "end": 1e400}', "'end' must be a finite number"),
        ("csv", "a.mp4,x,,nan,2", "'start' must be a finite number"),
        ("csv", "a.mp4,x,,1,inf", "'end' must be a finite number"),
        # float(True) is 1.0
        ("jsonl", '{"video": "a.mp4", "start": true}', "'start' must be a number of seconds"),
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
    with pytest.raises(ManifestError, match=r"m\.csv:1: .*'video' column \(found 'path', 'label'\)"):
        read_manifest(path)


def test_times_at_the_edges_are_accepted(tmp_path):
    # 0 is the first frame; an end alone, after 0, is a range from the start of the video
    path = tmp_path / "m.jsonl"
    path.write_text('{"video": "a.mp4", "start": 0, "end": 0.5}\n{"video": "b.mp4", "end": 3}\n{"video": "c.mp4", "start": 0}\n')
    a, b, c = read_manifest(path)
    assert (a.start, a.end, b.start, b.end, c.start, c.end) == (0.0, 0.5, None, 3.0, 0.0, None)


# --------------------------------------------------------------------------------------
# encodings: Excel writes a byte-order mark (and CRLF), or Windows-1252
# --------------------------------------------------------------------------------------


def test_csv_and_jsonl_with_a_byte_order_mark(tmp_path):
    csv_path = tmp_path / "m.csv"
    csv_path.write_bytes(codecs.BOM_UTF8 + "video,label\r\na.mp4,café\r\n".encode())
    (a,) = read_manifest(csv_path)
    assert a == ClipRecord(video=str(tmp_path / "a.mp4"), label="café")
    jsonl_path = tmp_path / "m.jsonl"
    jsonl_path.write_bytes(codecs.BOM_UTF8 + b'{"video": "b.mp4", "label": "x"}\n')
    (b,) = read_manifest(jsonl_path)
    assert b == ClipRecord(video=str(tmp_path / "b.mp4"), label="x")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_lines_are_counted_the_same_after_a_byte_order_mark(tmp_path, fmt):
    before, after = BAD_LINE_4[fmt]
    path = tmp_path / f"m.{fmt}"
    bad = '{"label": "x"}' if fmt == "jsonl" else ",x,,,"
    path.write_bytes(codecs.BOM_UTF8 + (before + bad + after).encode())
    with pytest.raises(ManifestError, match=rf"m\.{fmt}:4: missing 'video'"):
        read_manifest(path)


def test_text_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes("video,label\na.mp4,x\nb.mp4,café\n".encode("cp1252"))
    with pytest.raises(ManifestError, match=r"m\.csv:3: not UTF-8 text \(byte 0xe9\); save the manifest as UTF-8"):
        read_manifest(path)


def test_classes_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_bytes(codecs.BOM_UTF8 + b"jump\r\nrun\r\n")
    assert read_classes(path) == ["jump", "run"]


# --------------------------------------------------------------------------------------
# duplicate lines
# --------------------------------------------------------------------------------------


def test_duplicate_lines_warn_once_with_count_and_first_line_and_are_kept(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"video": "a.mp4", "label": "x"}\n'
        '{"video": "b.mp4", "label": "x", "start": 1, "end": 2}\n'
        '{"video": "b.mp4", "label": "x", "start": 2, "end": 3}\n'  # another range: not a duplicate
        "# a comment\n"
        '{"video": "./a.mp4", "label": "y"}\n'  # the same file, whatever the label says
        '{"video": "b.mp4", "label": "x", "start": 1, "end": 2}\n'
        '{"video": "a.mp4", "label": "x"}\n'
    )
    with pytest.warns(ManifestWarning) as caught:
        records = read_manifest(path)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(f"{path}: 3 duplicate clips")
    assert f"the first at {path}:5, a repeat of line 1" in message
    assert len(records) == 6
    assert caught[0].filename == __file__  # points at the caller, not at manifest.py


def test_one_duplicate_csv_row(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("video,label,start,end\na.mp4,x,1,2\nb.mp4,x,,\na.mp4,x,1,2\n")
    with pytest.warns(ManifestWarning, match=rf"{path}: 1 duplicate clip \(.*the first at {path}:4, a repeat of line 2"):
        assert len(read_manifest(path)) == 3


def test_no_warning_without_duplicates(tmp_path):
    path = write_manifest(
        tmp_path / "m.jsonl",
        [ClipRecord(video=str(tmp_path / "a.mp4")), ClipRecord(video=str(tmp_path / "a.mp4"), start=0.0, end=1.0)],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_manifest(path)


# --------------------------------------------------------------------------------------
# provenance, label checks, empty manifests
# --------------------------------------------------------------------------------------


def test_records_know_their_file_and_line_but_do_not_write_it(tmp_path):
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('# header comment\n\n{"video": "a.mp4"}\n{"video": "b.mp4"}\n')
    assert [r.source for r in read_manifest(jsonl)] == [f"{jsonl}:3", f"{jsonl}:4"]
    csv_path = tmp_path / "m.csv"
    csv_path.write_text('video,captions\na.mp4,"two\nlines"\n\nb.mp4,\n')  # physical lines, as an editor shows
    assert [r.source for r in read_manifest(csv_path)] == [f"{csv_path}:2", f"{csv_path}:5"]
    # not part of the clip: equality ignores it and a rewrite does not store it
    (a, _) = read_manifest(jsonl)
    assert a == ClipRecord(video=str(tmp_path / "a.mp4"))
    copy = write_manifest(tmp_path / "copy.jsonl", [a])
    assert json.loads(copy.read_text()) == {"video": "a.mp4"}
    assert read_manifest(copy)[0].source == f"{copy}:1"


def _val_manifest(tmp_path, labels: list[str | None]) -> Path:
    path = tmp_path / "val.jsonl"
    write_manifest(path, [ClipRecord(video=str(tmp_path / f"{i}.mp4"), label=label) for i, label in enumerate(labels)])
    return path


def test_check_labels_names_the_line_and_suggests_a_class(tmp_path):
    path = _val_manifest(tmp_path, ["jump", None, "jmup"])
    with pytest.raises(ManifestError) as info:
        check_labels(read_manifest(path), ["jump", "run"], path)
    assert str(info.value) == f"{path}:3: label 'jmup' is not one of the 2 classes (did you mean 'jump'?)"
    # case-blind: a lower-cased label still finds its class
    with pytest.raises(ManifestError, match=r"'applyeyemakeup' .* \(did you mean 'ApplyEyeMakeup'\?\)"):
        check_labels([ClipRecord(video="a.mp4", label="applyeyemakeup")], ["ApplyEyeMakeup", "Archery"])


def test_check_labels_counts_clips_and_shows_the_first_few_labels(tmp_path):
    labels = ["run", "a", "b", "a", "c", "d", "e", "f"]  # 7 unknown clips, 6 unknown labels
    path = _val_manifest(tmp_path, labels)
    with pytest.raises(ManifestError) as info:
        check_labels(read_manifest(path), ["run", "walk"], path)
    assert str(info.value) == (
        f"{path}:2: label 'a' is not one of the 2 classes; "
        f"7 clips in {path} have unknown labels: 'a', 'b', 'c', 'd', 'e', ... (6 labels)"
    )


def test_check_labels_passes_known_and_missing_labels_and_any_label_without_classes(tmp_path):
    records = read_manifest(_val_manifest(tmp_path, ["run", None, "walk"]))
    check_labels(records, ["run", "walk"])
    # no class list: the model has no action head and labels are not used
    check_labels(records + [ClipRecord(video="x.mp4", label="swim")], [])


def test_check_labels_on_records_made_in_code_names_the_manifest_or_the_video(tmp_path):
    record = ClipRecord(video="clips/x.mp4", label="swim")
    with pytest.raises(ManifestError, match=r"^lists/val\.jsonl: label 'swim'"):
        check_labels([record], ["run"], "lists/val.jsonl")
    with pytest.raises(ManifestError, match=r"^clips/x\.mp4: label 'swim'"):
        check_labels([record], ["run"])


@pytest.mark.parametrize(
    "name,text",
    [
        ("m.jsonl", ""),
        ("m.jsonl", "# nothing yet\n\n"),
        ("m.csv", ""),
        ("m.csv", "video,label\n"),
        ("m.csv", "\ufeffvideo,label\r\n"),
    ],
)
def test_empty_manifest_is_empty_or_an_error_when_clips_are_needed(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert read_manifest(path) == []
    with pytest.raises(ManifestError) as info:
        read_manifest(path, allow_empty=False)
    assert str(info.value) == f"{path}: manifest has no clips"


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


def test_an_empty_classes_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("\n  \n")
    with pytest.raises(ManifestError, match=r"classes.txt: no class names"):
        read_classes(path)


def test_a_misspelt_field_warns_with_its_line_and_the_field_it_resembles(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"video": "a.mp4", "label": "x"}\n'
        '{"video": "b.mp4", "lable": "x"}\n'  # the label would be silently lost
        '{"video": "c.mp4", "label": "y", "caption": "one caption"}\n'
        '{"video": "d.mp4", "label": "y", "video_id": "video7", "source": "vtest", "segment": "train"}\n'  # metadata
    )
    with pytest.warns(ManifestWarning) as caught:
        records = read_manifest(path)
    assert [str(w.message) for w in caught] == [
        f"{path}:2: unknown key 'lable' (did you mean 'label'?) is ignored (2 lines have such a key)"
    ]
    assert caught[0].filename == __file__
    assert [r.label for r in records] == ["x", None, "y", "y"] and records[2].captions == []


def test_keys_beside_the_fields_they_resemble_are_metadata(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("video,video_id,label,labels\na.mp4,video0,x,x;y\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_manifest(path)[0].label == "x"
