"""ONNX export of the action classifier: ``frames (B, T, 3, H, W) [, motion] -> logits (B, C)``.

A model with a data-side motion input (``motion: flow_stats`` or ``flow``, e.g.
``configs/custom.yaml``) gets a second input, ``motion``: ``(B, T, 63)`` flow statistics or
``(B, T, 3, H, W)`` flow images. Optical flow (OpenCV's DIS) is not an ONNX operator, so it is
computed outside the graph: ``vidrec.data.clips.read_clip(video, ckpt.clip, ckpt.clip.eval_transform(ckpt.normalization))``
returns both inputs as the model saw them in evaluation (``vidrec.data.motion.motion_input``
on the sampled frames); the ``motion`` metadata entry says the same.

The exported graph is the whole ``VideoRecognizer.forward`` path — frozen backbone, temporal
model (LSTM/GRU/mean) and action head — with a dynamic batch axis *and* a dynamic frame-count
axis, so one file serves any clip length. Frame height/width are fixed to the training crop.

Exporter: the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) by
default. Both it and the torch.export-based one (``dynamo=True``) export ``nn.LSTM`` as a
single ONNX ``LSTM`` node whose sequence length follows the input, and both match PyTorch to
~1e-7; the TorchScript one takes about a second where torch.export takes 15-25 s (its
decomposition pass), and writes opset 17, which older runtimes also read. If the TorchScript
export fails or fails the checks below — it is deprecated upstream, and it cannot export
``pooling="grid"`` backbones (``adaptive_avg_pool2d`` with unknown input size; those go
straight to torch.export) — the export falls back to ``dynamo=True``. Either way the result is checked: ``onnx.checker`` plus a check that the
batch and frame axes really came out symbolic (an exporter that silently specialised the
frame count to the example's would otherwise go unnoticed until deployment) and, with
onnxruntime installed, a run at another batch size and clip length compared with PyTorch.

What a consumer needs for preprocessing is stored in the model's ``metadata_props`` (all
values JSON): ``classes`` (index -> name), ``mean``/``std`` (per channel, applied after
scaling RGB pixels to [0, 1]), ``num_frames`` (the training clip length), ``frame_size``
(crop) and ``resize`` (eval short side before the centre crop; ``null`` = ``frame_size*8/7``).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

__all__ = ["export_onnx", "read_metadata", "INPUT_NAME", "MOTION_NAME", "OUTPUT_NAME"]

INPUT_NAME, MOTION_NAME, OUTPUT_NAME = "frames", "motion", "logits"
BATCH_AXIS, FRAMES_AXIS = "batch", "frames"


class _Logits(nn.Module):
    """``frames [, motion] -> logits`` only: ``VideoRecognizer.forward`` also takes ``features``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, frames: torch.Tensor, motion: torch.Tensor | None = None) -> torch.Tensor:
        if motion is None:
            return self.net(frames)
        _, encoding = self.net.encode(frames=frames, motion=motion)  # (B, H')
        return self.net.action_head(encoding)  # (B, C)


def _names_and_axes(examples: tuple[torch.Tensor, ...]) -> tuple[list[str], dict[str, dict[int, str]]]:
    """Input names, and the symbolic batch and frame axes of each input (and of the output)."""
    names = [INPUT_NAME, MOTION_NAME][: len(examples)]
    axes = {name: {0: BATCH_AXIS, 1: FRAMES_AXIS} for name in names}
    return names, {**axes, OUTPUT_NAME: {0: BATCH_AXIS}}


def _frame_hw(frame_size) -> tuple[int, int]:
    if isinstance(frame_size, (list, tuple)):
        if len(frame_size) != 2:
            raise ValueError(f"frame_size must be an int or (height, width), got {frame_size!r}")
        h, w = (int(s) for s in frame_size)
    else:
        h = w = int(frame_size)
    if h < 1 or w < 1:
        raise ValueError(f"frame_size must be positive, got {frame_size!r}")
    return h, w


def _export_torchscript(model: nn.Module, examples: tuple[torch.Tensor, ...], path: Path, opset: int | None) -> None:
    names, axes = _names_and_axes(examples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export"
        # Advice for RNNs given explicit h0/c0; ours start from zeros, which the ONNX LSTM/GRU
        # node does for any batch size (checked at batch 1, 2 and 3).
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*(LSTM|GRU)")
        # nn.LSTM's own input/hidden size checks, constant for a given model.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            examples,
            str(path),
            dynamo=False,
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
        )


