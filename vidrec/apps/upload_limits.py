"""What the web demo accepts and how it bounds its work: an upload's type and size, a video's
frame size and duration read from its container (no decoding), a 720p working copy streamed one
frame at a time, and a copy browsers can play. No Gradio here: these are video-file rules.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2

from vidrec.data.sample_videos import VIDEO_EXTENSIONS
from vidrec.data.video_io import open_video_writer

__all__ = ["MAX_PIXELS", "MAX_SECONDS", "WORK_PIXELS", "VideoInfo", "check_upload", "probe_video", "check_video"]

MAX_PIXELS = 3840 * 2160  # 4K UHD: refused above this (one 8K frame alone is 100 MB of RGB)
MAX_SECONDS = 600.0
# Frames over this many pixels (or with a short side over 720) are downscaled, aspect kept,
# before the model or the annotation reads them: 4K -> 1280x720. The model itself sees ~128 px.
WORK_PIXELS = 1280 * 720

# (container, fourcc) pairs Chromium/Firefox play natively; anything else is re-encoded to
# VP8 WebM for display (OpenCV's FFmpeg can write VP8 even where it has no H.264 encoder).
_PLAYABLE = {(".mp4", "avc1"), (".mp4", "h264"), (".m4v", "avc1"), (".m4v", "h264"),
             (".webm", "vp80"), (".webm", "vp90"), (".webm", "av01")}


def check_upload(path: str | os.PathLike, max_upload_mb: float) -> str | None:
    """The reason a file may not be analysed (wrong type, too big, missing), or None if fine."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        return (f"'{path.name}' is not a supported video file. "
                f"Please upload one of: {', '.join(VIDEO_EXTENSIONS)}.")
    if not path.is_file():
        return f"'{path.name}' could not be found on the server; please upload it again."
    size = path.stat().st_size
    if size > max_upload_mb * 1024 * 1024:
        return (f"'{path.name}' is {size / 1024 / 1024:.1f} MB, over the {max_upload_mb:g} MB upload limit. "
                "Please trim or compress it.")
    return None


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video, read without decoding it (0 / None: unknown)."""

    width: int
    height: int
    frames: int
    fps: float

    @property
    def duration(self) -> float | None:
        """Seconds, or None when the frame count or rate is unknown."""
        return self.frames / self.fps if self.frames > 0 and self.fps > 0 else None


def probe_video(path: str | os.PathLike) -> VideoInfo | None:
    """Width, height, frame count and rate from the container (OpenCV properties; opening a
    file decodes at most its first frame). None if OpenCV cannot open it."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        return VideoInfo(
            width=max(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), 0),
            height=max(int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0), 0),
            frames=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0),
            fps=float(cap.get(cv2.CAP_PROP_FPS) or 0.0) if math.isfinite(cap.get(cv2.CAP_PROP_FPS) or 0.0) else 0.0,
        )
    finally:
        cap.release()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def _pixels_limit(max_pixels: int) -> str:
    """'3840x2160 (8.29 megapixels)' for the 4K default, else e.g. '2.07 megapixels'."""
    mp = f"{max_pixels / 1e6:.3g} megapixels"
    return f"3840x2160 ({mp})" if max_pixels == MAX_PIXELS else mp


def _too_large(name: str, width: int, height: int, max_pixels: int) -> str:
    return (f"'{name}' is {width}x{height} ({width * height / 1e6:.3g} megapixels), over this demo's limit of "
            f"{_pixels_limit(max_pixels)}. Please downscale it and upload it again.")


def _too_long(name: str, seconds: float | None, max_seconds: float) -> str:
    length = f"{_clock(seconds)} long ({seconds:.0f} s)" if seconds is not None else "longer than its header says"
    return (f"'{name}' is {length}, over this demo's limit of {max_seconds:g} s ({_clock(max_seconds)}). "
            "Please trim it and upload it again.")


def check_video(info: VideoInfo | None, name: str, max_pixels: int = MAX_PIXELS,
                max_seconds: float = MAX_SECONDS) -> str | None:
    """The reason a probed video is refused (frame size over ``max_pixels``, duration over
    ``max_seconds``), or None. Unknown sizes pass: decoding reports those files itself."""
    if info is None:
        return None
    if info.width * info.height > max_pixels:
        return _too_large(name, info.width, info.height, max_pixels)
    if info.duration is not None and info.duration > max_seconds:
        return _too_long(name, info.duration, max_seconds)
    return None


class _Refused(Exception):
    """A video found over a limit while it was being read (the container understated it)."""


def _work_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, to at most ``WORK_PIXELS`` pixels and a short
    side of at most 720 (4K -> 1280x720, 1280x960 -> 960x720); even, as encoders want."""
    scale = min(1.0, 720 / max(min(width, height), 1), math.sqrt(WORK_PIXELS / max(width * height, 1)))
    if scale >= 1.0:
        return width, height
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _work_copy(src: str, dst: Path, info: VideoInfo, name: str, max_pixels: int, max_seconds: float) -> Path:
    """Stream ``src`` into ``dst`` (mp4, same fps and frame count) at ``_work_size``: one
    full-size frame in memory at a time. Raises ``_Refused`` where a frame is larger, or the
    video longer, than the probe said and over a limit."""
    fps = info.fps if info.fps > 0 else 25.0
    max_frames = int(math.ceil(max_seconds * fps))
    cap = cv2.VideoCapture(str(src))
    writer, size, count = None, None, 0
    try:
        while True:
            ok, frame = cap.read()  # (H, W, 3) BGR
            if not ok or frame is None:
                break
            h, w = frame.shape[:2]
            if w * h > max_pixels:
                raise _Refused(_too_large(name, w, h, max_pixels))
            count += 1
            if count > max_frames:
                raise _Refused(_too_long(name, None, max_seconds))
            if writer is None:
                size = _work_size(w, h)
                writer, _ = open_video_writer(dst, fps, *size)
            if (w, h) != size:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            writer.write(frame)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise RuntimeError("no frame could be read")
    return dst


def _fourcc(path: Path) -> str:
    cap = cv2.VideoCapture(str(path))
    try:
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
    finally:
        cap.release()
    return code.to_bytes(4, "little").decode("ascii", "replace").lower()


def _browser_playable(path: Path) -> Path:
    """``path`` if browsers can play it, else a VP8 WebM copy next to it (same frames, same fps)."""
    if (path.suffix.lower(), _fourcc(path)) in _PLAYABLE:
        return path
    dst = path.with_name(path.stem + "_web.webm")
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 8.0
    writer = None
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if writer is None:
                h, w = frame.shape[:2]
                try:
                    writer, _ = open_video_writer(dst, fps, w, h, fourcc="VP80")
                except RuntimeError:  # no VP8 encoder in this build: serve the original
                    return path
            writer.write(frame)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    return dst if writer is not None and dst.is_file() and dst.stat().st_size > 0 else path
