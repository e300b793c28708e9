"""``musilingo eval``: run a model over a manifest split, score it, and write a report.

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
(see :mod:`musilingo.report`).

This module does not train the model, download anything, or define metrics (``metrics/`` does).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musilingo.attributes import SCHEMA, TRUTH_FIELDS, class_sentence, key_label, truth_class
from musilingo.data.manifest import (
    Record,
    append_jsonl,
    atomic_write_text,
    check_audio_exists,
    read_manifest,
)
from musilingo.errors import ConfigError, ManifestError

log = logging.getLogger(__name__)

TASKS = ("caption", "qa", "attributes")
DEFAULT_PROTOCOLS = {"caption": ["lpmc", "coco"], "qa": ["mullama", "lpmc"],
                     "attributes": ["attributes"]}
TEXT_PROTOCOLS = ("lpmc", "mullama", "coco")

SYSTEMS = ("model", "no_audio", "majority", "linear_probe")
NO_CLAIM, SEVERAL = "no claim", "several"

# run.json keys that must agree for earlier predictions to be reused
_RUN_KEYS = ("model", "data", "task", "split", "decoding", "max_new_tokens")


@dataclass
class EvalOptions:
    """What one evaluation run does (the arguments of :func:`eval_command` minus paths)."""

    task: str = "caption"
    """caption | qa | attributes"""
    split: str | None = "test"
    """manifest split evaluated; None = every record"""
    protocols: list[str] = field(default_factory=list)
    """scoring protocols; empty = the task's default (:data:`DEFAULT_PROTOCOLS`)"""
    batch_size: int = 8
    """clips encoded / answers generated per model call"""
    limit: int | None = None
    """evaluate only the first N records of the split"""
    decoding: str = "greedy"
    """greedy | paper | beam (:meth:`musilingo.model.GenerationOptions.named`)"""
    max_new_tokens: int | None = None
    """generation length limit; None = the model config's"""
    bertscore: bool = True
    """compute BERTScore in the text protocols"""
    bertscore_model: str | None = None
    """local BERTScore model folder; None = the shipped MiniLM"""
    baselines: bool = True
    """attributes task: also run the no-audio, majority and linear-probe baselines"""
    train_split: str = "train"
    """split the majority and probe baselines learn from"""
    feature_cache: str | None = None
    """folder of the shared feature cache (``musilingo features``); None = OUT/features"""

    def __post_init__(self):
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if not self.protocols:
            self.protocols = list(DEFAULT_PROTOCOLS[self.task])
        allowed = ("attributes",) if self.task == "attributes" else TEXT_PROTOCOLS
        bad = [p for p in self.protocols if p not in allowed]
        if bad:
            raise ConfigError(f"protocol(s) {bad} do not apply to the {self.task} task; "
                              f"choose from {', '.join(allowed)}")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("limit must be at least 1")


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


# ------------------------------------------------------------------------------ items
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


# ------------------------------------------------------------------------------ resumable output
def load_predictions(path: Path) -> dict[tuple[str, str], dict]:
    """Finished predictions ``(system, id) -> line``; lines with an error are not finished.

    A line that is not valid JSON (cut by a kill) is dropped and the file rewritten without it.
    """
    done: dict[tuple[str, str], dict] = {}
    if not path.is_file():
        return done
    raw = path.read_text(encoding="utf-8")
    lines = raw.splitlines(keepends=True)
    good = []
    for line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or "system" not in obj or "id" not in obj:
            continue
        good.append(line if line.endswith("\n") else line + "\n")
        if obj.get("error") is None and isinstance(obj.get("prediction"), str):
            done[(obj["system"], obj["id"])] = obj
    if "".join(good) != raw:
        log.warning("%s: dropped %d unreadable line(s) (a run killed mid-write)", path,
                    len(lines) - len(good))
        atomic_write_text(path, "".join(good))
    return done


