"""Video decoding behind one small interface, with ``decord`` (default) and ``opencv`` backends.

Both readers give exactly the requested frames as uint8 RGB ``(T, H, W, 3)`` and seek instead
of decoding the whole file. Every failure — missing, empty, truncated, corrupt or not a
video — is a ``VideoDecodeError`` whose message starts with the file's path, so a dataset
can skip that clip and say which file it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Protocol, Sequence

import numpy as np

__all__ = ["VideoDecodeError", "VideoReader", "DecordReader", "OpenCVReader", "open_video", "Backend"]

Backend = Literal["decord", "opencv"]


class VideoDecodeError(RuntimeError):
    """A video could not be opened or a requested frame could not be decoded."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class VideoReader(Protocol):
    path: str
    num_frames: int  # frames that really decode (container over-reports are clamped)
    fps: float

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 RGB frames ``(T, H, W, 3)`` in the order of ``indices`` (repeats allowed)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> "VideoReader": ...

    def __exit__(self, *exc) -> None: ...


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoDecodeError(path, "file not found")
    if not path.is_file():
        raise VideoDecodeError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")


def _check_indices(path: str, indices: Sequence[int], num_frames: int) -> list[int]:
    out = [int(i) for i in indices]
    if not out:
        raise VideoDecodeError(path, "no frame indices requested")
    bad = [i for i in out if i < 0 or i >= num_frames]
    if bad:
        raise VideoDecodeError(path, f"frame index {bad[0]} out of range [0, {num_frames})")
    return out


def _last_decodable(path: str, reported: int, can_decode) -> int:
    """Frame count clamped to what really decodes.

    Containers (AVI/MP4 headers, truncated downloads) may claim more frames than exist.
    Checking the last frame is one seek; only when it fails do we binary-search downwards.
    """
    if reported <= 0:
        raise VideoDecodeError(path, "container reports no video frames")
    if can_decode(reported - 1):
        return reported
    lo, hi = 0, reported - 1  # invariant: lo decodes (checked below), hi does not
    if not can_decode(0):
        raise VideoDecodeError(path, "no frame decodes (corrupt or unsupported video)")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if can_decode(mid):
            lo = mid
        else:
            hi = mid
    return lo + 1


class DecordReader:
    """Reader on ``decord.VideoReader``: random access by keyframe seeking, frames as RGB."""

    def __init__(self, path: str | os.PathLike, num_threads: int = 1):
        p = Path(path)
        _check_file(p)
        self.path = str(p)
        import decord

        self._decord_error = decord.DECORDError
        try:
            self._vr = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=num_threads)
            reported = len(self._vr)
            self.fps = float(self._vr.get_avg_fps() or 0.0) or 25.0
        except (decord.DECORDError, RuntimeError, ValueError) as e:
            raise VideoDecodeError(self.path, f"cannot open video ({_short(e)})") from None
        self._fallback: OpenCVReader | None = None
        if reported <= 0:
            raise VideoDecodeError(self.path, "container reports no video frames")
        if self._can_decode(reported - 1):
            self.num_frames = reported
            self._vr.seek(0)
        else:
            # A damaged file: decord's threaded decoder then fails at random later on, even
            # on frames it decoded before (seen on truncated MJPG), so OpenCV, which
            # fails deterministically, reads this file instead.
            self._vr = None
            self._fallback = OpenCVReader(self.path)
            self.num_frames = self._fallback.num_frames

    def _can_decode(self, index: int) -> bool:
        try:
            self._vr.seek_accurate(index)
            self._vr.next()
            return True
        except (self._decord_error, RuntimeError, StopIteration, IndexError):
            return False

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        if self._fallback is not None:
            return self._fallback.get_frames(indices)
        idx = _check_indices(self.path, indices, self.num_frames)
        try:
            frames = self._vr.get_batch(idx).asnumpy()  # (T, H, W, 3) uint8 RGB
        except (self._decord_error, RuntimeError, IndexError) as e:
            if "size must exactly match" not in str(e):
                raise VideoDecodeError(self.path, f"cannot decode frames ({_short(e)})") from None
            # decord 0.6 copies padded rows for some frame widths (e.g. 48 px) and refuses
            # the copy; the file itself is fine, so OpenCV decodes it instead.
            with OpenCVReader(self.path) as fallback:
                return fallback.get_frames(idx)
        return np.ascontiguousarray(frames)

    def close(self) -> None:
        # decord frees its demuxer/decoder when the object is collected; dropping the only
        # reference now keeps 1000 opens in a row from holding 1000 decoders.
        self._vr = None
        if self._fallback is not None:
            self._fallback.close()

    def __enter__(self) -> "DecordReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class OpenCVReader:
    """Reader on ``cv2.VideoCapture``: seeks for far jumps, grabs forward for near ones."""

    # Seeking costs a keyframe decode; grabbing a few frames forward is cheaper than that.
    SEEK_THRESHOLD = 16

    def __init__(self, path: str | os.PathLike):
        p = Path(path)
        _check_file(p)
        self.path = str(p)
        import cv2

        self._cv2 = cv2
        self._cap = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            self._cap.release()
            raise VideoDecodeError(self.path, "cannot open video (not a video or unsupported codec)")
        reported = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
        self._pos = 0  # index of the frame the next read() returns
        try:
            self.num_frames = _last_decodable(self.path, reported, self._can_decode)
        except VideoDecodeError:
            self.close()
            raise

    def _seek(self, index: int) -> None:
        self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, index)
        self._pos = index

    def _can_decode(self, index: int) -> bool:
        self._seek(index)
        ok = self._cap.grab()
        self._pos = index + 1 if ok else -1
        return ok

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        idx = _check_indices(self.path, indices, self.num_frames)
        wanted = sorted(set(idx))
        decoded: dict[int, np.ndarray] = {}
        for i in wanted:
            if self._pos < 0 or i < self._pos or i - self._pos > self.SEEK_THRESHOLD:
                self._seek(i)
            while self._pos < i:
                if not self._cap.grab():
                    raise VideoDecodeError(self.path, f"cannot decode frame {self._pos}")
                self._pos += 1
            ok, frame = self._cap.read()
            if not ok or frame is None:
                self._pos = -1
                raise VideoDecodeError(self.path, f"cannot decode frame {i}")
            self._pos = i + 1
            decoded[i] = self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2RGB)
        return np.stack([decoded[i] for i in idx])  # (T, H, W, 3)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> "OpenCVReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        cap = getattr(self, "_cap", None)
        if cap is not None:
            cap.release()


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def open_video(path: str | os.PathLike, backend: Backend = "decord") -> VideoReader:
    """Open ``path`` with the named backend; raises ``VideoDecodeError`` naming the file."""
    if backend == "decord":
        return DecordReader(path)
    if backend == "opencv":
        return OpenCVReader(path)
    raise ValueError(f"unknown video backend {backend!r}; expected 'decord' or 'opencv'")
