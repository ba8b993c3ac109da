"""TemporalEncoder: aggregates per-frame features over time (LRCN).

``temporal="mean"`` is the order-blind baseline (TSN-style average of per-frame projections): it
sees the same frames with the same capacity per frame but cannot know their order, which is
what the synthetic reversed-pair classes measure.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["TemporalEncoder"]


class TemporalEncoder(nn.Module):
    """``(B, T, D)`` frame features -> ``(B, T, H')`` sequence and ``(B, H')`` clip encoding.

    Args:
        input_dim: D, the backbone's feature size.
        temporal: ``lstm`` (default), ``gru``, ``rnn`` (a plain tanh RNN: the baseline whose
            vanishing gradient the LSTM's gates fix), or ``mean`` (order-blind baseline).
        hidden_size: H; the output size H' is 2H when bidirectional.
        num_layers, bidirectional, temporal_dropout: as in ``nn.LSTM``; the dropout is also
            applied to the input features (frozen CNN features are high-dimensional and overfit fast).
        temporal_pooling: how the sequence becomes one vector: ``last`` hidden state (both directions'
            final states when bidirectional), ``mean`` over time, or learned ``attention``.
    """

    def __init__(
        self,
        input_dim: int,
        temporal: Literal["lstm", "gru", "rnn", "mean"] = "lstm",
        hidden_size: int = 512,
        num_layers: int = 1,
        bidirectional: bool = False,
        temporal_dropout: float = 0.5,
        temporal_pooling: Literal["last", "mean", "attention"] = "last",
    ):
        super().__init__()
        if temporal not in ("lstm", "gru", "rnn", "mean"):
            raise ValueError(f"temporal must be lstm, gru, rnn or mean, got {temporal!r}")
        if temporal_pooling not in ("last", "mean", "attention"):
            raise ValueError(f"temporal_pooling must be last, mean or attention, got {temporal_pooling!r}")
        dropout, pooling = temporal_dropout, temporal_pooling
        self.temporal, self.temporal_pooling, self.bidirectional = temporal, temporal_pooling, bidirectional
        self.input_dropout = nn.Dropout(dropout)
        if temporal == "mean":
            self.rnn = None
            self.project = nn.Sequential(nn.Linear(input_dim, hidden_size), nn.ReLU())
            self.out_dim = hidden_size
        else:
            rnn_type = nn.LSTM if temporal == "lstm" else nn.GRU if temporal == "gru" else nn.RNN  # rnn: tanh
            self.rnn = rnn_type(
                input_dim,
                hidden_size,
                num_layers=num_layers,
                batch_first=True,
                bidirectional=bidirectional,
                dropout=dropout if num_layers > 1 else 0.0,
            )
            self.out_dim = hidden_size * (2 if bidirectional else 1)
        self.attention = nn.Linear(self.out_dim, 1) if pooling == "attention" else None

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``features`` (B, T, D) -> (sequence (B, T, H'), encoding (B, H'))."""
        x = self.input_dropout(features)
        if self.rnn is None:
            seq = self.project(x)  # (B, T, H) — per frame, no mixing across time
            return seq, seq.mean(dim=1)  # order-blind regardless of ``pooling``
        seq, state = self.rnn(x)  # (B, T, H')
        if self.temporal_pooling == "mean":
            return seq, seq.mean(dim=1)
        if self.temporal_pooling == "attention":
            weights = torch.softmax(self.attention(seq), dim=1)  # (B, T, 1)
            return seq, (weights * seq).sum(dim=1)
        h_n = state[0] if isinstance(state, tuple) else state  # (layers*dirs, B, H)
        if self.bidirectional:
            # Forward direction's last step and backward direction's last step (= time 0):
            # both have read the whole clip.
            return seq, torch.cat([h_n[-2], h_n[-1]], dim=-1)
        return seq, h_n[-1]  # (B, H)
