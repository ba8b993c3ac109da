"""Video decoding behind one small interface: ``open_video(path, backend)`` → a reader.

Three backends, one file each: ``torchcodec`` (``decode_torchcodec.py``, the default where it
imports), ``decord`` (``decode_decord.py``) and ``opencv`` (``decode_opencv.py``). Every reader
gives exactly the requested frames as uint8 RGB ``(T, H, W, 3)`` and seeks instead of
decoding the whole file. Every failure — missing, empty, truncated, corrupt, not a video, a
path the OS refuses — is a ``VideoDecodeError`` whose message starts with the file's path, so
a dataset can skip that clip and say which file it was.

What ``num_frames`` means
-------------------------
Containers can over-report their frame count (a truncated download keeps the header that
promised the whole film). Finding the real count up front means decoding the last frame,
which on a one-keyframe video is a full decode at every open. So counting is lazy:

* at open, ``num_frames`` is the count the container reports (for TorchCodec: the packets its
  index scan found, which already excludes a missing tail; for decord: its index; for OpenCV:
  the header);
* indices sampled from it decode as usual; only when a requested frame fails does the reader
  binary-search for the true count, lower ``num_frames`` to it and raise ``FrameCountError``
  (a ``VideoDecodeError``). No reader ever returns a substitute frame for a missing one.

A caller that catches ``VideoDecodeError`` and skips the clip stays correct; one that wants
the clip anyway catches ``FrameCountError``, samples again from the lowered ``num_frames`` and
calls ``get_frames`` again on the same (still open) reader, which is what
``read_sampled(reader, sample)`` does.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Literal, Sequence

import numpy as np

# The reader interface and its errors live one level down, where the backends import them.
from vidrec.data.video_reader import FrameCountError, VideoDecodeError, VideoReader

__all__ = [
    "Backend",
    "FrameCountError",
    "VideoDecodeError",
    "VideoReader",
    "default_backend",
    "open_video",
    "read_sampled",
]

Backend = Literal["torchcodec", "decord", "opencv"]
BACKENDS: tuple[str, ...] = ("torchcodec", "decord", "opencv")


@functools.cache
def default_backend() -> Backend:
    """``"torchcodec"`` where it imports (it also needs FFmpeg's shared libraries), else ``"decord"``."""
    try:
        import torchcodec.decoders  # noqa: F401
    except Exception:  # ImportError, or RuntimeError/OSError when FFmpeg's libraries are missing
        return "decord"
    return "torchcodec"


def open_video(path: str | os.PathLike, backend: Backend | None = None, *, device: str = "cpu") -> VideoReader:
    """Open ``path`` for random frame access.

    Args:
        path: a video file.
        backend: ``"torchcodec"``, ``"decord"`` or ``"opencv"``; ``None`` is ``default_backend()``.
        device: ``"cpu"``, or ``"cuda"``/``"cuda:N"`` to decode on the GPU (NVDEC, TorchCodec
            only). A CUDA reader's ``get_frames`` returns a ``torch.uint8`` tensor
            ``(T, H, W, 3)`` on that device instead of a NumPy array.

    Raises:
        VideoDecodeError: the file cannot be opened as a video (the message starts with its path).
        ValueError: unknown backend, or a GPU device for a CPU-only backend.
        RuntimeError: a GPU device was asked for but CUDA is not available.
    """
    backend = default_backend() if backend is None else backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if str(device) != "cpu" and backend != "torchcodec":
        raise ValueError(f"device={device!r}: only the 'torchcodec' backend decodes on the GPU, not {backend!r}")
    # Imported here: each backend's library loads only when it is used.
    if backend == "torchcodec":
        from vidrec.data.decode_torchcodec import TorchCodecReader

        return TorchCodecReader(path, device=device)
    if backend == "decord":
        from vidrec.data.decode_decord import DecordReader

        return DecordReader(path)
    from vidrec.data.decode_opencv import OpenCVReader

    return OpenCVReader(path)


def read_sampled(reader: VideoReader, sample: Callable[[int], Sequence[int]]) -> np.ndarray:
    """``reader.get_frames(sample(reader.num_frames))``, sampling once more from the true count
    when the container over-reported it (``FrameCountError``).

    ``sample(n)`` returns frame indices in ``[0, n)``; the result is uint8 ``(T, H, W, 3)``.
    Raises ``VideoDecodeError`` for any other failure.
    """
    try:
        return reader.get_frames(sample(reader.num_frames))
    except FrameCountError:
        return reader.get_frames(sample(reader.num_frames))  # num_frames is now the true count
