"""caption_from_action: the caption decoder also reads the action head's (detached) class
probabilities, beside the clip encoding, in training, decoding, multi-view evaluation, the
Predictor and checkpoints; in training it reads the true class, and caption_video_dropout
blanks the video of some clips so that the decoder learns to read the class."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidrec.checkpoint import load_checkpoint
from vidrec.data.clips import load_views
from vidrec.data.datasets import collate_clips
from vidrec.data.manifest import read_manifest
from vidrec.data.vocab import Vocab
from vidrec.inference.predictor import Predictor
from vidrec.models.net import build_recognizer
from vidrec.training.lit_module import VidRecModule

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The caption's action word is the label's: only the label can tell the decoder which word.
WORDS = {"pan_left": "left", "pan_right": "right", "zoom_in": "in"}
CLASSES = sorted(WORDS)
SENTENCES = [f"the camera moves {w}" for w in WORDS.values()]
T, D = 3, 576  # frames, mobilenet_v3_small feature size (features are fed directly: no CNN runs)


@pytest.fixture(scope="module")
def vocab() -> Vocab:
    return Vocab.build(SENTENCES)


def _module(vocab: Vocab, seed: int = 0, classes=CLASSES, **kw) -> VidRecModule:
    torch.manual_seed(seed)
    kw = {"hidden_size": 16, "caption_embed_dim": 8, "caption_hidden_size": 16, "caption_from_action": True, **kw}
    return VidRecModule(classes=classes, vocab=vocab.itos, backbone="mobilenet_v3_small", weights="none", **kw)


def _batch(vocab: Vocab, labels: list[int], seed: int = 0, noise: float = 1.0) -> dict:
    """Features whose class is in a class-specific direction under noise (B, T, D), captions from the label."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.randn(len(CLASSES), D, generator=torch.Generator().manual_seed(123))
    items = []
    for i, label in enumerate(labels):
        caption = SENTENCES[label]
        features = directions[label] + noise * torch.randn(T, D, generator=g)  # (T, D)
        items.append({"features": features, "label": label, "captions": [caption], "caption_ids": vocab.encode(caption),
                      "video": f"clip{i}.mp4", "index": i})
    return collate_clips(items)


@pytest.mark.parametrize("attention", [False, True])
def test_shapes_and_the_decoder_reads_the_probabilities(vocab, attention):
    module = _module(vocab, caption_attention=attention).eval()
    net, c = module.net, len(CLASSES)
    batch = _batch(vocab, [0, 1, 2, 0])
    sequence, encoding = net.encode(features=batch["features"])  # (B, T, H'), (B, H')
    logits = net.action_head(encoding)  # (B, C)
    video, frames_in = net.caption_input(encoding, sequence, logits)
    assert frames_in is sequence  # evaluation: the frames as they are
    assert video.shape == (4, encoding.shape[1] + c)
    assert torch.equal(video[:, : encoding.shape[1]], encoding)
    torch.testing.assert_close(video[:, -c:], logits.softmax(-1))
    assert net.caption_decoder.video_proj.in_features == encoding.shape[1] + c
    if attention:  # the attention still runs over the per-frame sequence (B, T, H')
        assert net.caption_decoder.attention.frames.in_features == sequence.shape[-1] == encoding.shape[1]
    frames = sequence if attention else None
    out = net.caption_decoder(video, batch["caption_ids"], frames=frames)
    assert out.shape == (4, batch["caption_ids"].shape[1] - 1, len(vocab))
    # Only the probabilities changed: the word scores change (both the initial state and, with
    # attention, every word's context read them).
    other, _ = net.caption_input(encoding, sequence, logits.roll(1, dims=-1))
    assert not torch.allclose(net.caption_decoder(other, batch["caption_ids"], frames=frames), out)
    # Without logits, the head is asked (eval mode: the same probabilities).
    torch.testing.assert_close(net.caption_input(encoding)[0], video)


def test_off_by_default_and_the_decoder_reads_the_encoding_only(vocab):
    net = build_recognizer({"classes": CLASSES, "vocab": vocab.itos, "backbone": "mobilenet_v3_small", "weights": "none",
                            "hidden_size": 16})
    assert not net.caption_from_action and net.caption_decoder.condition_dim == 0
    encoding = torch.randn(2, 16)
    assert net.caption_input(encoding, None, torch.randn(2, 3))[0] is encoding
    assert net.caption_decoder.init_h.in_features == 16


