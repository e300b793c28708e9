"""What the multi-reference caption metrics share: accumulating (prediction, references) items.

Metric classes add their own ``compute``; this module computes nothing.
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