def check_run(out: Path, run: dict) -> None:
    """Refuse to mix predictions of different settings in one folder; write run.json."""
    path = out / "run.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
        diff = [k for k in _RUN_KEYS if k in old and old[k] != run[k]]
        if diff:
            shown = ", ".join(f"{k}: {old[k]!r} -> {run[k]!r}" for k in diff)
            raise ConfigError(f"{out} holds predictions of a different run ({shown}); "
                              "use another output folder or delete it")
    atomic_write_text(path, json.dumps(run, indent=2) + "\n")


# ------------------------------------------------------------------------------ generation
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
            if rid not in features:
                append_jsonl(pred_path, it.line("model", None, error=failed_audio.get(
                    rid, f"{it.record.audio}: audio could not be encoded")))
                failed += 1
                bar.update(1)
            else:
                ready.append(it)
        for j in range(0, len(ready), batch_size):
            part = ready[j: j + batch_size]
            answers = model.answer_features([[features[it.record.id]] for it in part],
                                            [[Turn(it.question)] for it in part], options,
                                            batch_size, per_window=False)
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


# ------------------------------------------------------------------------------ attribute classes
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


# ------------------------------------------------------------------------------ baselines
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


# ------------------------------------------------------------------------------ scoring
def score_attribute_system(items: Sequence[Item], preds: Mapping[str, str]) -> dict | None:
    """Per-attribute mean scores (``<attr>_accuracy``), overall ``accuracy``, and the micro F1
    of instrument families (``instrument_family_f1``) for one system's answers."""
    from musilingo.metrics.attributes import parse_instruments
    from musilingo.metrics.score import score_predictions
    from musilingo.metrics.text import normalize_text

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


