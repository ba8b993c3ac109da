"""What every video reader is and raises: the ``VideoReader`` protocol, ``VideoDecodeError``,
``FrameCountError``, and the checks the backends share. ``decode.open_video`` picks a reader;
the backends (``decode_*.py``) import only this file, so nothing imports in a circle.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

__all__ = ["VideoDecodeError", "FrameCountError", "VideoReader", "check_file", "check_indices", "count_decodable", "short"]


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


# Where in its C++ sources a backend raised ("SingleStreamDecoder, /__w/.../SingleStreamDecoder.cpp:41, "):
# TorchCodec puts it before the reason, which a length cap then cut off.
_SOURCE_LOCATION = re.compile(r"^\w+, \S+\.(?:cpp|cc|cxx|h|hpp):\d+, ")


def short(e: BaseException, limit: int = 300) -> str:
    """The reason in an exception's message: its first line, without a C++ source location, at
    most ``limit`` characters (backends' messages can be long C++ traces)."""
    text = str(e).strip().splitlines()
    if not text:
        return type(e).__name__
    line = _SOURCE_LOCATION.sub("", text[0])
    return line if len(line) <= limit else line[: limit - 1] + "…"
