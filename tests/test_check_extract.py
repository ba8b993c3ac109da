"""``check`` (find bad clips in a manifest) and ``extract`` (export a model's features), on real
video files made here: good, corrupt, empty, missing, too short, mislabelled and truncated ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from vidrec.apps import check, extract
from vidrec.apps.infer_cli import main as infer_main
from vidrec.checkpoint import load_checkpoint
from vidrec.data.clips import load_clip, load_views
from vidrec.data.manifest import read_classes, read_manifest

REPO = Path(__file__).resolve().parents[1]
FPS = 10.0
CLASSES = ["jump", "run", "swim"]


def frames(n: int, size: int = 48, seed: int = 0) -> np.ndarray:
    """uint8 RGB (n, size, size, 3): a brightening ramp with noise, so frames differ."""
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.arange(n) * 3.0, np.zeros((size, size, 3)))  # (n, size, size, 3)
    return np.clip(ramp + rng.integers(0, 40, ramp.shape), 0, 255).astype(np.uint8)


def write_manifest_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def resolved(manifest: Path) -> list[tuple]:
    """A manifest's clips as (absolute video, label, start, end): what its lines mean, however written."""
    return [(str(Path(r.video).resolve()), r.label, r.start, r.end) for r in read_manifest(manifest)]


@dataclass
class Dataset:
    manifest: Path
    classes: Path
    good: list[dict]  # the manifest rows that must survive the check


@pytest.fixture
def dataset(tmp_path, make_video) -> Dataset:
    """A manifest with good clips and one of each kind of bad clip, in tmp_path/data/."""
    data, videos = tmp_path / "data", tmp_path / "data" / "videos"
    videos.mkdir(parents=True)
    make_video(videos / "jump_1.avi", frames(12, seed=1), "MJPG", FPS)
    make_video(videos / "run_1.avi", frames(16, seed=2), "MJPG", FPS)
    make_video(videos / "run_2.mp4", frames(14, seed=3), "mp4v", FPS)
    make_video(videos / "short.avi", frames(5, seed=4), "MJPG", FPS)
    make_video(videos / "typo.avi", frames(12, seed=5), "MJPG", FPS)
    (videos / "corrupt.mp4").write_bytes(np.random.default_rng(6).bytes(6000))
    (videos / "empty.mp4").write_bytes(b"")
    # 60 frames whose container promises them all; cut to half its bytes. OpenCV writes the
    # mp4 index (moov) at the end, so the cut usually leaves nothing a decoder can open.
    full = make_video(tmp_path / "full.mp4", frames(60, seed=7), "mp4v", FPS)
    (videos / "truncated.mp4").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    good = [
        {"video": "videos/jump_1.avi", "label": "jump"},
        {"video": "videos/run_1.avi", "label": "run", "start": 0.2, "end": 1.2},
        {"video": "videos/run_2.mp4", "label": "run"},
        {"video": "videos/run_1.avi", "label": "run", "start": 0.3, "end": 9.0},  # end past 1.6 s: kept, warned
    ]
    bad = [
        {"video": "videos/corrupt.mp4", "label": "jump"},
        {"video": "videos/empty.mp4", "label": "run"},
        {"video": "videos/missing.mp4", "label": "jump"},
        {"video": "videos/short.avi", "label": "run"},
        {"video": "videos/typo.avi", "label": "Jmup"},
        {"video": "videos/truncated.mp4", "label": "jump"},
        {"video": "videos/jump_1.avi", "label": "jump", "start": 5.0},  # the video is 1.2 s long
    ]
    rows = good[:2] + bad[:4] + good[2:] + bad[4:]
    classes = data / "classes.txt"
    classes.write_text("".join(c + "\n" for c in CLASSES))
    return Dataset(write_manifest_rows(data / "train.jsonl", rows), classes, good)


def by_video(report: dict) -> dict[tuple, dict]:
    return {(Path(c["video"]).name, c["start"]): c for c in report["clips"]}


def kinds(clip: dict) -> list[str]:
    return [p["kind"] for p in clip["problems"]]


