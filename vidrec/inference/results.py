"""What prediction returns: named types, JSON-ready (``to_dict``) and readable back (``from_dict``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

__all__ = ["ActionScore", "WindowPrediction", "Prediction", "PredictionStats", "top_actions"]


def top_actions(probs: torch.Tensor | np.ndarray | None, classes: Sequence[str], topk: int) -> list["ActionScore"]:
    """The ``topk`` most probable classes of one distribution ``(C,)``, best first ([] for None)."""
    if probs is None:
        return []
    probs = torch.as_tensor(probs)
    values, indices = probs.topk(min(topk, probs.shape[-1]))
    return [ActionScore(classes[i], float(p)) for p, i in zip(values.tolist(), indices.tolist())]


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
class PredictionStats:
    """What one video's prediction cost: frames run through the backbone (``frames_encoded``),
    windows, distinct frames on the window grid, and the longest the per-frame feature buffer got."""

    frames_encoded: int = 0
    windows: int = 0
    grid_frames: int = 0
    max_buffered_frames: int = 0


@dataclass
class Prediction:
    """Result for one video. ``error`` says why (the file is ``video``) when it failed; the rest is then empty.

    With windows, ``actions`` is the mean of the windows' distributions (top-k) and
    ``caption`` the caption of the window most confident in the top action.
    """

    video: str
    actions: list[ActionScore]
    caption: str | None
    error: str | None = None
    timeline: list[WindowPrediction] | None = None
    classes: list[str] | None = field(default=None, repr=False, compare=False)  # order of WindowPrediction.probs
    stats: PredictionStats | None = field(default=None, repr=False, compare=False)

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
