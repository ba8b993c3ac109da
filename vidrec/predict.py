"""Inference: a checkpoint and video files -> top-k actions and a caption, whole video or as a timeline.

    python infer.py clip.mp4 more_videos/ "data/*.avi" --ckpt runs/demo/lstm.ckpt --json out.json
    python infer.py long.mp4 --ckpt last.ckpt --window 4 --stride 1 --out annotated.mp4 --plot timeline.png

Whole-video prediction samples ``num_frames`` frames exactly as validation did (the
checkpoint's sampling strategy in eval mode, its eval transform and the backbone's own
normalisation) and batches several files through the backbone in one forward pass.

Long videos are read as a timeline of windows ``[start, start + W)`` every ``S`` seconds.
Frames sit on one global time grid with spacing ``W / T`` (the frame showing at the centre
of each grid cell), and window starts are snapped to that grid, so overlapping windows share
frames: every frame is decoded and run through the (per-frame, frozen) backbone once, and a
window's ``T`` features are just a slice of the stream. Only a deque of per-frame features no
longer than one window is kept, so memory does not grow with the video's length.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from vidrec.data.decode import VideoDecodeError, open_video
from vidrec.data.sampling import sample_indices
from vidrec.data.transforms import Normalization, eval_transform, to_video_tensor
from vidrec.windows import WindowPlan, batched, window_plan

__all__ = [
    "ActionScore",
    "WindowPrediction",
    "Prediction",
    "Predictor",
    "VIDEO_EXTENSIONS",
    "resolve_device",
    "main",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")

# VideoDataModule's defaults, for checkpoints saved without datamodule hyperparameters.
_DATA_DEFAULTS = {"num_frames": 8, "sampling": "segment", "stride": 1, "frame_size": 112, "resize": None, "backend": "decord"}


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass
class ActionScore:
    """One class and its softmax probability in [0, 1]."""

    label: str
    prob: float

    def to_dict(self) -> dict:
        return {"label": self.label, "prob": float(self.prob)}


@dataclass
class WindowPrediction:
    """Prediction for the time range ``[start, end)`` seconds of a video.

    ``probs`` (not serialised) is the full class distribution ``(C,)`` in the order of
    ``Prediction.classes``; the timeline plot uses it to draw classes outside the top-k.
    """

    start: float
    end: float
    actions: list[ActionScore]
    caption: str | None
    probs: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def centre(self) -> float:
        return 0.5 * (self.start + self.end)

    def to_dict(self) -> dict:
        return {
            "start": float(self.start),
            "end": float(self.end),
            "actions": [a.to_dict() for a in self.actions],
            "caption": self.caption,
        }


@dataclass
class Prediction:
    """Result for one video. ``error`` is set (and the rest empty) when it failed to decode.

    With windows, ``actions`` is the mean of the windows' distributions (top-k) and
    ``caption`` the caption of the window most confident in the top action.
    """

    video: str
    actions: list[ActionScore]
    caption: str | None
    error: str | None = None
    timeline: list[WindowPrediction] | None = None
    classes: list[str] | None = field(default=None, repr=False, compare=False)  # order of WindowPrediction.probs

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        """JSON-ready: ``video, actions [{label, prob}], caption, error`` (+ ``timeline`` with windows)."""
        out = {
            "video": self.video,
            "actions": [a.to_dict() for a in self.actions],
            "caption": self.caption,
            "error": self.error,
        }
        if self.timeline is not None:
            out["timeline"] = [w.to_dict() for w in self.timeline]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Prediction":
        """Inverse of ``to_dict`` (for results read back from ``--json``)."""
        timeline = d.get("timeline")
        return cls(
            video=d["video"],
            actions=[ActionScore(a["label"], float(a["prob"])) for a in d.get("actions") or []],
            caption=d.get("caption"),
            error=d.get("error"),
            timeline=None
            if timeline is None
            else [
                WindowPrediction(
                    float(w["start"]),
                    float(w["end"]),
                    [ActionScore(a["label"], float(a["prob"])) for a in w.get("actions") or []],
                    w.get("caption"),
                )
                for w in timeline
            ],
        )


# --------------------------------------------------------------------------------------
# Predictor
# --------------------------------------------------------------------------------------


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` = CUDA when available, else CPU; asking for CUDA without one is an error."""
    if isinstance(device, torch.device):
        device = str(device)
    device = (device or "auto").lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {device!r} requested but CUDA is not available here (torch.cuda.is_available() is False); "
            "use --device cpu or --device auto"
        )
    try:
        return torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"unknown device {device!r}: expected auto, cpu or cuda ({e})") from None


