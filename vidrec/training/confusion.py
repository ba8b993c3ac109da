"""The confusion matrix as a picture (the loggers log it as an image)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on servers; figures are saved or logged
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

__all__ = ["plot_confusion_matrix"]


def plot_confusion_matrix(matrix: torch.Tensor | np.ndarray, classes: list[str], normalize: bool = True):
    """Rows = true class, columns = predicted; row-normalised so each row shows recall."""
    m = np.asarray(matrix, dtype=float)
    if normalize:
        m = m / np.clip(m.sum(axis=1, keepdims=True), 1, None)
    n = len(classes)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(n), classes, rotation=90, fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if m[i, j] > 0:
                    ax.text(j, i, f"{m[i, j]:.2f}" if normalize else int(m[i, j]), ha="center", va="center",
                            fontsize=6, color="white" if m[i, j] > 0.5 else "black")
    fig.tight_layout()
    return fig
