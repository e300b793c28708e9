"""Write the clip subsets the grounded phase (configs/grounded/*.yaml) trains and validates on:
``sub-train900.jsonl`` (a seeded 900-clip sample of the train split: CPU time) and
``sub-dev120.jsonl`` (the first 120 valid clips), plus ``sub-exp.jsonl`` (both, for evaluations
whose majority and probe baselines learn from the same 900 clips) and ``sub-test.jsonl`` (the 900
and the test split). Usage: python scripts/grounded_subsets.py corpus/manifest.jsonl"""

import json
import random
import sys
from pathlib import Path

manifest = Path(sys.argv[1])
recs = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
train = [r for r in recs if r.get("split") == "train"]
random.Random(0).shuffle(train)
parts = {"sub-train900.jsonl": train[:900],
         "sub-dev120.jsonl": [r for r in recs if r.get("split") == "valid"][:120]}
parts["sub-exp.jsonl"] = parts["sub-train900.jsonl"] + parts["sub-dev120.jsonl"]
parts["sub-test.jsonl"] = parts["sub-train900.jsonl"] + [r for r in recs if r.get("split") == "test"]
for name, rows in parts.items():  # beside the manifest: audio paths stay relative to it
    (manifest.parent / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{manifest.parent / name}: {len(rows)} clips")
