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
from pathlib import Path
from typing import Callable, Literal, Protocol, Sequence

import numpy as np

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


class VideoDecodeError(RuntimeError):
    """A video could not be opened or a requested frame could not be decoded."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class FrameCountError(VideoDecodeError):
    """The video has fewer decodable frames than its container reported.

    Raised by ``get_frames`` when a requested index lies past the real end. The reader has
    already lowered its ``num_frames`` to ``num_frames`` here and stays usable.
    """

    def __init__(self, path: str | os.PathLike, num_frames: int, reported: int, index: int):
        self.num_frames = num_frames
        self.reported = reported
        super().__init__(
            path,
            f"only {num_frames} of the {reported} frames the container reports decode "
            f"(frame {index} requested); num_frames is now {num_frames}",
        )


class VideoReader(Protocol):
    path: str
    # Frame count as reported at open; lowered to the true count the first time a requested
    # frame turns out not to exist (see the module docstring and FrameCountError).
    num_frames: int
    fps: float

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 RGB frames ``(T, H, W, 3)`` in the order of ``indices`` (repeats allowed).

        Raises ``FrameCountError`` when an index lies past the real end (``num_frames`` is
        lowered first), ``VideoDecodeError`` for indices outside ``[0, num_frames)`` and any
        other decoding failure.
        """
        ...

    def close(self) -> None: ...

    def __enter__(self) -> "VideoReader": ...

    def __exit__(self, *exc) -> None: ...


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


# --------------------------------------------------------------------------------------
# helpers shared by the backends
# --------------------------------------------------------------------------------------


def check_file(path: str | os.PathLike) -> str:
    """``str(path)`` if it names a non-empty regular file; else ``VideoDecodeError``.

    Any ``OSError`` on the way (a 300-character name is ``ENAMETOOLONG`` from ``stat``, which
    ``Path.exists`` does not swallow) becomes a ``VideoDecodeError`` naming the file.
    """
    p = Path(path)
    try:
        if not p.exists():
            raise VideoDecodeError(p, "file not found")
        if not p.is_file():
            raise VideoDecodeError(p, "not a regular file")
        if p.stat().st_size == 0:
            raise VideoDecodeError(p, "file is empty (0 bytes)")
    except OSError as e:
        raise VideoDecodeError(p, f"cannot access file ({e.strerror or type(e).__name__})") from None
    return str(p)


def check_indices(path: str, indices: Sequence[int], num_frames: int) -> list[int]:
    """``indices`` as ints, all in ``[0, num_frames)``; else ``VideoDecodeError``."""
    out = [int(i) for i in indices]
    if not out:
        raise VideoDecodeError(path, "no frame indices requested")
    bad = [i for i in out if i < 0 or i >= num_frames]
    if bad:
        raise VideoDecodeError(path, f"frame index {bad[0]} out of range [0, {num_frames})")
    return out


def count_decodable(path: str, failed: int, can_decode: Callable[[int], bool]) -> int:
    """How many frames decode, given that frame ``failed`` does not.

    Binary search over ``[0, failed)``, assuming frames decode up to some point and none
    after it (a truncated file). A file damaged in the middle is clamped before the damage:
    fewer frames, but never a wrong one.
    """
    if failed <= 0 or not can_decode(0):
        raise VideoDecodeError(path, "no frame decodes (corrupt or unsupported video)")
    lo, hi = 0, failed  # invariant: frame lo decodes, frame hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if can_decode(mid):
            lo = mid
        else:
            hi = mid
    return lo + 1


def short(e: BaseException) -> str:
    """First line of an exception's message (backends' messages can be long C++ traces)."""
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