# ------------------------------------------------------------------------------ entry point
def eval_command(model: str, data: str, out: str, task: str = "caption", split: str | None = "test",
                 protocols: list[str] | None = None, batch_size: int = 8, device: str | None = None,
                 limit: int | None = None, decoding: str = "greedy",
                 max_new_tokens: int | None = None, bertscore: bool = True, baselines: bool = True,
                 train_split: str = "train", bertscore_model: str | None = None,
                 skip_missing: bool = False, feature_cache: str | None = None) -> int:
    """Evaluate a model on a manifest split and write predictions, results.json and a report.

    Args:
        model: model folder or preset (``tiny``, ``default``, ``paper``).
        data: JSONL manifest (``musilingo.data.manifest``).
        out: output folder; rerunning with the same folder resumes (finished answers are kept).
        task: caption | qa | attributes.
        split: manifest split to evaluate (None = all records).
        protocols: scoring protocols (caption/qa: lpmc, mullama, coco; attributes: attributes);
            default caption -> lpmc + coco, qa -> mullama + lpmc.
        batch_size: clips encoded / answers generated per model call.
        device: cpu, cuda, cuda:N (default cuda when available).
        limit: evaluate only the first N records of the split.
        decoding: greedy | paper | beam.
        max_new_tokens: generation length limit (default: the model's).
        bertscore: compute BERTScore (caption / qa protocols).
        baselines: attributes task: also run no-audio, majority and linear-probe baselines.
        train_split: split the majority and probe baselines learn from.
        bertscore_model: local BERTScore model folder (default the shipped MiniLM).
        skip_missing: leave out records whose audio file is missing (default: refuse to run).

    Returns 0 when every answer was produced, 1 when some clips failed to decode (each is
    recorded with its error in predictions.jsonl and retried on the next run).
    """
    from musilingo import __version__
    from musilingo.metrics.score import score_predictions, write_results
    from musilingo.model import GenerationOptions

    opts = EvalOptions(task=task, split=split, protocols=list(protocols or []),
                       batch_size=batch_size, limit=limit, decoding=decoding,
                       max_new_tokens=max_new_tokens, bertscore=bertscore,
                       bertscore_model=bertscore_model, baselines=baselines,
                       train_split=train_split, feature_cache=feature_cache)
    GenerationOptions.named(decoding)  # an unknown decoding fails before any work
    if "coco" in opts.protocols:
        from musilingo.metrics.coco import _check_java

        _check_java()  # fail now, not after hours of generation

    all_records = read_manifest(data)
    records = select_records(all_records, opts.split, data)
    if opts.limit:
        records = records[: opts.limit]
    records, n_missing = check_audio_exists(records, skip_missing, where=data)
    if not records:
        raise ManifestError(f"{data}: none of the audio files of split {opts.split!r} exists")
    items = build_items(records, opts.task, where=f"{data} (split {opts.split!r})")
    with_baselines = opts.baselines and opts.task == "attributes"
    train: list[Record] = []
    if with_baselines:
        train = [r for r in all_records if r.split == opts.train_split]
        if not train:
            raise ManifestError(f"{data}: no records in the train split {opts.train_split!r} for "
                                "the majority and linear-probe baselines (choose another "
                                "train_split, or turn baselines off)")
        train, n_train_missing = check_audio_exists(train, skip_missing,
                                                    where=f"{data} (split {opts.train_split!r})")
        n_missing += n_train_missing
        if not train:
            raise ManifestError(f"{data}: none of the audio files of the train split exists")

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_run(out_dir, {"model": model, "data": str(Path(data).resolve()), "task": opts.task,
                        "split": opts.split, "decoding": opts.decoding,
                        "max_new_tokens": opts.max_new_tokens, "musilingo_version": __version__})
    pred_path = out_dir / "predictions.jsonl"
    done = load_predictions(pred_path)

    def pending(system: str) -> list[Item]:
        return [it for it in items if (system, it.id) not in done
                or done[(system, it.id)].get("question") != it.question]

    from musilingo.model import load_model

    m, notes = load_model(model, device)
    for note in notes:
        log.warning("%s", note)
    gen = GenerationOptions.named(opts.decoding, opts.max_new_tokens or m.config.max_new_tokens)
    todo = pending("model")
    if len(todo) < len(items):
        log.warning("resuming: %d of %d answers already in %s", len(items) - len(todo), len(items),
                    pred_path)
    # one encoder pass per clip, shared with training and later runs (musilingo.features)
    from musilingo.features import build_feature_cache

    need = {r.id: r for r in ([it.record for it in todo] + (records + train if with_baselines else []))}
    features, fstats = build_feature_cache(
        m.feature_spec, list(need.values()), opts.feature_cache or out_dir / "features",
        opts.batch_size, device=str(m.device))
    failed = run_model(m, todo, pred_path, gen, opts.batch_size, features, fstats["failed"]) if todo else 0
    if with_baselines:
        todo = pending("no_audio")
        if todo:
            run_no_audio(m, todo, pred_path, gen, opts.batch_size)
        pooled = {r.id: features[r.id].mean(dim=0).numpy() for r in records + train if r.id in features}
    done = load_predictions(pred_path)
    preds = {s: {it.id: done[(s, it.id)]["prediction"] for it in items if (s, it.id) in done}
             for s in ("model", "no_audio")}

    results: dict[str, Any] = {
        "task": opts.task, "model": model, "data": str(data), "split": opts.split,
        "musilingo_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "options": asdict(opts), "generation": asdict(gen),
        "n_records": len(records), "n_items": len(items), "n_answered": len(preds["model"]),
        "n_failed": len(items) - len(preds["model"]), "notes": list(notes),
    }
    if n_missing:
        results["notes"].append(f"{n_missing} records skipped: audio file missing")
    scored = [it for it in items if it.id in preds["model"]]
    if opts.task == "attributes":
        systems: dict[str, Any] = {"model": score_attribute_system(items, preds["model"])}
        if with_baselines:
            systems["no_audio"] = score_attribute_system(items, preds["no_audio"])
            maj = majority_classes(train)
            probe = probe_classes(train, pooled, items, pooled)
            preds["majority"] = {it.id: class_sentence(it.attribute, maj[it.attribute])
                                 for it in items if it.attribute in maj}
            preds["linear_probe"] = {it.id: class_sentence(it.attribute, probe[it.id])
                                     for it in items if it.id in probe}
            for s in ("majority", "linear_probe"):
                systems[s] = score_attribute_system(items, preds[s])
            _write_baselines(out_dir / "baselines.jsonl", items, preds)
            results["baselines"] = {
                "no_audio": "the same LLM and prompt with zero audio tokens",
                "majority": f"most frequent class per attribute in split {opts.train_split!r} "
                            f"({len(train)} records), stated as a sentence",
                "linear_probe": "logistic regression per attribute on standardised mean-pooled "
                                f"encoder features, trained on split {opts.train_split!r}",
            }
            results["majority_classes"] = {a: _jsonable(c) for a, c in maj.items()}
        results["systems"] = {k: v for k, v in systems.items() if v is not None}
        results["confusion"] = {s: {a: c for a in ("tempo", "meter", "key")
                                    if (c := confusion(items, p, a)) is not None}
                                for s, p in preds.items()}
    elif scored:
        pairs = [{"id": it.id, "prediction": preds["model"][it.id], "ground_truth": it.reference}
                 for it in scored]
        results["scores"] = {p: score_predictions(pairs, p, bertscore_model=opts.bertscore_model,
                                                  bertscore=opts.bertscore)
                             for p in opts.protocols}
        results["lengths"] = {"prediction_words": _word_counts(preds["model"][it.id]
                                                               for it in scored),
                              "reference_words": _word_counts(it.reference for it in scored)}
    from musilingo.report import write_report

    results["plots"] = write_report(results, out_dir, items=items, predictions=preds)
    write_results(results, out_dir / "results.json")
    if failed or results["n_failed"]:
        log.warning("%d of %d answers failed (see 'error' lines in %s); rerun to retry",
                    results["n_failed"], len(items), pred_path)
        return 1
    return 0


