"""Gate activity of a trained model on a video (vidrec/inference/gate_activity.py) and its pictures (viz).

The gates must be those of the checkpoint's own LSTM on the features it classifies the clip
from, and the timeline picture must grow a panel for them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidrec.data.clips import load_clip
from vidrec.data.manifest import read_manifest
from vidrec.inference.gate_activity import GateActivity, gate_activity, gate_activity_from_features
from vidrec.inference.predictor import Predictor
from vidrec.models.gates import gru_gates, lstm_gates
from vidrec.models.net import build_recognizer
from vidrec.models.temporal import TemporalEncoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LSTM_KEYS = {"input_gate", "forget_gate", "output_gate", "cell_norm"}


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint) -> Predictor:
    return Predictor.from_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def video(tiny_dataset) -> str:
    return read_manifest(tiny_dataset / "test.jsonl")[0].video


def test_gate_activity_of_the_checkpoint_lstm(predictor, video):
    activity = gate_activity(predictor, video)
    T = predictor.clip.num_frames
    assert isinstance(activity, GateActivity)
    assert set(activity.series) == LSTM_KEYS
    for name, values in activity.series.items():
        assert values.shape == (T,), name
    for name, values in activity.gates.items():
        assert ((values > 0) & (values < 1)).all(), name
    assert (activity.norms["cell_norm"] >= 0).all()
    # Frame times: the evaluation clip's frames, in order, inside the 1 s video (8 frames at 8 fps).
    assert activity.times.shape == (T,)
    assert (np.diff(activity.times) > 0).all() and 0 <= activity.times[0] and activity.times[-1] < 1.0


def test_gate_activity_matches_a_direct_lstm_gates_call(predictor, video):
    activity = gate_activity(predictor, video)
    net = predictor.net
    # The independent path: whole-video sampling (no explicit indices) -> features -> lstm_gates.
    frames = load_clip(video, predictor.clip, predictor.transform)[None]  # (1, T, 3, S, S)
    with torch.no_grad():
        features = net.frame_features(frames)  # (1, T, D)
        gates = lstm_gates(net.temporal.rnn, features)
        _, encoding = net.encode(features=features)  # (1, H): what the heads read
    np.testing.assert_allclose(activity.series["input_gate"], gates.input[0].mean(-1).numpy(), atol=1e-6)
    np.testing.assert_allclose(activity.series["forget_gate"], gates.forget[0].mean(-1).numpy(), atol=1e-6)
    np.testing.assert_allclose(activity.series["output_gate"], gates.output[0].mean(-1).numpy(), atol=1e-6)
    np.testing.assert_allclose(activity.series["cell_norm"], gates.cell[0].norm(dim=-1).numpy(), atol=1e-5)
    # The recomputed recurrence ends where the model's own forward pass does: same input, same weights.
    torch.testing.assert_close(gates.hidden[:, -1], encoding, atol=1e-5, rtol=1e-5)


def test_gru_activity_from_features_matches_gru_gates():
    torch.manual_seed(0)
    temporal = TemporalEncoder(6, temporal="gru", hidden_size=5).eval()
    features = torch.randn(7, 6)  # (T, D)
    activity = gate_activity_from_features(temporal, features, np.arange(7) / 4.0)
    assert set(activity.series) == {"update_gate", "reset_gate", "hidden_norm"}
    with torch.no_grad():
        gates = gru_gates(temporal.rnn, features[None])
        _, encoding = temporal(features[None])  # (1, H)
    np.testing.assert_allclose(activity.series["update_gate"], gates.update[0].mean(-1).numpy(), atol=1e-6)
    np.testing.assert_allclose(activity.series["reset_gate"], gates.reset[0].mean(-1).numpy(), atol=1e-6)
    assert activity.series["hidden_norm"][-1] == pytest.approx(float(encoding.norm()), abs=1e-5)
    np.testing.assert_array_equal(activity.times, np.arange(7) / 4.0)


@pytest.mark.parametrize("kind", ["mean", "rnn"])
def test_models_without_gates_give_none(kind, predictor, video):
    net = build_recognizer({"classes": ["a", "b"], "backbone": "resnet18", "weights": "none", "temporal": kind, "hidden_size": 8})
    plain = Predictor(net, classes=["a", "b"], clip=predictor.clip, device="cpu")
    assert gate_activity(plain, video) is None
    assert gate_activity_from_features(net.temporal, torch.randn(4, net.backbone.out_dim), np.arange(4.0)) is None


def _png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG, from its header."""
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_timeline_with_gates_has_the_gate_panel(predictor, video, tmp_path):
    from vidrec.inference import viz

    windowed = predictor.predict(video, topk=3, window=0.5, stride=0.25)
    assert windowed.error is None and len(windowed.timeline) >= 2
    activity = gate_activity(predictor, video)

    plain_fig = viz.timeline_figure(windowed, top=3)
    gates_fig = viz.timeline_figure(windowed, top=3, gates=activity)
    try:
        assert len(plain_fig.axes) == 1
        # probability axis, gate axis, and the gate axis's twin for the cell norm
        assert len(gates_fig.axes) == 3
        gate_ax = gates_fig.axes[1]
        assert {line.get_label() for line in gate_ax.get_lines()} == {
            "input gate", "forget gate", "output gate", f"p({activity.label}) had the clip ended here"
        }
        assert [line.get_label() for line in gates_fig.axes[2].get_lines()] == ["cell norm"]
        np.testing.assert_allclose(gate_ax.get_lines()[0].get_xdata(), activity.times)
    finally:
        import matplotlib.pyplot as plt

        plt.close(plain_fig)
        plt.close(gates_fig)

    # The old call still works, and the picture with gates is the taller one.
    plain = viz.plot_timeline(windowed, tmp_path / "plain.png", top=3)
    with_gates = viz.plot_timeline(windowed, tmp_path / "gates.png", top=3, gates=activity)
    assert plain == tmp_path / "plain.png" and with_gates == tmp_path / "gates.png"
    (w0, h0), (w1, h1) = _png_size(plain), _png_size(with_gates)
    assert w1 == w0 and h1 > h0
    # A model without gates passes None, which draws the plain timeline.
    viz.plot_timeline(windowed, tmp_path / "none.png", top=3, gates=None)
    assert _png_size(tmp_path / "none.png") == (w0, h0)


def test_plot_gates_writes_a_png(predictor, video, tmp_path):
    from vidrec.inference import viz

    activity = gate_activity(predictor, video)
    path = viz.plot_gates(activity, tmp_path / "sub" / "gates.png", title="tiny LSTM", highlight=(0.0, 0.25))
    assert _png_size(path)[0] > 0
    fig = viz.gates_figure(activity)
    try:
        assert len(fig.axes) == 2  # gates, and the twin axis for the norm
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_commitment_ends_at_the_prediction(predictor, video):
    # The head read after each frame: at the last frame it is exactly the whole-video prediction.
    activity = gate_activity(predictor, video)
    pred = predictor.predict(video, topk=1)
    assert activity.label == pred.actions[0].label
    assert activity.committed.shape == activity.times.shape
    assert ((activity.committed >= 0) & (activity.committed <= 1)).all()
    assert activity.committed[-1] == pytest.approx(pred.actions[0].prob, abs=1e-5)