# --------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------


def test_check_drops_bad_clips_and_reports_why(dataset, tmp_path, capsys):
    out = tmp_path / "checked"
    rc = check.main([str(dataset.manifest), "--classes", str(dataset.classes), "--out", str(out), "--workers", "2"])
    assert rc == 1  # clips were dropped

    report = json.loads((out / "report.json").read_text())
    clips = by_video(report)
    assert kinds(clips["corrupt.mp4", None]) == ["unreadable"]
    assert clips["corrupt.mp4", None]["problems"][0]["detail"]  # the decoder's reason
    assert kinds(clips["empty.mp4", None]) == ["empty"]
    assert kinds(clips["missing.mp4", None]) == ["missing"]
    assert kinds(clips["short.avi", None]) == ["too_short"] and clips["short.avi", None]["frames"] == 5
    assert kinds(clips["typo.avi", None]) == ["unknown_label"]
    assert "did you mean 'jump'" in clips["typo.avi", None]["problems"][0]["detail"]
    assert kinds(clips["jump_1.avi", 5.0]) == ["start_past_end"]
    warned = clips["run_1.avi", 0.3]
    assert kinds(warned) == ["end_past_end"] and warned["kept"] and warned["clip_frames"] == 13
    good = clips["jump_1.avi", None]
    assert good["problems"] == [] and good["frames"] == good["reported_frames"] == 12
    assert good["fps"] == pytest.approx(FPS) and good["duration"] == pytest.approx(1.2)
    assert clips["run_1.avi", 0.2]["clip_frames"] == 10  # frames 2..11 of [0.2 s, 1.2 s)

    # The truncated mp4 promises 60 frames: either the reader finds fewer (a lie, reported),
    # or the cut took the index with it and nothing opens.
    cut = clips["truncated.mp4", None]
    if "frame_count" in kinds(cut):
        assert cut["reported_frames"] == 60 and cut["frames"] < 60
    else:
        assert kinds(cut) == ["unreadable"] and not cut["kept"]
    expected = dataset.good + ([{"video": "videos/truncated.mp4", "label": "jump"}] if cut["kept"] else [])

    # clean.jsonl holds exactly the good clips, in manifest order, and reads as a manifest
    want = resolved(write_manifest_rows(dataset.manifest.parent / "expected.jsonl", expected))
    assert sorted(resolved(out / "clean.jsonl")) == sorted(want)
    assert report["clips_total"] == 11 and report["clips_kept"] == len(expected)
    assert report["problems"]["unreadable"] >= 1 and report["problems"]["missing"] == 1

    # every class listed (swim has no clips), the unknown label after them
    assert report["histogram"] == {"jump": 5, "run": 5, "swim": 0, "Jmup": 1}
    assert report["histogram_kept"]["jump"] == 1 + int(cut["kept"]) and report["histogram_kept"]["run"] == 3

    shown = capsys.readouterr().out
    assert "Problems in" in shown and "typo.avi" in shown and "Clips per class" in shown
    assert f"kept {len(expected)} of 11 clips" in shown


def test_check_only_good_clips_exits_0_and_paths_resolve_from_any_out(dataset, tmp_path, monkeypatch):
    manifest = write_manifest_rows(dataset.manifest.parent / "good.jsonl", dataset.good)
    want = resolved(manifest)
    # out = the manifest's folder (paths stay relative), a folder beside it (absolute), its
    # parent (relative, one level deeper), and a relative manifest path from another cwd.
    for out, prefix in [(manifest.parent, None), (tmp_path / "elsewhere", "/"), (tmp_path, "data/videos/")]:
        assert check.main([str(manifest), "--out", str(out), "--workers", "1", "--classes", str(dataset.classes)]) == 0
        assert resolved(out / "clean.jsonl") == want
        first = json.loads((out / "clean.jsonl").read_text().splitlines()[0])["video"]
        assert first.startswith(prefix) if prefix else not os.path.isabs(first)
    monkeypatch.chdir(tmp_path)
    assert check.main(["data/good.jsonl", "--out", "rel_out", "--workers", "1"]) == 0
    assert resolved(tmp_path / "rel_out" / "clean.jsonl") == want
    # default --out: a folder next to the manifest, named after it
    assert check.main(["data/good.jsonl", "--workers", "1"]) == 0
    assert resolved(tmp_path / "data" / "good_check" / "clean.jsonl") == want