def _jsonable(c: Any) -> Any:
    if isinstance(c, frozenset):
        return sorted(c)
    if isinstance(c, tuple):
        return list(c)
    return c


def _write_baselines(path: Path, items: Sequence[Item],
                     preds: Mapping[str, Mapping[str, str]]) -> None:
    lines = []
    for s in ("majority", "linear_probe"):
        for it in items:
            if it.id in preds.get(s, {}):
                row = it.line(s, preds[s][it.id])
                row.pop("time")
                lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + "\n" if lines else "")


def add_eval_command(subparsers) -> None:
    """Add ``eval`` to the CLI (``cli._EXTRA_COMMANDS.append(add_eval_command)``)."""
    p = subparsers.add_parser("eval", help="evaluate a model on a manifest split, write a report")
    p.add_argument("data", help="JSONL manifest")
    p.add_argument("--model", default="default", help="model folder or preset")
    p.add_argument("--out", required=True, help="output folder (rerun with it to resume)")
    p.add_argument("--task", choices=TASKS, default="caption")
    p.add_argument("--split", default="test", help="split to evaluate ('all' = every record)")
    p.add_argument("--protocol", dest="protocols", action="append", default=None,
                   help="scoring protocol (repeatable; default depends on the task)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default=None)
    p.add_argument("--limit", type=int, default=None, help="only the first N records")
    p.add_argument("--decoding", default="greedy", help="greedy | paper | beam")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--no-bertscore", dest="bertscore", action="store_false")
    p.add_argument("--bertscore-model", default=None, help="local BERTScore model folder")
    p.add_argument("--no-baselines", dest="baselines", action="store_false")
    p.add_argument("--train-split", default="train")
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out clips whose audio file is missing")
    p.add_argument("--feature-cache", default=None,
                   help="shared feature cache folder (e.g. the one training used); default OUT/features")
    p.set_defaults(func=lambda split="test", **kw: eval_command(
        split=None if split == "all" else split, **kw))
