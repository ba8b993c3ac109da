"""``OpenCVReader``: frames by index with ``cv2.VideoCapture``."""

from __future__ import annotations

import bisect
import os
from typing import Sequence

import numpy as np

from vidrec.data.video_reader import FrameCountError, VideoDecodeError, check_file, check_indices, count_decodable

__all__ = ["OpenCVReader"]


class OpenCVReader:
    """Reader on ``cv2.VideoCapture``: seeks for far jumps, grabs forward for near ones.

    OpenCV's ``read()`` can report success without delivering frame i: past the real end of a
    truncated H.264 mp4, a seek to any later frame hands back the last frame the decoder had
    left (its position stops advancing). So every read is checked against the capture's
    position, which is i + 1 after a real read of frame i; a read that fails that check is
    treated as "frame i does not decode", never returned.

    Where to seek: ``set(CAP_PROP_POS_FRAMES, i)`` makes OpenCV seek to the last keyframe at or
    before ``i - 16`` and decode forward to i (its FFmpeg backend backs off 16 frames to be
    sure to land before i). With ``keyframes`` known (the TorchCodec reader passes its packet
    scan's), the reader seeks only when that keyframe lies past the current position and
    otherwise decodes forward, which is never more work; a seek back to a keyframe before the
    current position decoded a whole GOP twice (on Megamind.avi, 1.5x the frames). Without
    them, it seeks for jumps longer than ``SEEK_THRESHOLD``.

    Decoding runs on ``threads`` FFmpeg threads (1 by default, like the TorchCodec reader):
    DataLoader workers are the parallelism, and OpenCV's default of one thread per core made
    sampling 1.4x slower on a 2-core machine.
    """

    # Without keyframes: seeking costs a keyframe decode; grabbing a few frames forward is cheaper.
    SEEK_THRESHOLD = 16
    # How far before the target OpenCV's FFmpeg backend seeks (``delta`` in its ``seek()``).
    OPENCV_SEEK_BACKOFF = 16

    def __init__(self, path: str | os.PathLike, keyframes: Sequence[int] | None = None, threads: int = 1):
        self.path = check_file(path)
        import cv2

        self._cv2 = cv2
        self._keyframes = sorted(int(k) for k in keyframes) if keyframes is not None and len(keyframes) else None
        self._threads = int(threads)
        self._cap = None
        self._open()
        self.num_frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))  # the header's count, unchecked
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
        if self.num_frames <= 0:
            self.close()
            raise VideoDecodeError(self.path, "container reports no video frames")

    def _open(self) -> None:
        self.close()
        cv2 = self._cv2
        cap = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, self._threads])
        if not cap.isOpened():  # not for FFmpeg: whichever backend OpenCV picks itself
            cap.release()
            cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            cap.release()
            raise VideoDecodeError(self.path, "cannot open video (not a video or unsupported codec)")
        self._cap = cap
        self._pos = 0  # index of the frame the next read() returns; -1: unknown

    def _read_once(self, i: int) -> np.ndarray | None:
        cv2 = self._cv2
        if self._pos < 0 or i < self._pos or self._seek_saves_work(i):
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            self._pos = i
        while self._pos < i:
            if not self._cap.grab():
                self._pos = -1
                return None
            self._pos += 1
        ok, frame = self._cap.read()
        if not ok or frame is None or int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) != i + 1:
            self._pos = -1
            return None
        self._pos = i + 1
        return frame

    def _seek_saves_work(self, i: int) -> bool:
        """Would seeking to i (from ``self._pos`` <= i) decode fewer frames than reading forward?"""
        if self._keyframes is None:
            return i - self._pos > self.SEEK_THRESHOLD
        # The keyframe OpenCV's seek starts from; a seek pays only when it lies past _pos.
        k = bisect.bisect_right(self._keyframes, i - self.OPENCV_SEEK_BACKOFF) - 1
        return k >= 0 and self._keyframes[k] > self._pos

    def _read(self, i: int) -> np.ndarray | None:
        """BGR frame i ``(H, W, 3)``, or None when it does not decode."""
        frame = self._read_once(i)
        if frame is None:
            # A capture that has hit the end cannot always seek back: on a 1-frame H.264 or
            # MPEG-4 video, seeking to frame 0 after reading it fails. A fresh capture can.
            self._open()
            frame = self._read_once(i)
        return frame

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 RGB ``(T, H, W, 3)``; ``FrameCountError`` (after lowering ``num_frames``) when
        a requested frame lies past the real end."""
        if self._cap is None:
            raise VideoDecodeError(self.path, "reader is closed")
        idx = check_indices(self.path, indices, self.num_frames)
        decoded: dict[int, np.ndarray] = {}
        for i in sorted(set(idx)):
            frame = self._read(i)
            if frame is None:
                reported = self.num_frames
                self.num_frames = count_decodable(self.path, i, lambda k: self._read(k) is not None)
                raise FrameCountError(self.path, self.num_frames, reported, i)
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
