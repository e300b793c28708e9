"""The attribute baselines that need no LLM: the majority class of the train split, a linear
probe (scikit-learn logistic regression on mean-pooled encoder features) and the facts-only
template (the measured facts of ``musilingo analyze``, read off as classes). They return classes
(:func:`musilingo.attributes.truth_class` form); :func:`musilingo.attributes.class_sentence`
turns them into answers that are scored like the model's."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from musilingo.attributes import SCHEMA, truth_class
from musilingo.data.manifest import Record
from musilingo.evaluate.items import Item


def majority_classes(train: Sequence[Record]) -> dict[str, Any]:
    """Most frequent class per attribute in ``train`` (ties: the first in sorted order).

    Key: the most frequent tonic and the most frequent mode, separately. Instruments: every
    family present in at least half the records (else the most frequent family).
    """
    out: dict[str, Any] = {}
    for attr in SCHEMA:
        recs = [r for r in train if SCHEMA[attr].present(r.attributes)]
        if not recs:
            continue
        classes = [truth_class(attr, r.attributes) for r in recs]
        if attr == "key":
            tonics = [c[0] for c in classes if c[0]]
            modes = [c[1] for c in classes if c[1]]
            out[attr] = (_most_common(tonics), _most_common(modes))
        elif attr == "instruments":
            fams = Counter(f for c in classes for f in c)
            chosen = frozenset(f for f, n in fams.items() if n * 2 >= len(classes))
            if not chosen and fams:
                chosen = frozenset([_most_common(list(fams.elements()))])
            out[attr] = chosen
        else:
            out[attr] = _most_common(classes)
    return out


def _most_common(values: list) -> Any:
    if not values:
        return None
    counts = Counter(values)
    best = max(counts.values())
    return min(v for v, n in counts.items() if n == best)


def probe_classes(train: Sequence[Record], train_x: Mapping[str, np.ndarray],
                  items: Sequence[Item], eval_x: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Linear-probe classes per item id: logistic regression per attribute (tonic and mode
    separately; one-vs-rest over instrument families), on standardised mean-pooled features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MultiLabelBinarizer, StandardScaler

    def fit_predict(x, y, xq):
        if len(set(y)) == 1:
            return [y[0]] * len(xq)
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        clf.fit(x, y)
        return list(clf.predict(xq))

    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence / constant-label warnings on tiny sets
        for attr in SCHEMA:
            recs = [r for r in train if SCHEMA[attr].present(r.attributes) and r.id in train_x]
            targets = [it for it in items if it.attribute == attr and it.record.id in eval_x]
            if not recs or not targets:
                continue
            x = np.stack([train_x[r.id] for r in recs])
            xq = np.stack([eval_x[it.record.id] for it in targets])
            classes = [truth_class(attr, r.attributes) for r in recs]
            if attr == "key":
                parts = []
                for k in (0, 1):
                    sub = [(xi, c[k]) for xi, c in zip(x, classes) if c[k]]
                    parts.append(fit_predict(np.stack([s[0] for s in sub]), [s[1] for s in sub], xq)
                                 if sub else [None] * len(xq))
                preds = list(zip(*parts))
            elif attr == "instruments":
                mlb = MultiLabelBinarizer()
                y = mlb.fit_transform([sorted(c) for c in classes])
                if y.shape[1] == 0:
                    preds = [frozenset()] * len(xq)
                else:
                    clf = make_pipeline(StandardScaler(),
                                        OneVsRestClassifier(LogisticRegression(max_iter=2000)))
                    clf.fit(x, y)
                    proba = np.atleast_2d(clf.predict_proba(xq))
                    preds = []
                    for row in proba:
                        on = [mlb.classes_[i] for i in np.flatnonzero(row >= 0.5)]
                        preds.append(frozenset(on or [mlb.classes_[int(np.argmax(row))]]))
            else:
                preds = fit_predict(x, classes, xq)
            for it, p in zip(targets, preds):
                out[it.id] = p
    return out


def facts_classes(items: Sequence[Item], facts: Mapping[str, Any]) -> dict[str, Any]:
    """The facts-only template's classes per item id, from each record's measured facts
    (``facts[record id]``: a :class:`musilingo.analysis.facts.Facts`): tempo class of the
    measured bpm, the time signature, tonic and mode (none when the clip is not tonal), the GM
    families and drums the tags name, the strongest tag that is a known style. An attribute the
    facts cannot speak to (no tags; no style tag) gets no class, and its answer claims nothing."""
    from musilingo import music
    from musilingo.analysis import tags as tag_words

    out: dict[str, Any] = {}
    for it in items:
        f = facts.get(it.record.id)
        if f is None:
            continue
        a = it.attribute
        if a == "tempo":
            out[it.id] = music.tempo_class(f.tempo.bpm)
        elif a == "meter":
            out[it.id] = f.meter.signature
        elif a == "key":
            out[it.id] = (f.key.tonic, f.key.mode) if f.key.tonal else (None, None)
        elif f.tags is None:
            continue
        elif a == "instruments":
            out[it.id] = tag_words.tag_families(f.tags)
        elif a == "drums":
            out[it.id] = "yes" if tag_words.tag_drums(f.tags) else "no"
        elif a == "style":
            style = tag_words.tag_style(f.tags)
            if style:
                out[it.id] = style
    return out
