"""The long-range memory clips (vidrec/data/memory_clips.py) and the memory demo (vidrec/apps/memory_demo.py).

The clips must say their class only in the first frames: the decoded video shows the class
colour's flash in exactly the event frames, and every later frame is the same for every class.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidrec.data.clips import ClipSpec, read_clip
from vidrec.data.decode import open_video
from vidrec.data.manifest import read_classes, read_manifest
from vidrec.data.memory_clips import EVENT_CLASSES, MemoryClip, event_length, generate_memory, render_memory_clip
from vidrec.data.synthetic import COLORS, write_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N, S = 32, 32  # frames per clip, frame size (px)


def _decode_all(path) -> np.ndarray:
    """Every frame of a video, float (n, H, W, 3)."""
    with open_video(path) as reader:
        return reader.get_frames(list(range(reader.num_frames))).astype(float)


def _colour_fraction(frames: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Per frame, the fraction of pixels within 80 (RGB distance) of ``colour``: (n,).

    A flash pixel is 0.8 colour + 0.2 dark background, at most ~60 from the colour; the
    background and the grey ball are more than 100 from every class colour."""
    return (np.linalg.norm(frames - np.array(colour, float), axis=-1) < 80).mean(axis=(1, 2))


def test_event_length_is_the_first_tenth():
    assert event_length(64) == 7 and event_length(32) == 4 and event_length(5) == 1


@pytest.mark.parametrize("label", EVENT_CLASSES)
def test_decoded_flash_fills_the_event_frames_and_only_them(tmp_path, label):
    path = tmp_path / f"{label}.mp4"
    write_video(path, render_memory_clip(MemoryClip(label, seed=11), N, S), fps=16.0)
    frames = _decode_all(path)
    assert frames.shape == (N, S, S, 3)
    n_event = event_length(N)
    # The whole frame is tinted, except where the grey ball (under 5% of the frame) passes.
    assert (_colour_fraction(frames[:n_event], COLORS[label]) > 0.8).all()
    assert _colour_fraction(frames[n_event:], COLORS[label]).max() < 0.005
    for other in EVENT_CLASSES:  # no other class colour anywhere, ever
        if other != label:
            assert _colour_fraction(frames, COLORS[other]).max() < 0.005, other


def test_frames_after_the_event_are_the_same_for_every_class():
    clips = {label: render_memory_clip(MemoryClip(label, seed=5), N, S) for label in EVENT_CLASSES}
    n_event = event_length(N)
    reference = clips[EVENT_CLASSES[0]]
    for label, frames in clips.items():
        np.testing.assert_array_equal(frames[n_event:], reference[n_event:], err_msg=label)  # bit for bit
    # ... while the event frames differ, between every pair of classes.
    for a in EVENT_CLASSES:
        for b in EVENT_CLASSES:
            if a < b:
                assert np.abs(clips[a][:n_event].astype(int) - clips[b][:n_event]).mean() > 20, (a, b)
    # Another seed is another clip: the seed, not the class, decides what follows the event.
    other = render_memory_clip(MemoryClip(EVENT_CLASSES[0], seed=6), N, S)
    assert not np.array_equal(other[n_event:], reference[n_event:])


def test_decoded_frames_after_the_first_keyframe_past_the_event_are_identical(tmp_path):
    # A lossy codec predicts frames from earlier ones, so the event can leave a faint ghost
    # (about 1 grey level) until the next keyframe; after that, decoded frames are equal too.
    decoded = {}
    for label in ("red", "blue"):
        write_video(tmp_path / f"{label}.mp4", render_memory_clip(MemoryClip(label, seed=2), N, S), fps=16.0)
        decoded[label] = _decode_all(tmp_path / f"{label}.mp4")
    diff = np.abs(decoded["red"] - decoded["blue"]).mean(axis=(1, 2, 3))  # (n,)
    n_event = event_length(N)
    assert diff[:n_event].min() > 5  # the event differs
    assert diff[n_event:].max() < 3  # at most a ghost...
    assert (diff[n_event:] == 0).any()  # ...that ends
    assert diff[-1] == 0


def test_generated_dataset_is_balanced_and_labelled_by_the_event(tmp_path):
    splits = generate_memory(tmp_path, num_clips=12, seed=1, num_frames=N, size=S)
    assert read_classes(tmp_path / "classes.txt") == list(EVENT_CLASSES)
    for name, records in splits.items():
        assert read_manifest(tmp_path / f"{name}.jsonl") == records
        assert sorted({r.label for r in records}) == sorted(EVENT_CLASSES)  # every split has every class
    n_event = event_length(N)
    for record in splits["test"]:
        frames = _decode_all(record.video)
        fraction = _colour_fraction(frames, COLORS[record.label])  # (n,)
        assert (fraction[:n_event] > 0.8).all(), (record, fraction[:n_event])
        assert fraction[n_event:].max() < 0.005, record
        for other in EVENT_CLASSES:  # no other class colour anywhere
            if other != record.label:
                assert _colour_fraction(frames, COLORS[other]).max() < 0.005, (record, other)


def test_feature_slices_equal_features_of_the_sampled_clip(tmp_path):
    # The demo runs the backbone once over every frame and slices T of them; that must be
    # what a clip sampled with `sampling: uniform, num_frames: T` gives through the backbone.
    from vidrec.apps.memory_demo import FeatureSplit, extract_features
    from vidrec.models.backbone import FrozenBackbone

    path = tmp_path / "clip.mp4"
    write_video(path, render_memory_clip(MemoryClip("green", 3), N, S), fps=16.0)
    backbone = FrozenBackbone(backbone="resnet18", weights="none")
    every = FeatureSplit(extract_features(backbone, [str(path)], S), torch.zeros(1, dtype=torch.int64))
    assert every.features.shape[:2] == (1, N)
    for T in (4, 8):
        spec = ClipSpec(num_frames=T, sampling="uniform", frame_size=S, resize=S)
        with torch.inference_mode():
            direct = backbone(read_clip(path, spec, spec.eval_transform(backbone.normalization)).frames[None])  # (1, T, D)
        torch.testing.assert_close(every.sampled(T), direct, atol=1e-5, rtol=1e-4)


def test_memory_demo_quick_runs_end_to_end(tmp_path, capsys):
    from vidrec.apps.memory_demo import TEMPORAL_MODELS, main

    summary = main(["--quick", "--out", str(tmp_path)])
    results = summary["results"]
    assert {(r["temporal"], r["num_frames"]) for r in results} == {(k, t) for k in TEMPORAL_MODELS for t in (4, 8)}
    assert all(0.0 <= r["test_top1"] <= 1.0 for r in results)

    table = (tmp_path / "table.md").read_text()
    assert "| temporal model | T=4 | T=8 |" in table
    for kind in TEMPORAL_MODELS:
        assert f"| `{kind}` |" in table
    png = tmp_path / "accuracy_vs_T.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(summary["gate_pictures"]) == [str(tmp_path / "gru_gates_T8.png"), str(tmp_path / "lstm_gates_T8.png")]
    assert all((tmp_path / p).stat().st_size > 1000 for p in summary["gate_pictures"])
    assert json.loads((tmp_path / "results.json").read_text())["results"] == results
    assert table in capsys.readouterr().out

    # A second run reuses the clips and the cached features, and measures the same.
    again = main(["--quick", "--out", str(tmp_path), "--lengths", "8"])
    out = capsys.readouterr().out
    assert "generated" not in out and "backbone features" not in out
    first = {r["temporal"]: r for r in results if r["num_frames"] == 8}
    for r in again["results"]:
        assert {**r, "seconds": 0} == {**first[r["temporal"]], "seconds": 0}