def test_check_writes_the_classes_it_was_given_beside_clean_jsonl(dataset, tmp_path):
    # Training on clean.jsonl reads classes.txt from beside it; without one it would take the
    # classes from the labels left ("swim" has no clip here) and change the head's size and order.
    from vidrec.data.datamodule import VideoDataModule

    manifest = write_manifest_rows(dataset.manifest.parent / "good.jsonl", dataset.good)
    out = tmp_path / "checked"
    assert check.main([str(manifest), "--out", str(out), "--workers", "1", "--classes", str(dataset.classes)]) == 0
    assert read_classes(out / "classes.txt") == CLASSES
    assert VideoDataModule(train_manifest=str(out / "clean.jsonl"), num_workers=0).classes == CLASSES
    # no --classes: nothing to copy, and the labels present decide as before
    bare = tmp_path / "bare"
    assert check.main([str(manifest), "--out", str(bare), "--workers", "1"]) == 0
    assert not (bare / "classes.txt").exists()
    assert VideoDataModule(train_manifest=str(bare / "clean.jsonl"), num_workers=0).classes == ["jump", "run"]


def test_check_reports_a_container_that_overstates_its_frames(tmp_path, make_video):
    # An AVI's header states its frame count up front; cutting the file keeps the header.
    full = make_video(tmp_path / "full.avi", frames(60, seed=8), "MJPG", FPS)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    manifest = write_manifest_rows(tmp_path / "m.jsonl", [{"video": "cut.avi", "label": "run"}])

    # OpenCV reports the header's count, so the lie shows on every cut
    assert check.main([str(manifest), "--out", str(tmp_path / "a"), "--backend", "opencv", "--workers", "1"]) == 0
    clip = json.loads((tmp_path / "a" / "report.json").read_text())["clips"][0]
    assert kinds(clip) == ["frame_count"] and clip["kept"]  # readers recover: a warning only
    assert clip["reported_frames"] == 60 and 8 <= clip["frames"] < 60
    assert clip["duration"] == pytest.approx(clip["frames"] / FPS)
    # --strict drops warned clips too
    assert check.main([str(manifest), "--out", str(tmp_path / "b"), "--backend", "opencv", "--workers", "1", "--strict"]) == 1
    assert read_manifest(tmp_path / "b" / "clean.jsonl") == []


