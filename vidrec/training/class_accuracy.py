"""Per-class and mean-class top-1 from a confusion matrix (rows = true class, columns = predicted).

Mean class accuracy is averaged over the classes that have clips, as in the field's "mean class
accuracy" (sklearn's ``balanced_accuracy_score``). torchmetrics' macro accuracy also averages in,
as 0, a class with no clips that some clip was wrongly predicted as: on a test split that lacks
a class (small user datasets, MSR-VTT categories) that read as a class scored "all wrong".
"""

from __future__ import annotations

import torch

__all__ = ["per_class_top1", "mean_class_accuracy"]


def per_class_top1(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(top1, clips)``, both ``(C,)``: right / clips of each true class (0 where it has none), and its clips."""
    clips = matrix.sum(dim=1)  # (C,) clips per true class
    return matrix.diagonal().float() / clips.clamp_min(1), clips


def mean_class_accuracy(matrix: torch.Tensor) -> torch.Tensor | None:
    """Mean of ``per_class_top1`` over the classes with clips; None when no class has any."""
    top1, clips = per_class_top1(matrix)
    present = clips > 0
    return top1[present].mean() if present.any() else None
