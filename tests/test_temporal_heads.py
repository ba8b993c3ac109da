"""TemporalEncoder, ActionHead, CaptionDecoder (teacher forcing, greedy, beam search) and Vocab."""

from __future__ import annotations

import itertools

import pytest
import torch

from vidrec.data.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocab, tokenize
from vidrec.models.heads import ActionHead, CaptionDecoder
from vidrec.models.temporal import TemporalEncoder

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _features(b=3, t=5, d=12, seed=0) -> torch.Tensor:
    return torch.randn(b, t, d, generator=torch.Generator().manual_seed(seed))  # (B, T, D)


# -- TemporalEncoder ---------------------------------------------------------------------


@pytest.mark.parametrize("temporal", ["lstm", "gru", "mean"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
def test_encoder_shapes(temporal, bidirectional, pooling):
    torch.manual_seed(0)
    enc = TemporalEncoder(12, temporal, hidden_size=7, num_layers=2, bidirectional=bidirectional, temporal_dropout=0.1,
                          temporal_pooling=pooling)
    seq, encoding = enc.eval()(_features(b=3, t=5, d=12))
    h = 7 * (2 if bidirectional and temporal != "mean" else 1)
    assert enc.out_dim == h
    assert seq.shape == (3, 5, h)
    assert encoding.shape == (3, h)
    assert torch.isfinite(encoding).all()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_last_pooling_reads_the_whole_clip(cell):
    torch.manual_seed(0)
    x = _features(b=2, t=6, d=12)
    uni = TemporalEncoder(12, cell, hidden_size=5, num_layers=2, temporal_dropout=0.0).eval()
    seq, encoding = uni(x)
    torch.testing.assert_close(encoding, seq[:, -1])  # last step of the last layer

    bi = TemporalEncoder(12, cell, hidden_size=5, num_layers=2, bidirectional=True, temporal_dropout=0.0).eval()
    seq, encoding = bi(x)
    # forward direction at the last step, backward direction at time 0 (both have seen all)
    torch.testing.assert_close(encoding, torch.cat([seq[:, -1, :5], seq[:, 0, 5:]], dim=-1))


def test_mean_and_attention_pooling_are_averages_over_time():
    torch.manual_seed(0)
    x = _features()
    enc = TemporalEncoder(12, "lstm", hidden_size=6, temporal_dropout=0.0, temporal_pooling="mean").eval()
    seq, encoding = enc(x)
    torch.testing.assert_close(encoding, seq.mean(dim=1))

    att = TemporalEncoder(12, "lstm", hidden_size=6, temporal_dropout=0.0, temporal_pooling="attention").eval()
    seq, encoding = att(x)
    # a convex combination of the time steps: inside the per-dimension [min, max] over time
    assert (encoding >= seq.min(dim=1).values - 1e-6).all() and (encoding <= seq.max(dim=1).values + 1e-6).all()
    assert not torch.allclose(encoding, seq.mean(dim=1))  # learned weights are not uniform


def test_mean_cell_is_order_blind_and_lstm_is_not():
    torch.manual_seed(0)
    x = _features(b=2, t=6, d=12)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    mean = TemporalEncoder(12, "mean", hidden_size=8, temporal_dropout=0.0).eval()
    torch.testing.assert_close(mean(x)[1], mean(x[:, perm])[1])
    torch.testing.assert_close(mean(x)[1], mean(x.flip(1))[1])
    for cell in ("lstm", "gru"):
        rnn = TemporalEncoder(12, cell, hidden_size=8, temporal_dropout=0.0).eval()
        assert not torch.allclose(rnn(x)[1], rnn(x.flip(1))[1], atol=1e-4), cell
        assert not torch.allclose(rnn(x)[1], rnn(x[:, perm])[1], atol=1e-4), cell


def test_encoder_rejects_unknown_options():
    with pytest.raises(ValueError, match="temporal must be"):
        TemporalEncoder(4, "transformer")
    with pytest.raises(ValueError, match="temporal_pooling must be"):
        TemporalEncoder(4, "lstm", temporal_pooling="max")


def test_action_head_shape_and_dropout_only_in_training():
    torch.manual_seed(0)
    head = ActionHead(6, 4, head_dropout=0.5)
    x = torch.randn(3, 6)
    assert head(x).shape == (3, 4)
    head.eval()
    torch.testing.assert_close(head(x), head.fc(x))


# -- CaptionDecoder ----------------------------------------------------------------------


def _decoder(vocab_size=9, video_dim=6, seed=0, **kw) -> CaptionDecoder:
    torch.manual_seed(seed)
    kw.setdefault("caption_embed_dim", 5)
    kw.setdefault("caption_hidden_size", 8)
    kw.setdefault("caption_dropout", 0.0)
    return CaptionDecoder(vocab_size, video_dim, **kw).eval()


def _sequence_logprob(decoder: CaptionDecoder, video: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
    """log p(generated | video) by teacher forcing, up to and including the first <eos>.

    ``generated`` (B, L) as returned by greedy/beam (no <bos>, <pad> after <eos>). Returns (B,).
    """
    b = generated.shape[0]
    tokens = torch.cat([torch.full((b, 1), decoder.bos_id), generated, torch.full((b, 1), PAD_ID)], dim=1)
    with torch.no_grad():
        logp = decoder(video, tokens).log_softmax(-1)[:, : generated.shape[1]]  # (B, L, V)
    picked = logp.gather(-1, generated[..., None])[..., 0]  # (B, L)
    is_eos = generated == decoder.eos_id
    # positions after the first <eos> do not count
    after_eos = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    return picked.masked_fill(after_eos, 0.0).sum(1)


def _reference_greedy(decoder: CaptionDecoder, video: torch.Tensor, max_len: int) -> list[list[int]]:
    """Argmax word by word, re-running teacher forcing on the whole prefix (slow, obviously right)."""
    out = []
    for row in range(video.shape[0]):
        seq = [decoder.bos_id]
        for _ in range(max_len):
            tokens = torch.tensor([seq + [PAD_ID]])
            with torch.no_grad():
                logits = decoder(video[row : row + 1], tokens)[0, -1]
            logits[decoder.pad_id] = float("-inf")  # a sentence never contains <pad>
            seq.append(int(logits.argmax()))
            if seq[-1] == decoder.eos_id:
                break
        out.append(seq[1:])
    return out


def _strip(row: list[int]) -> list[int]:
    """Drop trailing padding."""
    while row and row[-1] == PAD_ID:
        row = row[:-1]
    return row


def test_teacher_forcing_output_shape():
    dec = _decoder(vocab_size=11, video_dim=6)
    tokens = torch.tensor([[BOS_ID, 5, 6, 7, EOS_ID, PAD_ID], [BOS_ID, 4, EOS_ID, PAD_ID, PAD_ID, PAD_ID]])
    logits = dec(torch.randn(2, 6), tokens)
    assert logits.shape == (2, 5, 11)  # (B, L-1, V)


def test_teacher_forcing_is_causal():
    # the prediction at step i depends on tokens[:i+1] only
    dec = _decoder()
    video = torch.randn(1, 6)
    a = torch.tensor([[BOS_ID, 4, 5, 6, EOS_ID]])
    b = torch.tensor([[BOS_ID, 4, 5, 8, 7]])
    la, lb = dec(video, a), dec(video, b)
    torch.testing.assert_close(la[:, :3], lb[:, :3])
    assert not torch.allclose(la[:, 3], lb[:, 3])


def test_greedy_matches_a_word_by_word_argmax_and_beam_1():
    dec = _decoder(vocab_size=9, seed=1)
    with torch.no_grad():
        dec.out.bias[EOS_ID] += 1.0  # so that some sentences end before max_len
    video = torch.randn(6, 6, generator=torch.Generator().manual_seed(1))
    greedy = dec.greedy(video, max_len=7)
    beam1 = dec.beam_search(video, beam_size=1, max_len=7)
    assert torch.equal(greedy, beam1)
    assert [_strip(r) for r in greedy.tolist()] == _reference_greedy(dec, video, max_len=7)


@pytest.mark.parametrize("seed", range(4))
def test_beam_search_scores_at_least_greedy(seed):
    dec = _decoder(vocab_size=10, seed=seed, caption_hidden_size=12)
    video = torch.randn(8, 6, generator=torch.Generator().manual_seed(100 + seed)) * 2
    greedy = dec.greedy(video, max_len=6)
    beam = dec.beam_search(video, beam_size=4, max_len=6)
    g, s = _sequence_logprob(dec, video, greedy), _sequence_logprob(dec, video, beam)
    assert (s >= g - 1e-5).all(), (s, g)


def test_wide_beam_finds_the_exact_best_sentence():
    # With a beam wider than the number of hypotheses, beam search is exhaustive search:
    # compare it with the best of all sentences up to max_len words, scored by teacher forcing.
    vocab_size, max_len = 6, 3
    dec = _decoder(vocab_size=vocab_size, seed=1, caption_hidden_size=10)
    videos = torch.randn(6, 6, generator=torch.Generator().manual_seed(7)) * 2
    words = [t for t in range(vocab_size) if t not in (PAD_ID, EOS_ID)]  # what can precede <eos>
    candidates = []
    for n in range(max_len):  # n words then <eos>
        candidates += [list(c) + [EOS_ID] for c in itertools.product(words, repeat=n)]
    candidates += [list(c) for c in itertools.product(words, repeat=max_len)]  # cut at max_len
    width = max(len(c) for c in candidates)
    padded = torch.tensor([c + [PAD_ID] * (width - len(c)) for c in candidates])
    greedy_missed = 0
    for row in range(videos.shape[0]):
        video = videos[row : row + 1]
        scores = _sequence_logprob(dec, video.expand(len(candidates), -1), padded)
        best = candidates[int(scores.argmax())]
        found = dec.beam_search(video, beam_size=len(candidates), max_len=max_len)
        assert _strip(found[0].tolist()) == best
        torch.testing.assert_close(_sequence_logprob(dec, video, found)[0], scores.max())
        greedy_missed += bool(_sequence_logprob(dec, video, dec.greedy(video, max_len))[0] < scores.max() - 1e-4)
    # greedy misses the best sentence for some of these clips: the search did real work
    assert greedy_missed > 0


def test_beam_stops_at_eos_and_pads_after():
    dec = _decoder(vocab_size=9, seed=2, caption_hidden_size=16)
    video = torch.randn(16, 6, generator=torch.Generator().manual_seed(2)) * 2
    max_len = 8
    for out in (dec.greedy(video, max_len), dec.beam_search(video, beam_size=3, max_len=max_len)):
        assert out.shape[0] == 16 and 1 <= out.shape[1] <= max_len
        lengths = []
        for row in out.tolist():
            assert row[0] != PAD_ID
            if EOS_ID in row:
                k = row.index(EOS_ID)
                assert all(t == PAD_ID for t in row[k + 1 :]), row
                assert PAD_ID not in row[:k], row
                lengths.append(k + 1)
            else:
                assert PAD_ID not in row and len(row) == max_len, row
                lengths.append(len(row))
        # the batch mixes short and long sentences, so padding really happened
        assert len(set(lengths)) >= 2 and min(lengths) < out.shape[1], lengths


def test_beam_search_stops_early_when_every_sentence_ended():
    dec = _decoder(vocab_size=9)
    with torch.no_grad():
        dec.out.bias.zero_()
        dec.out.bias[EOS_ID] = 50.0  # <eos> first, always
    for beam_size in (1, 3):
        out = dec.beam_search(torch.randn(3, 6), beam_size=beam_size, max_len=10)
        # search ends as soon as every kept hypothesis has ended, long before max_len
        assert out.shape[1] < 10
        assert [_strip(r) for r in out.tolist()] == [[EOS_ID]] * 3


def test_decoder_overfits_two_sentences():
    torch.manual_seed(0)
    vocab = Vocab([*SPECIALS, "a", "red", "circle", "grows", "blue", "square", "moves", "left"])
    sentences = ["a red circle grows", "a blue square moves left"]
    ids = vocab.pad_batch([vocab.encode(s) for s in sentences])  # (2, L)
    video = torch.randn(2, 10)
    dec = CaptionDecoder(len(vocab), 10, caption_embed_dim=16, caption_hidden_size=32, caption_dropout=0.0)
    opt = torch.optim.Adam(dec.parameters(), lr=1e-2)
    for _ in range(200):
        logits = dec(video, ids)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), ids[:, 1:].reshape(-1), ignore_index=0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dec.eval()
    assert [vocab.decode(r) for r in dec.greedy(video, max_len=10).tolist()] == sentences
    assert [vocab.decode(r) for r in dec.beam_search(video, beam_size=3, max_len=10).tolist()] == sentences


# -- Vocab -------------------------------------------------------------------------------


CAPTIONS = ["A red circle grows.", "the red square shrinks", "a blue circle, moving left!", "A cat"]


def test_vocab_specials_come_first_in_order():
    v = Vocab.build(CAPTIONS)
    assert v.itos[:4] == [PAD, BOS, EOS, UNK]
    assert (v.pad_id, v.bos_id, v.eos_id, v.unk_id) == (0, 1, 2, 3)
    assert [v.stoi[t] for t in SPECIALS] == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        Vocab(["a", "b", PAD, BOS, EOS, UNK])
    with pytest.raises(ValueError, match="duplicate"):
        Vocab([*SPECIALS, "a", "a"])


def test_vocab_min_count_and_order():
    v = Vocab.build(CAPTIONS, min_count=2)
    # a x3, red x2, circle x2; most frequent first, ties alphabetical
    assert v.itos[4:] == ["a", "circle", "red"]
    all_words = Vocab.build(CAPTIONS, min_count=1)
    assert set(all_words.itos[4:]) == {w for c in CAPTIONS for w in tokenize(c)}
    assert all_words.itos[4] == "a"


def test_vocab_round_trip_and_unknown_words():
    v = Vocab.build(CAPTIONS)
    ids = v.encode("A red circle grows.")
    assert ids[0] == v.bos_id and ids[-1] == v.eos_id
    assert v.decode(ids) == "a red circle grows"
    unk = v.encode("a purple circle")
    assert unk[2] == v.unk_id
    assert v.decode(unk) == "a <unk> circle"
    # decode stops at <eos> and skips padding/<bos>
    assert v.decode([v.bos_id, *ids[1:], v.stoi["red"], v.pad_id]) == "a red circle grows"
    assert v.decode([v.stoi["red"], v.pad_id, v.stoi["circle"]]) == "red circle"


def test_vocab_max_len_keeps_eos():
    v = Vocab.build(CAPTIONS)
    ids = v.encode("a red circle grows", max_len=4)
    assert len(ids) == 4
    assert ids[0] == v.bos_id and ids[-1] == v.eos_id
    assert v.decode(ids) == "a red"
    assert v.encode("a red", max_len=10) == v.encode("a red")
    assert v.encode("a red circle grows", max_len=2) == [v.bos_id, v.eos_id]


def test_vocab_pad_batch():
    v = Vocab.build(CAPTIONS)
    batch = v.pad_batch([v.encode("a red"), v.encode("a red circle grows")])
    assert batch.shape == (2, 6)
    assert batch[0, 4:].tolist() == [v.pad_id, v.pad_id]


def test_plain_rnn_cell_trains():
    # The baseline whose vanishing gradient the LSTM's gates fix: a tanh RNN that still learns
    # an order-dependent task on short sequences (is the bright frame before the dark one?).
    torch.manual_seed(0)
    enc = TemporalEncoder(4, temporal="rnn", hidden_size=16, temporal_dropout=0.0)
    head = torch.nn.Linear(enc.out_dim, 2)
    assert any(isinstance(m, torch.nn.RNN) for m in enc.modules())
    x = torch.zeros(64, 6, 4)
    order = torch.randint(0, 2, (64,))
    x[order == 0, 1, 0], x[order == 0, 4, 1] = 1.0, 1.0
    x[order == 1, 1, 1], x[order == 1, 4, 0] = 1.0, 1.0
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=0.02)
    first = None
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(head(enc(x)[1]), order)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    assert (head(enc(x)[1]).argmax(-1) == order).float().mean() == 1.0


def _attention_decoder(seed: int = 0) -> CaptionDecoder:
    torch.manual_seed(seed)
    return CaptionDecoder(12, 16, caption_embed_dim=8, caption_hidden_size=16, caption_dropout=0.0, caption_attention=True).eval()


def test_attention_decoder_shapes_weights_and_gradients():
    dec = _attention_decoder()
    frames = torch.randn(3, 5, 16, requires_grad=True)  # (B, T, H) per-frame encoder outputs
    video = frames.mean(1)
    tokens = torch.randint(3, 12, (3, 7))
    logits = dec(video, tokens, frames=frames)
    assert logits.shape == (3, 6, 12)
    logits.sum().backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0  # every word can look at the frames
    _, weights = dec.attention(frames.detach(), torch.randn(3, 16))
    assert weights.shape == (3, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(3), atol=1e-6) and (weights >= 0).all()
    with pytest.raises(ValueError, match="per-frame sequence"):
        dec(video, tokens)


def test_attention_decoder_beam_of_one_is_greedy_and_frames_matter():
    dec = _attention_decoder(1)
    frames = torch.randn(4, 6, 16)
    video = frames.mean(1)
    greedy = dec.greedy(video, max_len=8, frames=frames)
    assert torch.equal(dec.beam_search(video, beam_size=1, max_len=8, frames=frames), greedy)
    beams = dec.beam_search(video, beam_size=3, max_len=8, frames=frames)
    assert beams.shape[0] == 4 and (beams != dec.bos_id).all()
    # Same pooled vector, one frame's output changed: the attention decoder's word scores change.
    tokens = torch.randint(3, 12, (4, 5))
    other = frames.clone()
    other[:, 2] += 1.0
    assert not torch.allclose(dec(video, tokens, frames=frames), dec(video, tokens, frames=other))
