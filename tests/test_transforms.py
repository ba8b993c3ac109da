"""vidrec.data.transforms: one random draw per clip, exact normalisation, flip/jitter switches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from vidrec.data.transforms import (
    IMAGENET,
    TF_MINUS_ONE_ONE,
    Normalization,
    eval_transform,
    to_video_tensor,
    train_transform,
)

T = 6


def random_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def still_clip(h: int = 48, w: int = 64, seed: int = 0) -> tv_tensors.Video:
    """T copies of one random frame, as the reader would hand them over."""
    return to_video_tensor(np.repeat(random_frame(h, w, seed)[None], T, axis=0))


def normalize(x: torch.Tensor, norm: Normalization) -> torch.Tensor:
    mean = torch.tensor(norm.mean).view(3, 1, 1)
    std = torch.tensor(norm.std).view(3, 1, 1)
    return (x.float() / 255 - mean) / std


# --------------------------------------------------------------------------------------
# to_video_tensor
# --------------------------------------------------------------------------------------


def test_to_video_tensor_layout():
    frames = np.random.default_rng(1).integers(0, 256, (T, 20, 30, 3), dtype=np.uint8)
    video = to_video_tensor(frames)
    assert isinstance(video, tv_tensors.Video)
    assert video.shape == (T, 3, 20, 30) and video.dtype == torch.uint8
    np.testing.assert_array_equal(video.numpy(), frames.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("shape", [(20, 30, 3), (T, 20, 30), (T, 3, 20, 30), (T, 20, 30, 4)])
def test_to_video_tensor_rejects_other_layouts(shape):
    with pytest.raises(ValueError):
        to_video_tensor(np.zeros(shape, np.uint8))


# --------------------------------------------------------------------------------------
# train preset
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("color_jitter", [0.0, 0.4])
def test_train_draws_one_crop_flip_jitter_per_clip(color_jitter):
    # Every input frame is identical, so any per-frame randomness shows up as output
    # frames that differ from each other.
    transform = train_transform(32, scale=(0.08, 1.0), hflip=True, color_jitter=color_jitter)
    clip = still_clip()
    outputs = []
    for seed in range(12):
        torch.manual_seed(seed)
        out = transform(clip)
        for t in range(1, T):
            torch.testing.assert_close(out[t], out[0], rtol=0, atol=0)
        outputs.append(out[0])
    # ...and the draws do differ between clips (the augmentation is on)
    assert len({tuple(o.flatten()[:64].tolist()) for o in outputs}) > 6


@pytest.mark.parametrize("size,hw", [(32, (48, 64)), (24, (40, 40)), (56, (36, 50))])
def test_train_output_shape_and_dtype(size, hw):
    out = train_transform(size, color_jitter=0.2)(still_clip(*hw))
    assert out.shape == (T, 3, size, size)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def full_view(clip: torch.Tensor, size: int, norm: Normalization = IMAGENET) -> torch.Tensor:
    """The whole (square) frame resized to size x size and normalised, unflipped."""
    resized = F.resize(clip.as_subclass(torch.Tensor), [size, size], antialias=True)
    return normalize(resized, norm)


def test_train_without_flip_never_flips():
    # scale=(1, 1) on a square clip: RandomResizedCrop can only take the whole frame
    # (any aspect ratio but 1 overflows, so it falls back to the full square), which
    # leaves the flip as the only random step.
    clip = still_clip(40, 40, seed=3)
    expected = full_view(clip, 32)
    transform = train_transform(32, scale=(1.0, 1.0), hflip=False)
    for seed in range(25):
        torch.manual_seed(seed)
        torch.testing.assert_close(transform(clip), expected, atol=1e-5, rtol=0)


def test_train_with_flip_flips_some_clips_whole():
    clip = still_clip(40, 40, seed=3)
    expected = full_view(clip, 32)
    mirrored = expected.flip(-1)
    assert not torch.allclose(expected, mirrored)  # the clip is not left-right symmetric
    transform = train_transform(32, scale=(1.0, 1.0), hflip=True)
    flipped = 0
    for seed in range(25):
        torch.manual_seed(seed)
        out = transform(clip)
        if torch.allclose(out, mirrored, atol=1e-5):
            flipped += 1
        else:
            torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert 3 <= flipped <= 22  # p = 0.5 over 25 draws


def test_color_jitter_changes_pixels_only_when_enabled():
    clip = still_clip(40, 40, seed=4)
    expected = full_view(clip, 32)
    plain = train_transform(32, scale=(1.0, 1.0), hflip=False, color_jitter=0.0)
    jitter = train_transform(32, scale=(1.0, 1.0), hflip=False, color_jitter=0.4)
    for seed in range(8):
        torch.manual_seed(seed)
        torch.testing.assert_close(plain(clip), expected, atol=1e-5, rtol=0)
        torch.manual_seed(seed)
        out = jitter(clip)
        assert out.shape == expected.shape
        assert (out - expected).abs().mean() > 1e-3


def test_train_crops_come_from_the_clip():
    # A clip that is one flat colour stays that colour whatever is cropped/flipped.
    clip = to_video_tensor(np.full((T, 48, 64, 3), (200, 100, 50), np.uint8))
    torch.manual_seed(0)
    out = train_transform(32)(clip)
    expected = normalize(torch.tensor([200, 100, 50]).view(3, 1, 1), IMAGENET).expand(T, 3, 32, 32)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------------
# eval preset and normalisation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", [IMAGENET, TF_MINUS_ONE_ONE, Normalization((0.1, 0.2, 0.3), (0.5, 0.25, 2.0))])
@pytest.mark.parametrize("value", [0, 77, 128, 255])
def test_eval_normalises_with_the_given_mean_and_std(norm, value):
    clip = to_video_tensor(np.full((T, 50, 70, 3), value, np.uint8))
    out = eval_transform(32, norm)(clip)
    assert out.shape == (T, 3, 32, 32) and out.dtype == torch.float32
    for c in range(3):
        want = (value / 255 - norm.mean[c]) / norm.std[c]
        torch.testing.assert_close(out[:, c], torch.full((T, 32, 32), want), atol=1e-5, rtol=0)


def test_tf_normalisation_maps_to_minus_one_one():
    clip = to_video_tensor(np.stack([np.zeros((40, 40, 3)), np.full((40, 40, 3), 255)]).astype(np.uint8))
    out = eval_transform(32, TF_MINUS_ONE_ONE)(clip)
    torch.testing.assert_close(out[0], torch.full((3, 32, 32), -1.0))
    torch.testing.assert_close(out[1], torch.full((3, 32, 32), 1.0))


def test_eval_is_deterministic_and_keeps_orientation():
    # left half dark, right half bright, top band red: a flip or transpose would show
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, 32:] = 220
    frame[:6, :, 0] = 255
    clip = to_video_tensor(np.repeat(frame[None], T, axis=0))
    transform = eval_transform(32, IMAGENET)
    torch.manual_seed(0)
    a = transform(clip)
    torch.manual_seed(1)
    b = transform(clip)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    gray = a.mean(dim=1)  # (T, 32, 32)
    assert (gray[:, :, :12].mean() < gray[:, :, -12:].mean() - 2).item()
    # resize 48->37 rows, centre-crop 32 cuts 2 rows off the top: the red band (rows 0-5 of
    # 48, ~0-4 of 37) is still at the top of the output, not at the bottom
    assert (a[:, 0, 0, 0] > a[:, 0, 20, 0]).all()


@pytest.mark.parametrize("size,resize,hw", [(32, None, (48, 64)), (32, 32, (48, 64)), (64, None, (100, 80))])
def test_eval_output_shape(size, resize, hw):
    out = eval_transform(size, resize=resize)(still_clip(*hw))
    assert out.shape == (T, 3, size, size)
    assert out.dtype == torch.float32
