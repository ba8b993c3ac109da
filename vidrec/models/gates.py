"""Per-time-step gate activity of a trained ``nn.LSTM`` / ``nn.GRU``, recomputed from its weights.

cuDNN's fused kernels return only hidden (and cell) states; the gates that decide what the
temporal encoder keeps or forgets between frames stay hidden. These functions replay the
recurrence step by step with the module's own weights, so a timeline plot can show, per
frame, how much the model writes (input gate), keeps (forget gate) and exposes (output gate).

Conventions, shared by both functions:
  - ``x`` is laid out as the module expects (``(B, T, D)`` when ``batch_first``, else
    ``(T, B, D)``); every returned tensor is batch-first, ``(B, T, ...)``, whatever the module's
    layout, because plots and charts index clips first.
  - Only the LAST layer's gates are returned (that layer feeds the heads); lower layers are run
    only to produce its input. Inter-layer dropout is skipped, i.e. this is eval-mode behaviour.
  - Bidirectional modules are supported: the forward and backward directions are concatenated
    on the last axis (``(B, T, 2H)``, forward units first, as ``nn.LSTM`` orders its output),
    and index ``t`` is frame ``t`` for both (the backward direction is flipped back).
  - ``proj_size > 0`` (LSTM projections) is rejected with ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["LSTMGates", "GRUGates", "lstm_gates", "gru_gates", "gate_summary"]


@dataclass
class LSTMGates:
    """Last-layer LSTM activity, every field ``(B, T, H')`` with H' = H, or 2H when bidirectional.

    ``input``, ``forget``, ``output`` are sigmoids in (0, 1); ``cell_candidate`` (g) is a tanh in
    (-1, 1); ``cell`` (c) is unbounded; ``hidden`` (h = o * tanh(c)) is in (-1, 1) and equals
    ``nn.LSTM``'s output sequence.
    """

    input: Tensor
    forget: Tensor
    cell_candidate: Tensor
    output: Tensor
    cell: Tensor
    hidden: Tensor


@dataclass
class GRUGates:
    """Last-layer GRU activity, every field ``(B, T, H')`` with H' = H, or 2H when bidirectional.

    ``reset`` and ``update`` are sigmoids in (0, 1); ``candidate`` (n) is a tanh in (-1, 1);
    ``hidden`` (h = (1 - z) * n + z * h_prev) equals ``nn.GRU``'s output sequence.
    """

    reset: Tensor
    update: Tensor
    candidate: Tensor
    hidden: Tensor


def _weights(rnn: nn.RNNBase, layer: int, suffix: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(W_ih (G*H, D_in), W_hh (G*H, H), b_ih (G*H,), b_hh (G*H,)) of one layer and direction;
    zero biases when the module was built with ``bias=False``, so one code path serves both."""
    w_ih = getattr(rnn, f"weight_ih_l{layer}{suffix}")
    w_hh = getattr(rnn, f"weight_hh_l{layer}{suffix}")
    if rnn.bias:
        return w_ih, w_hh, getattr(rnn, f"bias_ih_l{layer}{suffix}"), getattr(rnn, f"bias_hh_l{layer}{suffix}")
    zeros = w_ih.new_zeros(w_ih.shape[0])
    return w_ih, w_hh, zeros, zeros


def _check(rnn: nn.RNNBase, x: Tensor) -> Tensor:
    """Validate and return ``x`` as (B, T, D)."""
    if getattr(rnn, "proj_size", 0) > 0:
        raise ValueError("lstm_gates does not support proj_size > 0 (projected LSTMs)")
    if x.dim() != 3:
        raise ValueError(f"x must be 3-D (batch, time, features), got shape {tuple(x.shape)}")
    return x if rnn.batch_first else x.transpose(0, 1)  # (B, T, D)


def _initial(state: Tensor | None, rnn: nn.RNNBase, batch: int, like: Tensor) -> Tensor:
    """``state`` as ``nn.LSTM`` takes it, (layers * dirs, B, H), or zeros when None."""
    dirs = 2 if rnn.bidirectional else 1
    if state is None:
        return like.new_zeros(rnn.num_layers * dirs, batch, rnn.hidden_size)
    return state


def _lstm_direction(x: Tensor, w: tuple[Tensor, ...], h: Tensor, c: Tensor, reverse: bool) -> dict[str, Tensor]:
    """One LSTM layer in one direction: x (B, T, D_in), h/c (B, H) -> dict of (B, T, H)."""
    w_ih, w_hh, b_ih, b_hh = w
    pre_x = x @ w_ih.T + b_ih  # (B, T, 4H): the input part has no recurrence, so do it at once
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    out: dict[str, list[Tensor]] = {k: [] for k in ("i", "f", "g", "o", "c", "h")}
    for t in steps:
        i, f, g, o = (pre_x[:, t] + h @ w_hh.T + b_hh).chunk(4, dim=-1)  # PyTorch order: i, f, g, o
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        c = f * c + i * g
        h = o * c.tanh()
        for k, v in zip("ifgoch", (i, f, g, o, c, h)):
            out[k].append(v)
    if reverse:  # collected from T-1 down to 0; flip so index t is frame t
        out = {k: v[::-1] for k, v in out.items()}
    return {k: torch.stack(v, dim=1) for k, v in out.items()}  # (B, T, H) each


def _gru_direction(x: Tensor, w: tuple[Tensor, ...], h: Tensor, reverse: bool) -> dict[str, Tensor]:
    """One GRU layer in one direction: x (B, T, D_in), h (B, H) -> dict of (B, T, H)."""
    w_ih, w_hh, b_ih, b_hh = w
    pre_x = x @ w_ih.T + b_ih  # (B, T, 3H)
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    out: dict[str, list[Tensor]] = {k: [] for k in ("r", "z", "n", "h")}
    for t in steps:
        xr, xz, xn = pre_x[:, t].chunk(3, dim=-1)  # PyTorch order: r, z, n
        hr, hz, hn = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
        r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
        n = (xn + r * hn).tanh()  # r scales W_hn h + b_hn (PyTorch's form, not r * h before W_hn)
        h = (1 - z) * n + z * h
        for k, v in zip("rznh", (r, z, n, h)):
            out[k].append(v)
    if reverse:
        out = {k: v[::-1] for k, v in out.items()}
    return {k: torch.stack(v, dim=1) for k, v in out.items()}


def _run_layers(rnn: nn.RNNBase, x: Tensor, run_direction, states: list[Tensor]) -> dict[str, Tensor]:
    """Run every layer (and direction); return the last layer's per-step dict, directions
    concatenated on the last axis: (B, T, H * dirs)."""
    dirs = 2 if rnn.bidirectional else 1
    for layer in range(rnn.num_layers):
        per_dir = []
        for d in range(dirs):
            idx = layer * dirs + d  # nn.LSTM's h0 row order: layer-major, then direction
            w = _weights(rnn, layer, "_reverse" if d else "")
            per_dir.append(run_direction(x, w, *[s[idx] for s in states], reverse=bool(d)))
        result = {k: torch.cat([p[k] for p in per_dir], dim=-1) for k in per_dir[0]}
        x = result["h"]  # (B, T, H * dirs): the next layer's input (eval: no dropout between)
    return result


def lstm_gates(lstm: nn.LSTM, x: Tensor, h0: Tensor | None = None, c0: Tensor | None = None) -> LSTMGates:
    """Recompute the last layer's per-step gates of ``lstm`` on ``x``.

    Args:
        lstm: an ``nn.LSTM`` (any ``num_layers``, ``batch_first``, ``bidirectional``, ``bias``;
            not ``proj_size``).
        x: (B, T, D) if ``lstm.batch_first`` else (T, B, D).
        h0, c0: initial states as ``nn.LSTM`` takes them, (num_layers * dirs, B, H); zeros if None.

    Returns:
        ``LSTMGates`` with batch-first (B, T, H') fields; ``hidden`` matches ``lstm(x)[0]``
        (transposed to batch-first) and ``cell[:, -1]`` the last layer's final forward ``c_n``.
        Gradients flow as usual; wrap in ``torch.no_grad()`` for plain inspection.
    """
    x = _check(lstm, x)  # (B, T, D)
    states = [_initial(s, lstm, x.shape[0], x) for s in (h0, c0)]
    r = _run_layers(lstm, x, _lstm_direction, states)
    return LSTMGates(input=r["i"], forget=r["f"], cell_candidate=r["g"], output=r["o"], cell=r["c"], hidden=r["h"])


def gru_gates(gru: nn.GRU, x: Tensor, h0: Tensor | None = None) -> GRUGates:
    """Recompute the last layer's per-step gates of ``gru`` on ``x``; same conventions as
    ``lstm_gates`` (x in the module's layout, h0 (num_layers * dirs, B, H), outputs (B, T, H'))."""
    x = _check(gru, x)  # (B, T, D)
    r = _run_layers(gru, x, _gru_direction, [_initial(h0, gru, x.shape[0], x)])
    return GRUGates(reset=r["r"], update=r["z"], candidate=r["n"], hidden=r["h"])


def gate_summary(gates: LSTMGates | GRUGates) -> dict[str, Tensor]:
    """Per-frame scalars for a timeline: each value is (B, T).

    LSTM: ``input_gate``, ``forget_gate``, ``output_gate`` (means over units, in (0, 1)) and
    ``cell_norm`` (L2 norm of c over units, >= 0). GRU: ``update_gate``, ``reset_gate`` (means)
    and ``hidden_norm`` (L2 norm of h). Bidirectional units are pooled together.
    """
    if isinstance(gates, LSTMGates):
        return {
            "input_gate": gates.input.mean(dim=-1),
            "forget_gate": gates.forget.mean(dim=-1),
            "output_gate": gates.output.mean(dim=-1),
            "cell_norm": gates.cell.norm(dim=-1),
        }
    if isinstance(gates, GRUGates):
        return {
            "update_gate": gates.update.mean(dim=-1),
            "reset_gate": gates.reset.mean(dim=-1),
            "hidden_norm": gates.hidden.norm(dim=-1),
        }
    raise TypeError(f"gate_summary takes LSTMGates or GRUGates, got {type(gates).__name__}")
