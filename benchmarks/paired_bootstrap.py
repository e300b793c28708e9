#!/usr/bin/env python
"""How much of a difference in "all answers" between attribute evaluations is the clips drawn:
a paired bootstrap over clips, from the runs' kept answers.

Every run is a ``musilingo eval --task attributes`` folder (its ``predictions.jsonl``; the
``--system`` answers, ``model`` by default). Each answer is scored again with the project's scorer
(``musilingo.metrics.attributes.score_attribute``, as the evaluation does; "all answers" is the
mean over answers), only the answers every run has are kept, and the clips are resampled with
replacement ``--samples`` times (seeded). Printed and written per run: its score with a 95 %
percentile interval, and its difference from the first run, in points, with the interval and the
share of resamples in which it is above the first run. ``--target`` adds the share of resamples at
or above that score. The interval says how far another draw of clips of the same kind could move
a figure. It does not cover training noise: a second seed is a second run, not a resample.

    .venv/bin/python benchmarks/paired_bootstrap.py --data corpus/sub-dev120.jsonl \\
        shipped=runs/A/eval-attributes-dev120 other=runs/B/eval-attributes-dev120 \\
        --json-out docs/grounded/results/bootstrap-dev120.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from musilingo.metrics.attributes import score_attribute  # noqa: E402


def item_scores(folder: Path, system: str, truth: dict[str, dict]) -> dict[str, tuple[str, float]]:
    """``item id -> (clip id, score)`` of one run's answers of ``system``, scored against
    ``truth`` (record id -> attributes: the manifest's, as a rerun of the evaluation reads it;
    the truth copied into ``predictions.jsonl`` is that of the day the answer was made)."""
    out = {}
    for line in (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("system") != system or not isinstance(row.get("prediction"), str):
            continue
        out[row["id"]] = (row["record"], score_attribute(row["attribute"], row["prediction"],
                                                         truth[row["record"]]))
    return out


def bootstrap(runs: dict[str, dict[str, tuple[str, float]]], samples: int, seed: int,
              target: float | None = None) -> dict:
    """Scores, intervals and paired differences from the first run (see the module text)."""
    common = sorted(set.intersection(*(set(r) for r in runs.values())))
    if not common:
        raise SystemExit("the runs share no answered item")
    first = next(iter(runs.values()))
    clips = sorted({first[i][0] for i in common})
    index = {c: k for k, c in enumerate(clips)}
    clip_of = np.array([index[first[i][0]] for i in common])
    # per clip: the sum of its answers' scores per run, and its number of answers
    n_per_clip = np.bincount(clip_of, minlength=len(clips)).astype(float)
    sums = {name: np.bincount(clip_of, weights=[r[i][1] for i in common], minlength=len(clips))
            for name, r in runs.items()}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(clips), size=(samples, len(clips)))
    counts = np.stack([np.bincount(d, minlength=len(clips)) for d in draws]).astype(float)
    n_answers = counts @ n_per_clip
    boot = {name: (counts @ s) / n_answers for name, s in sums.items()}
    ref_name = next(iter(runs))
    out = {"clips": len(clips), "answers": len(common), "samples": samples, "seed": seed,
           "reference": ref_name, "runs": {}}
    for name in runs:
        score = float(sums[name].sum() / n_per_clip.sum())
        lo, hi = np.percentile(boot[name], [2.5, 97.5])
        row = {"all_answers": round(score, 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}
        if target is not None:
            row["share_at_or_above_target"] = round(float(np.mean(boot[name] >= target)), 4)
        if name != ref_name:
            d = 100 * (boot[name] - boot[ref_name])
            row["minus_reference_points"] = round(100 * (score - out["runs"][ref_name]["all_answers"]), 2)
            row["difference_ci95_points"] = [round(float(v), 2) for v in np.percentile(d, [2.5, 97.5])]
            row["share_above_reference"] = round(float(np.mean(d > 0)), 4)
        out["runs"][name] = row
    if target is not None:
        out["target"] = target
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="LABEL=EVAL_FOLDER",
                    help="the first is the reference the others are compared with")
    ap.add_argument("--data", required=True, help="the manifest the runs answered (its truth)")
    ap.add_argument("--system", default="model")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", type=float, help="e.g. 0.75: share of resamples at or above it")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    from musilingo.data.manifest import read_manifest

    truth = {r.id: r.attributes for r in read_manifest(args.data, resolve=False)}
    runs = {}
    for spec in args.runs:
        label, _, folder = spec.partition("=")
        if not folder:
            ap.error(f"expected LABEL=EVAL_FOLDER, got {spec!r}")
        runs[label] = item_scores(Path(folder), args.system, truth)
    res = bootstrap(runs, args.samples, args.seed, args.target)
    res["folders"] = {spec.partition("=")[0]: spec.partition("=")[2] for spec in args.runs}
    print(f"{res['clips']} clips, {res['answers']} answers each, {res['samples']} resamples")
    for name, row in res["runs"].items():
        line = f"  {name:28s} all {row['all_answers']:.4f}  95% [{row['ci95'][0]:.4f}, {row['ci95'][1]:.4f}]"
        if "share_at_or_above_target" in row:
            line += f"  >= {args.target}: {row['share_at_or_above_target']:.1%}"
        if "minus_reference_points" in row:
            lo, hi = row["difference_ci95_points"]
            line += (f"  vs {res['reference']}: {row['minus_reference_points']:+.2f} points "
                     f"[{lo:+.2f}, {hi:+.2f}], above in {row['share_above_reference']:.1%}")
        print(line)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
