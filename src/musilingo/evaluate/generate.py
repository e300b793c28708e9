"""Answers for evaluation items: the model's, from the shared feature cache (the rule of
:meth:`musilingo.model.MusiLingo.answer_features`), and the no-audio baseline's (the same LLM and
conversation with zero audio tokens). Each answer is appended to ``predictions.jsonl`` as it
comes, so a killed run loses nothing it finished."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from musilingo.data.manifest import append_jsonl
from musilingo.evaluate.items import Item


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="answer", file=sys.stderr, disable=None,
                dynamic_ncols=True)


def run_model(model, items: Sequence[Item], pred_path: Path, options, batch_size: int,
              features, failed_audio: Mapping[str, str]) -> int:
    """Answer the items from cached features, appending one line each; returns how many failed.

    ``features`` is the shared feature cache (:mod:`musilingo.features`: each record's pooled
    features, windows concatenated), answered for the whole track by
    :meth:`~musilingo.model.MusiLingo.answer_features`, the rule ``MusiLingo.ask`` follows. Records whose audio could not be
    decoded (``failed_audio``: id -> problem) get an error line and are retried on the next run.
    """
    from musilingo.prompts import Turn

    failed = 0
    ready = []
    bar = _progress(len(items), "model")
    try:
        for it in items:
            rid = it.record.id
            if rid not in features or (model.config.facts and not features.has_facts(rid)):
                append_jsonl(pred_path, it.line("model", None, error=failed_audio.get(
                    rid, f"{it.record.audio}: audio could not be encoded")))
                failed += 1
                bar.update(1)
            else:
                ready.append(it)
        for j in range(0, len(ready), batch_size):
            part = ready[j: j + batch_size]
            facts = ([features.facts(it.record.id) for it in part] if model.config.facts
                     else None)  # a model that reads measured facts: the cache keeps them
            answers = model.answer_features([[features[it.record.id]] for it in part],
                                            [[Turn(it.question)] for it in part], options,
                                            batch_size, per_window=False, facts=facts)
            for it, (text, _) in zip(part, answers):
                append_jsonl(pred_path, it.line("model", text))
            bar.update(len(part))
    finally:
        bar.close()
    return failed


def run_no_audio(model, items: Sequence[Item], pred_path: Path, options, batch_size: int) -> None:
    """The same conversations with zero audio tokens. With deterministic decoding the answer
    depends on the question only, so each distinct question is generated once."""
    import torch

    from musilingo.prompts import Turn

    empty = torch.zeros(0, model.encoder.feature_dim)
    if options.do_sample:
        groups = [[it] for it in items]
    else:
        by_q: dict[str, list[Item]] = {}
        for it in items:
            by_q.setdefault(it.question, []).append(it)
        groups = list(by_q.values())
    bar = _progress(len(items), "no_audio")
    try:
        for b in range(0, len(groups), batch_size):
            part = groups[b: b + batch_size]
            convs = [[Turn(g[0].question)] for g in part]
            texts = model.generate([empty] * len(part), convs, options)
            for g, text in zip(part, texts):
                for it in g:
                    append_jsonl(pred_path, it.line("no_audio", text))
                bar.update(len(g))
    finally:
        bar.close()
