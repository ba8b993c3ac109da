"""Opening OpenCV video writers: H.264 where this OpenCV build can encode it, else mp4v.

One place for the probe, shared by the synthetic dataset, annotated videos and the web demo.
"""

from __future__ import annotations

import os
import sys

import cv2

__all__ = ["open_video_writer"]

_WRITER_CODEC: dict[str, str] = {}  # container suffix -> first fourcc this OpenCV build could open


class _quiet_stderr:
    """Send file descriptor 2 to /dev/null for a moment (C libraries write there directly)."""

    def __init__(self, active: bool = True):
        self.active, self.saved = active, None

    def __enter__(self):
        if self.active:
            try:
                sys.stderr.flush()
                self.saved = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            except OSError:  # no real fd 2 (some embedded interpreters): just stay noisy
                self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
            self.saved = None


def open_video_writer(path, fps: float, width: int, height: int, fourcc: str | None = None):
    """``cv2.VideoWriter`` for ``path``; returns ``(writer, fourcc)``.

    With ``fourcc`` given, exactly that codec. Without, H.264 (``avc1``) when this OpenCV build
    can encode it, else MPEG-4 Part 2 (``mp4v``); the answer is remembered per container.
    """
    suffix = str(path).rsplit(".", 1)[-1].lower()
    probing = fourcc is None and suffix not in _WRITER_CODEC
    codes = [fourcc] if fourcc else ["avc1", "mp4v"] if probing else [_WRITER_CODEC[suffix]]
    for code in codes:
        # A build without an H.264 encoder refuses avc1 with several lines of FFmpeg and
        # OpenCV errors on stderr; that is expected, so the first probe is silenced.
        with _quiet_stderr(probing and code != codes[-1]):
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*code), float(fps), (int(width), int(height)))
        if writer.isOpened():
            if fourcc is None:
                _WRITER_CODEC[suffix] = code
            return writer, code
        writer.release()
    raise RuntimeError(f"{path}: OpenCV cannot open a video writer (tried {', '.join(codes)})")
