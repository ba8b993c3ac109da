"""vidrec.checkpoint: a training checkpoint -> plain objects for inference, loaded safely (weights_only)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vidrec.checkpoint import CaptionSettings, Checkpoint, CheckpointError, load_checkpoint, read_checkpoint
from vidrec.data.clips import ClipSpec
from vidrec.data.transforms import IMAGENET
from vidrec.data.vocab import Vocab


@pytest.fixture(scope="module")
def raw(tiny_checkpoint) -> dict:
    return torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)


def test_loads_everything_inference_needs(tiny_checkpoint, raw):
    ckpt = load_checkpoint(tiny_checkpoint)
    assert isinstance(ckpt, Checkpoint) and ckpt.path == Path(tiny_checkpoint)
    hp, data = raw["hyper_parameters"], raw["datamodule_hyper_parameters"]
    assert ckpt.classes == hp["classes"] and ckpt.classes
    assert isinstance(ckpt.vocab, Vocab) and ckpt.vocab.itos == hp["vocab"]
    # the clip settings are the datamodule's (configs/debug.yaml: T=4, 32 px), the rest ClipSpec's defaults
    assert ckpt.clip == ClipSpec(num_frames=4, sampling=data["sampling"], stride=data["stride"], frame_size=32,
                                 resize=data["resize"], backend=data["backend"])
    assert (ckpt.clip.num_frames, ckpt.clip.frame_size) == (data["num_frames"], data["frame_size"])
    assert ckpt.normalization == IMAGENET  # resnet18 with weights: none was trained on ImageNet statistics
    assert ckpt.caption == CaptionSettings(hp["beam_size"], hp["max_caption_len"], hp["length_penalty"])
    assert ckpt.hparams["hidden_size"] == hp["hidden_size"] == 32

    net = ckpt.net
    assert not net.training
    # every trained weight is the checkpoint's own
    state = net.state_dict()
    trained = {k[len("net."):]: v for k, v in raw["state_dict"].items() if k.startswith("net.")}
    assert state.keys() == trained.keys()
    assert all(torch.equal(state[k], trained[k]) for k in state)
    x = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = net(x)
    assert logits.shape == (2, len(ckpt.classes)) and torch.isfinite(logits).all()


def test_a_pickled_object_is_refused_and_never_run(tmp_path, raw):
    # A checkpoint carrying a Python object whose unpickling would run code (here: write a file).
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({**raw, "payload": _RunsCode(str(marker))}, evil)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(evil)
    assert not marker.exists()
    message = str(e.value)
    assert message.startswith(f"{evil}: refused") and "\n" not in message
    assert e.value.path == str(evil)


class _RunsCode:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path(self.path).touch, ())


@pytest.mark.parametrize("damage", ["missing", "empty", "truncated", "foreign", "not_ours"])
def test_unusable_files_are_one_line_naming_the_file(tmp_path, tiny_checkpoint, damage):
    path = tmp_path / f"{damage}.ckpt"
    expected = {
        "missing": "checkpoint not found",
        "empty": "checkpoint file is empty (0 bytes)",
        "truncated": "not a readable PyTorch checkpoint (truncated or corrupt?)",
        "foreign": "not a readable PyTorch checkpoint",
        "not_ours": "not a vidrec training checkpoint",
    }[damage]
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        data = Path(tiny_checkpoint).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "foreign":
        path.write_text("this is a text file, not a checkpoint\n" * 20)
    elif damage == "not_ours":
        torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert str(e.value).startswith(f"{path}: {expected}")
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)


def test_weights_that_do_not_fit_the_hyperparameters(tmp_path, raw):
    wrong = tmp_path / "wrong.ckpt"
    torch.save({**raw, "hyper_parameters": {**raw["hyper_parameters"], "hidden_size": 64}}, wrong)
    with pytest.raises(CheckpointError, match="does not match the network its hyperparameters describe") as e:
        load_checkpoint(wrong)
    assert str(e.value).startswith(f"{wrong}: ") and "\n" not in str(e.value)


def test_missing_data_settings_warn_and_use_the_clip_defaults(tmp_path, raw):
    bare = tmp_path / "bare.ckpt"
    torch.save({k: v for k, v in raw.items() if k != "datamodule_hyper_parameters"}, bare)
    with pytest.warns(UserWarning, match="no datamodule hyperparameters saved"):
        ckpt = load_checkpoint(bare)
    assert ckpt.clip == ClipSpec()


def test_read_checkpoint_without_reading_tensors(tiny_checkpoint, raw):
    meta = read_checkpoint(tiny_checkpoint, tensors=False)
    assert meta["hyper_parameters"] == raw["hyper_parameters"]
    assert meta["datamodule_hyper_parameters"] == raw["datamodule_hyper_parameters"]
