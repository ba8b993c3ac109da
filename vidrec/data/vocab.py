"""Caption tokenizer and vocabulary; the token list is saved inside every checkpoint."""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import torch

__all__ = ["Vocab", "tokenize", "PAD", "BOS", "EOS", "UNK"]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case words; punctuation dropped (as the COCO caption tools do before scoring)."""
    return _WORD.findall(text.lower())


class Vocab:
    """Token <-> id. Ids 0..3 are ``<pad> <bos> <eos> <unk>`` in that order."""

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tuple(tokens[:4]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}, got {tokens[:4]}")
        self.itos = tokens
        self.stoi = {t: i for i, t in enumerate(tokens)}
        if len(self.stoi) != len(tokens):
            raise ValueError("vocabulary has duplicate tokens")

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> "Vocab":
        """Words seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        counts = Counter(w for c in captions for w in tokenize(c))
        words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *words])

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def encode(self, text: str, max_len: int | None = None) -> list[int]:
        """``<bos> w1 .. wn <eos>``; words past ``max_len - 2`` are cut so ``<eos>`` is always there."""
        ids = [self.stoi.get(w, self.unk_id) for w in tokenize(text)]
        if max_len is not None:
            ids = ids[: max(max_len - 2, 0)]
        return [self.bos_id, *ids, self.eos_id]

    def decode(self, ids: Iterable[int]) -> str:
        """Words up to the first ``<eos>``; ``<bos>``/``<pad>`` skipped."""
        words = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            words.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return " ".join(words)

    @classmethod
    def pad_batch(cls, sequences: Sequence[Sequence[int]], min_length: int = 1) -> torch.Tensor:
        """List of id lists -> ``(B, L)`` long tensor padded with ``<pad>``, ``L >= min_length``.

        A classmethod: the ids are fixed, so batches can be padded without a vocabulary at hand.
        """
        length = max(max((len(s) for s in sequences), default=0), min_length)
        out = torch.full((len(sequences), length), cls.pad_id, dtype=torch.long)
        for row, seq in enumerate(sequences):
            out[row, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
        return out
