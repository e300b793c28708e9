"""The LP-MusicCaps captioning protocol (also used for MusicCaps captioning).

LP-MusicCaps (``lpmc/utils/metrics.py``) scores with Hugging Face ``evaluate``:

- ``evaluate.load("bleu").compute(predictions, references, max_order=n)`` for n = 1..4: the
  TensorFlow NMT ``compute_bleu`` (corpus BLEU, no smoothing, brevity penalty against the
  *shortest* reference of each item) over sacrebleu's 13a tokens. ``evaluate.load`` cannot be
  used offline (it fetches the metric script from the Hub), so both the 13a tokenizer and
  ``compute_bleu`` are re-implemented here line by line; ``tests/test_metrics.py`` checks them
  against sacrebleu / nltk.
- ``evaluate.load("meteor")``: nltk ``meteor_score`` per item on ``nltk.word_tokenize`` tokens
  (single reference: ``single_meteor_score``; several: ``meteor_score``, i.e. the best one),
  averaged. ``word_tokenize`` needs the Punkt ``english`` model (nltk ``punkt_tab``); when it is
  not installed, sentences are split by an untrained Punkt splitter instead, which differs only
  for abbreviations such as "e.g." inside a caption. Which one ran is recorded in the results.
  (Not ``ref.split()``: that is what many re-implementations do, not what LP-MusicCaps ran.)
- ``evaluate.load("rouge")["rougeL"]``: ``rouge_score`` ROUGE-L F1, no stemmer. ``evaluate``
  reports the median of a bootstrap of the mean (random, within ~1e-3 of the mean); this module
  reports the plain mean, which is deterministic.
- ``evaluate.load("bertscore")`` with ``lang="en"``: roberta-large layer 17 F1, averaged; see
  :mod:`musilingo.metrics.bertscore` for the offline model and its caveat.

No text normalisation is applied: the tokenisers above are part of the protocol.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from musilingo.metrics.base import MultiReferencePairs, add_bertscore, mean

# --- sacrebleu's tokenizer_13a, as copied into evaluate's bleu metric ------------------------

_13A_RULES = (
    # language-dependent part (assuming Western languages): punctuation and symbols
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    # tokenize period and comma unless preceded by a digit
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    # tokenize period and comma unless followed by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    # tokenize dash when preceded by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)


def tokenize_13a(line: str) -> list[str]:
    """Split ``line`` into tokens exactly like sacrebleu's ``13a`` tokenizer (case kept)."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&")
        line = line.replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for rule, repl in _13A_RULES:
        line = rule.sub(repl, line)
    return line.split()


# --- TensorFlow NMT compute_bleu ---------------------------------------------------------------


@dataclass
class BleuResult:
    """Corpus BLEU and its parts, as ``evaluate``'s bleu metric returns them."""

    bleu: float
    precisions: list[float]
    brevity_penalty: float
    length_ratio: float
    translation_length: int
    reference_length: int


def _ngrams(tokens: Sequence[str], max_order: int) -> Counter:
    counts: Counter = Counter()
    for order in range(1, max_order + 1):
        for i in range(len(tokens) - order + 1):
            counts[tuple(tokens[i : i + order])] += 1
    return counts


def compute_bleu(
    reference_corpus: Sequence[Sequence[Sequence[str]]],
    translation_corpus: Sequence[Sequence[str]],
    max_order: int = 4,
) -> BleuResult:
    """Corpus BLEU of tokenised translations against lists of tokenised references (no smoothing).

    Reference length per item is the *shortest* reference (NMT convention, not sacrebleu's
    closest). Where the original divides by zero (empty corpus side) the brevity penalty is 0.
    """
    matches = [0] * max_order
    possible = [0] * max_order
    reference_length = 0
    translation_length = 0
    for references, translation in zip(reference_corpus, translation_corpus, strict=True):
        reference_length += min(len(r) for r in references)
        translation_length += len(translation)
        merged: Counter = Counter()
        for reference in references:
            merged |= _ngrams(reference, max_order)
        overlap = _ngrams(translation, max_order) & merged
        for ngram, count in overlap.items():
            matches[len(ngram) - 1] += count
        for order in range(1, max_order + 1):
            if len(translation) - order + 1 > 0:
                possible[order - 1] += len(translation) - order + 1
    precisions = [matches[i] / possible[i] if possible[i] > 0 else 0.0 for i in range(max_order)]
    if min(precisions) > 0:
        geo_mean = math.exp(sum(math.log(p) / max_order for p in precisions))
    else:
        geo_mean = 0.0
    if reference_length == 0:
        ratio = math.inf if translation_length else 0.0
    else:
        ratio = translation_length / reference_length
    if ratio > 1.0:
        bp = 1.0
    elif ratio == 0.0:
        bp = 0.0
    else:
        bp = math.exp(1 - 1.0 / ratio)
    return BleuResult(geo_mean * bp, precisions, bp, ratio, translation_length, reference_length)


