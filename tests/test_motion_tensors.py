"""motion_tensors: a motion input passed with the frames stays the motion of the transformed frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from vidrec.data.clips import ClipSpec, read_clip
from vidrec.data.motion import camera_motion, flow_images, flow_statistics, mirror_flow_statistics
from vidrec.data.motion_tensors import FlowImages, FlowStatistics, as_motion_tensor
from vidrec.data.transforms import IMAGENET, three_crop_transform, to_video_tensor, train_transform

ALWAYS_FLIP = v2.Compose([v2.RandomHorizontalFlip(p=1.0)])


def _panning_right_and_down(frames: int = 8, size: int = 96, seed: int = 0) -> np.ndarray:
    """uint8 (T, S, S, 3): a blurred texture moving 3 px right and 1 px down per frame."""
    texture = cv2.GaussianBlur(np.random.default_rng(seed).integers(0, 256, (220, 260, 3), dtype=np.uint8), (7, 7), 0)
    return np.stack([texture[60 - t : 60 - t + size, 100 - 3 * t : 100 - 3 * t + size] for t in range(frames)])


def _plain(t: torch.Tensor) -> torch.Tensor:
    return t.as_subclass(torch.Tensor)


def test_flipped_flow_images_are_the_flow_images_of_the_flipped_video():
    frames = _panning_right_and_down()
    _, flipped = ALWAYS_FLIP(to_video_tensor(frames[1:]), as_motion_tensor(flow_images(frames)))
    assert isinstance(flipped, FlowImages)
    of_mirror = flow_images(np.ascontiguousarray(frames[:, :, ::-1]))  # (T-1, H, W, 3)
    got = _plain(flipped).permute(0, 2, 3, 1).numpy().astype(int)
    assert np.abs(got - of_mirror).mean() < 1.0
    # A plain image flip keeps x-motion pointing the old way: far off.
    assert np.abs(np.flip(flow_images(frames), 2).astype(int) - of_mirror).mean() > 5.0
    # x-motion now points left (below grey), y-motion still down (above grey).
    assert got[..., 0].mean() < 124 and got[..., 1].mean() > 129


def test_flipped_flow_statistics_are_those_of_the_flipped_video():
    frames = _panning_right_and_down()
    stats = flow_statistics(frames)  # (T-1, 63)
    _, flipped = ALWAYS_FLIP(to_video_tensor(frames), as_motion_tensor(stats))
    assert isinstance(flipped, FlowStatistics)
    of_mirror = flow_statistics(np.ascontiguousarray(frames[:, :, ::-1]))
    assert np.abs(_plain(flipped).numpy() - of_mirror).mean() < 0.05 * np.abs(of_mirror).mean()
    assert np.abs(stats - of_mirror).mean() > 0.5 * np.abs(of_mirror).mean()
    # The camera's pan: x negated, y kept, in the layout camera_motion writes.
    pan = camera_motion(frames)[:, :2].mean(axis=0)
    flipped_pan = _plain(flipped)[:, 54:56].mean(dim=0).numpy()
    assert pan[0] > 1 and flipped_pan[0] == pytest.approx(-pan[0], rel=1e-5) and flipped_pan[1] == pytest.approx(pan[1], rel=1e-5)
    # Mirroring twice is the identity, for NumPy and torch alike.
    np.testing.assert_allclose(mirror_flow_statistics(mirror_flow_statistics(stats)), stats)
    assert torch.equal(mirror_flow_statistics(mirror_flow_statistics(torch.from_numpy(stats))), torch.from_numpy(stats))


def test_colour_jitter_changes_the_frames_but_not_the_flow_images():
    frames = _panning_right_and_down()
    flow = as_motion_tensor(flow_images(frames))
    jitter = v2.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.2)
    torch.manual_seed(0)
    pictures, out = jitter(to_video_tensor(frames[1:]), flow)
    assert not torch.equal(_plain(pictures), _plain(to_video_tensor(frames[1:])))
    assert torch.equal(_plain(out), _plain(flow))


def test_crops_and_normalisation_pass_flow_statistics_through_and_three_crop_repeats_them():
    frames = _panning_right_and_down()
    stats = np.concatenate([np.zeros((1, 63), np.float32), flow_statistics(frames)])  # (T, 63), as motion_input lines them up
    no_flip = train_transform(64, IMAGENET, hflip=False, color_jitter=0.3)
    clip, out = no_flip(to_video_tensor(frames), as_motion_tensor(stats))
    assert clip.shape == (8, 3, 64, 64) and torch.equal(_plain(out), torch.from_numpy(stats))
    crops, repeated = three_crop_transform(64)(to_video_tensor(frames), as_motion_tensor(stats))
    assert crops.shape == (3, 8, 3, 64, 64) and repeated.shape == (3, 8, 63)
    assert all(torch.equal(_plain(r), torch.from_numpy(stats)) for r in repeated)


@pytest.mark.parametrize("motion", ["flow", "flow_stats"])
def test_read_clip_flips_the_motion_input_with_the_frames(tmp_path, make_video, motion):
    # A real encoded video through read_clip: with a flip in the transform, the clip's motion
    # says "left" where the unflipped clip's says "right".
    path = make_video(tmp_path / "pan.avi", _panning_right_and_down(frames=16))
    spec = ClipSpec(num_frames=8, frame_size=96, motion=motion)
    plain = read_clip(path, spec, v2.Compose([v2.ToDtype(torch.float32, scale=True)]))
    flipped = read_clip(path, spec, v2.Compose([v2.RandomHorizontalFlip(p=1.0), v2.ToDtype(torch.float32, scale=True)]))
    assert torch.equal(flipped.frames, plain.frames.flip(-1))
    if motion == "flow":  # images scaled to [0, 1]: x-motion channel around 128/255
        grey = 128 / 255
        assert plain.motion[1:, 0].mean() > grey + 0.02 and flipped.motion[1:, 0].mean() < grey - 0.02
        assert torch.allclose(flipped.motion[1:, 1], plain.motion[1:, 1].flip(-1))  # y-motion only mirrored
    else:
        assert plain.motion[1:, 54].mean() > 1 and torch.allclose(flipped.motion, mirror_flow_statistics(plain.motion))
