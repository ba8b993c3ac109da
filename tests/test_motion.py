"""Motion inputs: signs of change survive, static video is neutral grey."""

import numpy as np
import pytest
import torch

from vidrec.data.motion import (
    feature_differences,
    flow_images,
    flow_to_image,
    frame_differences,
    camera_motion,
    grid_pool,
    motion_descriptor,
    optical_flow,
)


def _textured(size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth random texture (H, W, 3) uint8 that optical flow can lock on to."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
    return cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)


def _panning(shift: int, frames: int = 5, size: int = 64) -> np.ndarray:
    """Content moving ``shift`` px right per frame: (T, H, W, 3), cut from a wider texture."""
    wide = _textured(size * 2)
    start = size // 2
    return np.stack([wide[size // 2 : size // 2 + size, start + t * -shift : start + t * -shift + size] for t in range(frames)])


def test_static_video_gives_zero_differences_and_grey_flow():
    frame = _textured()
    video = np.stack([frame] * 4)  # (4, 64, 64, 3)
    d = frame_differences(video)
    assert d.shape == (3, 64, 64, 3) and d.dtype == np.uint8
    assert np.all(d == 128)
    flow = optical_flow(video)
    assert flow.shape == (3, 64, 64, 2)
    assert np.abs(flow).max() < 0.05
    img = flow_images(video)
    assert img.dtype == np.uint8 and np.abs(img.astype(int) - 128).max() <= 1


def test_brightening_and_darkening_have_opposite_difference_signs():
    base = _textured().astype(np.float32) * 0.5
    up = np.stack([np.clip(base * g, 0, 255) for g in (1.0, 1.1, 1.2)]).astype(np.uint8)
    down = up[::-1].copy()
    assert frame_differences(up).astype(int).mean() > 130
    assert frame_differences(down).astype(int).mean() < 126


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_sign_follows_pan_direction(method):
    right = _panning(shift=2)  # content moves right: camera pans left
    left = right[::-1].copy()  # the same frames reversed
    fx_right = np.median(optical_flow(right, method)[..., 0])
    fx_left = np.median(optical_flow(left, method)[..., 0])
    assert fx_right > 1.0 and fx_left < -1.0
    # rendered: channel 0 above grey for rightward motion, below for leftward
    assert flow_images(right, method)[..., 0].mean() > 135
    assert flow_images(left, method)[..., 0].mean() < 121


def test_flow_to_image_scale_and_clipping():
    flow = np.zeros((1, 8, 128, 2), np.float32)
    flow[..., 0] = 100.0  # far beyond the range: clips, keeps the sign
    img = flow_to_image(flow)
    assert img[..., 0].min() == 255 and np.all(img[..., 1] == 128)
    with pytest.raises(ValueError):
        flow_to_image(np.zeros((8, 8, 2)))


def test_frame_input_checks():
    with pytest.raises(ValueError):
        frame_differences(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError):
        optical_flow(np.zeros((3, 8, 8, 3), np.float32))


def test_feature_differences_numpy_and_torch():
    f = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)  # (B, T, D)
    d = feature_differences(f)
    assert d.shape == (2, 3, 3) and np.all(d == 3)
    p = feature_differences(f, pad=True)
    assert p.shape == (2, 4, 3) and np.all(p[:, 0] == 0) and np.all(p[:, 1:] == 3)
    t = feature_differences(torch.from_numpy(f), pad=True)
    assert isinstance(t, torch.Tensor) and torch.equal(t, torch.from_numpy(p))


def test_grid_pool_layout():
    x = np.zeros((2, 6, 6, 1), np.float32)
    x[:, :2, 4:] = 9.0  # top-right cell only
    p = grid_pool(x, 3)
    assert p.shape == (2, 9) and p[0, 2] == 9.0 and p[0].sum() == 9.0


def test_motion_descriptor_static_zero_and_pan_sign():
    static = np.stack([_textured()] * 3)
    assert np.abs(motion_descriptor(static)).max() < 0.1
    right = _panning(shift=2)
    d_right, d_left = motion_descriptor(right), motion_descriptor(right[::-1].copy())
    assert d_right.shape == (4, 54)
    # flow x is channel 0 of each cell's (x, y, |f|) triple
    assert d_right[:, 0:27:3].mean() > 1.0 and d_left[:, 0:27:3].mean() < -1.0


def test_camera_motion_pan_zoom_and_brightness():
    import cv2

    static = np.stack([_textured()] * 3)
    assert np.abs(camera_motion(static)).max() < 0.1
    right = _panning(shift=2)
    pan = camera_motion(right)
    assert pan.shape == (4, 9) and pan[:, 0].mean() > 1.0 and abs(pan[:, 1].mean()) < 0.5
    assert camera_motion(right[::-1].copy())[:, 0].mean() < -1.0
    big = _textured(128)
    # zoom in: a shrinking centre crop scaled up -> content flows outward, divergence > 0
    zoom = np.stack([cv2.resize(big[32 - k : 96 + k, 32 - k : 96 + k], (64, 64)) for k in (12, 8, 4, 0)])
    div = camera_motion(zoom)[:, 2]
    assert div.mean() > 1.0 and camera_motion(zoom[::-1].copy())[:, 2].mean() < -1.0
    up = np.stack([np.clip(big[:64, :64].astype(int) + g, 0, 255).astype(np.uint8) for g in (0, 10, 20)])
    assert camera_motion(up)[:, 6:].mean() > 2.0
