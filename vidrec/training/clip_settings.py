"""A checkpoint scored or resumed with other clip settings than it was trained with: say so.

``train.py test --ckpt_path`` (and validate, predict, a resumed fit) reads its clips with this
run's ``--data`` settings: Lightning restores the model's hyperparameters from the checkpoint,
not the datamodule's. A config whose defaults have moved on since the model was trained
(``configs/custom.yaml``'s motion settings did) would score it on inputs unlike its training
ones, and the scores would drop with nothing to say why.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Mapping

from vidrec.data.clips import ClipSpec
from vidrec.data.motion import reads_frames

__all__ = ["clip_differences"]


def _effective(spec: ClipSpec) -> dict:
    """The settings that change what the model is given. The decoder (``backend``) does not: any
    one gives the same frames. Where the motion is measured matters only for a motion input
    computed from the frames (so does the residual that leaves a pair out), and its span only with a gap."""
    settings = {f.name: getattr(spec, f.name) for f in fields(ClipSpec) if f.name != "backend"}
    if not reads_frames(spec.motion):
        del settings["motion_gap"], settings["motion_residual_max"]
    if not spec.measures_pairs:
        del settings["motion_span"]
    return settings


def clip_differences(saved: Mapping, given: Mapping) -> list[str]:
    """``"name: X in the checkpoint, Y here"`` for each clip setting (``ClipSpec``) in which this
    run's data hyperparameters ``given`` differ from the checkpoint's ``saved`` ones (missing
    keys: the defaults, as ``load_checkpoint`` reads an older checkpoint)."""
    before, now = _effective(ClipSpec.from_hparams(saved)), _effective(ClipSpec.from_hparams(given))
    return [f"{name}: {before.get(name)!r} in the checkpoint, {now.get(name)!r} here"
            for name in dict.fromkeys([*before, *now]) if before.get(name) != now.get(name)]
