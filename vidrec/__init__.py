"""vidrec: video action recognition and captioning (frozen CNN -> LSTM -> action head + caption decoder).

``from vidrec import Predictor`` is lazy: importing ``vidrec`` alone does not load torch.
"""

from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("vidrec")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["__version__", "Predictor", "Prediction", "ActionScore", "WindowPrediction"]

_LAZY = {"Predictor", "Prediction", "ActionScore", "WindowPrediction"}


def __getattr__(name: str):
    if name in _LAZY:
        from vidrec.inference import predictor as predict

        return getattr(predict, name)
    raise AttributeError(f"module 'vidrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
