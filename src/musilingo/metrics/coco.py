"""COCO caption metrics through pycocoevalcap 1.2: BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr.

Both sides go through the PTB tokenizer (Stanford CoreNLP 3.4.1 jar: lower-cases and drops
punctuation); METEOR 1.5 runs its jar. Both need Java (``java`` on PATH; a fresh Debian machine
gets it from ``scripts/install_java_wordnet.sh``). Several references per item are allowed.
CIDEr here is CIDEr-D with document frequencies from the scored references themselves, as in
pycocoevalcap, so it depends on the whole set being scored.

SPICE is not computed: pycocoevalcap's SPICE downloads Stanford CoreNLP models at first use,
which cannot happen offline. Java processes start only when :meth:`CocoMetric.compute` runs.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from dataclasses import dataclass
from typing import Sequence

from musilingo.errors import ConfigError
from musilingo.metrics.base import MultiReferencePairs

SPICE_NOTE = "SPICE not computed: pycocoevalcap's SPICE downloads CoreNLP models (offline here)"


def _check_java() -> None:
    if shutil.which("java") is None:
        raise ConfigError(
            "the coco protocol needs Java (PTB tokenizer, METEOR 1.5): "
            "apt-get install default-jre-headless (or run scripts/install_java_wordnet.sh)"
        )


def coco_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Corpus scores ``Bleu_1..4``, ``METEOR``, ``ROUGE_L``, ``CIDEr`` (pycocoevalcap names)."""
    _check_java()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts = {str(i): [{"caption": r} for r in refs] for i, refs in enumerate(references)}
    res = {str(i): [{"caption": p}] for i, p in enumerate(predictions)}
    out: dict[str, float] = {}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocoevalcap prints progress
        tok = PTBTokenizer()
        gts_t, res_t = tok.tokenize(gts), tok.tokenize(res)
        bleu, _ = Bleu(4).compute_score(gts_t, res_t)
        out.update({f"Bleu_{i + 1}": float(b) for i, b in enumerate(bleu)})
        meteor = Meteor()
        try:
            out["METEOR"] = float(meteor.compute_score(gts_t, res_t)[0])
        finally:
            with contextlib.suppress(Exception):
                meteor.__del__()
        out["ROUGE_L"] = float(Rouge().compute_score(gts_t, res_t)[0])
        out["CIDEr"] = float(Cider().compute_score(gts_t, res_t)[0])
    return out


@dataclass
class CocoMetric(MultiReferencePairs):
    """Accumulate (prediction, references) pairs; :meth:`compute` runs pycocoevalcap once."""

    def compute(self, bertscore_model: object | None = None) -> dict:
        """pycocoevalcap scores plus BERTScore F1 when ``bertscore_model`` is given."""
        if not self.predictions:
            raise ValueError("no items to score")
        res: dict = {"n": len(self.predictions)}
        res.update(coco_scores(self.predictions, self.references))
        notes = ["PTB-tokenised, pycocoevalcap 1.2", SPICE_NOTE]
        if bertscore_model is not None:
            from musilingo.metrics.bertscore import bert_score

            bs = bert_score(self.predictions, self.references, bertscore_model)
            res["bertscore"] = float(sum(bs["f1"]) / len(bs["f1"]))
            res["bertscore_model"] = bs["model"]
            notes.append(bs["note"])
        res["notes"] = notes
        return res
