"""Score the facts-only template on a split from the facts an evaluation already measured.

    .venv/bin/python benchmarks/facts_template.py corpus/test.jsonl --split test \
        --feature-cache cache/features --out runs/eval-newfacts-test/facts-template.json

``musilingo eval --baselines`` scores this template beside the majority class and the linear
probe, which need a train split whose features are cached as well (900 clips in the default's
evaluation: most of an hour on 2 cores). When only the analysis changed, the other baselines
stay as they were, and this script re-scores just the template: it reads each clip's per-window
facts from the feature cache a ``musilingo eval`` of a facts model filled, merges them and
answers every attribute question exactly as ``musilingo.evaluate.run`` does (same items, same
``facts_classes``, same scoring), so its figures are comparable with that run's ``facts_only``
system. A clip whose facts are not in the cache is an error naming it (run the eval first).
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="JSONL manifest")
    ap.add_argument("--split", default="test")
    ap.add_argument("--model", default="default", help="the facts model the eval ran")
    ap.add_argument("--feature-cache", default=str(ROOT / "cache" / "features"))
    ap.add_argument("--out", required=True, help="results JSON to write")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from musilingo.analysis import fingerprint
    from musilingo.attributes import class_sentence
    from musilingo.data.manifest import atomic_write_text, read_manifest
    from musilingo.evaluate.baselines import facts_classes
    from musilingo.evaluate.items import build_items
    from musilingo.evaluate.scoring import score_attribute_system
    from musilingo.features import FeatureCache
    from musilingo.model import MusiLingo

    records = [r for r in read_manifest(args.data) if r.split == args.split]
    if not records:
        raise SystemExit(f"{args.data}: no records in split {args.split!r}")
    spec = replace(MusiLingo.from_pretrained(args.model, device="cpu").feature_spec, facts=True)
    cache = FeatureCache(args.feature_cache, spec)
    missing = [r.id for r in records if not cache.has_facts(r.id)]
    if missing:
        raise SystemExit(f"{cache.dir}: no facts of this analysis for {len(missing)} clips "
                         f"(first: {missing[0]}); run musilingo eval on {args.data} first")
    measured = {r.id: facts for r in records if (facts := cache.merged_facts(r.id)) is not None}
    items = build_items(records, "attributes")
    classes = facts_classes(items, measured)
    preds = {it.id: class_sentence(it.attribute, classes[it.id]) if it.id in classes else ""
             for it in items}
    result = {"data": args.data, "split": args.split, "model": args.model,
              "analysis_fingerprint": fingerprint(), "n_records": len(records),
              "n_items": len(items), "facts_only": score_attribute_system(items, preds)}
    atomic_write_text(Path(args.out), json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result["facts_only"].items() if k.endswith("accuracy")},
                     indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
