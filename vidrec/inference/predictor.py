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
from collections import deque
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from vidrec.checkpoint import CaptionSettings, load_checkpoint
from vidrec.data.clips import ClipSpec, central_row, load_clip, load_views, read_clip, read_views
from vidrec.data.decode import VideoDecodeError, open_video
from vidrec.data.motion import reads_frames
from vidrec.data.transforms import Normalization, three_crop_transform
from vidrec.data.vocab import Vocab
from vidrec.inference.results import Prediction, PredictionStats, WindowPrediction, top_actions
from vidrec.inference.windows import Window, WindowPlan, batched, window_plan
from vidrec.models.net import VideoRecognizer

__all__ = ["Predictor", "resolve_device"]


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

    Each ``Prediction`` carries ``stats`` (a ``PredictionStats``): what it cost.
    """

    #: frames decoded and run through the backbone together when streaming windows
    chunk_frames: int = 32
    #: windows run through the temporal model and heads together
    window_batch: int = 16

    def __init__(
        self,
        net: VideoRecognizer,
        *,
        classes: Sequence[str] = (),
        vocab: Vocab | None = None,
        clip: ClipSpec = ClipSpec(),
        normalization: Normalization | None = None,
        caption: CaptionSettings = CaptionSettings(),
        views: int = 1,
        crops: int = 1,
        device: str | torch.device = "cpu",
    ):
        if views < 1 or crops not in (1, 3):
            raise ValueError(f"views must be >= 1 and crops 1 or 3, got {views} and {crops}")
        if caption.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {caption.beam_size}")
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.classes, self.vocab = list(classes), vocab
        self.clip, self.caption = clip, caption
        self.normalization = normalization or self.net.backbone.normalization
        self.transform = clip.eval_transform(self.normalization)
        # Whole-video prediction may average several views (the multi-clip, three-crop test protocol).
        self.views, self.crops = views, crops
        self.view_transform = three_crop_transform(clip.frame_size, self.normalization) if crops == 3 else self.transform

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "auto",
        backend: str | None = None,
        beam_size: int | None = None,
        views: int = 1,
        crops: int = 1,
    ) -> "Predictor":
        """Load a ``train.py`` checkpoint (no Lightning needed); frames, size, sampling and backend come from it.

        ``backend`` / ``beam_size`` override the checkpoint's; ``views`` clips spread over each
        video x ``crops`` (1 or 3) crops are averaged in whole-video prediction. Raises ``CheckpointError``
        (one line naming the file) for a missing, damaged or unsafe file.
        """
        dev = resolve_device(device)
        ckpt = load_checkpoint(path, device=dev)
        clip = ckpt.clip if backend is None else ClipSpec(**{**ckpt.clip.to_dict(), "backend": backend})
        caption = ckpt.caption if beam_size is None else CaptionSettings(beam_size, ckpt.caption.max_caption_len, ckpt.caption.length_penalty)
        return cls(
            ckpt.net, classes=ckpt.classes, vocab=ckpt.vocab, clip=clip, normalization=ckpt.normalization,
            caption=caption, views=views, crops=crops, device=dev,
        )

    # -- network pieces -------------------------------------------------------------------
    def _read(self, reader, indices: Sequence[int]) -> torch.Tensor:
        """Frames ``indices`` of an open video -> normalised float (N, 3, S, S) on the device."""
        return load_clip(reader, self.clip, self.transform, indices=indices).to(self.device)

    @torch.inference_mode()
    def _features(self, frames: torch.Tensor, motion: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 3, S, S) [+ data-side motion (B, T, ...)] -> (B, T, D [+ M]) per-frame features."""
        return self.net.frame_features(frames, motion)

    @property
    def _data_motion(self) -> bool:
        """The model reads a motion input computed from the decoded frames (flow), not just features."""
        return reads_frames(self.clip.motion)

    def _clip_features(self, reader_or_path, **kw) -> torch.Tensor:
        """One clip's per-frame features (1, T, D [+ M]), read with its motion input: ``read_clip`` keywords."""
        clip = read_clip(reader_or_path, self.clip, self.transform, **kw)
        motion = clip.motion[None].to(self.device) if clip.motion is not None else None
        return self._features(clip.frames[None].to(self.device), motion)

    def _view_features(self, video) -> torch.Tensor:
        """One video's test views with their motion input -> per-frame features (N, T, D + M).

        N = views x crops, view-major; each view's motion comes from its own sampled frames
        (``read_views``); one view of one crop is the clip that validation reads.
        """
        clip = read_views(video, self.clip, self.view_transform, self.views)  # (N, T, 3, S, S), (N, T, ...)
        return self._features(clip.frames.to(self.device), clip.motion.to(self.device))

    @torch.inference_mode()
    def _heads(self, features: torch.Tensor, views: int = 1) -> tuple[torch.Tensor | None, list[str | None]]:
        """(B*N, T, D), N views per clip -> class probabilities (B, C) on CPU (or None), averaged
        over the views, and B captions (or Nones), written from each clip's central view (``central_row``)
        and, with ``caption_from_action``, the averaged probabilities (as evaluation in training does)."""
        sequence, encoding = self.net.encode(features=features)  # (B*N, T, H'), (B*N, H')
        probs = logits = None
        if self.net.action_head is not None:
            logits = self.net.action_head(encoding).float()  # (B*N, C)
            probs = logits.softmax(-1).unflatten(0, (-1, views)).mean(1)  # (B, C)
            if views > 1:  # what the caption is conditioned on: the log of the average, like VidRecModule.model_step's
                logits = probs.clamp_min(1e-12).log()
        row = central_row(views, self.crops)  # the central clip's centre crop
        encoding, sequence = encoding[row::views], sequence[row::views]  # (B, H'), (B, T, H')
        captions: list[str | None] = [None] * encoding.shape[0]
        if self.net.caption_decoder is not None and self.vocab is not None:
            c = self.caption
            ids = self.net.caption(
                encoding, c.beam_size, c.max_caption_len, c.length_penalty, sequence=sequence, logits=logits
            )  # (B, L)
            captions = [self.vocab.decode(row) for row in ids.tolist()]
        return (probs.cpu() if probs is not None else None), captions

    def _top(self, probs: torch.Tensor | np.ndarray | None, topk: int):
        return top_actions(probs, self.classes, topk)

    @staticmethod
    def _failure(video, error: Exception) -> Prediction:
        # A decode error already says why; anything else (an OSError from the path, say) is named by type.
        reason = error.reason if isinstance(error, VideoDecodeError) else f"{type(error).__name__}: {error}"
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
        if window is None:
            yield from self._iter_whole(videos, topk, batch_size)
        else:
            for video in videos:
                yield self._predict_windows(video, topk, float(window), float(stride))

    # -- whole videos -------------------------------------------------------------------
    def _iter_whole(self, videos: Iterable, topk: int, batch_size: int) -> Iterator[Prediction]:
        it = iter(videos)
        while batch := list(itertools.islice(it, batch_size)):
            results: list[Prediction | None] = [None] * len(batch)
            clips, rows = [], []
            for j, video in enumerate(batch):
                try:
                    if self._data_motion:  # frames and their motion input, encoded video by video
                        clips.append(self._view_features(video))  # (N, T, D + M)
                    else:
                        clips.append(load_views(video, self.clip, self.view_transform, self.views))  # (N, T, 3, S, S)
                    rows.append(j)
                except Exception as e:  # one bad file must not stop the others
                    results[j] = self._failure(video, e)
            if clips:
                x = torch.stack(clips).to(self.device).flatten(0, 1)  # (B*N, T, 3, S, S) or (B*N, T, D + M)
                features = x if self._data_motion else self._features(x)
                probs, captions = self._heads(features, views=clips[0].shape[0])
                for k, j in enumerate(rows):
                    results[j] = Prediction(
                        video=str(batch[j]),
                        actions=self._top(probs[k] if probs is not None else None, topk),
                        caption=captions[k],
                        stats=PredictionStats(frames_encoded=clips[k].shape[0] * clips[k].shape[1]),
                    )
            yield from results

    # -- windows ------------------------------------------------------------------------
    def _predict_windows(self, video, topk: int, window: float, stride: float) -> Prediction:
        stats = PredictionStats()
        try:
            with open_video(video, self.clip.backend) as reader:
                n, fps = reader.num_frames, reader.fps
                duration = n / fps
                plan = window_plan(n, fps, self.clip.num_frames, window, stride)
                if plan is None:
                    windows = [self._whole_as_window(reader, duration, stats)]
                elif self._data_motion:
                    windows = list(self._windows_one_by_one(reader, plan, duration, stats))
                else:
                    windows = list(self._stream_windows(reader, plan, duration, stats))
        except Exception as e:
            return self._failure(video, e)
        stats.windows = len(windows)

        timeline = [
            WindowPrediction(w.start, w.end, self._top(w.probs, topk), w.caption, None if w.probs is None else w.probs.numpy().astype(np.float32))
            for w in windows
        ]
        actions = []
        if windows[0].probs is not None:
            mean = torch.stack([w.probs for w in windows]).mean(0)  # (C,)
            actions = self._top(mean, topk)
            best = int(mean.argmax())
            # the video's caption: the window most confident in the video's top action
            caption = max(windows, key=lambda w: float(w.probs[best])).caption
        else:
            caption = windows[len(windows) // 2].caption
        return Prediction(video=str(video), actions=actions, caption=caption, timeline=timeline, classes=self.classes, stats=stats)

    def _whole_as_window(self, reader, duration: float, stats: PredictionStats) -> Window:
        """A video shorter than one window: one window over all of it, sampled as whole-video prediction samples."""
        probs, captions = self._heads(self._clip_features(reader))  # a short video repeats frames
        stats.frames_encoded = stats.grid_frames = stats.max_buffered_frames = self.clip.num_frames
        return Window(0.0, duration, probs[0] if probs is not None else None, captions[0])

    def _windows_one_by_one(self, reader, plan: WindowPlan, duration: float, stats: PredictionStats) -> Iterator[Window]:
        """Each window decoded on its own: a data-side motion input is computed between a
        window's own consecutive frames, so windows cannot share per-frame work."""
        T = self.clip.num_frames
        for s in plan.starts:
            features = self._clip_features(reader, indices=[plan.frame(c) for c in range(s, s + T)])  # (1, T, D + M)
            probs, captions = self._heads(features)
            stats.frames_encoded += T
            stats.max_buffered_frames = max(stats.max_buffered_frames, T)
            start = s * plan.cell
            yield Window(start, min(start + plan.window, duration), probs[0] if probs is not None else None, captions[0])
        stats.grid_frames = len({plan.frame(c) for c in plan.cells()})

    def _stream_windows(self, reader, plan: WindowPlan, duration: float, stats: PredictionStats) -> Iterator[Window]:
        """Decode the grid frames in order, encode each once, yield each window's prediction."""
        T = self.clip.num_frames
        starts = plan.starts
        buffer: deque[tuple[int, torch.Tensor]] = deque()  # (grid cell, feature (D,)), cells increasing
        pending: list[tuple[int, torch.Tensor]] = []  # (window number, features (T, D)) awaiting the heads
        last: tuple[int, torch.Tensor] | None = None  # last encoded (frame index, feature): chunks may share it
        next_window = 0
        previous_frame = None  # frames never decrease along the cells: count changes

        def flush() -> Iterator[Window]:
            if not pending:
                return
            probs, captions = self._heads(torch.stack([f for _, f in pending]))  # (B, T, D) in
            for k, (w, _) in enumerate(pending):
                start = starts[w] * plan.cell
                yield Window(start, min(start + plan.window, duration), probs[k] if probs is not None else None, captions[k])
            pending.clear()

        for chunk in batched(plan.cells(), self.chunk_frames):
            frame_of = {c: plan.frame(c) for c in chunk}
            for c in chunk:
                stats.grid_frames += frame_of[c] != previous_frame
                previous_frame = frame_of[c]
            wanted = sorted(set(frame_of.values()) - ({last[0]} if last else set()))
            feats: dict[int, torch.Tensor] = {}
            if wanted:
                f = self._features(self._read(reader, wanted)[None])[0]  # (N, D)
                # clone: a row view would keep the whole chunk's tensor alive in the deque
                feats = {i: row.clone() for i, row in zip(wanted, f)}
                stats.frames_encoded += len(wanted)
            if last is not None:
                feats.setdefault(*last)
            for c in chunk:
                buffer.append((c, feats[frame_of[c]]))
                stats.max_buffered_frames = max(stats.max_buffered_frames, len(buffer))
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