def _export_dynamo(model: nn.Module, examples: tuple[torch.Tensor, ...], path: Path, opset: int | None) -> None:
    batch, frames = torch.export.Dim(BATCH_AXIS), torch.export.Dim(FRAMES_AXIS)
    names, _ = _names_and_axes(examples)
    # dynamic_shapes follows forward's parameter names (frames, motion), as the input names do
    with warnings.catch_warnings():
        # torch.export's notes about torch itself, not about this model: a deprecated guard it
        # calls, nn.LSTM re-assigning its own _flat_weights while traced, and that frames and
        # motion share the batch and frame axes (as they must). The file is checked against
        # PyTorch with onnxruntime after export either way (_verify).
        warnings.filterwarnings("ignore", message="_check_is_size will be removed", category=FutureWarning)
        warnings.filterwarnings("ignore", message="The tensor attributes .*_flat_weights", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*The axis name: .* shares the same shape constraints", category=UserWarning)
        program = torch.onnx.export(
            model,
            examples,
            dynamo=True,
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_shapes={name: {0: batch, 1: frames} for name in names},
            opset_version=opset,
            verbose=False,
        )
    program.save(str(path))


def _check_dynamic_axes(proto, examples: tuple[torch.Tensor, ...] | None = None) -> None:
    """Batch and frame axes of every input must be symbolic, not the example's numbers."""
    names = _names_and_axes(examples)[0] if examples is not None else [INPUT_NAME]
    ranks = [e.ndim for e in examples] if examples is not None else [5]
    for name, rank in zip(names, ranks):
        (inp,) = [i for i in proto.graph.input if i.name == name] or [None]
        if inp is None:
            raise RuntimeError(f"exported graph has no input named {name!r}")
        dims = inp.type.tensor_type.shape.dim
        static = [axis for axis, d in zip((BATCH_AXIS, FRAMES_AXIS), dims[:2]) if d.HasField("dim_value")]
        if len(dims) != rank or static:
            shape = [d.dim_param or d.dim_value for d in dims]
            raise RuntimeError(f"ONNX export specialised the {' and '.join(static) or 'input'} axis: {name} shape {shape}")


def _verify(model: nn.Module, path: Path, examples: tuple[torch.Tensor, ...]) -> float:
    """Run the file with onnxruntime at a batch size and clip length other than the traced
    ones and compare with PyTorch; returns the max abs difference. Skipped without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return float("nan")
    b, t = examples[0].shape[:2]
    g = torch.Generator().manual_seed(0)
    xs = tuple(torch.randn(b + 1, t + 3, *e.shape[2:], generator=g) for e in examples)
    with torch.no_grad():
        expected = model(*xs).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names, _ = _names_and_axes(examples)
    (got,) = session.run([OUTPUT_NAME], {name: x.numpy() for name, x in zip(names, xs)})
    diff = float(abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    if not diff <= 1e-3 * max(1.0, float(abs(expected).max())):
        raise RuntimeError(
            f"exported ONNX model disagrees with PyTorch at batch {b + 1}, {t + 3} frames: output {got.shape} "
            f"vs {expected.shape}, max abs difference {diff:.3g}"
        )
    return diff


def read_metadata(onnx_path: str | os.PathLike) -> dict:
    """The ``metadata_props`` of an exported model, JSON-decoded (``classes``, ``mean``, ...)."""
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    out = {}
    for p in proto.metadata_props:
        try:
            out[p.key] = json.loads(p.value)
        except ValueError:  # written by something else
            out[p.key] = p.value
    return out


def export_onnx(
    ckpt_path: str | os.PathLike,
    out_path: str | os.PathLike,
    num_frames: int | None = None,
    frame_size: int | tuple[int, int] | None = None,
    opset: int | None = None,
    *,
    dynamo: bool | None = None,
    verify: bool = True,
) -> Path:
    """Export a checkpoint's ``frames (B, T, 3, H, W) [, motion] -> logits (B, C)`` network to ONNX.

    Args:
        ckpt_path: a ``VidRecModule`` checkpoint (LightningCLI ``fit`` writes them).
        out_path: the ``.onnx`` file to write (parent folders are created).
        num_frames: T of the example clip traced; the exported T axis is dynamic anyway.
            Default: the checkpoint's datamodule ``num_frames``.
        frame_size: H = W (or ``(H, W)``) of the exported input. Default: the checkpoint's
            datamodule ``frame_size``.
        opset: ONNX opset; default: the exporter's (17 TorchScript, 18+ torch.export).
        dynamo: ``False`` TorchScript exporter only, ``True`` torch.export only, ``None``
            (default) TorchScript, falling back to torch.export if it fails.
        verify: run the written file with onnxruntime (when installed) at another batch
            size and clip length and compare with PyTorch; raises ``RuntimeError`` on mismatch.

    Returns the written path. Raises ``ValueError`` for a model without an action head
    (caption-only), ``CheckpointError`` for a missing, damaged or unsafe checkpoint.
    """
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(f"ONNX export needs the export extras: pip install 'vidrec[export]' ({e})") from None
    from vidrec.checkpoint import load_checkpoint
    from vidrec.data.motion import FLOW_STATS_DIM, reads_frames

    ckpt_path, out_path = Path(ckpt_path), Path(out_path)
    ckpt = load_checkpoint(ckpt_path)  # CheckpointError names the file; missing data settings warn
    net = ckpt.net
    if net.action_head is None:
        raise ValueError(
            f"{ckpt_path}: this model has no action head (trained without classes, caption-only); "
            "ONNX export covers the action classifier only"
        )
    num_frames = int(num_frames if num_frames is not None else ckpt.clip.num_frames)
    height, width = _frame_hw(frame_size if frame_size is not None else ckpt.clip.frame_size)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    classes, norm = ckpt.classes, ckpt.normalization
    # A private eval-mode copy: exporting must not touch the loaded module (dropout off, BN frozen).
    model = _Logits(copy.deepcopy(net)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    # Batch 2 and T >= 2 in the example: size-1 dims invite exporters to specialise them.
    example = torch.randn(2, max(num_frames, 2), 3, height, width)
    examples: tuple[torch.Tensor, ...] = (example,)
    motion_doc = None
    if reads_frames(net.motion):  # the data-side motion input, computed outside the graph
        computed = _motion_recipe(net.motion, ckpt.clip.motion_gap, ckpt.clip.motion_span, ckpt.clip.motion_residual_max)
        if net.motion == "flow_stats":
            examples += (torch.randn(2, example.shape[1], FLOW_STATS_DIM),)
            motion_doc = f"{MOTION_NAME}: float32 (batch, frames, {FLOW_STATS_DIM}) flow statistics, {computed}, before any crop"
        else:
            examples += (torch.randn_like(example),)
            motion_doc = (f"{MOTION_NAME}: float32 (batch, frames, 3, {height}, {width}) flow images, "
                          f"{computed}, cropped and normalised as the frames")

    out_path.parent.mkdir(parents=True, exist_ok=True)
    props = {
        "classes": classes,
        "mean": [float(x) for x in norm.mean],
        "std": [float(x) for x in norm.std],
        "num_frames": num_frames,
        "frame_size": [height, width],
        "resize": ckpt.clip.resize,
        "input": f"{INPUT_NAME}: float32 (batch, frames, 3, {height}, {width}) RGB, "
        "pixels scaled to [0, 1] then (x - mean) / std per channel",
        "output": f"{OUTPUT_NAME}: float32 (batch, {len(classes)}) unnormalised class scores (softmax for probabilities)",
        "motion": motion_doc,  # null: the frames are the only input
    }
    tmp = out_path.with_name(out_path.name + ".tmp")

    def attempt(export) -> None:  # export, check, add metadata, verify -> tmp
        export(model, examples, tmp, opset)
        proto = onnx.load(str(tmp))
        _check_dynamic_axes(proto, examples)
        del proto.metadata_props[:]
        for key, value in props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        proto.producer_name = "vidrec"
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, str(tmp))
        if verify:
            _verify(model, tmp, examples)

    if dynamo is None and net.backbone.spatial_pooling == "grid":
        dynamo = True  # the TorchScript exporter cannot size adaptive_avg_pool2d here (see top)
    try:
        if dynamo:
            attempt(_export_dynamo)
        else:
            try:
                attempt(_export_torchscript)
            except Exception as e:
                if dynamo is False:
                    raise
                reason = (str(e).strip().splitlines() or [""])[0][:300]
                warnings.warn(f"TorchScript ONNX export failed ({type(e).__name__}: {reason}); retrying with dynamo=True")
                attempt(_export_dynamo)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def _motion_recipe(motion: str, gap, span: str = "gap", residual_max: float | None = None) -> str:
    """How to compute the exported model's motion input from a video, for its metadata."""
    residual = "" if residual_max is None else f", residual_max={residual_max:g}"
    if not gap:
        return f"vidrec.data.motion.motion_input(uint8 frames (T, H, W, 3), '{motion}'{residual})"
    gap_text = "gap" if gap == "auto" else str(gap)
    apart = f", frames_apart=np.full({'P' if span == 'step' else 'T'}, gap)" if gap == "auto" else ""
    if span == "step":
        recipe = (f"vidrec.data.motion.motion_input_between(before, after, '{motion}'{apart}, step_of=np.repeat(np.arange(T), hops)"
                  f"{residual}), "
                  f"uint8 (P = T * hops, H, W, 3) each: the frames at vidrec.data.sampling.motion_hop_indices(sampled indices, "
                  f"frame count, {gap_text}, hops) (each (T, hops), flattened), hops = vidrec.data.sampling.motion_hops(sampled indices, {gap_text})")
    else:
        recipe = (f"vidrec.data.motion.motion_input_between(before, after, '{motion}'{apart}{residual}), uint8 (T, H, W, 3) each: "
                  f"the frames at vidrec.data.sampling.motion_pair_indices(sampled indices, frame count, {gap_text})")
    return recipe + (", gap = vidrec.data.sampling.auto_motion_gap(sampled indices)" if gap == "auto" else "")
