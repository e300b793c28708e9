"""Write the clip subsets the grounded phase (configs/grounded/*.yaml) trains and validates on:
``sub-train900.jsonl`` (a seeded 900-clip sample of the train split: CPU time) and
``sub-dev120.jsonl`` (the first 120 valid clips), plus ``sub-exp.jsonl`` (both, for evaluations
whose majority and probe baselines learn from the same 900 clips) and ``sub-test.jsonl`` (the 900
and the test split).

The 900 are drawn from the render's *plan* (corpus/state/options.json), not from the clips that
happen to be rendered, so they can be rendered alone. ``--ids-only`` writes just
``sub-train900.ids`` for ``musilingo data render --only``:

    musilingo data render corpus --clips 4000 --splits valid,test
    python scripts/grounded_subsets.py corpus/manifest.jsonl --ids-only
    musilingo data render corpus --clips 4000 --only corpus/sub-train900.ids
    python scripts/grounded_subsets.py corpus/manifest.jsonl

After a full render (build_default.sh) the last command alone is enough. A planned clip that
failed to render is left out of the subset (it then holds fewer than 900 clips; printed)."""

import argparse
import json
import random
from pathlib import Path

from musilingo.data.render import RenderOptions, plan_clips, split_for

N_TRAIN = 900

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("manifest", type=Path)
ap.add_argument("--ids-only", action="store_true", help="write only sub-train900.ids")
args = ap.parse_args()
corpus = args.manifest.parent
opts = json.loads((corpus / "state" / "options.json").read_text())
opts.update(out_dir=corpus, progress=False, splits=(), only=())
plan = plan_clips(RenderOptions(**opts))
train_ids = [s.clip_id for s in plan if split_for(s.split_key) == "train"]
random.Random(0).shuffle(train_ids)
chosen = train_ids[:N_TRAIN]
(corpus / "sub-train900.ids").write_text("".join(c + "\n" for c in chosen))
print(f"{corpus / 'sub-train900.ids'}: {len(chosen)} planned train clips")
if not args.ids_only:
    recs = [json.loads(line) for line in args.manifest.read_text().splitlines() if line.strip()]
    by_id = {r["id"]: r for r in recs}
    parts = {"sub-train900.jsonl": [by_id[c] for c in chosen if c in by_id],
             "sub-dev120.jsonl": [r for r in recs if r.get("split") == "valid"][:120]}
    parts["sub-exp.jsonl"] = parts["sub-train900.jsonl"] + parts["sub-dev120.jsonl"]
    parts["sub-test.jsonl"] = (parts["sub-train900.jsonl"]
                               + [r for r in recs if r.get("split") == "test"])
    for name, rows in parts.items():  # beside the manifest: audio paths stay relative to it
        (corpus / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{corpus / name}: {len(rows)} clips")