def corpus_bleu(
    predictions: Sequence[str], references: Sequence[Sequence[str]], max_order: int = 4
) -> BleuResult:
    """``evaluate.load("bleu").compute(predictions, references, max_order)`` without ``evaluate``.

    ``references[i]`` is the list of reference strings of item ``i``.
    """
    refs = [[tokenize_13a(r) for r in group] for group in references]
    return compute_bleu(refs, [tokenize_13a(p) for p in predictions], max_order)


# --- METEOR (evaluate's meteor = nltk on word_tokenize tokens) --------------------------------

_word_tokenize_kind: str | None = None


def word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize`` when Punkt english is installed, else the untrained-Punkt variant."""
    global _word_tokenize_kind
    import nltk
    from nltk.tokenize import NLTKWordTokenizer, PunktSentenceTokenizer

    if _word_tokenize_kind is None:
        try:
            nltk.word_tokenize("A test. Another one.")
            _word_tokenize_kind = "nltk.word_tokenize (punkt english)"
        except LookupError:
            _word_tokenize_kind = "nltk NLTKWordTokenizer on untrained-Punkt sentences"
    if _word_tokenize_kind.startswith("nltk.word_tokenize"):
        return nltk.word_tokenize(text)
    word_tok = NLTKWordTokenizer()
    sentences = PunktSentenceTokenizer().tokenize(text)
    return [tok for sent in sentences for tok in word_tok.tokenize(sent)]


def meteor_tokenizer_kind() -> str:
    """Which tokeniser :func:`word_tokenize` uses on this machine (for the results' notes)."""
    word_tokenize("x")
    assert _word_tokenize_kind is not None
    return _word_tokenize_kind


def meteor_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
    """Per-item nltk METEOR (alpha 0.9, beta 3, gamma 0.5) as ``evaluate``'s meteor computes it."""
    from nltk.translate.meteor_score import meteor_score, single_meteor_score

    from musilingo.metrics.wordnet import ensure_wordnet

    ensure_wordnet()
    out = []
    for pred, refs in zip(predictions, references, strict=True):
        hyp = word_tokenize(pred)
        if len(refs) == 1:
            out.append(float(single_meteor_score(word_tokenize(refs[0]), hyp)))
        else:
            out.append(float(meteor_score([word_tokenize(r) for r in refs], hyp)))
    return out


# --- ROUGE-L ---------------------------------------------------------------------------------


def rouge_l_scores(
    predictions: Sequence[str], references: Sequence[Sequence[str]], use_stemmer: bool = False
) -> list[dict[str, float]]:
    """Per-item ``rouge_score`` ROUGE-L precision / recall / F1 (best reference when several)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
    out = []
    for pred, refs in zip(predictions, references, strict=True):
        s = scorer.score_multi(list(refs), pred)["rougeL"] if len(refs) > 1 else (
            scorer.score(refs[0], pred)["rougeL"]
        )
        out.append({"precision": s.precision, "recall": s.recall, "f1": s.fmeasure})
    return out



# --- the protocol as a metric object -----------------------------------------------------------


@dataclass
class LpmcMetric(MultiReferencePairs):
    """Accumulate (prediction, references) pairs; :meth:`compute` returns the LP-MusicCaps scores.

    Keys of :meth:`compute`: ``bleu1``..``bleu4``, ``meteor``, ``rougeL`` and, when a BERTScore
    model is given, ``bertscore`` (F1); plus ``n`` and ``notes``.
    """

    def compute(self, bertscore_model: object | None = None) -> dict:
        """Scores over everything added. ``bertscore_model``: a
        :class:`~musilingo.metrics.bertscore.BertScoreModel` or ``None`` to skip BERTScore."""
        if not self.predictions:
            raise ValueError("no items to score")
        res: dict = {"n": len(self.predictions)}
        for n in range(1, 5):
            res[f"bleu{n}"] = corpus_bleu(self.predictions, self.references, n).bleu
        res["meteor"] = mean(meteor_scores(self.predictions, self.references))
        res["rougeL"] = mean([s["f1"] for s in rouge_l_scores(self.predictions, self.references)])
        notes = [
            "BLEU: HF evaluate 'bleu' algorithm (13a tokens, NMT compute_bleu, no smoothing)",
            f"METEOR tokeniser: {meteor_tokenizer_kind()}",
            "ROUGE-L: plain mean of per-item F1 (evaluate reports a bootstrap median)",
        ]
        if bertscore_model is not None:
            add_bertscore(res, notes, self.predictions, self.references, bertscore_model, "f1")
        res["notes"] = notes
        return res
