"""Gate recomputation (vidrec/models/gates.py) must reproduce nn.LSTM / nn.GRU exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidrec.models.gates import GRUGates, LSTMGates, gate_summary, gru_gates, lstm_gates

D, H = 5, 4
ATOL = 1e-6


def _make(cls, seed: int, **kw) -> nn.RNNBase:
    """A float64 module in eval mode: float64 so that a 1e-6 tolerance is far above rounding."""
    torch.manual_seed(seed)
    return cls(D, H, **kw).double().eval()


def _input(rnn: nn.RNNBase, b: int, t: int) -> torch.Tensor:
    x = torch.randn(b, t, D, dtype=torch.float64)  # (B, T, D)
    return x if rnn.batch_first else x.transpose(0, 1).contiguous()  # module's own layout


def _batch_first(rnn: nn.RNNBase, y: torch.Tensor) -> torch.Tensor:
    return y if rnn.batch_first else y.transpose(0, 1)


# (num_layers, batch_first, bidirectional, bias) — 2 layers with dropout set, to show it is off in eval
CONFIGS = [
    (1, True, False, True),
    (2, True, False, True),
    (1, False, False, True),
    (2, False, True, True),
    (1, True, True, False),
]
SIZES = [(1, 1), (3, 7), (2, 16)]  # (B, T)


@pytest.mark.parametrize("layers,batch_first,bidir,bias", CONFIGS)
@pytest.mark.parametrize("b,t", SIZES)
def test_lstm_matches_nn_lstm(layers, batch_first, bidir, bias, b, t):
    lstm = _make(nn.LSTM, 0, num_layers=layers, batch_first=batch_first, bidirectional=bidir, bias=bias,
                 dropout=0.3 if layers > 1 else 0.0)
    x = _input(lstm, b, t)
    with torch.no_grad():
        y, (h_n, c_n) = lstm(x)
        g = lstm_gates(lstm, x)
    torch.testing.assert_close(g.hidden, _batch_first(lstm, y), atol=ATOL, rtol=0)
    torch.testing.assert_close(g.cell[:, -1, :H], c_n[-2 if bidir else -1], atol=ATOL, rtol=0)
    if bidir:  # the backward direction ends at frame 0
        torch.testing.assert_close(g.cell[:, 0, H:], c_n[-1], atol=ATOL, rtol=0)
    assert g.input.shape == (b, t, H * (2 if bidir else 1))


def test_lstm_initial_state_is_used():
    lstm = _make(nn.LSTM, 1, num_layers=2, batch_first=True)
    x = _input(lstm, 3, 5)
    h0, c0 = torch.randn(2, 2, 3, H, dtype=torch.float64)  # each (layers, B, H)
    with torch.no_grad():
        y, (_, c_n) = lstm(x, (h0, c0))
        g = lstm_gates(lstm, x, h0, c0)
    torch.testing.assert_close(g.hidden, y, atol=ATOL, rtol=0)
    torch.testing.assert_close(g.cell[:, -1], c_n[-1], atol=ATOL, rtol=0)


@pytest.mark.parametrize("layers,batch_first,bidir,bias", CONFIGS)
@pytest.mark.parametrize("b,t", SIZES)
def test_gru_matches_nn_gru(layers, batch_first, bidir, bias, b, t):
    gru = _make(nn.GRU, 2, num_layers=layers, batch_first=batch_first, bidirectional=bidir, bias=bias,
                dropout=0.3 if layers > 1 else 0.0)
    x = _input(gru, b, t)
    h0 = torch.randn(layers * (2 if bidir else 1), b, H, dtype=torch.float64)
    with torch.no_grad():
        y, h_n = gru(x, h0)
        g = gru_gates(gru, x, h0)
    torch.testing.assert_close(g.hidden, _batch_first(gru, y), atol=ATOL, rtol=0)
    torch.testing.assert_close(g.hidden[:, -1, :H], h_n[-2 if bidir else -1], atol=ATOL, rtol=0)


def test_float32_within_1e6():
    torch.manual_seed(3)
    lstm, gru = nn.LSTM(D, H, batch_first=True).eval(), nn.GRU(D, H, batch_first=True).eval()
    x = torch.randn(2, 10, D)  # (B, T, D)
    with torch.no_grad():
        torch.testing.assert_close(lstm_gates(lstm, x).hidden, lstm(x)[0], atol=ATOL, rtol=0)
        torch.testing.assert_close(gru_gates(gru, x).hidden, gru(x)[0], atol=ATOL, rtol=0)


def test_gates_lie_in_their_ranges():
    lstm = _make(nn.LSTM, 4, num_layers=2, batch_first=True)
    gru = _make(nn.GRU, 4, num_layers=2, batch_first=True)
    with torch.no_grad():
        lg, gg = lstm_gates(lstm, _input(lstm, 4, 9)), gru_gates(gru, _input(gru, 4, 9))
    for sig in (lg.input, lg.forget, lg.output, gg.reset, gg.update):
        assert ((sig > 0) & (sig < 1)).all()
    for tanh in (lg.cell_candidate, lg.hidden, gg.candidate, gg.hidden):
        assert ((tanh > -1) & (tanh < 1)).all()


def test_huge_forget_bias_carries_the_cell_over():
    """Forget-gate bias +20 (its weight rows zeroed so x and h cannot pull it down):
    f = sigmoid(20) ~ 1 - 2e-9, so c_t = c_{t-1} + i_t * g_t, nothing is forgotten. Shutting the
    input gate the same way (-20) leaves nothing to add, and c0 is carried through every frame."""
    lstm = _make(nn.LSTM, 5, batch_first=True)
    x = _input(lstm, 2, 12)  # (B, T, D)
    c0 = torch.randn(1, 2, H, dtype=torch.float64)  # (layers, B, H)
    f_rows = slice(H, 2 * H)  # PyTorch gate order i, f, g, o
    with torch.no_grad():
        for w in (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_hh_l0):
            w[f_rows] = 0.0
        lstm.bias_ih_l0[f_rows] = 20.0
        g = lstm_gates(lstm, x, c0=c0)
        assert (g.forget > 1 - 1e-8).all()
        prev = torch.cat([c0[0].unsqueeze(1), g.cell[:, :-1]], dim=1)  # (B, T, H): c_{t-1}
        torch.testing.assert_close(g.cell, prev + g.input * g.cell_candidate, atol=1e-6, rtol=0)

        for w in (lstm.weight_ih_l0, lstm.weight_hh_l0):
            w[:H] = 0.0
        lstm.bias_hh_l0[:H] = 0.0
        lstm.bias_ih_l0[:H] = -20.0  # input gate shut
        g = lstm_gates(lstm, x, c0=c0)
    assert (g.input < 1e-8).all()
    torch.testing.assert_close(g.cell, c0[0].unsqueeze(1).expand_as(g.cell), atol=1e-6, rtol=0)


def test_gate_summary_shapes_and_ranges():
    lstm = _make(nn.LSTM, 6, batch_first=True, bidirectional=True)
    gru = _make(nn.GRU, 6, batch_first=True)
    with torch.no_grad():
        ls = gate_summary(lstm_gates(lstm, _input(lstm, 3, 8)))
        gs = gate_summary(gru_gates(gru, _input(gru, 3, 8)))
    assert set(ls) == {"input_gate", "forget_gate", "output_gate", "cell_norm"}
    assert set(gs) == {"update_gate", "reset_gate", "hidden_norm"}
    for v in [*ls.values(), *gs.values()]:
        assert v.shape == (3, 8)  # (B, T)
    assert ((ls["forget_gate"] > 0) & (ls["forget_gate"] < 1)).all()
    assert (ls["cell_norm"] >= 0).all() and (gs["hidden_norm"] >= 0).all()
    with pytest.raises(TypeError):
        gate_summary("not gates")


def test_rejects_projected_lstm_and_bad_input():
    with pytest.raises(ValueError, match="proj_size"):
        lstm_gates(nn.LSTM(D, H, proj_size=2, batch_first=True), torch.randn(1, 3, D))
    with pytest.raises(ValueError, match="3-D"):
        lstm_gates(nn.LSTM(D, H, batch_first=True), torch.randn(3, D))
    assert isinstance(gru_gates(nn.GRU(D, H, batch_first=True), torch.randn(1, 2, D)), GRUGates)
    assert isinstance(lstm_gates(nn.LSTM(D, H, batch_first=True), torch.randn(1, 2, D)), LSTMGates)
