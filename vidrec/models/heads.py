"""Output heads: ActionHead (class logits) and CaptionDecoder (S2VT-style LSTM language model)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ActionHead", "CaptionDecoder"]


class ActionHead(nn.Module):
    """Dropout + linear: clip encoding ``(B, H)`` -> logits ``(B, C)``."""

    def __init__(self, in_dim: int, num_classes: int, head_dropout: float = 0.5):
        super().__init__()
        self.dropout = nn.Dropout(head_dropout)
        self.fc = nn.Linear(in_dim, num_classes)

    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(encoding))


class CaptionDecoder(nn.Module):
    """An LSTM that writes a sentence about a clip.

    The clip encoding ``(B, H)`` initialises the LSTM state. With every word the decoder is
    also fed the video: the same pooled encoding each time (S2VT/LRCN factored style,
    ``caption_attention=False``), or, with ``caption_attention=True``, a soft-attention
    context over the temporal model's per-frame outputs ``(B, T, H)``, recomputed at every
    word from the decoder's state (SA-LSTM, Yao et al. 2015): the words about *what happens*
    can look at the frames where it happens. Training uses teacher forcing; inference uses
    greedy decoding or beam search.

    The last ``condition_dim`` columns of ``video`` may be a condition beside the clip encoding
    (the action head's class probabilities, ``VideoRecognizer.caption_input``). The pooled
    decoder reads all of ``video`` alike; the attention decoder attends over frames of the
    encoding's width ``video_dim - condition_dim`` and appends the condition to each word's
    context, so both the initial state and every word see it.
    """

    def __init__(
        self,
        vocab_size: int,
        video_dim: int,
        caption_embed_dim: int = 256,
        caption_hidden_size: int = 512,
        caption_layers: int = 1,
        caption_dropout: float = 0.3,
        caption_attention: bool = False,
        condition_dim: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        pad_id: int = 0,
    ):
        super().__init__()
        if not 0 <= condition_dim < video_dim:
            raise ValueError(f"condition_dim must be in [0, video_dim={video_dim}), got {condition_dim}")
        embed_dim, hidden_size, dropout, num_layers = caption_embed_dim, caption_hidden_size, caption_dropout, caption_layers
        self.vocab_size, self.num_layers, self.hidden_size = vocab_size, num_layers, hidden_size
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id
        self.condition_dim = condition_dim
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.video_proj = nn.Linear(video_dim, embed_dim)
        self.init_h = nn.Linear(video_dim, hidden_size * num_layers)
        self.init_c = nn.Linear(video_dim, hidden_size * num_layers)
        self.lstm = nn.LSTM(2 * embed_dim, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, vocab_size)
        self.attention = _FrameAttention(video_dim - condition_dim, hidden_size) if caption_attention else None

    def _init_state(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = video.shape[0]
        h = torch.tanh(self.init_h(video)).view(b, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
        c = torch.tanh(self.init_c(video)).view(b, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
        return h, c  # each (layers, B, hidden)

    def _step_inputs(self, tokens: torch.Tensor, video_emb: torch.Tensor) -> torch.Tensor:
        words = self.embed(tokens)  # (B, L, E)
        return torch.cat([self.dropout(words), video_emb[:, None, :].expand_as(words)], dim=-1)  # (B, L, 2E)

    def _condition(self, video: torch.Tensor) -> torch.Tensor | None:
        """The condition columns of ``video`` (B, H + C) -> (B, C), or None without one."""
        return video[:, video.shape[1] - self.condition_dim :] if self.condition_dim else None

    def _attended(
        self, frames: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The video input for the next word: attention context over ``frames`` (B, T, H)
        [+ ``condition`` (B, C)] -> (B, E)."""
        context, _ = self.attention(frames, state[0][-1])  # top layer's hidden state decides
        if condition is not None:
            context = torch.cat([context, condition], dim=-1)  # (B, H + C): video_proj's input width, as for `video`
        return torch.relu(self.video_proj(context))

    def _check_frames(self, frames: torch.Tensor | None) -> None:
        if self.attention is not None and frames is None:
            raise ValueError("an attention decoder needs the per-frame sequence (B, T, H): pass frames=")

    def forward(self, video: torch.Tensor, tokens: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing. ``video`` (B, H [+ C condition]), ``tokens`` (B, L) = ``<bos> w1 .. <eos> <pad>..``,
        ``frames`` (B, T, H) the per-frame sequence (attention decoder only).

        Returns logits (B, L-1, V) predicting ``tokens[:, 1:]``.
        """
        self._check_frames(frames)
        if self.attention is None:
            # The projection before the initial state: autograd sums the gradient of `video`
            # in graph order, and this order keeps training bit-identical to earlier releases.
            video_emb = torch.relu(self.video_proj(video))  # (B, E)
            out, _ = self.lstm(self._step_inputs(tokens[:, :-1], video_emb), self._init_state(video))
        else:  # the context depends on the previous word's state: one step at a time
            state, condition = self._init_state(video), self._condition(video)
            steps = []
            for t in range(tokens.shape[1] - 1):
                step, state = self.lstm(self._step_inputs(tokens[:, t : t + 1], self._attended(frames, state, condition)), state)
                steps.append(step)
            out = torch.cat(steps, dim=1)  # (B, L-1, hidden)
        return self.out(self.dropout(out))  # (B, L-1, V)

    @torch.no_grad()
    def greedy(self, video: torch.Tensor, max_len: int = 20, frames: torch.Tensor | None = None) -> torch.Tensor:
        """Most likely word at each step. Returns (B, <=max_len) ids, ``<pad>`` after ``<eos>``."""
        return self.beam_search(video, beam_size=1, max_len=max_len, frames=frames)

    @torch.no_grad()
    def beam_search(
        self,
        video: torch.Tensor,
        beam_size: int = 3,
        max_len: int = 20,
        length_penalty: float = 0.0,
        frames: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Beam search, batched over clips and beams. Returns (B, <=max_len) word ids.

        Finished hypotheses are ranked by ``log p / len ** length_penalty`` (0 = raw log-prob,
        1 = per-word average, which favours longer sentences).
        """
        self._check_frames(frames)
        b, k, v = video.shape[0], beam_size, self.vocab_size
        video = video.repeat_interleave(k, dim=0)  # (B*K, H [+ C condition])
        condition = self._condition(video)  # (B*K, C) or None
        # Each clip's K beams stay in its block of K rows, so one copy of its frames per beam serves.
        frames = frames.repeat_interleave(k, dim=0) if frames is not None else None  # (B*K, T, H)
        video_emb = torch.relu(self.video_proj(video))  # (B*K, E)
        state = self._init_state(video)
        tokens = torch.full((b * k, 1), self.bos_id, dtype=torch.long, device=video.device)
        # Only the first beam is live at the start, so K copies don't yield K identical hypotheses.
        scores = torch.full((b, k), float("-inf"), device=video.device)
        scores[:, 0] = 0.0
        finished = torch.zeros(b, k, dtype=torch.bool, device=video.device)
        lengths = torch.zeros(b, k, device=video.device)
        for _ in range(max_len):
            step_video = video_emb if self.attention is None else self._attended(frames, state, condition)
            out, state = self.lstm(self._step_inputs(tokens[:, -1:], step_video), state)
            logp = torch.log_softmax(self.out(out[:, -1]), dim=-1).view(b, k, v)  # (B, K, V)
            logp[..., self.bos_id] = float("-inf")  # <bos> only ever starts a sentence
            # A finished beam may only extend with <pad> at no cost: it keeps its score.
            logp = torch.where(finished[..., None], torch.full_like(logp, float("-inf")), logp)
            logp[..., self.pad_id] = torch.where(finished, 0.0, float("-inf"))
            total = (scores[..., None] + logp).view(b, k * v)  # (B, K*V)
            scores, flat = total.topk(k, dim=-1)  # (B, K)
            beam, word = flat // v, flat % v
            base = (torch.arange(b, device=video.device) * k)[:, None]
            order = (base + beam).view(-1)  # (B*K,) which old hypothesis each new one extends
            tokens = torch.cat([tokens[order], word.view(-1, 1)], dim=1)
            state = tuple(s[:, order] for s in state)
            finished = finished.gather(1, beam)
            lengths = lengths.gather(1, beam) + (~finished).float()
            finished = finished | (word == self.eos_id)
            if bool(finished.all()):
                break
        norm = scores / lengths.clamp(min=1) ** length_penalty if length_penalty else scores
        best = norm.argmax(dim=-1)  # (B,)
        tokens = tokens.view(b, k, -1)[torch.arange(b), best, 1:]  # drop <bos>: (B, L)
        return tokens


class _FrameAttention(nn.Module):
    """Additive (Bahdanau) attention over frames: which frames the next word should look at."""

    def __init__(self, video_dim: int, hidden_size: int, attn_dim: int = 128):
        super().__init__()
        self.frames = nn.Linear(video_dim, attn_dim)
        self.hidden = nn.Linear(hidden_size, attn_dim, bias=False)
        self.score = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, frames: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``frames`` (B, T, H), decoder ``hidden`` (B, hidden) -> (context (B, H), weights (B, T), summing to 1)."""
        scores = self.score(torch.tanh(self.frames(frames) + self.hidden(hidden)[:, None, :])).squeeze(-1)  # (B, T)
        weights = scores.softmax(dim=-1)
        return (weights[..., None] * frames).sum(dim=1), weights
