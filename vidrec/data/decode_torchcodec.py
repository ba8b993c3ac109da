"""``TorchCodecReader``: frames by index with ``torchcodec.decoders.VideoDecoder`` (the default backend)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from vidrec.data.video_reader import FrameCountError, VideoDecodeError, check_file, check_indices, count_decodable, short
from vidrec.data.decode_opencv import OpenCVReader

__all__ = ["TorchCodecReader"]

# What TorchCodec raises for a file or frame it cannot decode (its C++ errors surface as
# RuntimeError; a file without a video stream is a ValueError; an index past its scan, IndexError).
_ERRORS = (RuntimeError, ValueError, IndexError, OSError)


class TorchCodecReader:
    """Reader on ``torchcodec.decoders.VideoDecoder``: one keyframe seek per far jump, RGB out.

    ``seek_mode="exact"``: at open TorchCodec scans the container's packets (demuxing, no
    decoding; ~17 ms for a 120 MB, 3000-frame mp4 with a warm cache, ~2 ms for small clips) and
    then maps frame index i to the i-th frame in presentation order. ``"approximate"`` skips
    the scan and seeks to time ``i / fps`` instead, which is a different frame on
    variable-frame-rate files: opencv-doc's tree.avi has 68 frames spread over 29.6 s, its
    header says 444 at 15 fps, and approximate mode returns other pictures than the other
    backends for the same index. The scan also drops a missing tail from the count for free.

    The scan indexes packets by pts, or by dts where a packet has none. In an AVI with
    B-frames (AVI stores no pts; DivX/Xvid files such as opencv-doc's Megamind.avi) the
    decoder's pts then run ahead of that index and ``get_frames_at([i])`` returns another
    frame (i - 1 on Megamind.avi; decoding a range in order is right). So the first request
    also decodes frame 0 (free when a sample lies in the first GOP, which it decodes through
    anyway) and compares its pts with the index's first pts; where they differ OpenCV, which
    gets these files right, reads the file instead, seeking only past the scan's keyframes.
    """

    def __init__(self, path: str | os.PathLike, device: str = "cpu", num_threads: int = 1):
        self.path = check_file(path)
        self.device = str(device)
        if self.device != "cpu":
            import torch

            if not torch.cuda.is_available():
                raise RuntimeError(
                    f"{self.path}: device={self.device!r} asks for GPU (NVDEC) decoding, but CUDA is not "
                    "available on this machine (torch.cuda.is_available() is False); use device='cpu'"
                )
        self._num_threads = num_threads
        self._fallback: OpenCVReader | None = None
        self._index_checked = False
        self._decoder = self._open()
        meta = self._decoder.metadata
        self._num_frames = int(meta.num_frames or 0)
        self._first_pts = float(meta.begin_stream_seconds or 0.0)  # pts of frame 0 in the scanned index
        self.fps = float(meta.average_fps or 0.0) or 25.0
        if self._num_frames <= 0:
            self.close()
            raise VideoDecodeError(self.path, "container reports no video frames")

    def _open(self):
        from torchcodec.decoders import VideoDecoder

        try:
            return VideoDecoder(
                self.path,
                seek_mode="exact",
                # Frames come out of FFmpeg as (H, W, 3); NCHW would only be a strided view of it.
                dimension_order="NHWC",
                num_ffmpeg_threads=self._num_threads,
                device=self.device,
            )
        except _ERRORS as e:
            if self.device != "cpu" and "cuda" in str(e).lower():
                raise RuntimeError(f"{self.path}: TorchCodec cannot decode on {self.device!r} ({short(e)})") from None
            raise VideoDecodeError(self.path, f"cannot open video ({short(e)})") from None

    @property
    def num_frames(self) -> int:
        return self._fallback.num_frames if self._fallback is not None else self._num_frames

    def _decode(self, indices: list[int]):
        """TorchCodec ``FrameBatch`` (``.data`` uint8 ``(T, H, W, 3)``, ``.pts_seconds`` ``(T,)``).

        After a failed packet TorchCodec's decoder can hand back the wrong frame for the next
        request (seen: frame 95 returned for 94 on a cut H.264 file), so on failure the decoder
        is replaced by a fresh one before the error propagates.
        """
        try:
            return self._decoder.get_frames_at(indices)
        except _ERRORS:
            self._decoder = None
            self._decoder = self._open()
            raise

    def _can_decode(self, index: int) -> bool:
        try:
            self._decode([index])
            return True
        except _ERRORS:
            return False

    def get_frames(self, indices: Sequence[int]):
        """uint8 RGB ``(T, H, W, 3)``: a NumPy array, or a torch tensor on the GPU for a CUDA reader.

        Raises ``FrameCountError`` (after lowering ``num_frames``) when the video ends before
        the largest requested index, ``VideoDecodeError`` for any other decoding failure.
        """
        if self._fallback is not None:
            return self._to_device(self._fallback.get_frames(indices))
        if self._decoder is None:
            raise VideoDecodeError(self.path, "reader is closed")
        idx = check_indices(self.path, indices, self._num_frames)
        if not self._index_checked and not self._index_matches_decoder():
            keyframes = self._keyframe_indices()
            self._decoder = None
            self._fallback = OpenCVReader(self.path, keyframes=keyframes)
            self._fallback.num_frames = min(self._fallback.num_frames, self._num_frames)
            return self._to_device(self._fallback.get_frames(idx))
        try:
            # TorchCodec decodes the unique indices in file order and returns them in request order.
            frames = self._decode(idx).data  # (T, H, W, 3) uint8
        except _ERRORS as e:
            last = max(idx)
            if self._can_decode(last):
                raise VideoDecodeError(self.path, f"cannot decode frames ({short(e)})") from None
            reported = self._num_frames
            self._num_frames = count_decodable(self.path, last, self._can_decode)
            raise FrameCountError(self.path, self._num_frames, reported, last) from None
        if self.device != "cpu":
            return frames  # stays on the GPU
        return np.ascontiguousarray(frames.numpy())

    def _index_matches_decoder(self) -> bool:
        """Does decoded frame 0 carry the pts the scanned index gives frame 0? (class docstring)

        Decoding frame 0 first costs one frame: the request that follows continues from it
        without seeking when its first frame lies in the same GOP.
        """
        self._index_checked = True
        try:
            pts = float(self._decode([0]).pts_seconds[0])
        except _ERRORS:
            return True  # nothing to compare; get_frames finds out what decodes
        return abs(pts - self._first_pts) <= 0.25 / self.fps

    def _keyframe_indices(self) -> list[int] | None:
        """The scan's keyframe indices, for the OpenCV fallback to seek only where it pays.

        ``_get_key_frame_indices`` is TorchCodec's own (0.17) but private, so its absence costs
        only speed. On the files that need the fallback these indices can be off by a frame
        (the class docstring), which costs at most a frame or two of extra decoding.
        """
        try:
            return [int(k) for k in self._decoder._get_key_frame_indices()]
        except Exception:
            return None

    def _to_device(self, frames: np.ndarray):
        if self.device == "cpu":
            return frames
        import torch

        return torch.from_numpy(frames).to(self.device)

    def close(self) -> None:
        # TorchCodec frees the demuxer and decoder when the object is collected; dropping the
        # only reference now keeps many opens in a row from holding many decoders.
        self._decoder = None
        if self._fallback is not None:
            self._fallback.close()

    def __enter__(self) -> "TorchCodecReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
