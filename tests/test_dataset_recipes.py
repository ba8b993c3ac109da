"""The dataset recipes under datasets/, run on miniature copies of the official files.

Each test writes a few lines in the exact official format, touches dummy video files
(the recipes never decode video), runs the recipe's ``main`` and checks the manifests.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vidrec.data.manifest import ManifestError, read_classes, read_manifest

REPO = Path(__file__).resolve().parents[1]


def load_recipe(name: str):
    """Import ``datasets/<name>.py`` by path: the recipes are scripts, not a package."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", REPO / "datasets" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as an import would: dataclasses look their module up there.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run(name: str, **options: object) -> None:
    """Run ``datasets/<name>.py``'s ``main`` with ``--option value`` arguments: underscores
    in option names become dashes, and a list value repeats its option."""
    argv = []
    for option, value in options.items():
        for item in value if isinstance(value, list) else [value]:
            argv += [f"--{option.replace('_', '-')}", str(item)]
    load_recipe(name).main(argv)


def touch(root: Path, *rels: str) -> None:
    for rel in rels:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not really a video")


def rows(out: Path, split: str) -> list[dict]:
    """The manifest's raw JSON rows, to check stored (relative) paths."""
    return [json.loads(line) for line in (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------- UCF101


def make_ucf(tmp_path: Path) -> tuple[Path, Path]:
    splits = tmp_path / "ucfTrainTestlist"
    splits.mkdir()
    # CRLF line ends, as in the official archive.
    (splits / "classInd.txt").write_bytes(b"1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 YoYo\r\n")
    (splits / "trainlist01.txt").write_bytes(
        b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
        b"ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi 1\r\n"
        b"HandstandPushups/v_HandStandPushups_g08_c01.avi 2\r\n"
        b"YoYo/v_YoYo_g09_c02.avi 3\r\n"
        b"YoYo/v_YoYo_g10_c01.avi 3\r\n"
    )
    # The official test list spells the folder "HandStandPushups"; the label must still map.
    (splits / "testlist01.txt").write_bytes(
        b"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n"
        b"HandStandPushups/v_HandStandPushups_g01_c01.avi\r\n"
        b"YoYo/v_YoYo_g01_c01.avi\r\n"
    )
    videos = tmp_path / "data" / "UCF-101"
    touch(
        videos,
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi",
        "HandstandPushups/v_HandStandPushups_g08_c01.avi",
        "YoYo/v_YoYo_g09_c02.avi",
        # v_YoYo_g10_c01.avi deliberately not downloaded
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "HandstandPushups/v_HandStandPushups_g01_c01.avi",
        "YoYo/v_YoYo_g01_c01.avi",
    )
    return videos, splits


def test_ucf101(tmp_path, capsys):
    videos, splits = make_ucf(tmp_path)
    out = tmp_path / "data"  # the videos sit inside it, so paths are stored relative
    run("ucf101", videos=videos, splits=splits, split=1, out=out)

    assert read_classes(out / "classes.txt") == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    assert rows(out, "train") == [
        {"video": "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "label": "ApplyEyeMakeup"},
        {"video": "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi", "label": "ApplyEyeMakeup"},
        {"video": "UCF-101/HandstandPushups/v_HandStandPushups_g08_c01.avi", "label": "HandstandPushups"},
        {"video": "UCF-101/YoYo/v_YoYo_g09_c02.avi", "label": "YoYo"},
    ]
    assert rows(out, "test") == [
        {"video": "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "label": "ApplyEyeMakeup"},
        # Found on disk under the classInd spelling despite the list's "HandStandPushups/".
        {"video": "UCF-101/HandstandPushups/v_HandStandPushups_g01_c01.avi", "label": "HandstandPushups"},
        {"video": "UCF-101/YoYo/v_YoYo_g01_c01.avi", "label": "YoYo"},
    ]
    assert (out / "val.jsonl").read_text() == (out / "test.jsonl").read_text()
    # read_manifest resolves the relative paths back to the real files.
    assert all(Path(r.video).is_file() for r in read_manifest(out / "train.jsonl"))
    assert (out / "missing.txt").read_text() == "train\tYoYo/v_YoYo_g10_c01.avi\n"
    printed = capsys.readouterr().out
    assert "train: 4 clips, 1 missing videos dropped (YoYo/v_YoYo_g10_c01.avi)" in printed
    assert "test: 3 clips" in printed


def test_ucf101_val_from_train_holds_out_whole_groups(tmp_path):
    videos, splits = make_ucf(tmp_path)
    touch(videos, "YoYo/v_YoYo_g10_c01.avi")
    out = tmp_path / "out"  # outside the videos' folder: paths stay absolute
    run("ucf101", videos=videos, splits=splits, out=out, val_from_train=0.34)
    # Train groups are g08, g09, g10; round(0.34 * 3) = 1 group, the highest: g10.
    val = read_manifest(out / "val.jsonl")
    assert [(Path(r.video).name, r.label) for r in val] == [("v_YoYo_g10_c01.avi", "YoYo")]
    train = read_manifest(out / "train.jsonl")
    assert [Path(r.video).name for r in train] == [
        "v_ApplyEyeMakeup_g08_c01.avi",
        "v_ApplyEyeMakeup_g09_c01.avi",
        "v_HandStandPushups_g08_c01.avi",
        "v_YoYo_g09_c02.avi",
    ]
    assert rows(out, "val")[0]["video"] == str((videos / "YoYo/v_YoYo_g10_c01.avi").resolve())
    assert not (out / "missing.txt").exists()


def test_ucf101_malformed_line_names_file_and_line(tmp_path):
    videos, splits = make_ucf(tmp_path)
    (splits / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nYoYo/v_YoYo_g09_c02.avi three\n"
    )
    with pytest.raises(ManifestError, match=r"trainlist01\.txt:2: 'three' is not a class index"):
        run("ucf101", videos=videos, splits=splits, out=tmp_path / "o")


def test_ucf101_index_disagreeing_with_folder_is_an_error(tmp_path):
    videos, splits = make_ucf(tmp_path)
    (splits / "trainlist01.txt").write_text("YoYo/v_YoYo_g09_c02.avi 1\n")
    with pytest.raises(ManifestError, match=r"trainlist01\.txt:1: index 1 is 'ApplyEyeMakeup' but the folder"):
        run("ucf101", videos=videos, splits=splits, out=tmp_path / "o")


def test_ucf101_wrong_video_root_fails(tmp_path):
    _, splits = make_ucf(tmp_path)
    with pytest.raises(SystemExit, match="none of the listed videos"):
        run("ucf101", videos=tmp_path / "nowhere", splits=splits, out=tmp_path / "o")


# ---------------------------------------------------------------- HMDB51


def make_hmdb(tmp_path: Path) -> tuple[Path, Path]:
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    # Official lines end in a space; ids: 1 train, 2 test, 0 unused.
    (splits / "brush_hair_test_split1.txt").write_text(
        "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \n"
        "April_09_brush_hair_u_nm_np1_ba_goo_1.avi 2 \n"
        "April_09_brush_hair_u_nm_np1_ba_goo_2.avi 0 \n"
    )
    (splits / "ride_bike_test_split1.txt").write_text(
        "Bike_Tour_ride_bike_f_cm_np1_ri_med_0.avi 2 \n"
        "Bike_Tour_ride_bike_f_cm_np1_ri_med_1.avi 1 \n"
        "Bike_Tour_ride_bike_f_cm_np1_ri_med_2.avi 1 \n"
    )
    (splits / "ride_bike_test_split2.txt").write_text("Bike_Tour_ride_bike_f_cm_np1_ri_med_0.avi 1 \n")
    (splits / "clap_test_split1.txt").write_text("#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi 1 \n")
    videos = tmp_path / "hmdb51"
    touch(
        videos,
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi",
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1.avi",
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_2.avi",
        "ride_bike/Bike_Tour_ride_bike_f_cm_np1_ri_med_0.avi",
        "ride_bike/Bike_Tour_ride_bike_f_cm_np1_ri_med_1.avi",
        # ride_bike ..._2.avi deliberately not downloaded
        "clap/#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi",
    )
    return videos, splits


def test_hmdb51(tmp_path, capsys):
    videos, splits = make_hmdb(tmp_path)
    out = tmp_path
    run("hmdb51", videos=videos, splits=splits, split=1, out=out)

    assert read_classes(out / "classes.txt") == ["brush_hair", "clap", "ride_bike"]
    # Classes in sorted order, lines in file order; the id-0 clip is left out.
    assert rows(out, "train") == [
        {"video": "hmdb51/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "label": "brush_hair"},
        {"video": "hmdb51/clap/#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi", "label": "clap"},
        {"video": "hmdb51/ride_bike/Bike_Tour_ride_bike_f_cm_np1_ri_med_1.avi", "label": "ride_bike"},
    ]
    assert rows(out, "test") == [
        {"video": "hmdb51/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1.avi", "label": "brush_hair"},
        {"video": "hmdb51/ride_bike/Bike_Tour_ride_bike_f_cm_np1_ri_med_0.avi", "label": "ride_bike"},
    ]
    assert (out / "val.jsonl").read_text() == (out / "test.jsonl").read_text()
    assert (out / "missing.txt").read_text() == "train\tride_bike/Bike_Tour_ride_bike_f_cm_np1_ri_med_2.avi\n"
    printed = capsys.readouterr().out
    assert "train: 3 clips, 1 missing videos dropped" in printed
    assert "test: 2 clips\n" in printed


def test_hmdb51_other_split_number(tmp_path):
    videos, splits = make_hmdb(tmp_path)
    out = tmp_path / "s2"
    run("hmdb51", videos=videos, splits=splits, split=2, out=out)
    assert read_classes(out / "classes.txt") == ["ride_bike"]
    assert [(Path(r.video).name, r.label) for r in read_manifest(out / "train.jsonl")] == [
        ("Bike_Tour_ride_bike_f_cm_np1_ri_med_0.avi", "ride_bike")
    ]
    assert read_manifest(out / "test.jsonl") == []


def test_hmdb51_malformed_line_names_file_and_line(tmp_path):
    videos, splits = make_hmdb(tmp_path)
    (splits / "clap_test_split1.txt").write_text("#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi 1 \n\nbroken_line.avi 3\n")
    with pytest.raises(ManifestError, match=r"clap_test_split1\.txt:3: expected '<video_name\.avi> <0\|1\|2>'"):
        run("hmdb51", videos=videos, splits=splits, out=tmp_path / "o")


# ---------------------------------------------------------------- Kinetics

KINETICS_TRAIN = """label,youtube_id,time_start,time_end,split
abseiling,--07WQ2iBlw,1,11,train
abseiling,--33Lscn6sk,4,14,train
"passing American football (in game)",-0dSz-yjKwY,113,123,train
air drumming,-0b2t-Gbt7s,0,10,train
"""
KINETICS_VAL = """label,youtube_id,time_start,time_end,split
abseiling,0wR5jVB-WPk,417,427,validate
air drumming,-VtLx-mcPds,12,22,validate
"""
KINETICS_TEST = """label,youtube_id,time_start,time_end,split
,aaa_-bbbccc,30,40,test
"""


def make_kinetics(tmp_path: Path) -> tuple[Path, list[Path]]:
    csvs = []
    for name, text in (("train.csv", KINETICS_TRAIN), ("validate.csv", KINETICS_VAL), ("test.csv", KINETICS_TEST)):
        path = tmp_path / name
        path.write_text(text)
        csvs.append(path)
    videos = tmp_path / "k400"
    touch(
        videos,
        "abseiling/--07WQ2iBlw_000001_000011.mp4",  # ROOT/<label>/<file>
        "train/abseiling/--33Lscn6sk_000004_000014.mp4",  # ROOT/<split>/<label>/<file>
        "passing_American_football_(in_game)/-0dSz-yjKwY_000113_000123.mp4",  # spaces -> underscores
        # air drumming -0b2t-Gbt7s deliberately not downloaded
        "validate/0wR5jVB-WPk_000417_000427.mp4",  # ROOT/<split as in the CSV>/<file>
        "-VtLx-mcPds_000012_000022.mp4",  # ROOT/<file>
        "test/aaa_-bbbccc_000030_000040.mp4",
    )
    return videos, csvs


def test_kinetics(tmp_path, capsys):
    videos, csvs = make_kinetics(tmp_path)
    out = tmp_path / "manifests"
    run("kinetics", videos=videos, out=out, csv=csvs)

    assert read_classes(out / "classes.txt") == [
        "abseiling",
        "air drumming",  # its only train clip is missing; the class stays
        "passing American football (in game)",
    ]
    root = videos.resolve()
    assert rows(out, "train") == [
        {"video": str(root / "abseiling/--07WQ2iBlw_000001_000011.mp4"), "label": "abseiling"},
        {"video": str(root / "train/abseiling/--33Lscn6sk_000004_000014.mp4"), "label": "abseiling"},
        {
            "video": str(root / "passing_American_football_(in_game)/-0dSz-yjKwY_000113_000123.mp4"),
            "label": "passing American football (in game)",
        },
    ]
    assert rows(out, "val") == [
        {"video": str(root / "validate/0wR5jVB-WPk_000417_000427.mp4"), "label": "abseiling"},
        {"video": str(root / "-VtLx-mcPds_000012_000022.mp4"), "label": "air drumming"},
    ]
    assert rows(out, "test") == [{"video": str(root / "test/aaa_-bbbccc_000030_000040.mp4")}]
    assert (out / "missing.txt").read_text() == "train\t-0b2t-Gbt7s_000000_000010.mp4\n"
    printed = capsys.readouterr().out
    assert "train: 3 clips, 1 missing videos dropped (-0b2t-Gbt7s_000000_000010.mp4)" in printed
    assert "val: 2 clips" in printed and "test: 1 clips" in printed


def test_kinetics_only_the_splits_given(tmp_path):
    videos, csvs = make_kinetics(tmp_path)
    out = tmp_path / "val_only"
    run("kinetics", videos=videos, csv=csvs[1], out=out)
    assert sorted(p.name for p in out.iterdir()) == ["classes.txt", "val.jsonl"]
    assert [r.label for r in read_manifest(out / "val.jsonl")] == ["abseiling", "air drumming"]


def test_kinetics_unlabelled_test_csv_alone_writes_no_class_list(tmp_path):
    videos, csvs = make_kinetics(tmp_path)
    out = tmp_path / "test_only"
    run("kinetics", videos=videos, csv=csvs[2], out=out)
    assert sorted(p.name for p in out.iterdir()) == ["test.jsonl"]


def test_kinetics_malformed_line_names_file_and_line(tmp_path):
    videos, _ = make_kinetics(tmp_path)
    bad = tmp_path / "bad.csv"
    header = "label,youtube_id,time_start,time_end,split\n"
    bad.write_text(header + "abseiling,--07WQ2iBlw,1,11,train\nabseiling,x,1,11,holdout\n")
    with pytest.raises(ManifestError, match=r"bad\.csv:3: split must be one of"):
        run("kinetics", videos=videos, csv=bad, out=tmp_path / "o")
    bad.write_text(header + ",--07WQ2iBlw,1,11,train\n")
    with pytest.raises(ManifestError, match=r"bad\.csv:2: a train row needs a label"):
        run("kinetics", videos=videos, csv=bad, out=tmp_path / "o")
    bad.write_text(header + "abseiling,--07WQ2iBlw,1.5,11,train\n")
    with pytest.raises(ManifestError, match=r"bad\.csv:2: time_start must be a whole number"):
        run("kinetics", videos=videos, csv=bad, out=tmp_path / "o")


# ---------------------------------------------------------------- MSR-VTT


def make_msrvtt(tmp_path: Path) -> tuple[Path, list[Path]]:
    train_val = {
        "info": {"contributor": "Microsoft MSM group", "year": "2016"},
        "videos": [
            {"category": 9, "url": "https://www.youtube.com/watch?v=9lZi22qLlEo", "video_id": "video0",
             "start time": 137.72, "end time": 149.44, "split": "train", "id": 0},
            {"category": 16, "url": "https://www.youtube.com/watch?v=w4JM08PDEng", "video_id": "video1",
             "start time": 184.33, "end time": 206.89, "split": "train", "id": 1},
            {"category": 0, "url": "https://www.youtube.com/watch?v=x", "video_id": "video2",
             "start time": 1.0, "end time": 11.0, "split": "validate", "id": 2},
        ],
        "sentences": [
            {"caption": "a car is shown", "video_id": "video0", "sen_id": 1},
            {"caption": "a cartoon animals runs through an ice cave in a video game", "video_id": "video0",
             "sen_id": 0},
            {"caption": "a woman is cooking", "video_id": "video1", "sen_id": 2},
            {"caption": "a man sings", "video_id": "video2", "sen_id": 3},
            {"caption": "a man is playing guitar", "video_id": "video2", "sen_id": 4},
        ],
    }
    test = {
        "videos": [
            {"category": 19, "video_id": "video7010", "split": "test", "id": 7010},
            {"category": 3, "video_id": "video7011", "split": "test", "id": 7011},
        ],
        "sentences": [{"caption": "an advert for shoes", "video_id": "video7010", "sen_id": 140200}],
    }
    paths = [tmp_path / "train_val_videodatainfo.json", tmp_path / "test_videodatainfo.json"]
    paths[0].write_text(json.dumps(train_val))
    paths[1].write_text(json.dumps(test))
    videos = tmp_path / "msrvtt"
    # Flat, and in the official archives' TrainValVideo/ and TestVideo/ folders.
    touch(videos, "video0.mp4", "TrainValVideo/video1.mp4", "TrainValVideo/video2.mp4", "TestVideo/video7010.mp4")
    return videos, paths


def test_msrvtt(tmp_path, capsys):
    videos, paths = make_msrvtt(tmp_path)
    out = videos
    run("msrvtt", videos=videos, annotations=paths, out=out)
    classes = read_classes(out / "classes.txt")
    assert len(classes) == 20
    assert classes[0] == "music" and classes[9] == "vehicles/autos" and classes[19] == "advertisement"
    assert rows(out, "train") == [
        {
            "video": "video0.mp4",
            "label": "vehicles/autos",
            # sen_id order, not file order
            "captions": ["a cartoon animals runs through an ice cave in a video game", "a car is shown"],
        },
        {"video": "TrainValVideo/video1.mp4", "label": "food/drink", "captions": ["a woman is cooking"]},
    ]
    assert rows(out, "val") == [
        {"video": "TrainValVideo/video2.mp4", "label": "music", "captions": ["a man sings", "a man is playing guitar"]}
    ]
    assert rows(out, "test") == [
        {"video": "TestVideo/video7010.mp4", "label": "advertisement", "captions": ["an advert for shoes"]}
    ]
    assert (out / "missing.txt").read_text() == "test\tvideo7011.mp4\n"
    printed = capsys.readouterr().out
    assert "train: 2 clips, 3 captions" in printed
    assert "test: 1 clips, 1 captions, 1 missing videos dropped (video7011.mp4)" in printed


def test_msrvtt_rerun_into_the_same_out_names_splits_it_did_not_write(tmp_path, capsys):
    videos, paths = make_msrvtt(tmp_path)
    out = tmp_path / "data"
    run("msrvtt", videos=videos, annotations=paths, out=out)
    assert (out / "test.jsonl").is_file() and (out / "missing.txt").is_file()
    earlier_test = (out / "test.jsonl").read_text()
    capsys.readouterr()
    run("msrvtt", videos=videos, annotations=paths[0], out=out)  # train + val only this time
    # Left in place (it may belong: the test file converted on its own), but named.
    assert (out / "test.jsonl").read_text() == earlier_test
    assert f"warning: {out / 'test.jsonl'} was not written by this run" in capsys.readouterr().out


def test_msrvtt_videos_in_an_all_folder(tmp_path):
    # The common re-packed download: MSRVTT/videos/all/video0.mp4 ...
    _, paths = make_msrvtt(tmp_path)
    videos = tmp_path / "MSRVTT" / "videos"
    touch(videos, "all/video0.mp4", "all/video1.mp4", "all/video2.mp4", "all/video7010.mp4", "all/video7011.mp4")
    out = tmp_path / "data"
    run("msrvtt", videos=videos, annotations=paths, out=out)
    assert [r.video for r in read_manifest(out / "test.jsonl")] == [
        str(videos / "all" / "video7010.mp4"), str(videos / "all" / "video7011.mp4")
    ]
    assert len(read_manifest(out / "train.jsonl")) == 2 and not (out / "missing.txt").exists()


def test_msrvtt_malformed_json_names_file_and_line(tmp_path):
    videos, paths = make_msrvtt(tmp_path)
    paths[1].write_text('{\n  "videos": [\n    {"video_id": "video7010",,}\n  ]\n}\n')
    with pytest.raises(ManifestError, match=r"test_videodatainfo\.json:3: invalid JSON"):
        run("msrvtt", videos=videos, annotations=paths[1], out=tmp_path / "o")


def test_msrvtt_bad_entry_names_file_and_entry(tmp_path):
    videos, paths = make_msrvtt(tmp_path)
    paths[1].write_text(json.dumps({"videos": [{"video_id": "video7010", "category": 20, "split": "test"}]}))
    message = r"test_videodatainfo\.json: videos\[0\] \(video7010\): 'category' must be 0\.\.19"
    with pytest.raises(ManifestError, match=message):
        run("msrvtt", videos=videos, annotations=paths[1], out=tmp_path / "o")


# ---------------------------------------------------------------- MSVD

MSVD_CSV = """VideoID,Start,End,WorkerID,Source,AnnotationTime,Language,Description
mv89psg6zh4,33,46,1,unverified,19,English,A bird is bathing in a sink.
mv89psg6zh4,33,46,2,clean,10,English,"A bird splashes around, under a running faucet."
mv89psg6zh4,33,46,3,unverified,15,German,Ein Vogel badet.
-4wsuPCjDBc,5,15,4,clean,20,English,A man is cutting meat.
zzit5b_-ukg,5,20,5,clean,20,English,A woman dances.
gone12345ab,1,9,6,clean,20,English,Nobody downloaded this.
0lh_UWF9ZP4,21,26,7,clean,20,English,A girl plays.
0lh_UWF9ZP4,215,226,8,clean,20,English,A girl jumps.
onlyfrench1,1,5,9,clean,20,French,Un chat.
"""


def make_msvd(tmp_path: Path) -> tuple[Path, Path]:
    corpus = tmp_path / "MSRVideoDescription.csv"
    corpus.write_text(MSVD_CSV)
    videos = tmp_path / "YouTubeClips"
    touch(
        videos,
        "mv89psg6zh4_33_46.avi",
        "-4wsuPCjDBc_5_15.avi",
        "zzit5b_-ukg_5_20.avi",
        "0lh_UWF9ZP4_21_26.avi",
        "0lh_UWF9ZP4_215_226.avi",
        "onlyfrench1_1_5.avi",
    )
    return videos, corpus


def names(out: Path, split: str) -> list[str]:
    return [Path(r.video).name for r in read_manifest(out / f"{split}.jsonl")]


def test_msvd_sorted_split(tmp_path, capsys):
    videos, corpus = make_msvd(tmp_path)
    out = tmp_path
    run("msvd", videos=videos, csv=corpus, out=out, train=2, val=1)
    # Code-point order, like youtube_mapping.txt: "215_" < "21_"; the missing clip is
    # dropped before the cut; the French-only clip is not a clip at all.
    assert rows(out, "train") == [
        {"video": "YouTubeClips/-4wsuPCjDBc_5_15.avi", "captions": ["A man is cutting meat."]},
        {"video": "YouTubeClips/0lh_UWF9ZP4_215_226.avi", "captions": ["A girl jumps."]},
    ]
    assert rows(out, "val") == [{"video": "YouTubeClips/0lh_UWF9ZP4_21_26.avi", "captions": ["A girl plays."]}]
    assert rows(out, "test") == [
        {
            "video": "YouTubeClips/mv89psg6zh4_33_46.avi",
            "captions": ["A bird is bathing in a sink.", "A bird splashes around, under a running faucet."],
        },
        {"video": "YouTubeClips/zzit5b_-ukg_5_20.avi", "captions": ["A woman dances."]},
    ]
    assert not (out / "classes.txt").exists()  # captioning only
    assert (out / "missing.txt").read_text() == "gone12345ab_1_9.avi\n"
    printed = capsys.readouterr().out
    assert "1 missing videos dropped before splitting (gone12345ab_1_9.avi)" in printed
    assert "train: 2 clips, 2 captions" in printed and "test: 2 clips, 3 captions" in printed


def test_msvd_first_appearance_and_mapping(tmp_path):
    videos, corpus = make_msvd(tmp_path)
    out = tmp_path / "first"
    run("msvd", videos=videos, csv=corpus, out=out, train=1, val=1, order="first-appearance")
    assert names(out, "train") == ["mv89psg6zh4_33_46.avi"]
    assert names(out, "val") == ["-4wsuPCjDBc_5_15.avi"]
    assert names(out, "test") == ["zzit5b_-ukg_5_20.avi", "0lh_UWF9ZP4_21_26.avi", "0lh_UWF9ZP4_215_226.avi"]

    mapping = tmp_path / "youtube_mapping.txt"
    mapping.write_text("zzit5b_-ukg_5_20 vid2\n-4wsuPCjDBc_5_15 vid10\nmv89psg6zh4_33_46 vid1\n")
    out = tmp_path / "mapped"
    run("msvd", videos=videos, csv=corpus, out=out, train=1, val=1, mapping=mapping)
    assert names(out, "train") == ["mv89psg6zh4_33_46.avi"]
    assert names(out, "val") == ["zzit5b_-ukg_5_20.avi"]
    assert names(out, "test") == ["-4wsuPCjDBc_5_15.avi"]


def test_msvd_malformed_line_names_file_and_line(tmp_path):
    videos, corpus = make_msvd(tmp_path)
    corpus.write_text(MSVD_CSV + "abc,start,9,10,clean,20,English,Bad start.\n")
    with pytest.raises(ManifestError, match=r"MSRVideoDescription\.csv:11: Start must be a whole number"):
        run("msvd", videos=videos, csv=corpus, out=tmp_path / "o")


# ---------------------------------------------------------------- your own folders


def make_folders(root: Path) -> Path:
    """3 classes x 6 videos (one class partly nested), plus what must be left out."""
    touch(
        root,
        *[f"jump/j{i}.mp4" for i in range(5)],
        "jump/J5.AVI",  # suffixes match in any case
        *[f"run/r{i}.mkv" for i in range(6)],
        *[f"walk/w{i}.mp4" for i in range(3)],
        *[f"walk/day2/w{i}.mov" for i in range(3)],  # nested inside a class: still that class
        "walk/.hidden.mp4",
        "walk/.cache/w9.mp4",
        "walk/notes.txt",
        ".trash/t.mp4",  # a hidden folder is no class
        "docs/readme.txt",  # a folder without videos is no class
        "loose.mp4",  # directly in ROOT: no class
    )
    return root


def split_names(out: Path, root: Path) -> dict[str, list[str]]:
    """Split -> each listed video's path below ``root`` ('<class>/...'), checking its label."""
    listed = {}
    for split in ("train", "val", "test"):
        if (out / f"{split}.jsonl").exists():
            listed[split] = []
            for r in read_manifest(out / f"{split}.jsonl"):
                rel = Path(r.video).relative_to(root.resolve()).as_posix()
                assert rel.split("/")[0] == r.label  # the label is the class folder's name
                listed[split].append(rel)
    return listed


def test_folders(tmp_path, capsys):
    videos = make_folders(tmp_path / "data" / "my_videos")
    out = tmp_path / "data"  # the videos sit inside it, so paths are stored relative
    run("folders", videos=videos, out=out)

    assert read_classes(out / "classes.txt") == ["jump", "run", "walk"]
    listed = split_names(out, videos)
    every = sorted(n for names in listed.values() for n in names)
    assert every == sorted(
        [f"jump/j{i}.mp4" for i in range(5)] + ["jump/J5.AVI"] + [f"run/r{i}.mkv" for i in range(6)]
        + [f"walk/w{i}.mp4" for i in range(3)] + [f"walk/day2/w{i}.mov" for i in range(3)]
    )  # each video once; hidden, non-video and root files nowhere
    # Stratified: round(0.15 x 6) = 1 video per class in val and in test.
    for split, per_class in (("train", 4), ("val", 1), ("test", 1)):
        assert sorted(n.split("/")[0] for n in listed[split]) == sorted(["jump", "run", "walk"] * per_class)
    assert all(r["video"].startswith("my_videos/") for r in rows(out, "train"))
    assert not (out / "missing.txt").exists()
    printed = capsys.readouterr().out
    assert "ignored 1 video(s) directly in" in printed
    assert "train: 12 clips\nval: 3 clips\ntest: 3 clips\n" in printed

    # The same seed gives the same manifests, another one another split.
    again, other = tmp_path / "again", tmp_path / "other"
    run("folders", videos=videos, out=again)
    run("folders", videos=videos, out=other, seed=1)
    assert [read_manifest(again / f"{s}.jsonl") for s in listed] == [read_manifest(out / f"{s}.jsonl") for s in listed]
    assert split_names(other, videos)["test"] != listed["test"]


def test_folders_keeps_groups_whole(tmp_path, capsys):
    videos = tmp_path / "v"
    clips = {"walk": {1: 3, 2: 2, 3: 3, 4: 2, 5: 2, 6: 3}, "run": {1: 2, 2: 3, 3: 2, 7: 2}}  # group -> clips
    for label, groups in clips.items():
        touch(videos, *[f"{label}/v_{label}_g{g:02d}_c{c:02d}.mp4" for g, n in groups.items() for c in range(1, n + 1)])
    touch(videos, "run/odd_one.mp4")  # no group in its name: a group of its own
    out = tmp_path / "out"
    run("folders", videos=videos, out=out, group=r"_g\d+_", val=0.2, test=0.2)

    split_of: dict[tuple[str, str], set[str]] = {}
    for split in ("train", "val", "test"):
        for r in read_manifest(out / f"{split}.jsonl"):
            group = Path(r.video).name.split("_c")[0]  # "v_walk_g01"
            split_of.setdefault((r.label, group), set()).add(split)
    assert len(split_of) == 6 + 4 + 1
    assert all(len(splits) == 1 for splits in split_of.values()), split_of
    # Each class has a group in every split (at least one each once it has 3 groups).
    for label in clips:
        assert {s for (lab, _), (s,) in split_of.items() if lab == label} == {"train", "val", "test"}
    assert "--group '_g\\d+_' did not match 1 of 25 videos" in capsys.readouterr().out


def test_folders_groups_by_sub_folder(tmp_path):
    """``<class>/<recording>/<clip>``: '^[^/]+/' keeps each recording's clips in one split."""
    videos = tmp_path / "v"
    for label in ("walk", "run"):
        touch(videos, *[f"{label}/day{d}/clip{c}.mp4" for d in range(1, 6) for c in range(3)])
    out = tmp_path / "out"
    run("folders", videos=videos, out=out, group="^[^/]+/", val=0.2, test=0.2)
    split_of: dict[tuple[str, str], set[str]] = {}
    for split in ("train", "val", "test"):
        for r in read_manifest(out / f"{split}.jsonl"):
            split_of.setdefault((r.label, Path(r.video).parent.name), set()).add(split)
    assert len(split_of) == 10 and all(len(splits) == 1 for splits in split_of.values()), split_of
    assert {next(iter(s)) for s in split_of.values()} == {"train", "val", "test"}


def test_folders_class_too_small_to_split_goes_to_train(tmp_path, capsys):
    videos = tmp_path / "v"
    touch(videos, "rare/a.mp4", "rare/b.mp4", *[f"common/c{i}.mp4" for i in range(6)])
    out = tmp_path / "out"
    run("folders", videos=videos, out=out)
    train = read_manifest(out / "train.jsonl")
    assert sorted(Path(r.video).name for r in train if r.label == "rare") == ["a.mp4", "b.mp4"]
    assert {r.label for s in ("val", "test") for r in read_manifest(out / f"{s}.jsonl")} == {"common"}
    assert read_classes(out / "classes.txt") == ["common", "rare"]
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: class 'rare' has 2 group(s), too few to split: all go to train (it is absent from val and test)"
    ]


def test_folders_zero_fraction_writes_no_split(tmp_path):
    videos = tmp_path / "v"
    touch(videos, *[f"a/{i}.mp4" for i in range(4)], *[f"b/{i}.mp4" for i in range(4)])
    out = tmp_path / "out"
    run("folders", videos=videos, out=out, val=0, test=0.25)
    assert sorted(p.name for p in out.iterdir()) == ["classes.txt", "test.jsonl", "train.jsonl"]
    assert len(read_manifest(out / "test.jsonl")) == 2 and len(read_manifest(out / "train.jsonl")) == 6


@pytest.mark.parametrize(
    "case, options, message",
    [
        ("missing", {}, r"error: --videos .*nowhere is not a folder"),
        ("file", {}, r"error: --videos .*a_file\.mp4 is not a folder"),
        ("no videos", {}, r"error: no class folder in .* holds a video"),
        ("bad regex", {"group": "_g(\\d+"}, r"error: --group '_g\(\\d\+' is not a valid regular expression"),
        ("val 1", {"val": 1}, r"error: --val 1\.0 and --test 0\.15 must each be in \[0, 1\)"),
        ("negative", {"test": -0.1}, r"error: --val 0\.15 and --test -0\.1 must each be in \[0, 1\)"),
        ("sum", {"val": 0.5, "test": 0.5}, r"error: .* and sum to less than 1"),
    ],
)
def test_folders_errors(tmp_path, case, options, message):
    touch(tmp_path, "a_file.mp4", "v/loose.mp4", "v/cls/notes.txt")  # v: no video inside a class folder
    if case not in ("missing", "file", "no videos"):
        touch(tmp_path, "v/cls/a.mp4")
    videos = {"missing": tmp_path / "nowhere", "file": tmp_path / "a_file.mp4"}.get(case, tmp_path / "v")
    with pytest.raises(SystemExit, match=message) as raised:
        run("folders", videos=videos, out=tmp_path / "o", **options)
    assert str(raised.value).startswith("error: ") and "\n" not in str(raised.value)
    assert not (tmp_path / "o").exists()


def test_folders_across_classes_holds_out_whole_sources(tmp_path, capsys):
    """One source video cut into clips of every class (the real-footage benchmark's layout):
    per class, a source could be in train for one class and in test for another; across
    classes, each source lies in one split, so test is footage training never saw."""
    videos = tmp_path / "v"
    sources = ("bikes", "bunny", "carphone", "megamind", "tree", "vtest")
    for label in ("zoom_in", "zoom_out", "pan_left"):
        touch(videos, *[f"{label}/{src}_{k}.mp4" for src in sources for k in range(2)])
    argv = ["--videos", str(videos), "--group", "^[^_]+", "--val", "0.2", "--test", "0.2"]
    recipe = load_recipe("folders")

    def split_of_source(out):
        found: dict[str, set[str]] = {}
        for split in ("train", "val", "test"):
            for r in read_manifest(out / f"{split}.jsonl"):
                found.setdefault(Path(r.video).name.split("_")[0], set()).add(split)
        return found

    recipe.main([*argv, "--out", str(tmp_path / "across"), "--across-classes"])
    across = split_of_source(tmp_path / "across")
    assert set(across) == set(sources) and all(len(s) == 1 for s in across.values()), across
    assert sorted(next(iter(s)) for s in across.values()) == ["test", "train", "train", "train", "train", "val"]
    for split in ("train", "val", "test"):  # every source is in every class here, so no class is missing
        assert {r.label for r in read_manifest(tmp_path / "across" / f"{split}.jsonl")} == {"zoom_in", "zoom_out", "pan_left"}
    assert "warning" not in capsys.readouterr().out
    # A source missing from one class changes that class's per-class draw (the default), and a
    # source may then be in train for one class and in test for another; not across classes.
    for k in range(2):
        (videos / "pan_left" / f"vtest_{k}.mp4").unlink()
    recipe.main([*argv, "--out", str(tmp_path / "per_class"), "--seed", "0"])  # (with seeds 1, 3 and 7 it happens not to)
    assert any(len(s) > 1 for s in split_of_source(tmp_path / "per_class").values())
    recipe.main([*argv, "--out", str(tmp_path / "across3"), "--seed", "0", "--across-classes"])
    assert all(len(s) == 1 for s in split_of_source(tmp_path / "across3").values())
    with pytest.raises(SystemExit, match="error: --across-classes holds out groups named by --group REGEX"):
        recipe.main(["--videos", str(videos), "--out", str(tmp_path / "x"), "--across-classes"])


def test_folders_real_videos_decode(tmp_path):
    """End to end: encoded videos in class folders -> manifests -> every listed video decodes."""
    import numpy as np

    from vidrec.data.decode import open_video
    from vidrec.data.synthetic import write_video

    rng = np.random.default_rng(0)
    videos = tmp_path / "v"
    for label in ("left", "right"):
        for i in range(3):
            frames = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
            write_video(videos / label / f"{label}{i}.mp4", frames, fps=8)
        write_video(videos / label / "more" / f"{label}9.avi", frames, fps=8, fourcc="MJPG")
    out = tmp_path / "out"
    run("folders", videos=videos, out=out, val=0.25, test=0.25)
    decoded = 0
    for split in ("train", "val", "test"):
        for record in read_manifest(out / f"{split}.jsonl"):
            with open_video(record.video) as reader:
                assert reader.get_frames([0]).shape == (1, 32, 32, 3)
            decoded += 1
    assert decoded == 8


# ---------------------------------------------------------------- as scripts


@pytest.mark.parametrize("name", ["ucf101", "hmdb51", "kinetics", "msrvtt", "msvd", "folders"])
def test_recipes_run_as_files(name):
    """``python datasets/NAME.py --help`` works: the scripts import vidrec without help."""
    result = subprocess.run(
        [sys.executable, str(REPO / "datasets" / f"{name}.py"), "--help"], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert "--out" in result.stdout
