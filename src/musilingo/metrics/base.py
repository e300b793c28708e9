"""What the caption metrics share: accumulating (prediction, references) items, the mean they
report, and adding BERTScore to a protocol's results.

Metric classes add their own ``compute``; the scores themselves live in their modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


@dataclass
class MultiReferencePairs:
    """Items of one prediction and one or more references, added with :meth:`update`."""

    predictions: list[str] = field(default_factory=list)
    references: list[list[str]] = field(default_factory=list)

    def update(self, predictions: Sequence[str], references: Sequence[str | Sequence[str]]) -> None:
        """Add items; each reference is a string or a non-empty list of strings."""
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        for pred, ref in zip(predictions, references):
            refs = [ref] if isinstance(ref, str) else list(ref)
            if not refs:
                raise ValueError("an item has no reference")
            self.predictions.append(pred)
            self.references.append(refs)


def mean(values: Sequence[float]) -> float:
    """The plain mean; NaN for no values."""
    return float(sum(values) / len(values)) if values else float("nan")


def add_bertscore(results: dict, notes: list[str], predictions: Sequence[str],
                  references: Sequence[str | Sequence[str]], model, component: str) -> None:
    """Put the mean BERTScore ``component`` ("f1", "recall" or "precision") of the items into
    ``results["bertscore"]``, the model's name into ``results["bertscore_model"]`` and its note
    into ``notes`` (the step the text protocols share)."""
    from musilingo.metrics.bertscore import bert_score

    bs = bert_score(predictions, references, model)
    results["bertscore"] = mean(bs[component])
    results["bertscore_model"] = bs["model"]
    notes.append(bs["note"])
