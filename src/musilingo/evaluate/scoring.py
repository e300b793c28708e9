"""Scores of one system's answers on the attributes task: mean score per attribute, overall
accuracy, the micro F1 of instrument families, and the confusion matrices of tempo, meter and key
(the class an answer claims, via the parser in :mod:`musilingo.metrics.attributes`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from musilingo.attributes import key_label, truth_class
from musilingo.evaluate.items import Item

SYSTEMS = ("model", "no_audio", "majority", "linear_probe", "facts_only")
NO_CLAIM, SEVERAL = "no claim", "several"


def score_attribute_system(items: Sequence[Item], preds: Mapping[str, str]) -> dict | None:
    """Per-attribute mean scores (``<attr>_accuracy``), overall ``accuracy``, and the micro F1
    of instrument families (``instrument_family_f1``) for one system's answers."""
    from musilingo.metrics.attributes import parse_instruments
    from musilingo.metrics.score import score_predictions
    from musilingo.text import normalize_text

    pairs = [{"id": it.id, "prediction": preds[it.id], "ground_truth": it.truth,
              "attribute": it.attribute} for it in items if it.id in preds]
    if not pairs:
        return None
    res = score_predictions(pairs, "attributes")
    tp = fp = fn = 0
    n_inst = 0
    for it in items:
        if it.attribute != "instruments" or it.id not in preds:
            continue
        n_inst += 1
        c = parse_instruments(preds[it.id])
        pred = set(c.positive) - set(c.negative)
        truth = {normalize_text(f) for f in it.truth["instrument_families"]}
        tp += len(pred & truth)
        fp += len(pred - truth)
        fn += len(truth - pred)
    if n_inst:
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        res["instrument_family_precision"] = p
        res["instrument_family_recall"] = r
        res["instrument_family_f1"] = 2 * p * r / (p + r) if p + r else 0.0
    return res


def _word_counts(texts: Iterable[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def _claimed(claims) -> list[str]:
    pos = [p for p in claims.positive if p not in claims.negative]
    return list(dict.fromkeys(pos))


def answer_class(attr: str, text: str) -> str:
    """The class an answer claims, for confusion matrices: a label, ``"several"`` for a hedge,
    or ``"no claim"``. Attributes: tempo, meter, key (``"F# minor"``, ``"? minor"``, ``"C ?"``)."""
    from musilingo.metrics.attributes import parse_key, parse_meter, parse_tempo
    from musilingo.music import pitch_class, tonic_name

    if attr in ("tempo", "meter"):
        pos = _claimed(parse_tempo(text) if attr == "tempo" else parse_meter(text))
        return NO_CLAIM if not pos else pos[0] if len(pos) == 1 else SEVERAL
    if attr == "key":
        k = parse_key(text)
        modes = _claimed(k.mode)
        mode = modes[0] if len(modes) == 1 else None
        tonics = list(dict.fromkeys(tonic_name(pitch_class(t), mode) for t in _claimed(k.tonic)))
        if len(tonics) > 1 or len(modes) > 1:
            return SEVERAL
        if not tonics and not modes:
            return NO_CLAIM
        return key_label((tonics[0] if tonics else None, modes[0] if modes else None))
    raise ValueError(f"no confusion matrix for {attr!r}")


def confusion(items: Sequence[Item], preds: Mapping[str, str], attr: str) -> dict | None:
    """Counts of (truth class, answered class) for one attribute, or None without items."""
    pairs = []
    for it in items:
        if it.attribute != attr or it.id not in preds:
            continue
        t = truth_class(attr, it.truth)
        pairs.append((key_label(t) if attr == "key" else t, answer_class(attr, preds[it.id])))
    if not pairs:
        return None
    truths = sorted({t for t, _ in pairs}, key=_class_order)
    claimed = sorted({p for _, p in pairs} - {NO_CLAIM, SEVERAL} - set(truths), key=_class_order)
    cols = truths + claimed + [c for c in (SEVERAL, NO_CLAIM) if any(p == c for _, p in pairs)]
    counts = [[sum(1 for t, p in pairs if t == row and p == col) for col in cols] for row in truths]
    return {"truth": truths, "answer": cols, "counts": counts}


def _class_order(label: str):
    order = {"slow": 0, "moderate": 1, "fast": 2}
    return (order.get(label, 9), label)
