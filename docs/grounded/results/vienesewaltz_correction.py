"""Re-score the shipped default and the facts-only template on the five test Viennese waltzes
whose meter truth was wrong (4/4 in the corpus, 3/4 in fact; docs/training.md), and restate
the published test figures with the corrected truth.

The five clips' answers were asked again with the shipped default (`musilingo eval
corpus/vw5-new.jsonl --task attributes --baselines --out OUT`: the clips' records after the
fix, audio unchanged) and are scored here under both truths with the project's own parser; the
difference is applied to the published counts (383 meter questions, 2,216 in all):

    python docs/grounded/results/vienesewaltz_correction.py OUT/predictions.jsonl \
        OUT/baselines.jsonl > docs/grounded/results/vienesewaltz-correction.json
"""

import json
import sys
from pathlib import Path

from musilingo.metrics.attributes import score_attribute

ROOT = Path(__file__).resolve().parents[3]
PUBLISHED = {
    "model": ROOT / "docs/grounded/previous-default/eval-attributes/results.json",
    "facts_only": ROOT / "docs/grounded/previous-default/phase4-eval-attributes-analysis-v2/facts-template.json",
}

rows = [json.loads(line) for f in sys.argv[1:] for line in open(f)]
out: dict = {"clips": sorted({r["record"] for r in rows}), "answers": {}, "corrected": {}}
for system, path in PUBLISHED.items():
    answers = [r for r in rows if r["system"] == system and r["attribute"] == "meter"]
    assert len(answers) == 5, (system, len(answers))
    old = sum(score_attribute("meter", r["prediction"], {"meter": "4/4"}) for r in answers)
    new = sum(score_attribute("meter", r["prediction"], {"meter": "3/4"}) for r in answers)
    out["answers"][system] = {r["record"]: r["prediction"] for r in answers}
    pub = json.loads(path.read_text())
    pub = pub["systems"]["model"] if system == "model" else pub["facts_only"]
    n_m, n_all = pub["meter_n"], pub["n"]
    out["corrected"][system] = {
        "meter_score_on_5_old_truth": old, "meter_score_on_5_new_truth": new,
        "meter_published": round(pub["meter_accuracy"], 4),
        "meter_corrected": round((pub["meter_accuracy"] * n_m - old + new) / n_m, 4),
        "all_published": round(pub["accuracy"], 4),
        "all_corrected": round((pub["accuracy"] * n_all - old + new) / n_all, 4),
        "published_file": str(path.relative_to(ROOT))}
print(json.dumps(out, indent=1))
