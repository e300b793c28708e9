#!/usr/bin/env python
"""Compare ``musilingo eval`` runs of one model decoded different ways against a reference run
(issue 18: reduced-precision greedy answers against float32 on the dev split).

Per run: each attribute's accuracy and the overall accuracy, in percentage points, with the
difference to the reference (the issue's bar: within 0.5 point); and text agreement of the
answers, item by item: the share identical to the reference's answer and the mean
``difflib.SequenceMatcher`` ratio. Only items both runs answered are compared.

    .venv/bin/python benchmarks/compare_eval_runs.py --reference ref=/tmp/eval-ref \\
        bf16=/tmp/eval-bf16 int8=/tmp/eval-int8 --json-out benchmarks/results/precision-dev.json
"""

from __future__ import annotations

import argparse
import difflib
import json
from pathlib import Path

BAR_POINTS = 0.5


def load_run(folder: Path) -> tuple[dict, dict[str, str]]:
    results = json.loads((folder / "results.json").read_text())
    answers = {}
    for line in (folder / "predictions.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("system") == "model" and row.get("prediction") is not None:
                answers[row["id"]] = row["prediction"]
    return results, answers


def scores(results: dict) -> dict[str, float]:
    m = results["systems"]["model"]
    return {k[: -len("_accuracy")] if k != "accuracy" else "overall": 100 * v
            for k, v in m.items() if k.endswith("accuracy") and isinstance(v, (int, float))}


def labelled(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep:
        raise SystemExit(f"expected NAME=FOLDER, got {text!r}")
    return name, Path(path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", required=True, help="NAME=FOLDER of the reference eval run")
    ap.add_argument("runs", nargs="+", help="NAME=FOLDER of each run to compare")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    ref_name, ref_dir = labelled(args.reference)
    ref_res, ref_ans = load_run(ref_dir)
    ref_scores = scores(ref_res)
    out = {"reference": {"name": ref_name, "folder": str(ref_dir), "scores_points": ref_scores,
                         "n_items": ref_res["n_items"], "data": ref_res["data"],
                         "split": ref_res["split"], "n_records": ref_res["n_records"]},
           "bar_points": BAR_POINTS, "runs": {}}
    print(f"reference {ref_name}: {ref_res['n_items']} answers about {ref_res['n_records']} clips "
          f"({ref_res['split']} split of {ref_res['data']})")
    names = list(ref_scores)
    print(f"{'run':<16}" + "".join(f"{n[:11]:>12}" for n in names) + f"{'identical':>11}{'similarity':>11}")
    print(f"{ref_name:<16}" + "".join(f"{ref_scores[n]:>12.1f}" for n in names))
    for name, folder in map(labelled, args.runs):
        res, ans = load_run(folder)
        sc = scores(res)
        common = sorted(set(ans) & set(ref_ans))
        same = sum(ans[i] == ref_ans[i] for i in common)
        sim = sum(difflib.SequenceMatcher(None, ans[i], ref_ans[i]).ratio() for i in common)
        delta = {n: sc[n] - ref_scores[n] for n in names if n in sc}
        out["runs"][name] = {
            "folder": str(folder), "model": res["model"], "scores_points": sc, "delta_points": delta,
            "within_bar": {n: abs(d) <= BAR_POINTS for n, d in delta.items()},
            "compared_items": len(common), "identical_answers": same / max(1, len(common)),
            "mean_similarity": sim / max(1, len(common))}
        print(f"{name:<16}" + "".join(f"{sc.get(n, float('nan')):>7.1f}{delta.get(n, 0):>+5.1f}"
                                      for n in names)
              + f"{100 * same / max(1, len(common)):>10.0f}%{sim / max(1, len(common)):>11.2f}")
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
