"""Scoring of generated captions and answers against references.

Protocols (each reproduces a published evaluation so numbers can be compared):

- ``lpmc``    LP-MusicCaps captioning: corpus BLEU-1..4 (HF ``evaluate`` "bleu"), METEOR (nltk),
              ROUGE-L F1, BERTScore F1 (:mod:`musilingo.metrics.lpmc`).
- ``mullama`` MusicQA protocol of MU-LLaMA: character-level sentence BLEU, METEOR, ROUGE-L recall,
              BERTScore recall, per-sample means (:mod:`musilingo.metrics.mullama`).
- ``coco``    pycocoevalcap BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr (:mod:`musilingo.metrics.coco`).
- ``attributes`` exact attribute answers (tempo, meter, key, ...) scored by
              :mod:`musilingo.metrics.attributes`.

The single entry point is :func:`musilingo.metrics.score.score_predictions` (and
:func:`~musilingo.metrics.score.score_command` for the CLI). Importing this package loads no
model, starts no Java and touches no WordNet; all of that happens lazily on first use.
"""

from __future__ import annotations

__all__ = ["PROTOCOLS", "score_predictions", "score_command", "read_pairs"]


def __getattr__(name: str):
    if name in ("PROTOCOLS", "score_predictions", "score_command", "read_pairs"):
        from musilingo.metrics import score

        return getattr(score, name)
    raise AttributeError(name)
