"""Predictor: whole-video and windowed prediction from a real checkpoint on real video files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vidrec.apps.infer_cli import expand_inputs
from vidrec.checkpoint import CaptionSettings, CheckpointError, load_checkpoint
from vidrec.data.clips import ClipSpec as FrameSpec
from vidrec.data.decode import open_video
from vidrec.data.manifest import read_manifest
from vidrec.data.sampling import segment_indices
from vidrec.data.synthetic import ACTIONS, COLORS, SHAPES, ClipSpec, render_clip
from vidrec.data.transforms import IMAGENET, eval_transform, to_video_tensor
from vidrec.inference.predictor import Predictor, resolve_device
from vidrec.inference.results import ActionScore, Prediction, PredictionStats, WindowPrediction
from vidrec.inference.windows import window_plan

FPS = 8.0


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ckpt_meta(tiny_checkpoint) -> dict:
    return torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint) -> Predictor:
    return Predictor.from_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def informative_checkpoint(ckpt_meta, tmp_path_factory) -> Path:
    """The tiny checkpoint's classes, vocabulary and data settings on an untrained ResNet-18 model.

    Written by hand from a fixed seed, so the comparisons below (batched with single
    predictions, a window with its excerpt) do not depend on what two epochs of training
    happened to learn; a random-init ResNet-18's outputs depend on the input.
    """
    import pytorch_lightning as pl

    from vidrec.training.lit_module import VidRecModule

    hp = ckpt_meta["hyper_parameters"]
    torch.manual_seed(0)
    module = VidRecModule(
        classes=hp["classes"], vocab=hp["vocab"], backbone="resnet18", weights="none",
        hidden_size=32, caption_embed_dim=16, caption_hidden_size=32,
    )
    path = tmp_path_factory.mktemp("informative") / "resnet18.ckpt"
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "datamodule_hyper_parameters": dict(ckpt_meta["datamodule_hyper_parameters"]),
            "pytorch-lightning_version": pl.__version__,
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def informative(informative_checkpoint) -> Predictor:
    return Predictor.from_checkpoint(informative_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def test_clips(tiny_dataset) -> list[str]:
    return [r.video for r in read_manifest(tiny_dataset / "test.jsonl")]


def _long_frames(num_clips: int, frames_per_clip: int = 16, size: int = 48) -> np.ndarray:
    """Several different synthetic clips back to back: uint8 (N, size, size, 3)."""
    clips = [
        render_clip(ClipSpec(ACTIONS[i % len(ACTIONS)], list(COLORS)[i % len(COLORS)], SHAPES[i % len(SHAPES)], 100 + i),
                    frames_per_clip, size)
        for i in range(num_clips)
    ]
    return np.concatenate(clips)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory, make_video) -> tuple[Path, np.ndarray]:
    """A 20 s lossless video (160 frames at 8 fps) and its exact frames."""
    frames = _long_frames(10)
    path = make_video(tmp_path_factory.mktemp("long") / "long.avi", frames, "FFV1", FPS)
    return path, frames


def _probs(pred) -> dict[str, float]:
    return {a.label: a.prob for a in pred.actions}


def _assert_same(a, b, tol: float = 1e-5) -> None:
    assert [x.label for x in a.actions] == [x.label for x in b.actions]
    assert np.allclose([x.prob for x in a.actions], [x.prob for x in b.actions], atol=tol)
    assert a.caption == b.caption


# --------------------------------------------------------------------------------------
# Whole videos
# --------------------------------------------------------------------------------------


def test_predict_returns_valid_distribution_and_caption(predictor, ckpt_meta, test_clips):
    classes = ckpt_meta["hyper_parameters"]["classes"]
    words = set(ckpt_meta["hyper_parameters"]["vocab"]) - {"<pad>", "<bos>", "<eos>"}
    assert predictor.classes == classes
    assert predictor.clip.num_frames == ckpt_meta["datamodule_hyper_parameters"]["num_frames"]
    assert predictor.clip.frame_size == ckpt_meta["datamodule_hyper_parameters"]["frame_size"]
    for video in test_clips[:4]:
        pred = predictor.predict(video, topk=5)
        assert pred.error is None and pred.video == video and pred.timeline is None
        probs = [a.prob for a in pred.actions]
        assert len(pred.actions) == 5
        assert all(0.0 <= p <= 1.0 for p in probs)
        assert probs == sorted(probs, reverse=True)
        assert sum(probs) <= 1.0 + 1e-6
        assert {a.label for a in pred.actions} <= set(classes)
        assert len({a.label for a in pred.actions}) == 5
        assert isinstance(pred.caption, str)
        assert set(pred.caption.split()) <= words  # vocabulary words only
        assert len(pred.caption.split()) <= predictor.caption.max_caption_len
        assert pred.stats == PredictionStats(frames_encoded=predictor.clip.num_frames)
    # every class when topk exceeds the class count, summing to 1
    full = predictor.predict(test_clips[0], topk=100)
    assert len(full.actions) == len(classes)
    assert sum(a.prob for a in full.actions) == pytest.approx(1.0, abs=1e-5)


def test_predict_matches_the_eval_pipeline_by_hand(informative, test_clips):
    """Same frames, transform and network calls as validation, written out independently."""
    p = informative
    video = test_clips[3]
    with open_video(video, "decord") as reader:
        idx = segment_indices(reader.num_frames, p.clip.num_frames, train=False)
        frames = reader.get_frames(idx.tolist())
    # a weights="none" torchvision backbone was trained on inputs normalised with ImageNet statistics
    assert p.normalization == IMAGENET
    transform = eval_transform(p.clip.frame_size, IMAGENET, p.clip.resize)
    x = torch.as_tensor(transform(to_video_tensor(frames)))[None]  # (1, T, 3, S, S)
    c = p.caption
    with torch.no_grad():
        _, encoding = p.net.encode(frames=x)
        probs = p.net.action_head(encoding).softmax(-1)[0]
        ids = p.net.caption(encoding, c.beam_size, c.max_caption_len, c.length_penalty)[0]
    pred = p.predict(video, topk=3)
    top = probs.topk(3)
    assert [a.label for a in pred.actions] == [p.classes[i] for i in top.indices.tolist()]
    assert np.allclose([a.prob for a in pred.actions], top.values.tolist(), atol=1e-5)
    assert pred.caption == p.vocab.decode(ids.tolist())
    assert pred.caption  # an untrained decoder still says something


def test_predict_many_batches_and_matches_single(informative, test_clips):
    videos = test_clips[:5]
    batch_shapes = []
    hook = informative.net.backbone.register_forward_hook(lambda m, args, out: batch_shapes.append(tuple(args[0].shape[:2])))
    try:
        many = informative.predict_many(videos, topk=5, batch_size=3)
    finally:
        hook.remove()
    T = informative.clip.num_frames
    assert batch_shapes == [(3, T), (2, T)]  # two backbone passes for five files
    assert [p.stats.frames_encoded for p in many] == [T] * 5  # each video's own cost
    assert [p.video for p in many] == videos
    singles = [informative.predict(v, topk=5) for v in videos]
    for a, b in zip(many, singles):
        _assert_same(a, b)
    # the clips really differ, so the comparison above means something
    assert len({tuple(round(x.prob, 6) for x in p.actions) for p in singles}) > 1


def test_bad_files_become_error_entries_and_the_rest_go_on(informative, test_clips, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    missing = tmp_path / "missing.mp4"
    good = test_clips[:3]
    videos = [good[0], str(corrupt), good[1], str(missing), good[2]]
    results = informative.predict_many(videos, batch_size=8)
    assert [r.video for r in results] == videos
    assert [r.ok for r in results] == [True, False, True, False, True]
    for r in (results[1], results[3]):
        # the reason only: the file is in ``video`` (the command line prints "ERROR <video>: <reason>")
        assert r.error and not r.error.startswith(r.video)
        assert r.actions == [] and r.caption is None and r.stats is None
    assert results[3].error == "file not found"
    # the good ones are exactly what they are on their own: no row got shifted by a failure
    for r, v in zip([results[0], results[2], results[4]], good):
        assert r.error is None
        _assert_same(r, informative.predict(v))
    # a single bad file is an error entry too, not an exception
    alone = informative.predict(missing)
    assert (alone.video, alone.error) == (str(missing), "file not found")


def test_device_selection(tiny_checkpoint):
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        resolve_device("tpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            Predictor.from_checkpoint(tiny_checkpoint, device="cuda")
    missing = Path(tiny_checkpoint).parent / "nope.ckpt"
    with pytest.raises(CheckpointError, match="checkpoint not found") as e:
        Predictor.from_checkpoint(missing, device="cpu")
    assert str(e.value) == f"{missing}: checkpoint not found"


def test_predictor_from_parts_equals_from_checkpoint(informative_checkpoint, test_clips):
    """A Predictor built from a loaded checkpoint's parts (how an app with its own network
    would) predicts what ``from_checkpoint`` does; the overrides reach it."""
    ckpt = load_checkpoint(informative_checkpoint)
    assert ckpt.clip == FrameSpec.from_hparams(torch.load(informative_checkpoint, weights_only=True)["datamodule_hyper_parameters"])
    beam = CaptionSettings(beam_size=3, max_caption_len=ckpt.caption.max_caption_len, length_penalty=ckpt.caption.length_penalty)
    by_hand = Predictor(ckpt.net, classes=ckpt.classes, vocab=ckpt.vocab, clip=FrameSpec(**{**ckpt.clip.to_dict(), "backend": "opencv"}),
                        normalization=ckpt.normalization, caption=beam, device="cpu")
    loaded = Predictor.from_checkpoint(informative_checkpoint, device="cpu", backend="opencv", beam_size=3)
    assert loaded.clip == by_hand.clip and loaded.clip.backend == "opencv"
    assert loaded.caption == beam
    for video in test_clips[:2]:
        a, b = by_hand.predict(video), loaded.predict(video)
        _assert_same(a, b)
        assert a.ok and a.actions and a.caption is not None
    with pytest.raises(ValueError, match="beam_size"):
        Predictor(ckpt.net, classes=ckpt.classes, caption=CaptionSettings(beam_size=0))


# --------------------------------------------------------------------------------------
# Windows over long videos
# --------------------------------------------------------------------------------------


def _expected_grid_frames(n: int, fps: float, T: int, starts_s: list[float], window: float) -> set[int]:
    """Independent statement of the grid rule: cell k reads the frame showing at (k + 0.5) * W / T."""
    dt = window / T
    cells = {round(s / dt) + k for s in starts_s for k in range(T)}
    return {min(int(math.floor((c + 0.5) * dt * fps + 1e-9)), n - 1) for c in cells}


def test_window_timeline_covers_video_and_encodes_each_frame_once(informative, long_video):
    path, frames = long_video
    T, n = informative.clip.num_frames, len(frames)
    duration = n / FPS  # 20 s
    pred = informative.predict(path, topk=3, window=2.0, stride=1.0)
    assert pred.error is None
    tl = pred.timeline
    assert [w.start for w in tl] == pytest.approx([float(s) for s in range(19)])
    assert [w.end for w in tl] == pytest.approx([float(s + 2) for s in range(19)])
    assert tl[0].start == 0.0 and tl[-1].end == pytest.approx(duration)
    for a, b in zip(tl, tl[1:]):
        assert b.start <= a.end  # no gaps: the windows cover the whole video
    for w in tl:
        assert len(w.actions) == 3 and isinstance(w.caption, str)
        assert [x.prob for x in w.actions] == sorted((x.prob for x in w.actions), reverse=True)
    stats = pred.stats
    expected = _expected_grid_frames(n, FPS, T, [w.start for w in tl], 2.0)
    assert stats.windows == 19
    assert stats.frames_encoded == stats.grid_frames == len(expected) == 40
    assert stats.frames_encoded < stats.windows * T  # overlapping windows share frames
    # the video-level answer is the mean of the windows' distributions
    mean = np.mean([w.probs for w in tl], axis=0)
    assert pred.actions[0].label == pred.classes[int(mean.argmax())]
    assert pred.actions[0].prob == pytest.approx(float(mean.max()), abs=1e-5)


def test_each_window_equals_predicting_its_excerpt(informative, long_video, make_video, tmp_path):
    """Reusing streamed per-frame features gives exactly what a fresh run on the excerpt gives."""
    path, frames = long_video
    informative.chunk_frames = 5  # chunk edges fall inside windows
    try:
        pred = informative.predict(path, topk=4, window=2.0, stride=1.0)
    finally:
        informative.chunk_frames = Predictor.chunk_frames
    for j in (0, 7, 18):
        w = pred.timeline[j]
        first, last = int(round(w.start * FPS)), int(round(w.end * FPS))
        excerpt = make_video(tmp_path / f"excerpt{j}.avi", frames[first:last], "FFV1", FPS)
        alone = informative.predict(excerpt, topk=4)
        assert [a.label for a in w.actions] == [a.label for a in alone.actions]
        assert np.allclose([a.prob for a in w.actions], [a.prob for a in alone.actions], atol=1e-5)
        assert w.caption == alone.caption


def test_window_memory_is_bounded_by_the_window_not_the_video(informative, make_video, tmp_path):
    T, W, S = informative.clip.num_frames, 2.0, 0.5
    bound = T + S * T / W + 1
    stats = {}
    for name, clips in (("short", 2), ("long", 10)):  # 4 s vs 20 s
        path = make_video(tmp_path / f"{name}.avi", _long_frames(clips, size=32), "FFV1", FPS)
        pred = informative.predict(path, window=W, stride=S)
        assert pred.error is None
        stats[name] = pred.stats
    assert stats["long"].frames_encoded > 4 * stats["short"].frames_encoded
    assert stats["long"].windows > 4 * stats["short"].windows
    for s in stats.values():
        assert 0 < s.max_buffered_frames <= bound
    assert stats["long"].max_buffered_frames == stats["short"].max_buffered_frames


def test_short_video_gives_one_window_equal_to_whole_video(informative, test_clips):
    video = test_clips[0]  # 8 frames at 8 fps = 1 s
    whole = informative.predict(video)
    windowed = informative.predict(video, window=4.0, stride=1.0)
    assert len(windowed.timeline) == 1
    w = windowed.timeline[0]
    assert (w.start, w.end) == (0.0, pytest.approx(1.0))
    _assert_same(whole, windowed)
    assert windowed.stats.windows == 1 and windowed.stats.frames_encoded == informative.clip.num_frames


def test_window_plan_rules():
    # regular windows, then one more ending at the video's end (20 s, W=3, S=2, T=4: cell 0.75 s)
    plan = window_plan(n=160, fps=8.0, num_frames=4, window=3.0, stride=2.0)
    starts = [s * plan.cell for s in plan.starts]
    assert starts[:-1] == pytest.approx([0.0, 2.25, 3.75, 6.0, 8.25, 9.75, 12.0, 14.25, 15.75])
    assert starts[-1] + 3.0 >= 20.0 > starts[-1] + 3.0 - plan.cell
    assert list(plan.cells()) == sorted(set(plan.cells()))
    # a stride finer than the grid cannot give two windows the same start
    fine = window_plan(n=80, fps=8.0, num_frames=4, window=2.0, stride=0.1)
    assert len(fine.starts) == len(set(fine.starts))
    # shorter than a window: no plan, the caller predicts the whole video once
    assert window_plan(n=10, fps=8.0, num_frames=4, window=2.0, stride=1.0) is None
    # more grid cells than frames per second: neighbouring cells share frames, never run past the end
    dense = window_plan(n=16, fps=8.0, num_frames=8, window=0.5, stride=0.25)
    frames = [dense.frame(c) for c in dense.cells()]
    assert frames == sorted(frames) and max(frames) <= 15 and len(set(frames)) < len(frames)


def test_window_arguments_are_checked(informative, test_clips):
    with pytest.raises(ValueError, match="stride needs a window"):
        informative.predict(test_clips[0], stride=1.0)
    with pytest.raises(ValueError):
        informative.predict(test_clips[0], window=0.0)
    with pytest.raises(ValueError):
        informative.predict(test_clips[0], topk=0)


# --------------------------------------------------------------------------------------
# Results as data
# --------------------------------------------------------------------------------------


def test_to_dict_json_round_trip(informative, test_clips, long_video):
    plain = informative.predict(test_clips[1], topk=2)
    d = plain.to_dict()
    assert set(d) == {"video", "actions", "caption", "error"}
    assert all(set(a) == {"label", "prob"} for a in d["actions"])
    back = Prediction.from_dict(json.loads(json.dumps(d)))
    assert back == plain

    windowed = informative.predict(long_video[0], topk=2, window=4.0, stride=4.0)
    d = json.loads(json.dumps(windowed.to_dict()))
    assert set(d) == {"video", "actions", "caption", "error", "timeline"}
    assert len(d["timeline"]) == 5
    assert all(set(w) == {"start", "end", "actions", "caption"} for w in d["timeline"])
    assert Prediction.from_dict(d) == windowed

    failed = Prediction(video="x.mp4", actions=[], caption=None, error="file not found")
    assert json.loads(json.dumps(failed.to_dict())) == {"video": "x.mp4", "actions": [], "caption": None, "error": "file not found"}
    assert not failed.ok and Prediction.from_dict(failed.to_dict()) == failed
    assert ActionScore("a", 0.5).to_dict() == {"label": "a", "prob": 0.5}
    assert WindowPrediction(0.0, 1.0, [], None).to_dict() == {"start": 0.0, "end": 1.0, "actions": [], "caption": None}


def test_python_api_is_importable_from_the_package():
    import vidrec
    from vidrec import Predictor as P
    from vidrec.inference import predictor as predict

    assert P is predict.Predictor and vidrec.Prediction is predict.Prediction
    assert isinstance(vidrec.__version__, str) and vidrec.__version__
    assert "Predictor" in dir(vidrec)


def test_expand_inputs(tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    for name in ("b.mp4", "a.AVI", "notes.txt", "c.webm"):
        (folder / name).write_bytes(b"x")
    (folder / "sub").mkdir()
    single = tmp_path / "one.mkv"
    single.write_bytes(b"x")
    got = expand_inputs([str(folder), str(tmp_path / "*.mkv"), str(tmp_path / "gone.mp4"), str(folder / "b.mp4"),
                         str(tmp_path / "*.nothing")])
    assert got == [str(folder / "a.AVI"), str(folder / "b.mp4"), str(folder / "c.webm"), str(single),
                   str(tmp_path / "gone.mp4"), str(tmp_path / "*.nothing")]


def test_a_folder_of_class_folders_says_how_to_read_them(tmp_path, capsys):
    """ROOT/<class>/<video>, as datasets/folders.py reads it: one level deep finds nothing."""
    root = tmp_path / "my_videos"
    for rel in ("zoom_in/a.mp4", "zoom_in/b.mp4", "pan_left/day1/c.mp4", "pan_left/notes.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    assert expand_inputs([str(root)]) == []
    note = capsys.readouterr().err.strip()
    assert note == f"note: {root} holds no videos itself (folders are read one level deep), but 3 in its sub-folders: pass '{root}/**/*.mp4'"
    got = expand_inputs([f"{root}/**/*.mp4"])  # the suggested pattern reads them all
    assert sorted(Path(v).name for v in got) == ["a.mp4", "b.mp4", "c.mp4"]
    assert expand_inputs([str(root / "zoom_in")]) == [str(root / "zoom_in" / "a.mp4"), str(root / "zoom_in" / "b.mp4")]
    assert capsys.readouterr().err == ""  # a folder with videos of its own: no note


# --------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------


def test_viz_plots(informative, long_video, test_clips, tmp_path):
    import cv2

    from vidrec.inference import viz

    windowed = informative.predict(long_video[0], topk=2, window=2.0, stride=1.0)
    out = viz.plot_timeline(windowed, tmp_path / "tl.png", top=3)
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 400
    # read back from JSON (top-k only) it still plots
    viz.plot_timeline(Prediction.from_dict(windowed.to_dict()), tmp_path / "tl_json.png")
    assert cv2.imread(str(tmp_path / "tl_json.png")) is not None
    with pytest.raises(ValueError, match="no timeline"):
        viz.plot_timeline(informative.predict(test_clips[0]), tmp_path / "none.png")