class Predictor:
    """A trained model ready for video files. Build it with ``Predictor.from_checkpoint``.

    After each ``predict``/``predict_many`` call, ``last_stats`` holds what it cost:
    ``frames_encoded`` (frames run through the backbone), ``windows``, ``grid_frames``
    (distinct frames on the window grid), ``max_buffered_frames`` (longest the per-frame
    feature deque got), ``videos`` and ``failed``.
    """

    #: frames decoded and run through the backbone together when streaming windows
    chunk_frames: int = 32
    #: windows run through the temporal model and heads together
    window_batch: int = 16

    def __init__(
        self,
        module,
        *,
        num_frames: int = 8,
        frame_size: int = 112,
        resize: int | None = None,
        sampling: str = "segment",
        sampling_stride: int = 1,
        backend: str = "decord",
        normalization: Normalization | None = None,
        beam_size: int = 1,
        max_caption_len: int = 20,
        length_penalty: float = 0.0,
        device: str | torch.device = "cpu",
    ):
        if backend not in ("decord", "opencv"):
            raise ValueError(f"unknown video backend {backend!r}; expected 'decord' or 'opencv'")
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        self.device = resolve_device(device)
        self.module = module.to(self.device).eval()
        self.net = self.module.net
        self.classes: list[str] = list(getattr(module, "classes", []) or [])
        self.vocab = getattr(module, "vocab", None)
        self.num_frames, self.frame_size, self.resize = int(num_frames), int(frame_size), resize
        self.sampling, self.sampling_stride, self.backend = sampling, int(sampling_stride), backend
        self.normalization = normalization or self.net.backbone.normalization
        self.transform = eval_transform(self.frame_size, self.normalization, self.resize)
        self.beam_size, self.max_caption_len, self.length_penalty = int(beam_size), int(max_caption_len), float(length_penalty)
        self.last_stats: dict = {}

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "auto",
        backend: str | None = None,
        beam_size: int | None = None,
    ) -> "Predictor":
        """Load a LightningCLI checkpoint; frames, size, sampling and backend come from it.

        ``backend`` / ``beam_size`` override the checkpoint's. The backbone is built with
        ``weights="none"``: its weights are in the checkpoint, nothing is downloaded.
        """
        from vidrec.lit_module import VidRecModule, checkpoint_hparams
        from vidrec.models.backbone import EFFICIENTNET_LITE0, pretrained_normalization

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: checkpoint not found")
        dev = resolve_device(device)
        hp, data = checkpoint_hparams(path)
        if not data:
            warnings.warn(f"{path}: no datamodule hyperparameters saved; using VideoDataModule defaults {_DATA_DEFAULTS}")
        data = {**_DATA_DEFAULTS, **{k: v for k, v in data.items() if k in _DATA_DEFAULTS}}
        module = VidRecModule.load_from_checkpoint(str(path), map_location=dev, weights="none")
        return cls(
            module,
            num_frames=data["num_frames"],
            frame_size=data["frame_size"],
            resize=data["resize"],
            sampling=data["sampling"],
            sampling_stride=data["stride"],
            backend=backend or data["backend"],
            normalization=pretrained_normalization(hp.get("backbone", EFFICIENTNET_LITE0), hp.get("weights", "DEFAULT")),
            beam_size=beam_size if beam_size is not None else hp.get("beam_size", 1),
            max_caption_len=hp.get("max_caption_len", 20),
            length_penalty=hp.get("length_penalty", 0.0),
            device=dev,
        )

    # -- network pieces -------------------------------------------------------------------
    def _prepare(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> normalised float (N, 3, S, S) on the device."""
        clip = self.transform(to_video_tensor(frames))
        return clip.as_subclass(torch.Tensor).to(self.device)

    @torch.inference_mode()
    def _features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) -> (B, T, D) per-frame backbone features."""
        return self.net.backbone(frames)

    @torch.inference_mode()
    def _heads(self, features: torch.Tensor) -> tuple[torch.Tensor | None, list[str | None]]:
        """(B, T, D) -> class probabilities (B, C) on CPU (or None) and B captions (or Nones)."""
        _, encoding = self.net.encode(features=features)  # (B, H')
        probs = None
        if self.net.action_head is not None:
            probs = self.net.action_head(encoding).float().softmax(-1).cpu()  # (B, C)
        captions: list[str | None] = [None] * features.shape[0]
        if self.net.caption_decoder is not None and self.vocab is not None:
            ids = self.net.caption(encoding, self.beam_size, self.max_caption_len, self.length_penalty)  # (B, L)
            captions = [self.vocab.decode(row) for row in ids.tolist()]
        return probs, captions

    def _top(self, probs: torch.Tensor | np.ndarray | None, topk: int) -> list[ActionScore]:
        if probs is None:
            return []
        probs = torch.as_tensor(probs)
        values, indices = probs.topk(min(topk, probs.shape[-1]))
        return [ActionScore(self.classes[i], float(p)) for p, i in zip(values.tolist(), indices.tolist())]

    @staticmethod
    def _failure(video, error: Exception) -> Prediction:
        if isinstance(error, VideoDecodeError):
            reason = str(error)  # already "path: reason"
        else:
            reason = f"{video}: {type(error).__name__}: {error}"
        return Prediction(video=str(video), actions=[], caption=None, error=reason)

    # -- public API ---------------------------------------------------------------------
    def predict(self, video: str | os.PathLike, topk: int = 5, window: float | None = None, stride: float | None = None) -> Prediction:
        """One video. A file that cannot be decoded gives a Prediction with ``error`` set."""
        return self.predict_many([video], topk=topk, batch_size=1, window=window, stride=stride)[0]

    def predict_many(
        self,
        videos: Sequence[str | os.PathLike],
        topk: int = 5,
        batch_size: int = 8,
        window: float | None = None,
        stride: float | None = None,
    ) -> list[Prediction]:
        """Several videos, in order; ``batch_size`` whole videos share one backbone pass.

        Failures (missing, corrupt, undecodable) come back as error entries; the rest go on.
        """
        return list(self.iter_predict(videos, topk=topk, batch_size=batch_size, window=window, stride=stride))

    def iter_predict(
        self,
        videos: Iterable[str | os.PathLike],
        topk: int = 5,
        batch_size: int = 8,
        window: float | None = None,
        stride: float | None = None,
    ) -> Iterator[Prediction]:
        """``predict_many`` as a generator: results arrive batch by batch, in input order."""
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if stride is not None and window is None:
            raise ValueError("stride needs a window")
        if window is not None:
            if not window > 0:
                raise ValueError(f"window must be > 0 seconds, got {window}")
            stride = window if stride is None else stride
            if not stride > 0:
                raise ValueError(f"stride must be > 0 seconds, got {stride}")
        self.last_stats = {"videos": 0, "failed": 0, "frames_encoded": 0, "windows": 0, "grid_frames": 0, "max_buffered_frames": 0}
        if window is None:
            yield from self._iter_whole(videos, topk, batch_size)
        else:
            for video in videos:
                yield self._predict_windows(video, topk, float(window), float(stride))

    # -- whole videos -------------------------------------------------------------------
    def _load_clip(self, video) -> torch.Tensor:
        """``num_frames`` eval-sampled frames of one file -> (T, 3, S, S); raises on failure."""
        with open_video(video, self.backend) as reader:
            idx = sample_indices(self.sampling, reader.num_frames, self.num_frames, train=False, stride=self.sampling_stride)
            frames = reader.get_frames(idx.tolist())  # (T, H, W, 3) uint8
        return self._prepare(frames)

    def _iter_whole(self, videos: Iterable, topk: int, batch_size: int) -> Iterator[Prediction]:
        stats = self.last_stats
        it = iter(videos)
        while batch := list(itertools.islice(it, batch_size)):
            results: list[Prediction | None] = [None] * len(batch)
            clips, rows = [], []
            for j, video in enumerate(batch):
                try:
                    clips.append(self._load_clip(video))
                    rows.append(j)
                except Exception as e:  # one bad file must not stop the others
                    results[j] = self._failure(video, e)
            if clips:
                x = torch.stack(clips)  # (B, T, 3, S, S)
                probs, captions = self._heads(self._features(x))
                stats["frames_encoded"] += x.shape[0] * x.shape[1]
                for k, j in enumerate(rows):
                    results[j] = Prediction(
                        video=str(batch[j]),
                        actions=self._top(probs[k] if probs is not None else None, topk),
                        caption=captions[k],
                    )
            stats["videos"] += len(batch)
            stats["failed"] += len(batch) - len(rows)
            yield from results

    # -- windows ------------------------------------------------------------------------
    def _predict_windows(self, video, topk: int, window: float, stride: float) -> Prediction:
        stats = self.last_stats
        stats["videos"] += 1
        try:
            with open_video(video, self.backend) as reader:
                n, fps = reader.num_frames, reader.fps
                duration = n / fps
                plan = window_plan(n, fps, self.num_frames, window, stride)
                if plan is None:
                    # Shorter than one window: one window over the whole video, sampled as
                    # whole-video prediction samples it.
                    idx = sample_indices(self.sampling, n, self.num_frames, train=False, stride=self.sampling_stride)
                    unique, inverse = np.unique(idx, return_inverse=True)  # a short video repeats frames
                    x = self._prepare(reader.get_frames(unique.tolist()))  # (U, 3, S, S)
                    feats = self._features(x[None])[0][torch.as_tensor(inverse)]  # (T, D)
                    probs, captions = self._heads(feats[None])
                    stats["frames_encoded"] += len(unique)
                    stats["grid_frames"] += len(unique)
                    stats["max_buffered_frames"] = max(stats["max_buffered_frames"], self.num_frames)
                    windows = [(0.0, duration, probs[0] if probs is not None else None, captions[0])]
                else:
                    windows = list(self._stream_windows(reader, plan, duration))
        except Exception as e:
            stats["failed"] += 1
            return self._failure(video, e)
        stats["windows"] += len(windows)

        timeline = [
            WindowPrediction(start, end, self._top(p, topk), cap, None if p is None else p.numpy().astype(np.float32))
            for start, end, p, cap in windows
        ]
        actions: list[ActionScore] = []
        caption = None
        if windows[0][2] is not None:
            mean = torch.stack([p for _, _, p, _ in windows]).mean(0)  # (C,)
            actions = self._top(mean, topk)
            best = int(mean.argmax())
            # the video's caption: the window most confident in the video's top action
            caption = max(windows, key=lambda w: float(w[2][best]))[3]
        else:
            caption = windows[len(windows) // 2][3]
        return Prediction(video=str(video), actions=actions, caption=caption, timeline=timeline, classes=self.classes)

    def _stream_windows(self, reader, plan: "WindowPlan", duration: float) -> Iterator[tuple]:
        """Decode the grid frames in order, encode each once, yield ``(start, end, probs, caption)``."""
        stats = self.last_stats
        T = self.num_frames
        starts = plan.starts
        buffer: deque[tuple[int, torch.Tensor]] = deque()  # (grid cell, feature (D,)), cells increasing
        pending: list[tuple[int, torch.Tensor]] = []  # (window number, features (T, D)) awaiting the heads
        last: tuple[int, torch.Tensor] | None = None  # last encoded (frame index, feature): chunks may share it
        next_window = 0
        max_buffered = 0
        encoded = 0
        distinct, previous_frame = 0, None  # frames never decrease along the cells: count changes

        def flush() -> Iterator[tuple]:
            if not pending:
                return
            probs, captions = self._heads(torch.stack([f for _, f in pending]))  # (B, T, D) in
            for k, (w, _) in enumerate(pending):
                start = starts[w] * plan.cell
                yield start, min(start + plan.window, duration), probs[k] if probs is not None else None, captions[k]
            pending.clear()

        for chunk in batched(plan.cells(), self.chunk_frames):
            frame_of = {c: plan.frame(c) for c in chunk}
            for c in chunk:
                distinct += frame_of[c] != previous_frame
                previous_frame = frame_of[c]
            wanted = sorted(set(frame_of.values()) - ({last[0]} if last else set()))
            feats: dict[int, torch.Tensor] = {}
            if wanted:
                x = self._prepare(reader.get_frames(wanted))  # (N, 3, S, S)
                f = self._features(x[None])[0]  # (N, D)
                # clone: a row view would keep the whole chunk's tensor alive in the deque
                feats = {i: row.clone() for i, row in zip(wanted, f)}
                encoded += len(wanted)
            if last is not None:
                feats.setdefault(*last)
            for c in chunk:
                buffer.append((c, feats[frame_of[c]]))
                max_buffered = max(max_buffered, len(buffer))
                while next_window < len(starts) and starts[next_window] + T - 1 <= c:
                    # the deque starts at this window's first cell and its cells are consecutive
                    pending.append((next_window, torch.stack([f for _, f in itertools.islice(buffer, T)])))
                    next_window += 1
                    keep_from = starts[next_window] if next_window < len(starts) else math.inf
                    while buffer and buffer[0][0] < keep_from:
                        buffer.popleft()
                    if len(pending) >= self.window_batch:
                        yield from flush()
            top = max(feats)
            last = (top, feats[top])
        yield from flush()
        stats["frames_encoded"] += encoded
        stats["grid_frames"] += distinct
        stats["max_buffered_frames"] = max(stats["max_buffered_frames"], max_buffered)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``infer.py`` command line (see ``vidrec.infer_cli``)."""
    from vidrec.infer_cli import main as cli_main

    return cli_main(argv)
