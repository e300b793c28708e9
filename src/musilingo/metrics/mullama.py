"""The MusicQA protocol of MU-LLaMA (``ModelEvaluations/evaluate.py``), reused by MusiLingo/M2UGen.

Reproduced with its quirks, because the published MusicQA table was computed this way:

- BLEU = nltk ``sentence_bleu([ref], cand)`` on the RAW STRINGS. nltk iterates a string as a
  sequence of characters, so the n-grams are character n-grams (spaces included); default
  weights (0.25,)*4, no smoothing. Per-item mean. ``bleu4`` (weights (0, 0, 0, 1)) is the other
  number the script printed.
- METEOR = nltk ``meteor_score([wordpunct_tokenize(ref)], wordpunct_tokenize(cand))``, mean.
- ROUGE-L = ``rouge_score`` ROUGE-L RECALL (not F1) with the Porter stemmer, mean.
- BERTScore = RECALL (not F1), roberta-large without rescaling in the original; see
  :mod:`musilingo.metrics.bertscore` for the offline model and its caveat.

One reference per item. No text normalisation (the raw strings are the protocol).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

from musilingo.metrics.base import add_bertscore, mean

BLEU_WEIGHTS = (0.25, 0.25, 0.25, 0.25)  # nltk's default
BLEU4_WEIGHTS = (0.0, 0.0, 0.0, 1.0)


def char_bleu(prediction: str, reference: str, weights: Sequence[float] = BLEU_WEIGHTS) -> float:
    """nltk ``sentence_bleu([reference], prediction)`` on raw strings: character n-grams."""
    from nltk.translate.bleu_score import sentence_bleu

    with warnings.catch_warnings():  # nltk warns when an order has no overlap; the score is 0
        warnings.simplefilter("ignore")
        return float(sentence_bleu([reference], prediction, weights=tuple(weights)))


def wordpunct_meteor(prediction: str, reference: str) -> float:
    """nltk METEOR on ``wordpunct_tokenize`` tokens (one reference)."""
    from nltk.tokenize import wordpunct_tokenize
    from nltk.translate.meteor_score import meteor_score

    from musilingo.metrics.wordnet import ensure_wordnet

    ensure_wordnet()
    return float(meteor_score([wordpunct_tokenize(reference)], wordpunct_tokenize(prediction)))


_rouge = None


def rouge_l_recall(prediction: str, reference: str) -> float:
    """``rouge_score`` ROUGE-L recall with the Porter stemmer."""
    global _rouge
    if _rouge is None:
        from rouge_score import rouge_scorer

        _rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return float(_rouge.score(reference, prediction)["rougeL"].recall)



@dataclass
class MullamaMetric:
    """Accumulate (prediction, reference) pairs; :meth:`compute` gives the MusicQA means.

    Keys: ``bleu`` (character BLEU, default weights), ``bleu4``, ``meteor``, ``rougeL`` (recall),
    ``bertscore`` (recall, when a model is given), ``n``, ``notes``.
    """

    predictions: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)

    def update(self, predictions: Sequence[str], references: Sequence[str | Sequence[str]]) -> None:
        """Add items; each reference is a string (or a list holding exactly one string)."""
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        for pred, ref in zip(predictions, references):
            if not isinstance(ref, str):
                if len(ref) != 1:
                    raise ValueError("the mullama protocol takes exactly one reference per item")
                ref = ref[0]
            self.predictions.append(pred)
            self.references.append(ref)

    def compute(self, bertscore_model: object | None = None) -> dict:
        """Per-item means over everything added; BERTScore skipped when ``bertscore_model`` is None."""
        if not self.predictions:
            raise ValueError("no items to score")
        pairs = list(zip(self.predictions, self.references))
        res: dict = {
            "n": len(pairs),
            "bleu": mean([char_bleu(p, r) for p, r in pairs]),
            "bleu4": mean([char_bleu(p, r, BLEU4_WEIGHTS) for p, r in pairs]),
            "meteor": mean([wordpunct_meteor(p, r) for p, r in pairs]),
            "rougeL": mean([rouge_l_recall(p, r) for p, r in pairs]),
        }
        notes = [
            "BLEU: nltk sentence_bleu on raw strings = character n-grams (MU-LLaMA quirk)",
            "ROUGE-L and BERTScore are RECALL, per the MU-LLaMA script",
        ]
        if bertscore_model is not None:
            add_bertscore(res, notes, self.predictions, self.references, bertscore_model, "recall")
        res["notes"] = notes
        return res
