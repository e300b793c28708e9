"""``eval_command``: one evaluation run from manifest to report, wiring the parts of this package
together (options, items, resumable predictions, generation, baselines, scoring) and writing
``results.json`` and the report. The logic of each step lives in its own module."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from musilingo.attributes import class_sentence
from musilingo.data.manifest import Record, check_audio_exists, read_manifest
from musilingo.errors import ManifestError
from musilingo.evaluate.generate import run_model, run_no_audio
from musilingo.evaluate.items import Item, build_items, select_records
from musilingo.evaluate.options import EvalOptions
from musilingo.evaluate.predictions import check_run, load_predictions, write_baselines
from musilingo.evaluate.scoring import _word_counts, confusion, score_attribute_system

log = logging.getLogger(__name__)


def eval_command(data: str, *, out: str, model: str = "default",
                 options: EvalOptions | None = None, device: str | None = None,
                 skip_missing: bool = False, as_json: bool = False) -> int:
    """Evaluate a model on a manifest split and write predictions, results.json and a report.

    Exit code 0 when every answer was produced, 1 when some clips failed to decode (each is
    recorded with its error in predictions.jsonl and retried on the next run), 2 when the run
    could not start.

    Args:
        data: JSONL manifest (``musilingo.data.manifest``).
        out: output folder; rerunning with the same folder resumes (finished answers are kept).
        model: model folder or preset (tiny, default, paper).
        options: what the run does.
        device: cpu, cuda or cuda:N (default: cuda when available).
        skip_missing: leave out records whose audio file is missing (default: refuse to run).
        as_json: print the summary as one JSON object (default: a few lines of text).
    """
    from musilingo import __version__
    from musilingo.evaluate.baselines import facts_classes, majority_classes, probe_classes
    from musilingo.metrics.score import score_predictions, write_results
    from musilingo.generation import GenerationOptions

    opts = options or EvalOptions()
    GenerationOptions.named(opts.decoding)  # an unknown decoding fails before any work
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
                        "max_new_tokens": opts.max_new_tokens, "precision": opts.precision,
                        "runtime": opts.runtime, "musilingo_version": __version__})
    pred_path = out_dir / "predictions.jsonl"
    done = load_predictions(pred_path)

    def pending(system: str) -> list[Item]:
        return [it for it in items if (system, it.id) not in done
                or done[(system, it.id)].get("question") != it.question]

    from musilingo.model import load_model

    m, notes = load_model(model, device, precision=opts.precision, runtime=opts.runtime)
    for note in notes:
        log.warning("%s", note)
    gen = GenerationOptions.named(opts.decoding, opts.max_new_tokens or m.config.max_new_tokens)
    todo = pending("model")
    if len(todo) < len(items):
        log.warning("resuming: %d of %d answers already in %s", len(items) - len(todo), len(items),
                    pred_path)
    # one encoder pass per clip, shared with training and later runs (musilingo.features)
    from musilingo.features import build_feature_cache

    from dataclasses import replace

    cache_dir = opts.feature_cache or out_dir / "features"
    evaluated = {r.id: r for r in ([it.record for it in todo] + (records if with_baselines else []))}
    # the facts-only template needs each evaluated clip's measured facts: measured in the same
    # pass that encodes it (one audio decode per clip), not in a second pass over the audio
    template = with_baselines and opts.task == "attributes"
    spec = replace(m.feature_spec, facts=True) if template else m.feature_spec
    features, fstats = build_feature_cache(spec, list(evaluated.values()), cache_dir,
                                           opts.batch_size, device=str(m.device))
    failed_clips = dict(fstats["failed"])
    extra = [r for r in {r.id: r for r in train}.values() if r.id not in evaluated] if with_baselines else []
    if extra:  # the probe's and majority's training clips: features only
        features, more = build_feature_cache(m.feature_spec, extra, cache_dir, opts.batch_size,
                                             device=str(m.device))
        failed_clips.update(more["failed"])
    fstats = {**fstats, "failed": failed_clips}
    failed = run_model(m, todo, pred_path, gen, opts.batch_size, features, fstats["failed"]) if todo else 0
    if with_baselines:
        todo = pending("no_audio")
        if todo:
            run_no_audio(m, todo, pred_path, gen, opts.batch_size)
        pooled = {r.id: features[r.id].mean(dim=0).numpy() for r in records + train if r.id in features}
        measured = {}
        if template:  # the facts-only template: each clip's measured facts (measured above)
            for r in records:
                if (facts := features.merged_facts(r.id)) is not None:
                    measured[r.id] = facts
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
            facts_only = facts_classes(items, measured)
            preds["facts_only"] = {it.id: class_sentence(it.attribute, facts_only[it.id])
                                   if it.id in facts_only else "" for it in items}
            for s in ("majority", "linear_probe", "facts_only"):
                systems[s] = score_attribute_system(items, preds[s])
            write_baselines(out_dir / "baselines.jsonl", items, preds)
            results["baselines"] = {
                "no_audio": "the same LLM and prompt with zero audio tokens",
                "majority": f"most frequent class per attribute in split {opts.train_split!r} "
                            f"({len(train)} records), stated as a sentence",
                "linear_probe": "logistic regression per attribute on standardised mean-pooled "
                                f"encoder features, trained on split {opts.train_split!r}",
                "facts_only": "a template that states the measured facts (musilingo analyze: "
                              "tempo class of the bpm, time signature, key, the GM families, "
                              "drums and style its tags name); no tag for an attribute = no claim",
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
    from musilingo.evaluate.report import write_report

    results["plots"] = write_report(results, out_dir, items=items, predictions=preds)
    write_results(results, out_dir / "results.json")
    _print_summary(results, out_dir, as_json)
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


def _print_summary(results: dict[str, Any], out_dir: Path, as_json: bool) -> None:
    """The headline of a finished run: counts and the main score of each system or protocol."""
    summary: dict[str, Any] = {
        "results": str(out_dir / "results.json"), "report": str(out_dir / "report.md"),
        **{k: results[k] for k in ("task", "model", "split", "n_items", "n_answered", "n_failed")}}
    if "systems" in results:
        summary["accuracy"] = {s: v.get("accuracy") for s, v in results["systems"].items()}
    if "scores" in results:
        summary["scores"] = results["scores"]
    if as_json:
        print(json.dumps(summary, default=str), flush=True)
        return
    print(f"{summary['n_answered']} of {summary['n_items']} answers ({results['task']}, split "
          f"{results['split']}); wrote {summary['results']} and {summary['report']}")
    for system, acc in summary.get("accuracy", {}).items():
        shown = f"{acc:.3f}" if acc is not None else "-"
        print(f"  {system}: mean attribute score {shown}")
    for protocol, scores in summary.get("scores", {}).items():
        shown = ", ".join(f"{k} {v:.3f}" for k, v in scores.items()
                          if isinstance(v, float) and k != "n")
        print(f"  {protocol}: {shown}")
