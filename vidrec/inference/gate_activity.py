"""What a trained LSTM/GRU does frame by frame: its gates on one clip, for the timeline picture.

The gates come from the model's own weights (``vidrec.models.gates`` replays the recurrence
step by step), on exactly the features the temporal model reads when it classifies the clip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vidrec.data.clips import clip_indices, read_clip
from vidrec.data.decode import open_video
from vidrec.models.gates import gate_summary, gru_gates, lstm_gates
from vidrec.models.temporal import TemporalEncoder

__all__ = ["GateActivity", "gate_activity", "gate_activity_from_features", "has_gates"]


@dataclass
class GateActivity:
    """Per-frame gate activity of one clip.

    ``times`` float (T,): the sampled frames' times in seconds. ``series``: name -> float (T,),
    as ``vidrec.models.gates.gate_summary`` names them: LSTM ``input_gate``, ``forget_gate``,
    ``output_gate`` (unit means, in (0, 1)) and ``cell_norm`` (>= 0); GRU ``update_gate``,
    ``reset_gate`` and ``hidden_norm``.
    """

    times: np.ndarray
    series: dict[str, np.ndarray]
    # Where the model commits: the probability of its final top class ``label``, read from the
    # hidden state after each frame, i.e. what it would have said had the clip ended there.
    committed: np.ndarray | None = None
    label: str | None = None

    @property
    def gates(self) -> dict[str, np.ndarray]:
        """The gate series, each in (0, 1)."""
        return {k: v for k, v in self.series.items() if k.endswith("_gate")}

    @property
    def norms(self) -> dict[str, np.ndarray]:
        """The state-norm series (cell norm for an LSTM, hidden norm for a GRU), each >= 0."""
        return {k: v for k, v in self.series.items() if k.endswith("_norm")}


def has_gates(temporal: TemporalEncoder) -> bool:
    """Whether ``temporal`` has gates to show: an LSTM or a GRU (not ``mean``, not the tanh ``rnn``)."""
    # exact types, not isinstance: nn.LSTM, nn.GRU and nn.RNN are all RNNBase subclasses
    return type(temporal.rnn) in (nn.LSTM, nn.GRU)


@torch.no_grad()
def gate_activity_from_features(temporal: TemporalEncoder, features: torch.Tensor, times: np.ndarray) -> GateActivity | None:
    """Gates of ``temporal`` reading one clip's features ``(T, D)`` (or ``(1, T, D)``).

    ``times`` (T,) are the frames' times in seconds. Returns None when the temporal model has
    no gates (``mean``, or the plain tanh ``rnn``). Eval-mode behaviour: the encoder's input
    dropout is skipped, as it is in prediction.
    """
    x = features.float().reshape(1, *features.shape[-2:])  # (1, T, D)
    rnn = temporal.rnn
    if type(rnn) is nn.LSTM:
        summary = gate_summary(lstm_gates(rnn, x))
    elif type(rnn) is nn.GRU:
        summary = gate_summary(gru_gates(rnn, x))
    else:
        return None
    return GateActivity(
        times=np.asarray(times, dtype=float),
        series={k: v[0].cpu().numpy().astype(float) for k, v in summary.items()},  # (T,) each
    )


def gate_activity(predictor, video: str | os.PathLike) -> GateActivity | None:
    """The gates of ``predictor``'s temporal model on ``video``, sampled as whole-video prediction samples it.

    The clip is the checkpoint's evaluation clip (one view, ``predictor.clip`` sampling and
    ``predictor.transform``), read through ``read_clip`` at the indices ``clip_indices``
    chooses, so each value sits at its frame's time. With a motion stream, these are the
    appearance stream's gates (``net.temporal``), not ``net.motion_temporal``'s. Returns None
    for a ``mean`` or ``rnn`` model; raises ``VideoDecodeError`` for a file that cannot be read.
    """
    net = predictor.net
    if not has_gates(net.temporal):  # no decoding for a model with nothing to show
        return None
    with open_video(video, predictor.clip.backend) as reader:
        indices = clip_indices(reader, predictor.clip)  # (T,) the evaluation clip's frames
        clip = read_clip(reader, predictor.clip, predictor.transform, indices=indices)
        fps = reader.fps
    motion = clip.motion[None].to(predictor.device) if clip.motion is not None else None
    with torch.inference_mode():
        features = net.frame_features(clip.frames[None].to(predictor.device), motion)  # (1, T, D [+ M])
    rgb = features[..., : net.backbone.out_dim]  # what net.encode hands the temporal model
    activity = gate_activity_from_features(net.temporal, rgb, indices / fps)
    temporal = net.temporal
    if (
        net.action_head is not None
        and net.motion_temporal is None
        and temporal.temporal_pooling == "last"
        and not temporal.bidirectional
    ):
        # With last-step pooling the head reads h_T; h_t is what it would read had the clip
        # ended at frame t, so the head on every h_t shows when the model makes up its mind.
        with torch.inference_mode():
            sequence, _ = temporal.rnn(rgb.float())  # (1, T, H): the top layer's h_t
            probs = net.action_head(sequence[0]).float().softmax(-1)  # (T, C)
        top = int(probs[-1].argmax())
        activity.committed, activity.label = probs[:, top].cpu().numpy().astype(float), predictor.classes[top]
    return activity
