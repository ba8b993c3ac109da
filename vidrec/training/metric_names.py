"""Names of metrics that embed a class name, shared by what logs them and what reads them back.

Loggers treat ``/`` in a metric key as a group separator (W&B nests panels on it), so a class
name such as MSR-VTT's ``sports/actions`` would split ``test/class_top1/sports/actions`` into
extra levels. Inside the class-name part, ``/`` becomes ``-`` (``test/class_top1/sports-actions``),
a character every logger accepts (MLflow drops keys with ``|`` or ``:``).
"""

from __future__ import annotations

__all__ = ["CLASS_TOP1_PREFIX", "class_top1_key", "metric_safe"]

CLASS_TOP1_PREFIX = "test/class_top1/"


def metric_safe(name: str) -> str:
    """``name`` as one level of a metric key: ``/`` replaced by ``-``."""
    return name.replace("/", "-")


def class_top1_key(class_name: str) -> str:
    """The key of a class's test top-1, e.g. ``test/class_top1/sports-actions``."""
    return CLASS_TOP1_PREFIX + metric_safe(class_name)