@pytest.mark.parametrize("attention", [False, True])
def test_caption_loss_trains_the_decoder_never_the_action_head(vocab, attention):
    module = _module(vocab, caption_attention=attention).train()
    batch = _batch(vocab, [0, 1, 2, 1])
    sequence, encoding = module._encode(batch)
    _, terms, _ = module.model_step(batch, encoding, sequence)
    terms["caption_loss"].backward()
    net, h = module.net, encoding.shape[1]
    assert all(p.grad is None for p in net.action_head.parameters())  # detached: captions never pull the head
    assert net.temporal.rnn.weight_ih_l0.grad.abs().sum() > 0  # the encoding still learns from captions
    decoder = net.caption_decoder
    assert decoder.init_h.weight.grad[:, h:].abs().sum() > 0  # the probability columns are learnt
    assert decoder.video_proj.weight.grad[:, h:].abs().sum() > 0
    sequence, encoding = module._encode(batch)
    _, terms, _ = module.model_step(batch, encoding, sequence)
    terms["action_loss"].backward()
    assert net.action_head.fc.weight.grad.abs().sum() > 0  # the head still learns from its own loss


@pytest.mark.parametrize("attention", [False, True])
def test_beam_of_one_is_word_by_word_greedy(vocab, attention):
    net = _module(vocab, seed=3, caption_attention=attention).net.eval()
    sequence, encoding = net.encode(features=_batch(vocab, [0, 1, 2], seed=5)["features"])
    logits = net.action_head(encoding) * 5  # confident, so the probabilities matter
    greedy = net.caption(encoding, beam_size=1, max_len=6, sequence=sequence, logits=logits)
    decoder, (video, _) = net.caption_decoder, net.caption_input(encoding, sequence, logits)
    assert torch.equal(decoder.beam_search(video, beam_size=1, max_len=6, frames=sequence), greedy)
    # Reference: argmax word by word, re-running teacher forcing on the whole prefix.
    for row in range(3):
        seq = [decoder.bos_id]
        for _ in range(6):
            with torch.no_grad():
                step = decoder(video[row : row + 1], torch.tensor([seq + [0]]), frames=sequence[row : row + 1])[0, -1]
            step[decoder.bos_id] = float("-inf")
            seq.append(int(step.argmax()))
            if seq[-1] == decoder.eos_id:
                break
        got = [w for w in greedy[row].tolist() if w != decoder.pad_id]
        assert got == seq[1:]
    beams = net.caption(encoding, beam_size=3, max_len=6, sequence=sequence, logits=logits)
    assert beams.shape[0] == 3


def test_multi_view_evaluation_conditions_on_the_averaged_probabilities(vocab):
    module = _module(vocab, caption_attention=True).eval()
    net = module.net
    batch = _batch(vocab, [0, 2])
    views = torch.stack([_batch(vocab, [0, 2], seed=s)["features"] for s in range(3)], dim=1)  # (B, N=3, T, D)
    sequence, encoding = module._encode({**batch, "features": views})  # (B, 3, T, H'), (B, 3, H')
    _, terms, logits = module.model_step(batch, encoding, sequence)
    with torch.no_grad():
        probs = net.action_head(encoding).softmax(-1).mean(1)  # (B, C): the view average
        video = torch.cat([encoding[:, 1], probs], dim=-1)  # the central view's encoding beside it
        out = net.caption_decoder(video, batch["caption_ids"], frames=sequence[:, 1])
    expected = F.cross_entropy(out.reshape(-1, out.shape[-1]), batch["caption_ids"][:, 1:].reshape(-1), ignore_index=0)
    torch.testing.assert_close(terms["caption_loss"], expected)
    assert module._caption(encoding, sequence, logits) == [
        vocab.decode(r) for r in net.caption_decoder.greedy(video, 20, frames=sequence[:, 1]).tolist()
    ]


