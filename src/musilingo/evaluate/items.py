"""The questions of an evaluation: one :class:`Item` per (clip, question) with what its answer is
scored against, built from manifest records for a task (caption, qa, attributes)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from musilingo.attributes import SCHEMA, TRUTH_FIELDS
from musilingo.data.manifest import Record
from musilingo.errors import ManifestError


@dataclass
class Item:
    """One question about one clip, with what its answer is scored against."""

    id: str  # stable: "<record id>:caption" | "<record id>:qa<i>" | "<record id>:<attribute>"
    record: Record
    question: str
    reference: str | None = None  # caption / qa answer
    attribute: str | None = None  # attributes task
    truth: dict | None = None  # attributes task: the record's attributes

    def line(self, system: str, prediction: str | None, error: str | None = None) -> dict:
        row: dict[str, Any] = {"system": system, "id": self.id, "record": self.record.id,
                               "question": self.question}
        if self.attribute:
            row["attribute"] = self.attribute
            row["truth"] = {k: self.truth[k] for k in SCHEMA[self.attribute].fields
                            if k in self.truth}
        else:
            row["reference"] = self.reference
        row["prediction"] = prediction
        if error:
            row["error"] = error
        row["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        return row


def build_items(records: Sequence[Record], task: str, where: str = "manifest") -> list[Item]:
    """The questions of ``task`` for ``records``; raises ManifestError when none can be asked."""
    from musilingo.prompts import CAPTION_INSTRUCTION

    items: list[Item] = []
    for r in records:
        if task == "caption":
            if r.caption and r.caption.strip():
                items.append(Item(f"{r.id}:caption", r, CAPTION_INSTRUCTION, reference=r.caption))
        elif task == "qa":
            for i, q in enumerate(r.qa):
                if q.question.strip() and q.answer.strip():
                    items.append(Item(f"{r.id}:qa{i}", r, q.question, reference=q.answer))
        else:
            from musilingo.metrics.attributes import score_attribute

            for attr, spec in SCHEMA.items():
                if not spec.present(r.attributes):
                    continue
                try:  # a malformed truth fails here, before any generation
                    score_attribute(attr, "", r.attributes)
                except (KeyError, ValueError, TypeError) as e:
                    raise ManifestError(
                        f"{where}: record {r.id!r}: attribute {attr!r}: {e}") from None
                items.append(Item(f"{r.id}:{attr}", r, spec.question, attribute=attr,
                                  truth=dict(r.attributes)))
    if not items:
        need = {"caption": "a 'caption'", "qa": "'qa' question/answer pairs",
                "attributes": "'attributes' with any of " + ", ".join(sorted(TRUTH_FIELDS))}[task]
        raise ManifestError(f"{where}: none of the {len(records)} records has {need}, "
                            f"which the {task} task needs")
    return items


def select_records(records: Sequence[Record], split: str | None, where: str) -> list[Record]:
    chosen = [r for r in records if split is None or r.split == split]
    if not chosen:
        present = sorted({str(r.split) for r in records})
        raise ManifestError(f"{where}: no records in split {split!r} "
                            f"(splits present: {', '.join(present)})")
    return chosen
