#!/usr/bin/env python
"""How much of a system's meter error is notation and how much is what one hears, read from the
meter confusion matrices of ``musilingo eval --task attributes`` results.

The attribute score asks for the exact time signature, and part of what it counts wrong cannot be
heard: 2/2, 2/4 and 4/4 (or 4/2) of the same music differ in how it was written down. The
*feel* (``musilingo.analysis.meter.feel``: duple = 2 or 4 beats, triple, compound) is what the
audio does decide. Per results file and per system in its confusion matrices (the model and, with
baselines, the facts-only template, the linear probe...): the exact share from the matrix, the
feel share, and the recall of each true feel. Answers the parser could not reduce to one
signature ("several", "no claim") count as wrong in both. No audio is read and nothing is rerun:
the matrices are those the evaluation wrote.

    .venv/bin/python benchmarks/meter_feel.py \\
        shipped-test=src/musilingo/presets/default/eval-attributes/results.json \\
        --json-out docs/grounded/results/meter-feel.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from musilingo.analysis.meter import feel  # noqa: E402

FEELS = ("duple", "triple", "compound")


def _feel(label: str) -> str | None:
    try:
        return feel(label)
    except ValueError:  # "several", "no claim": not one signature
        return None


def meter_feel_scores(confusion: dict) -> dict:
    """Exact and feel shares of one meter confusion matrix (``{"truth", "answer", "counts"}``)."""
    truth, answer, counts = confusion["truth"], confusion["answer"], confusion["counts"]
    n = exact = same_feel = 0
    per_feel = {f: [0, 0] for f in FEELS}  # true feel -> [answered with that feel, clips]
    for t, row in zip(truth, counts):
        tf = _feel(t)
        for a, c in zip(answer, row):
            n += c
            exact += c if a == t else 0
            hit = tf is not None and _feel(a) == tf
            same_feel += c if hit else 0
            if tf in per_feel:
                per_feel[tf][0] += c if hit else 0
                per_feel[tf][1] += c
    return {"n": n, "exact": round(exact / n, 4) if n else None,
            "feel": round(same_feel / n, 4) if n else None,
            "feel_recall": {f: {"recall": round(h / m, 4) if m else None, "n": m}
                            for f, (h, m) in per_feel.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="LABEL=RESULTS_JSON")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    out = {}
    for spec in args.runs:
        label, _, path = spec.partition("=")
        if not path:
            ap.error(f"expected LABEL=RESULTS_JSON, got {spec!r}")
        results = json.loads(Path(path).read_text())
        systems = {}
        for name, matrices in results.get("confusion", {}).items():
            if "meter" not in matrices:
                continue
            s = meter_feel_scores(matrices["meter"])
            s["meter_accuracy"] = results["systems"].get(name, {}).get("meter_accuracy")
            systems[name] = s
            rec = s["feel_recall"]
            print(f"{label:24s} {name:12s} n={s['n']:4d} scored {s['meter_accuracy']:.3f} "
                  f"exact {s['exact']:.3f} feel {s['feel']:.3f}  recall: " +
                  ", ".join(f"{f} {rec[f]['recall']:.3f} ({rec[f]['n']})" for f in FEELS
                            if rec[f]["n"]))
        out[label] = {"results": path, "split": results.get("split"), "systems": systems}
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
