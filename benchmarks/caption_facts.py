"""Do a facts model's captions say what its facts line said? Tempo, meter and key in captions.

    .venv/bin/python benchmarks/caption_facts.py corpus/sub-dev120.jsonl --split valid \
        --feature-cache cache/features --out docs/grounded/results/caption-facts-dev120.json \
        shipped=runs/X/eval-caption-dev120 other=runs/Y/eval-caption-dev120

For each ``musilingo eval --task caption`` run (its ``predictions.jsonl``), every caption is
read as an answer to the tempo, meter and key questions with the evaluation's own answer parser
and scorer (``musilingo.metrics.attributes.score_attribute``), twice: against the corpus truth
and against the facts the model read (the clip's measured facts, merged over windows, from the
feature cache the evaluation filled). Per attribute: how many captions state it at all, their
mean score against the truth and against the facts, and the facts' own score against the truth
on the same clips. A caption that leaves an attribute out scores 0 on it, as in the attribute
evaluation; the "stated" counts say how often that happens.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

ATTRS = ("tempo", "meter", "key")


def facts_truth(facts) -> dict:
    """The measured facts as a truth mapping (the manifest's ``attributes`` keys)."""
    t = {"tempo_bpm": facts.tempo.bpm, "meter": facts.meter.signature}
    if facts.key.tonal:
        t.update(key_tonic=facts.key.tonic, key_mode=facts.key.mode)
    return t


def stated(attr: str, text: str) -> bool:
    from musilingo.metrics import attributes as A

    if attr == "key":
        k = A.parse_key(text)
        return _positive(k.tonic) or _positive(k.mode)
    return _positive(A.parse_tempo(text) if attr == "tempo" else A.parse_meter(text))


def _positive(claims) -> bool:
    return any(p not in claims.negative for p in claims.positive)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="JSONL manifest the caption evaluations ran on")
    ap.add_argument("runs", nargs="+", help="NAME=FOLDER of each caption evaluation")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--model", default="default", help="a facts model (for the feature spec)")
    ap.add_argument("--feature-cache", default=str(ROOT / "cache" / "features"))
    ap.add_argument("--out", required=True, help="results JSON to write")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from musilingo.data.manifest import atomic_write_text, read_manifest
    from musilingo.features import FeatureCache
    from musilingo.metrics.attributes import score_attribute
    from musilingo.model import MusiLingo

    records = {r.id: r for r in read_manifest(args.data) if r.split == args.split}
    spec = replace(MusiLingo.from_pretrained(args.model, device="cpu").feature_spec, facts=True)
    cache = FeatureCache(args.feature_cache, spec)
    measured = {}
    for rid in records:
        if not cache.has_facts(rid):
            raise SystemExit(f"{cache.dir}: no facts for {rid}; run musilingo eval on {args.data} first")
        if (facts := cache.merged_facts(rid)) is not None:
            measured[rid] = facts_truth(facts)
    result = {"data": args.data, "split": args.split, "feature_cache": str(cache.dir), "runs": {}}
    for spec_arg in args.runs:
        name, folder = spec_arg.split("=", 1)
        rows = [json.loads(line) for line in (Path(folder) / "predictions.jsonl").read_text().splitlines()
                if line.strip()]
        rows = [r for r in rows if r.get("system") == "model" and r.get("prediction") is not None]
        per = {}
        for attr in ATTRS:
            usable = [r for r in rows if r["record"] in measured and r["record"] in records
                      and (attr != "key" or records[r["record"]].attributes.get("key_tonic"))]
            n = len(usable)
            truth = [score_attribute(attr, r["prediction"], records[r["record"]].attributes) for r in usable]
            fact_rows = [r for r in usable if attr != "key" or "key_tonic" in measured[r["record"]]]
            vs_facts = [score_attribute(attr, r["prediction"], measured[r["record"]]) for r in fact_rows]
            facts_vs_truth = [score_attribute(attr, _sentence(attr, measured[r["record"]]),
                                              records[r["record"]].attributes) for r in usable]
            per[attr] = {"captions": n,
                         "stated": sum(stated(attr, r["prediction"]) for r in usable),
                         "caption_vs_truth": round(sum(truth) / n, 4) if n else None,
                         "caption_vs_facts": round(sum(vs_facts) / len(vs_facts), 4) if vs_facts else None,
                         "facts_vs_truth": round(sum(facts_vs_truth) / n, 4) if n else None}
        result["runs"][name] = {"folder": folder, "captions": len(rows), "attributes": per}
    atomic_write_text(Path(args.out), json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["runs"], indent=1))
    return 0


def _sentence(attr: str, facts_truth_map: dict) -> str:
    """The facts stated as an answer the parser reads back exactly (the facts-only template)."""
    from musilingo.attributes import class_sentence, truth_class

    if attr == "key" and "key_tonic" not in facts_truth_map:
        return "The key is unclear."
    return class_sentence(attr, truth_class(attr, facts_truth_map))


if __name__ == "__main__":
    raise SystemExit(main())
