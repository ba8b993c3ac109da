"""ONNX export (vidrec.inference.export): parity with PyTorch at several batch sizes and clip lengths."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from vidrec.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from vidrec.inference.export import INPUT_NAME, MOTION_NAME, OUTPUT_NAME, export_onnx, read_metadata  # noqa: E402
from vidrec.models.backbone import pretrained_normalization  # noqa: E402

TOL = 1e-4


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _max_diff(session, net, batch: int, frames: int, size: int, seed: int = 0) -> float:
    x = torch.randn(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = net(x).numpy()
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
    assert got.shape == expected.shape == (batch, net.action_head.fc.out_features)
    return float(np.abs(got - expected).max())


def _load_net(ckpt):
    return load_checkpoint(ckpt).net  # eval mode


def _fake_checkpoint(path, data: dict | None = None, **hparams):
    """A checkpoint ``load_checkpoint`` accepts, of an untrained module (no training run).

    Returns the module's network in eval mode, the reference for parity checks.
    """
    import pytorch_lightning as pl

    from vidrec.training.lit_module import VidRecModule

    # resnet18: a random-init MobileNetV3 gives ~1e-9 features, and parity on near-constant outputs proves little
    torch.manual_seed(0)
    module = VidRecModule(**{"backbone": "resnet18", "weights": "none", "hidden_size": 16, **hparams})
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": pl.__version__,
            "datamodule_hyper_parameters": data or {},
        },
        path,
    )
    return module.net.eval()


# --------------------------------------------------------------------------------------
# The trained tiny model (configs/debug.yaml: random-init resnet18, 32 px, T=4)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "sub" / "model.onnx"
    path = export_onnx(tiny_checkpoint, out)
    assert path == out and out.is_file()
    assert not list(out.parent.glob("*.tmp"))
    return path


@pytest.mark.slow
def test_onnx_matches_pytorch_with_dynamic_batch_and_frames(tiny_checkpoint, exported):
    net = _load_net(tiny_checkpoint)
    session = _session(exported)
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == INPUT_NAME and out.name == OUTPUT_NAME
    assert isinstance(inp.shape[0], str) and isinstance(inp.shape[1], str)  # symbolic batch and T
    assert inp.shape[2:] == [3, 32, 32]
    diffs = {(b, t): _max_diff(session, net, b, t, 32, seed=b * 10 + t) for b, t in [(2, 4), (3, 7), (1, 1)]}
    print("max abs diff ONNX vs PyTorch:", diffs)
    assert max(diffs.values()) < TOL, diffs


@pytest.mark.slow
def test_metadata_has_classes_and_normalisation(tiny_checkpoint, exported):
    ckpt = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    meta = read_metadata(exported)
    assert meta["classes"] == ckpt["hyper_parameters"]["classes"]
    raw = {p.key: p.value for p in onnx.load(str(exported)).metadata_props}
    assert json.loads(raw["classes"]) == ckpt["hyper_parameters"]["classes"]  # plain JSON, no helper needed
    # the statistics the model was trained with (what the CLI linked into the datamodule)
    hp = ckpt["hyper_parameters"]
    norm = pretrained_normalization(hp["backbone"], hp["weights"])
    assert meta["mean"] == pytest.approx(list(norm.mean)) and meta["std"] == pytest.approx(list(norm.std))
    assert meta["num_frames"] == 4 and meta["frame_size"] == [32, 32]
    onnx.checker.check_model(onnx.load(str(exported)), full_check=True)


# --------------------------------------------------------------------------------------
# Untrained checkpoints: other temporal models, unsupported cases
# --------------------------------------------------------------------------------------


def test_bidirectional_two_layer_lstm_with_attention_and_overrides(tmp_path):
    """Both directions' final states + attention pooling; T and frame size passed explicitly
    (this checkpoint has no datamodule hyperparameters)."""
    ckpt = tmp_path / "bi.ckpt"
    net = _fake_checkpoint(ckpt, classes=["a", "b", "c"], bidirectional=True, num_layers=2, temporal_pooling="attention")
    with pytest.warns(UserWarning, match="no datamodule hyperparameters"):
        path = export_onnx(ckpt, tmp_path / "bi.onnx", num_frames=3, frame_size=16)
    session = _session(path)
    assert session.get_inputs()[0].shape[2:] == [3, 16, 16]
    for b, t in [(2, 3), (3, 7)]:
        assert _max_diff(session, net, b, t, 16) < TOL
    with torch.no_grad():  # the outputs depend on the input, so the parity above means something
        x = torch.randn(2, 3, 3, 16, 16, generator=torch.Generator().manual_seed(5))
        logits = net(x)
        assert not torch.allclose(logits[0], logits[1], atol=1e-3)
        assert not torch.allclose(logits, net(x.flip(1)), atol=1e-4)  # and on the frame order
    meta = read_metadata(path)
    assert meta["classes"] == ["a", "b", "c"] and meta["num_frames"] == 3 and meta["frame_size"] == [16, 16]


@pytest.mark.parametrize("motion, gap, span", [("flow_stats", 0, "gap"), ("flow", 0, "gap"), ("flow_stats", "auto", "gap"),
                                               ("flow_stats", "auto", "step")])
def test_a_model_with_a_motion_input_exports_with_it_as_a_second_input(tmp_path, make_video, moving_square, motion, gap, span):
    # configs/custom.yaml's models read flow statistics; DIS flow is not an ONNX operator, so
    # the graph takes the motion input that read_clip computes, beside the frames.
    from vidrec.data.clips import read_clip

    ckpt = tmp_path / f"{motion}.ckpt"
    net = _fake_checkpoint(ckpt, {"num_frames": 6, "frame_size": 32, "motion": motion, "motion_gap": gap,
                                                       "motion_span": span}, classes=["a", "b", "c"],
                           motion=motion)
    path = export_onnx(ckpt, tmp_path / f"{motion}.onnx")
    session = _session(path)
    assert [i.name for i in session.get_inputs()] == [INPUT_NAME, MOTION_NAME]
    assert all(isinstance(i.shape[0], str) and isinstance(i.shape[1], str) for i in session.get_inputs())
    recipe = read_metadata(path)["motion"]
    assert f"'{motion}'" in recipe and ("auto_motion_gap(sampled indices)" in recipe) == (gap == "auto")
    assert ("motion_hop_indices" in recipe and "step_of=" in recipe) == (span == "step")

    loaded = load_checkpoint(ckpt)
    video = make_video(tmp_path / "square.avi", moving_square(seed=1, num_frames=12))
    clip = read_clip(video, loaded.clip, loaded.clip.eval_transform(loaded.normalization))  # what evaluation feeds
    frames, moving = clip.frames[None], clip.motion[None]  # (1, T, 3, S, S), (1, T, ...)
    still = torch.zeros_like(moving) if motion == "flow_stats" else torch.full_like(moving, float(moving[0, 0].mean()))
    for b, motion_input in ((1, moving), (2, torch.cat([moving, still]))):
        x = frames.expand(b, *frames.shape[1:]).contiguous()
        with torch.no_grad():
            expected = net.action_head(net.encode(frames=x, motion=motion_input)[1]).numpy()
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy(), MOTION_NAME: motion_input.numpy()})
        assert np.abs(got - expected).max() < TOL
    assert not np.allclose(got[0], got[1], atol=1e-4)  # the motion input reaches the logits


def test_caption_only_model_is_refused(tmp_path):
    ckpt = tmp_path / "captions.ckpt"
    _fake_checkpoint(ckpt, {"num_frames": 4, "frame_size": 32}, classes=None,
                     vocab=["<pad>", "<bos>", "<eos>", "<unk>", "a"], caption_embed_dim=4, caption_hidden_size=8)
    with pytest.raises(ValueError, match="no action head") as e:
        export_onnx(ckpt, tmp_path / "captions.onnx")
    assert not isinstance(e.value, CheckpointError)  # the file is fine; the model cannot be exported
    assert not (tmp_path / "captions.onnx").exists()


def test_missing_checkpoint(tmp_path):
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(CheckpointError) as e:
        export_onnx(missing, tmp_path / "m.onnx")
    assert str(e.value) == f"{missing}: checkpoint not found"
    assert not (tmp_path / "m.onnx").exists()


def test_specialised_frame_axis_is_caught():
    """An exporter that baked the example's T into the input shape must not pass silently."""
    from onnx import TensorProto, helper

    from vidrec.inference.export import _check_dynamic_axes

    def graph(shape):
        x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, shape)
        y = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, shape)
        return helper.make_model(helper.make_graph([helper.make_node("Identity", [INPUT_NAME], [OUTPUT_NAME])], "g", [x], [y]))

    _check_dynamic_axes(graph(["batch", "frames", 3, 32, 32]))
    with pytest.raises(RuntimeError, match="specialised the frames axis"):
        _check_dynamic_axes(graph(["batch", 4, 3, 32, 32]))
