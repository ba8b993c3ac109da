"""Manifest time ranges: `start`/`end` pick frames inside the range; a start past the end is an error."""

from __future__ import annotations

import numpy as np

from vidrec.data.clips import ClipSpec
from vidrec.data.datasets import ClipDataset, collate_clips
from vidrec.data.manifest import ClipRecord
from vidrec.data.transforms import to_video_tensor


def _identity(video):
    return video  # uint8 (T, 3, H, W): the raw frames, so pixel values identify frame indices


def test_start_end_select_frames_inside_the_range(lossless_video):
    path, frames = lossless_video  # 40 frames at 10 fps: frame i shows second i / 10
    ds = ClipDataset([ClipRecord(str(path), start=1.0, end=2.0)], ClipSpec(num_frames=4), _identity, train=False)
    got = ds[0]["frames"].numpy()  # (4, 3, H, W)
    expected = to_video_tensor(frames[[11, 13, 16, 18]]).numpy()  # eval segment centres of frames 10..19
    np.testing.assert_array_equal(got, expected)


def test_start_past_the_end_is_skipped_with_a_reason(lossless_video):
    path, _ = lossless_video
    ds = ClipDataset([ClipRecord(str(path), start=120.0, end=130.0)], ClipSpec(num_frames=4), _identity)
    batch = collate_clips([ds[0]])
    assert batch["size"] == 0
    (skipped,) = batch["skipped"]
    assert skipped.video == str(path) and "past the end" in skipped.reason
    assert str(skipped) == f"{path}: {skipped.reason}"