def test_needs_both_heads(vocab):
    hp = {"backbone": "mobilenet_v3_small", "weights": "none", "hidden_size": 8, "caption_from_action": True}
    with pytest.raises(ValueError, match="caption_from_action .* lacks an action head"):
        build_recognizer({**hp, "vocab": vocab.itos})
    with pytest.raises(ValueError, match="caption_from_action .* lacks a caption decoder"):
        build_recognizer({**hp, "classes": CLASSES})
    with pytest.raises(ValueError, match="lacks an action head"):
        VidRecModule(classes=None, vocab=vocab.itos, backbone="mobilenet_v3_small", weights="none", caption_from_action=True)



@pytest.mark.parametrize("attention", [False, True])
def test_the_caption_names_the_action_it_is_given(vocab, attention):
    """Decisive: trained on clips whose features say nothing about the action (fresh noise
    every step), with the label's probabilities fed in, the decoder learns to read the action
    word from them; then on new clips, changing only the probabilities fed in changes the
    word, the same way through teacher forcing, greedy and beam search.

    (A model trained end to end, where the clip encoding also names the action on training
    clips, learns to lean on the encoding instead: see the README.)
    """
    module = _module(vocab, seed=1, caption_attention=attention, caption_dropout=0.0).train()
    net = module.net
    opt = torch.optim.Adam(net.caption_decoder.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for step in range(150):
        labels = torch.randint(len(CLASSES), (12,), generator=g).tolist()
        batch = _batch(vocab, labels, seed=step, noise=1.0)
        batch["features"] = torch.randn(batch["features"].shape, generator=g)  # no class in the features
        sequence, encoding = net.encode(features=batch["features"])
        told = F.one_hot(batch["label"], len(CLASSES)).float().clamp_min(1e-4).log()  # (B, C) the label's "logits"
        out = net.caption_decoder(net.caption_input(encoding, sequence, told)[0], batch["caption_ids"], frames=sequence)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), batch["caption_ids"][:, 1:].reshape(-1), ignore_index=0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        sequence, encoding = net.encode(features=torch.randn(6, T, D, generator=g))
        for k, cls in enumerate(CLASSES):
            told = F.one_hot(torch.full((6,), k), len(CLASSES)).float().clamp_min(1e-4).log()
            for beam in (1, 3):
                ids = net.caption(encoding, beam_size=beam, sequence=sequence, logits=told)
                assert [vocab.decode(r) for r in ids.tolist()] == [f"the camera moves {WORDS[cls]}"] * 6


