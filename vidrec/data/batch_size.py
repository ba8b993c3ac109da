"""A batch size that is a number or ``"auto"`` (sized to the device when extraction starts).

Here in ``vidrec.data`` because the datamodule checks its ``extract_batch_size`` when it is
built; what ``"auto"`` becomes is decided in ``vidrec.training.extraction_batch``.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["BatchSize", "check_batch_size"]

BatchSize = int | Literal["auto"]


def check_batch_size(value: Any, name: str = "batch_size") -> BatchSize:
    """``value`` if it is ``"auto"`` or an int >= 1; else ``ValueError`` naming ``name``."""
    if value == "auto" or (type(value) is int and value >= 1):  # not a bool
        return value
    raise ValueError(f"{name} must be 'auto' or an integer >= 1, got {value!r}")