def test_check_bad_usage_exits_2_with_one_line(tmp_path, dataset, capsys):
    assert check.main([str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.jsonl" in err and "not found" in err
    assert check.main([str(dataset.manifest), "--classes", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    # clean.jsonl must never overwrite the manifest it was made from
    clean = write_manifest_rows(tmp_path / "clean.jsonl", dataset.good[:1])
    assert check.main([str(clean), "--out", str(tmp_path)]) == 2
    assert clean.read_text().count("\n") == 1


def test_infer_py_check_subcommand(dataset, tmp_path, capsys):
    # `python infer.py check ...` is infer_cli.main(["check", ...]); the extract test below runs infer.py's main in a fresh process.
    out = tmp_path / "via_infer"
    assert infer_main(["check", str(dataset.manifest), "--classes", str(dataset.classes), "--out", str(out)]) == 1
    assert (out / "clean.jsonl").is_file() and "Clips per class" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        infer_main(["check", "--help"])
    assert usage.value.code == 0 and "infer.py check" in capsys.readouterr().out


# --------------------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------------------


@pytest.fixture
def clips(tmp_path, make_video) -> Path:
    """Three good clips (one a time range) and a corrupt file, in a manifest."""
    make_video(tmp_path / "a.avi", frames(12, seed=11), "MJPG", FPS)
    make_video(tmp_path / "b.avi", frames(16, seed=12), "MJPG", FPS)
    (tmp_path / "bad.mp4").write_bytes(np.random.default_rng(13).bytes(6000))
    rows = [
        {"video": "a.avi", "label": "jump"},
        {"video": "bad.mp4", "label": "run"},
        {"video": "b.avi", "label": "run", "start": 0.4, "end": 1.4},
        {"video": "b.avi", "label": "run", "captions": ["something moves"]},
    ]
    return write_manifest_rows(tmp_path / "clips.jsonl", rows)


def read_index(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]


def eval_clip(ckpt, video: str, start=None, end=None) -> torch.Tensor:
    """The clip as evaluation loads it: (1, T, 3, S, S)."""
    return load_clip(video, ckpt.clip, ckpt.clip.eval_transform(ckpt.normalization), start=start, end=end)[None]


def test_extract_per_frame_npy_equals_the_backbone(tiny_checkpoint, clips, tmp_path):
    out = tmp_path / "feats"
    args = [str(clips), "--ckpt", str(tiny_checkpoint), "--out", str(out), "--device", "cpu", "--workers", "0", "--batch-size", "2"]
    assert extract.main(args) == 1  # one clip failed, the run went on

    ckpt = load_checkpoint(tiny_checkpoint)
    T, D = ckpt.clip.num_frames, ckpt.net.backbone.out_dim
    index = read_index(out)
    assert [row["index"] for row in index] == [0, 1, 2, 3]
    assert [row["key"] for row in index] == ["0_a", None, "2_b", "3_b"]
    bad = index[1]
    assert bad["error"] and bad["file"] is None and bad["shape"] is None and bad["label"] == "run"
    assert not list(out.glob("1_*"))
    records = read_manifest(clips)
    with torch.no_grad():
        for row, record in zip(index, records):
            if row["error"]:
                continue
            assert row["shape"] == [T, D] and row["file"] == f"{row['key']}.npy"
            assert (row["label"], row.get("start"), row.get("end")) == (record.label, record.start, record.end)
            saved = np.load(out / row["file"])
            assert saved.dtype == np.float32
            want = ckpt.net.backbone(eval_clip(ckpt, record.video, record.start, record.end))[0]  # (T, D)
            np.testing.assert_allclose(saved, want.numpy(), rtol=1e-4, atol=1e-5)
    # the time range was honoured: clip 2 (a range of b.avi) differs from clip 3 (all of it)
    assert not np.allclose(np.load(out / "2_b.npy"), np.load(out / "3_b.npy"))
    # the index reads as a manifest of the same clips (videos relative to DIR or absolute)
    assert [(str(Path(r.video).resolve()), r.label) for r in read_manifest(out / "index.jsonl")] == [
        (str(Path(r.video).resolve()), r.label) for r in records
    ]


def test_extract_per_clip_safetensors_equals_the_encoding(tiny_checkpoint, clips, tmp_path):
    from safetensors.numpy import load_file

    out = tmp_path / "enc"
    args = [str(clips), "--ckpt", str(tiny_checkpoint), "--out", str(out), "--device", "cpu", "--workers", "0",
            "--per-clip", "--format", "safetensors"]
    assert extract.main(args) == 1
    ckpt = load_checkpoint(tiny_checkpoint)
    tensors = load_file(str(out / "features.safetensors"))
    index = read_index(out)
    assert sorted(tensors) == ["0_a", "2_b", "3_b"]
    with torch.no_grad():
        for row, record in zip(index, read_manifest(clips)):
            if row["error"]:
                continue
            assert row["file"] == "features.safetensors"
            want = ckpt.net.encode(frames=eval_clip(ckpt, record.video, record.start, record.end))[1][0]  # (H',)
            assert row["shape"] == [want.shape[0]] == list(tensors[row["key"]].shape)
            np.testing.assert_allclose(tensors[row["key"]], want.numpy(), rtol=1e-4, atol=1e-5)


def test_extract_litdata_store_equals_the_backbone(tiny_checkpoint, clips, tmp_path):
    from litdata import StreamingDataset

    out = tmp_path / "store"
    args = [str(clips), "--ckpt", str(tiny_checkpoint), "--out", str(out), "--device", "cpu", "--workers", "0", "--format", "litdata"]
    assert extract.main(args) == 1
    ckpt = load_checkpoint(tiny_checkpoint)
    index = read_index(out)
    assert [row["file"] for row in index] == ["litdata", None, "litdata", "litdata"]
    items = {int(it["index"]): it for it in StreamingDataset(str(out / "litdata"))}
    assert sorted(items) == [0, 2, 3]  # the failed clip has no item, as it has no .npy file
    assert json.loads((out / "litdata" / "metadata.json").read_text())["features"] == "per-frame"
    with torch.no_grad():
        for row, record in zip(index, read_manifest(clips)):
            if row["error"]:
                continue
            item = items[row["index"]]
            assert item["key"] == row["key"] and list(item["features"].shape) == row["shape"]
            want = ckpt.net.backbone(eval_clip(ckpt, record.video, record.start, record.end))[0]  # (T, D)
            np.testing.assert_allclose(item["features"], want.numpy(), rtol=1e-4, atol=1e-5)


def test_extract_views_add_a_leading_axis(tiny_checkpoint, clips, tmp_path):
    out = tmp_path / "views"
    args = [str(clips), "--ckpt", str(tiny_checkpoint), "--out", str(out), "--device", "cpu", "--workers", "0", "--views", "3"]
    assert extract.main(args) == 1
    ckpt = load_checkpoint(tiny_checkpoint)
    row, record = read_index(out)[0], read_manifest(clips)[0]
    assert row["shape"] == [3, ckpt.clip.num_frames, ckpt.net.backbone.out_dim]
    views = load_views(record.video, ckpt.clip, ckpt.clip.eval_transform(ckpt.normalization), 3)  # (3, T, 3, S, S)
    with torch.no_grad():
        np.testing.assert_allclose(np.load(out / row["file"]), ckpt.net.backbone(views).numpy(), rtol=1e-4, atol=1e-5)


def test_extract_bad_usage_exits_2(tiny_checkpoint, clips, tmp_path, capsys):
    assert extract.main([str(tmp_path / "nope.jsonl"), "--ckpt", str(tiny_checkpoint), "--out", str(tmp_path / "o")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    assert extract.main([str(clips), "--ckpt", str(tmp_path / "bad.ckpt"), "--out", str(tmp_path / "o")]) == 2
    assert "bad.ckpt" in capsys.readouterr().err


@pytest.mark.slow  # a fresh interpreter: ~9 s of imports on a 2-core machine
def test_infer_py_extract_imports_no_lightning(tiny_checkpoint, clips, tmp_path):
    # Features are for use outside vidrec: exporting them must not need the trainer.
    out = tmp_path / "sub"
    code = (
        "import sys\n"
        "from vidrec.apps.infer_cli import main\n"
        f"rc = main(['extract', {str(clips)!r}, '--ckpt', {str(tiny_checkpoint)!r}, '--out', {str(out)!r}, "
        "'--device', 'cpu', '--workers', '0'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pytorch_lightning', 'lightning', 'lightning_fabric'))\n"
        "print('RC', rc, 'LIGHTNING', loaded)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert "RC 1 LIGHTNING []" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert len(read_index(out)) == 4


def test_a_video_file_named_check_is_still_a_video(tiny_checkpoint, tmp_path, make_video, monkeypatch, capsys):
    make_video(tmp_path / "check.avi", frames(12, seed=21), "MJPG", FPS)
    (tmp_path / "check.avi").rename(tmp_path / "check")
    monkeypatch.chdir(tmp_path)
    assert infer_main(["check", "--ckpt", str(tiny_checkpoint), "--device", "cpu"]) == 0
    assert "== check" in capsys.readouterr().out