def test_checkpoint_round_trip_and_predictor(tiny_dataset, tmp_path, debug_args):
    """train.py with --model.caption_from_action true: the rebuilt network captions exactly as the trained one."""
    from vidrec.training.cli import cli_main

    cli = cli_main(["fit", *debug_args(tmp_path, tiny_dataset), "--model.caption_from_action", "true"])
    trained = cli.model.net.eval()
    ckpt = load_checkpoint(sorted(tmp_path.rglob("last.ckpt"))[0])
    assert ckpt.hparams["caption_from_action"] is True
    net = ckpt.net
    assert net.caption_from_action and net.caption_decoder.condition_dim == len(ckpt.classes)
    features = torch.randn(3, 4, net.backbone.out_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for beam in (1, 3):
            a = trained.caption(trained.encode(features=features)[1], beam_size=beam)
            b = net.caption(net.encode(features=features)[1], beam_size=beam)
            assert torch.equal(a, b)

    # Predictor: three views, the caption conditioned on their averaged probabilities; the timeline too.
    video = tiny_dataset / read_manifest(tiny_dataset / "val.jsonl")[0].video
    p = Predictor(net, classes=ckpt.classes, vocab=ckpt.vocab, clip=ckpt.clip, normalization=ckpt.normalization, views=3)
    pred = p.predict(video, topk=1)
    with torch.no_grad():
        clips = load_views(video, p.clip, p.view_transform, 3)  # (N=3, T, 3, S, S)
        sequence, encoding = net.encode(frames=clips)
        probs = net.action_head(encoding).softmax(-1).mean(0, keepdim=True)  # (1, C)
        ids = net.caption(encoding[1:2], sequence=sequence[1:2], logits=probs.log())[0]
    assert pred.caption == ckpt.vocab.decode(ids.tolist())
    timeline = p.predict(video, topk=1, window=0.5, stride=0.25).timeline
    assert timeline and all(isinstance(w.caption, str) for w in timeline)


def test_training_reads_the_true_class_where_known(vocab):
    module = _module(vocab).train()
    net, c = module.net, len(CLASSES)
    batch = _batch(vocab, [0, 1, 2, 1])
    sequence, encoding = net.encode(features=batch["features"])
    logits = torch.randn(4, c)
    labels = torch.tensor([2, -1, 0, 1])  # -1: a clip without a label
    video, _ = net.caption_input(encoding, sequence, logits, labels)
    told = video[:, -c:]  # (B, C)
    assert torch.equal(told[[0, 2, 3]], F.one_hot(labels[[0, 2, 3]], c).float())
    torch.testing.assert_close(told[1], logits[1].softmax(-1))  # unlabelled: the head's own reading
    net.eval()  # evaluation never sees the label
    torch.testing.assert_close(net.caption_input(encoding, sequence, logits, labels)[0][:, -c:], logits.softmax(-1))


def test_caption_video_dropout_blanks_whole_clips_in_training_only(vocab):
    module = _module(vocab, caption_attention=True, caption_video_dropout=0.5).train()
    net = module.net
    torch.manual_seed(0)
    encoding, sequence = torch.randn(400, 16) + 3, torch.randn(400, 3, 16) + 3  # no row is zero by chance
    labels = torch.randint(len(CLASSES), (400,))
    video, frames = net.caption_input(encoding, sequence, net.action_head(encoding), labels)
    blank = (video[:, :16] == 0).all(-1)  # (B,)
    assert torch.equal(blank, (frames == 0).all(-1).all(-1))  # the encoding and every frame together
    assert torch.equal(video[~blank, :16], encoding[~blank])  # the others untouched (no rescaling)
    assert 0.4 < blank.float().mean() < 0.6
    assert torch.equal(video[:, 16:], F.one_hot(labels, len(CLASSES)).float())  # the class is never blanked
    net.eval()
    video, frames = net.caption_input(encoding, sequence)
    assert torch.equal(video[:, :16], encoding) and frames is sequence


def test_caption_video_dropout_needs_caption_from_action_and_a_share_below_one(vocab):
    with pytest.raises(ValueError, match="needs caption_from_action"):
        _module(vocab, caption_from_action=False, caption_video_dropout=0.5)
    with pytest.raises(ValueError, match=r"caption_video_dropout must be in \[0, 1\)"):
        _module(vocab, caption_video_dropout=1.0)


def test_end_to_end_training_with_blanked_video_learns_the_action_words_from_the_class(vocab):
    """The model trains as in fit (model_step, both losses) on clips whose features name the
    action, so the decoder could take every word from the video; blanking half of them makes
    it learn the action words from the class: with no video at all, the class fed in decides
    the word, through greedy and beam search. (Trained so without the blanking, the decoder
    writes one sentence whatever the class: checked when this test was written.)"""
    module = _module(vocab, seed=2, caption_attention=True, caption_dropout=0.0, caption_video_dropout=0.5).train()
    opt = torch.optim.Adam(module.net.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for step in range(150):
        batch = _batch(vocab, torch.randint(len(CLASSES), (12,), generator=g).tolist(), seed=step, noise=0.5)
        sequence, encoding = module._encode(batch)
        loss, _, _ = module.model_step(batch, encoding, sequence)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net = module.net.eval()
    with torch.no_grad():
        sequence, encoding = net.encode(features=_batch(vocab, [0, 1, 2], seed=999, noise=0.5)["features"])
        sequence, encoding = torch.zeros_like(sequence), torch.zeros_like(encoding)  # what a blanked clip looks like
        for k, cls in enumerate(CLASSES):
            told = F.one_hot(torch.full((3,), k), len(CLASSES)).float().clamp_min(1e-4).log()
            for beam in (1, 3):
                ids = net.caption(encoding, beam_size=beam, sequence=sequence, logits=told)
                assert [vocab.decode(r) for r in ids.tolist()] == [f"the camera moves {WORDS[cls]}"] * 3
