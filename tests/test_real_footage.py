"""The real-footage benchmark builder on a tiny video of its own (no sample packages needed)."""

import json

import cv2
import numpy as np
import pytest

from benchmarks import real_footage as rf
from vidrec.data.decode import open_video
from vidrec.data.manifest import read_manifest
from vidrec.data.synthetic import write_video


def _frames(n=40, h=72, w=96, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 226, (h // 8, w // 8, 3), dtype=np.uint8)
    import cv2

    big = cv2.resize(base, (w * 2, h), interpolation=cv2.INTER_CUBIC)
    return np.stack([big[:, t : t + w] for t in range(n)])  # content drifting over time


@pytest.mark.parametrize("pair", rf.PAIRS)
def test_render_pair_shapes_and_determinism(pair):
    frames = _frames()
    a, pa = rf.render_pair(frames, pair, np.random.default_rng(1), num_frames=8, size=32)
    b, _ = rf.render_pair(frames, pair, np.random.default_rng(1), num_frames=8, size=32)
    assert a.shape == (8, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, a[::-1])  # the reversed partner is a different clip
    assert pa["stride"] in (1, 2, 3)


def test_brighten_gets_brighter():
    clip, _ = rf.render_pair(_frames(), ("brighten", "darken"), np.random.default_rng(0), num_frames=8, size=32)
    assert clip[-1].mean() > clip[0].mean() + 10


def test_build_writes_folds_split_by_source(tmp_path, monkeypatch):
    data = tmp_path / "pkg"
    data.mkdir()
    write_video(data / "a.avi", _frames(seed=1), fps=10, fourcc="MJPG")
    write_video(data / "b.avi", _frames(seed=2), fps=10, fourcc="MJPG")
    monkeypatch.setattr(rf, "OPENCV_DATA", data)
    sources = (rf.Source("a", "a.avi", "opencv-doc", "a texture"), rf.Source("b", "b.avi", "opencv-doc", "stripes"),
               rf.Source("c", "missing.avi", "opencv-doc", "nothing"))
    clips, notes = rf.build(tmp_path / "out", per_pair=(1, 1, 1), num_frames=8, size=32, sources=sources,
                            folds=(("a",), ("b",)))
    assert len(notes) == 1 and "missing.avi" in notes[0]
    assert len(clips) == 2 * 2 * len(rf.PAIRS) * 3
    train = read_manifest(tmp_path / "out" / "fold0_train.jsonl")
    unseen = read_manifest(tmp_path / "out" / "fold0_test_unseen.jsonl")
    assert {r.video.split("/")[-2] for r in train} == {"b"} and {r.video.split("/")[-2] for r in unseen} == {"a"}
    assert all(len(r.captions) == 2 and r.label in rf.CLASSES for r in train)
    # a pair's clips are the same frames reversed (up to the codec)
    with open_video(tmp_path / "out" / "clips/b/zoom_in_0.mp4", "opencv") as r:
        fwd = r.get_frames(range(8)).astype(int)
    with open_video(tmp_path / "out" / "clips/b/zoom_out_0.mp4", "opencv") as r:
        bwd = r.get_frames(range(8)).astype(int)
    assert np.abs(fwd - bwd[::-1]).mean() < 8
    rows = [json.loads(line) for line in (tmp_path / "out" / "clips.jsonl").open()]
    assert {r["role"] for r in rows} == {"train", "val", "seen"}


def test_a_caption_names_the_action_in_any_template_wording():
    from benchmarks.real_footage_eval import names_action

    assert names_action("a video of people walking across a square playing forwards", "forward")
    assert names_action("people walking across a square, played forward", "forward")
    assert not names_action("people walking across a square, played backward", "forward")
    assert not names_action("the camera zooms in, played forward and backward", "forward")  # names both
    assert names_action("the camera zooms in on the trees", "zoom_in")


def test_arrow_of_time_statistics_flip_sign_when_the_clip_is_reversed():
    from benchmarks.arrow_of_time_cues import statistics

    texture = cv2.GaussianBlur(np.random.default_rng(4).integers(0, 256, (160, 400, 3), dtype=np.uint8), (7, 7), 0)
    shifts = np.cumsum(np.linspace(6, 0.5, 16)).round().astype(int)  # decelerating pan, px
    slowing = np.stack([texture[40:120, s : s + 112] for s in shifts])  # (16, 80, 112, 3)
    fwd, bwd = statistics(slowing), statistics(slowing[::-1].copy())
    assert fwd["speed trend"] < 0 < bwd["speed trend"]

    sides = np.linspace(150, 70, 16)  # the crop shrinks: a zoom in
    zoom = np.stack([cv2.resize(texture[80 - int(s) // 2 : 80 + int(s) // 2, 200 - int(s) // 2 : 200 + int(s) // 2], (96, 96)) for s in sides])
    assert statistics(zoom)["expansion (mean divergence)"] > 0 > statistics(zoom[::-1].copy())["expansion (mean divergence)"]


def test_by_source_table_pools_runs_per_source_and_pair():
    from benchmarks.real_footage_eval import by_source_table

    def run(by_source, top1=0.5):
        return {"unseen": {"top1": top1, "by_source": by_source}}

    runs = [run({"bikes/forward": [1, 0, 2], "bikes/backward": [0, 1, 2], "tree/zoom_in": [2, 2, 2]}),
            run({"bikes/forward": [2, 2, 2], "tree/zoom_out": [0, 1, 2]})]
    head, rule, bikes, tree = by_source_table(runs)
    assert head.startswith("| unseen source: top-1 (caption) | forward/backward | zoom_in/zoom_out")
    assert bikes.split(" | ")[1] == "0.50 (0.50)"  # 3 of 6 forward/backward clips, 3 captions
    assert tree.split(" | ")[2] == "0.50 (0.75)"  # zoom: 2 of 4 right, 3 captions
    captions_only = by_source_table([run({"bikes/forward": [0, 1, 4]}, top1=None)])
    assert "caption |" in captions_only[0] and captions_only[2].split(" | ")[1] == "0.25"


def test_without_labels_copies_a_manifest_with_captions_only(tmp_path):
    from benchmarks.real_footage_eval import without_labels
    from vidrec.data.manifest import ClipRecord, write_manifest

    video = str(tmp_path / "a" / "clips" / "x.mp4")  # stored relative to a/, so the copy in b/ must rewrite it
    src = write_manifest(tmp_path / "a" / "train.jsonl", [ClipRecord(video, "forward", ["x played forward"])])
    assert '"clips/x.mp4"' in src.read_text()
    copy = read_manifest(without_labels(src, tmp_path / "b" / "train.jsonl"))
    assert [(r.label, r.captions, r.video) for r in copy] == [(None, ["x played forward"], video)]


@pytest.mark.slow
def test_eval_scores_the_checkpoint_its_own_run_trained(tmp_path, monkeypatch):
    """Two runs on one --out (the README's lstm run, then ``--model.temporal mean``): the second
    must score its own model. Lightning keeps the first run's best-*.ckpt beside the second's
    (a name taken gets -v1), and picking the last in sorted order scored the LSTM twice."""
    import torch

    from benchmarks.real_footage_eval import REPO, run_fold

    data = tmp_path / "pkg"
    data.mkdir()
    write_video(data / "a.avi", _frames(seed=1), fps=10, fourcc="MJPG")
    write_video(data / "b.avi", _frames(seed=2), fps=10, fourcc="MJPG")
    monkeypatch.setattr(rf, "OPENCV_DATA", data)
    sources = (rf.Source("a", "a.avi", "opencv-doc", "a texture"), rf.Source("b", "b.avi", "opencv-doc", "stripes"))
    rf.build(tmp_path / "rf", per_pair=(1, 1, 1), num_frames=8, size=32, sources=sources, folds=(("a",), ("b",)))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config, out = str(REPO / "configs" / "debug.yaml"), tmp_path / "runs"
    run_fold(tmp_path / "rf", config, 0, 0, out, ["--trainer.max_epochs", "2"])
    second = run_fold(tmp_path / "rf", config, 0, 0, out, ["--trainer.max_epochs", "1", "--model.temporal", "mean"])
    assert len(list(out.rglob("best-*.ckpt"))) == 2  # both runs' checkpoints are there
    ckpt = torch.load(second["checkpoint"], map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["temporal"] == "mean"
    # --reuse scores the most recently trained one
    reused = run_fold(tmp_path / "rf", config, 0, 0, out, [], reuse=True)
    assert reused["checkpoint"] == second["checkpoint"]
    assert {key.split("/")[0] for key in reused["unseen"]["by_source"]} == {"a"}  # fold 0 holds out source a
    assert sum(n for _, _, n in reused["unseen"]["by_source"].values()) == reused["unseen"]["clips"]
    # --test-data: the same checkpoint scored on the folds rendered otherwise (longer clips, more of them)
    rf.build(tmp_path / "rf12", per_pair=(1, 1, 2), num_frames=12, size=32, sources=sources, folds=(("a",), ("b",)))
    longer = run_fold(tmp_path / "rf", config, 0, 0, out, [], reuse=True, test_data=tmp_path / "rf12")
    assert longer["checkpoint"] == second["checkpoint"]
    assert reused["unseen"]["clips"] == 2 * len(rf.PAIRS) * 3 and longer["unseen"]["clips"] == 2 * len(rf.PAIRS) * 4

    # captions alone: no action head, so no top-1; the captions are still scored
    alone = run_fold(tmp_path / "rf", config, 0, 0, tmp_path / "alone", ["--trainer.max_epochs", "1"], labels=False)
    ckpt = torch.load(alone["checkpoint"], map_location="cpu", weights_only=False)
    assert not ckpt["hyper_parameters"].get("classes")
    assert alone["unseen"]["top1"] is None and 0.0 <= alone["unseen"]["caption_action"] <= 1.0
