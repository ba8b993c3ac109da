"""training/class_accuracy: per-class and mean-class top-1 from a confusion matrix."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from vidrec.training.class_accuracy import mean_class_accuracy, per_class_top1


def _matrix(preds: list[int], targets: list[int], classes: int = 4) -> torch.Tensor:
    return MulticlassConfusionMatrix(classes)(torch.tensor(preds), torch.tensor(targets))


def test_a_class_without_clips_is_left_out_even_when_predicted():
    # Classes 0 and 1 all right, class 2 half right (its other clip predicted as 3), class 3 has
    # no clips. Mean over the three classes with clips: (1 + 1 + 0.5) / 3; torchmetrics' macro
    # accuracy gives 0.625, averaging class 3 in as 0.
    matrix = _matrix([0, 1, 2, 3], [0, 1, 2, 2])
    top1, clips = per_class_top1(matrix)
    assert clips.tolist() == [1, 1, 2, 0]
    assert top1.tolist() == [1.0, 1.0, 0.5, 0.0]
    assert float(mean_class_accuracy(matrix)) == pytest.approx(2.5 / 3)


def test_every_class_present_is_the_plain_mean_of_recalls():
    preds, targets = [0, 0, 1, 2, 2, 3, 1, 3], [0, 0, 1, 1, 2, 3, 3, 3]
    matrix = _matrix(preds, targets)
    recalls = [1.0, 0.5, 1.0, 2 / 3]
    assert float(mean_class_accuracy(matrix)) == pytest.approx(sum(recalls) / 4)


def test_no_clips_at_all_is_none():
    assert mean_class_accuracy(torch.zeros(3, 3, dtype=torch.long)) is None
