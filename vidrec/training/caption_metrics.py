"""Caption scores with pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr.

Tokenisation is ``vidrec.data.vocab.tokenize`` (lower-case words, punctuation dropped) rather
than the COCO PTB tokenizer, which needs Java for what is a regex here. METEOR does need Java:
without it, METEOR is skipped with a warning and the other scores are still returned.
"""

from __future__ import annotations

import shutil
import warnings
from typing import Mapping, Sequence

from vidrec.data.vocab import tokenize

__all__ = ["CORPUS_SCORES", "caption_scores"]

# What caption_scores always returns (METEOR only with Java, and only on the test set).
CORPUS_SCORES = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider")


def caption_scores(
    references: Mapping[str, Sequence[str]], hypotheses: Mapping[str, str], meteor: bool = True
) -> dict[str, float]:
    """Corpus scores for ``hypotheses[id]`` against ``references[id]`` (one or more each).

    Returns keys ``bleu1..bleu4``, ``rouge_l``, ``cider`` and, with Java, ``meteor``; all in [0, 1]
    except CIDEr (0..10).
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    ids = [k for k in hypotheses if references.get(k)]
    if not ids:
        return {}
    # An empty hypothesis would crash BLEU's length ratio; score it as a word that matches nothing.
    gts = {k: [" ".join(tokenize(r)) or "<empty>" for r in references[k]] for k in ids}
    res = {k: [" ".join(tokenize(hypotheses[k])) or "<empty>"] for k in ids}
    out: dict[str, float] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"bleu{i + 1}": float(b) for i, b in enumerate(bleu)})
    out["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    out["cider"] = float(Cider().compute_score(gts, res)[0])
    if meteor:
        if shutil.which("java") is None:
            warnings.warn("METEOR skipped: it needs Java (`java` not found on PATH)")
        else:
            from pycocoevalcap.meteor.meteor import Meteor

            scorer = Meteor()  # starts a Java process; its __del__ stops it
            out["meteor"] = float(scorer.compute_score(gts, res)[0])
            del scorer
    return out
