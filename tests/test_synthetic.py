"""vidrec.data.synthetic: real decodable videos, labels, captions, reversed pairs, determinism."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vidrec.data.decode import open_video
from vidrec.data.manifest import read_classes, read_manifest
from vidrec.data.synthetic import (
    ACTIONS,
    COLORS,
    REVERSED_PAIRS,
    SHAPES,
    ClipSpec,
    generate,
    render_clip,
)

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    generate(out, num_clips=24, size=48, num_frames=8)
    return out


def all_records(folder: Path):
    return [r for split in SPLITS for r in read_manifest(folder / f"{split}.jsonl")]


def words_of(caption: str) -> set[str]:
    return set(caption.lower().split())


# --------------------------------------------------------------------------------------
# generate(): files, manifests, classes
# --------------------------------------------------------------------------------------


def test_generate_writes_manifests_and_classes(dataset):
    for split in SPLITS:
        assert (dataset / f"{split}.jsonl").is_file()
    classes = read_classes(dataset / "classes.txt")
    assert len(classes) >= 10
    assert classes == sorted(classes) == list(ACTIONS)
    records = all_records(dataset)
    assert len(records) == 24
    assert {r.label for r in records} == set(classes)
    assert len({r.video for r in records}) == 24  # one file per clip
    # manifests store paths relative to their folder, so the dataset folder can be moved
    first_line = (dataset / "train.jsonl").read_text().splitlines()[0]
    assert '"video": "videos/' in first_line


def test_generated_videos_decode_with_the_requested_size_and_length(dataset):
    records = all_records(dataset)
    for record in records[::3]:
        assert Path(record.video).is_file()
        for backend in ("decord", "opencv"):
            with open_video(record.video, backend) as reader:
                assert reader.num_frames == 8
                frames = reader.get_frames(range(8))
            assert frames.shape == (8, 48, 48, 3)
            assert frames.std() > 1.0  # a picture, not a blank


def test_every_clip_has_captions_naming_its_colour_and_shape(dataset):
    for record in all_records(dataset):
        assert len(record.captions) >= 2
        colours = {c for c in COLORS if c in words_of(record.captions[0])}
        shapes = {s for s in SHAPES if s in words_of(record.captions[0])}
        assert len(colours) == 1 and len(shapes) == 1, record.captions
        for caption in record.captions:
            assert colours <= words_of(caption) and shapes <= words_of(caption), record.captions
        assert len(set(record.captions)) == len(record.captions)


def test_captioned_colour_is_the_colour_in_the_video(dataset):
    # The caption must describe the pixels: of the whole palette, the captioned colour is
    # the one that some pixel of the decoded clip comes closest to.
    for record in all_records(dataset):
        (colour,) = {c for c in COLORS if c in words_of(record.captions[0])}
        with open_video(record.video) as reader:
            frames = reader.get_frames(range(reader.num_frames)).astype(np.float32)
        nearest = {
            name: float(np.sqrt(((frames - np.array(rgb, np.float32)) ** 2).sum(-1)).min())
            for name, rgb in COLORS.items()
        }
        assert min(nearest, key=nearest.get) == colour, (record.video, colour, nearest)


def test_splits_are_stratified_by_class(tmp_path):
    generate(tmp_path, num_clips=60, size=32, num_frames=4, seed=3)
    labels = {split: Counter(r.label for r in read_manifest(tmp_path / f"{split}.jsonl")) for split in SPLITS}
    assert set(labels["train"]) == set(ACTIONS)  # every class is trained on
    # 5 clips a class: 1 val, 1 test, 3 train (15% each, rounded), the same for every class
    assert all(labels["train"][a] == 3 for a in ACTIONS)
    assert all(labels["val"][a] == 1 for a in ACTIONS)
    assert all(labels["test"][a] == 1 for a in ACTIONS)
    videos = [set(r.video for r in read_manifest(tmp_path / f"{s}.jsonl")) for s in SPLITS]
    assert not (videos[0] & videos[1]) and not (videos[0] & videos[2]) and not (videos[1] & videos[2])


def test_tiny_dataset_still_trains_on_every_class(dataset):
    labels = Counter(r.label for r in read_manifest(dataset / "train.jsonl"))
    assert set(labels) == set(ACTIONS)


# --------------------------------------------------------------------------------------
# determinism
# --------------------------------------------------------------------------------------


def test_same_seed_same_dataset_different_seed_different_dataset(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, num_clips=12, size=32, num_frames=4, seed=7)
    generate(b, num_clips=12, size=32, num_frames=4, seed=7)
    generate(c, num_clips=12, size=32, num_frames=4, seed=8)
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "classes.txt"):
        assert (a / name).read_text() == (b / name).read_text()
    assert (a / "train.jsonl").read_text() != (c / "train.jsonl").read_text()
    for ra, rb in zip(read_manifest(a / "train.jsonl"), read_manifest(b / "train.jsonl")):
        with open_video(ra.video) as va, open_video(rb.video) as vb:
            np.testing.assert_array_equal(va.get_frames(range(4)), vb.get_frames(range(4)))


def test_render_clip_is_deterministic_and_seed_dependent():
    spec = ClipSpec("move_right", "red", "circle", seed=11)
    a = render_clip(spec, num_frames=6, size=40)
    b = render_clip(spec, num_frames=6, size=40)
    assert a.shape == (6, 40, 40, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    other = render_clip(ClipSpec("move_right", "red", "circle", seed=12), num_frames=6, size=40)
    assert not np.array_equal(a, other)


# --------------------------------------------------------------------------------------
# reversed pairs: same frames, opposite order
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("forward,reverse", sorted(REVERSED_PAIRS.items()))
@pytest.mark.parametrize("seed", [0, 5])
def test_reverse_action_is_the_forward_clip_played_backwards(forward, reverse, seed):
    colour, shape = sorted(COLORS)[seed % len(COLORS)], SHAPES[seed % len(SHAPES)]
    fwd = render_clip(ClipSpec(forward, colour, shape, seed), num_frames=8, size=48)
    rev = render_clip(ClipSpec(reverse, colour, shape, seed), num_frames=8, size=48)
    np.testing.assert_array_equal(rev, fwd[::-1])
    # ...and it is not the same clip: the order carries the label
    assert not np.array_equal(rev, fwd)


def test_forward_actions_really_move_grow_or_change():
    size, n = 48, 8
    kw = dict(num_frames=n, size=size)

    def shape_stats(frames: np.ndarray, rgb) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per frame: pixel count, x centre, y centre of pixels near the shape's colour."""
        dist = np.sqrt(((frames.astype(np.float32) - np.array(rgb, np.float32)) ** 2).sum(-1))
        mask = dist < 60  # (T, H, W)
        ys, xs = np.mgrid[:size, :size]
        area = mask.sum(axis=(1, 2))
        cx = (mask * xs).sum(axis=(1, 2)) / np.maximum(area, 1)
        cy = (mask * ys).sum(axis=(1, 2)) / np.maximum(area, 1)
        return area, cx, cy

    white = COLORS["white"]
    area, cx, cy = shape_stats(render_clip(ClipSpec("move_right", "white", "square", 1), **kw), white)
    assert cx[-1] - cx[0] > 8 and abs(cy[-1] - cy[0]) < 2
    area, cx, cy = shape_stats(render_clip(ClipSpec("move_down", "white", "square", 1), **kw), white)
    assert cy[-1] - cy[0] > 8 and abs(cx[-1] - cx[0]) < 2
    area, _, _ = shape_stats(render_clip(ClipSpec("grow", "white", "circle", 1), **kw), white)
    assert area[-1] > 3 * max(area[0], 1)
    area, _, _ = shape_stats(render_clip(ClipSpec("appear", "white", "circle", 1), **kw), white)
    assert area[0] == 0 and area[-1] > 20
    bright = render_clip(ClipSpec("brighten", "white", "circle", 1), **kw).astype(np.float32)
    assert bright[-1].mean() > 2 * bright[0].mean()


def test_unknown_action_is_rejected():
    with pytest.raises(ValueError):
        render_clip(ClipSpec("teleport", "red", "circle", 0), num_frames=4, size=32)


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------


def test_cli_writes_a_dataset_and_prints_a_summary(tmp_path):
    out = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "vidrec.data.synthetic", "--out", str(out), "--num-clips", "24", "--seed", "1", "--size", "48"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 24 clips" in result.stdout
    assert "12 actions" in result.stdout
    assert str(out) in result.stdout
    records = all_records(out)
    assert len(records) == 24
    with open_video(records[0].video) as reader:
        assert reader.num_frames == 16  # the CLI default
        assert reader.get_frames([0]).shape == (1, 48, 48, 3)
