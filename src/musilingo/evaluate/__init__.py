"""``musilingo eval``: run a model over a manifest split, score it, and write a report.

Modules: ``options`` (what a run does), ``items`` (the questions asked), ``predictions``
(resumable output files), ``generate`` (the model's and the no-audio answers), ``baselines``
(majority class, linear probe), ``scoring`` (attribute scores, confusion matrices), ``report``
(report.md and plots), ``run`` (:func:`eval_command`, which wires them together).

Tasks (what is asked of each record of the split, and what the answer is scored against):

- ``caption``: :data:`~musilingo.prompts.CAPTION_INSTRUCTION` vs ``record.caption``
  (default protocols ``lpmc`` + ``coco``);
- ``qa``: every ``record.qa`` question vs its answer (default ``mullama`` + ``lpmc``);
- ``attributes``: one canonical question per attribute the record's ``attributes`` hold
  (:data:`musilingo.attributes.SCHEMA`: tempo, meter, key, instruments, drums, style); each free-text
  answer is scored by :func:`musilingo.metrics.attributes.score_attribute`. Reported: mean score
  per attribute ("accuracy"; for instruments the mean per-answer family F1) and the micro F1 of
  instrument families. Next to the model, three baselines scored the same way (``baselines``):
  ``no_audio`` (the same LLM and conversation with zero audio tokens), ``majority`` (the most
  frequent class per attribute in the train split, written as a sentence the parser reads) and
  ``linear_probe`` (scikit-learn logistic regression per attribute on the clip's mean-pooled
  encoder features, trained on the train split; one-vs-rest for instrument families).

Files written to ``out``: ``run.json`` (what the predictions were made with; a rerun with other
settings is refused), ``predictions.jsonl`` (one line per answer, appended and fsynced, so a
killed run resumes where it stopped: finished answers are kept by item id and a torn last line is
dropped), ``features/`` (the shared pooled-feature cache of :mod:`musilingo.features`, unless
``feature_cache`` points at one made for training), ``baselines.jsonl``
(majority and probe answers), ``results.json`` (atomic) and ``report.md`` + ``plots/*.png``
(see :mod:`musilingo.evaluate.report`).

This package does not train the model, download anything, or define text metrics (``metrics/``
does).
"""

from __future__ import annotations

__all__ = ["EvalOptions", "eval_command"]


def __getattr__(name: str):
    # imported on first use, so ``import musilingo.evaluate`` stays cheap
    if name == "eval_command":
        from musilingo.evaluate.run import eval_command

        return eval_command
    if name == "EvalOptions":
        from musilingo.evaluate.options import EvalOptions

        return EvalOptions
    raise AttributeError(name)
