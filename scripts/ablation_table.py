"""Print the ablation table (markdown) from `musilingo eval --task attributes` result folders and
training logs. Usage:
    python scripts/ablation_table.py "LABEL=EVAL_DIR=RUN_DIR=STEPS" ... > table.md
RUN_DIR/log.jsonl gives the validation losses; STEPS is the checkpoint that was evaluated. Every
figure published must be backed by a file in the repo: ship each EVAL_DIR's results.json and each
RUN_DIR's log.jsonl beside the table (e.g. in the model card's folder)."""

import json
import sys
from pathlib import Path

ATTRS = ("drums", "instruments", "tempo", "meter", "key", "style")


def val_losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: r["val_loss"] for r in rows if "val_loss" in r}


rows, baselines, steps_seen = [], None, set()
for arg in sys.argv[1:]:
    label, ev, run, steps = arg.split("=")
    res = json.loads((Path(ev) / "results.json").read_text())
    sysm = res["systems"]["model"]
    vl = val_losses(Path(run))
    steps_seen |= set(vl)
    rows.append((label, int(steps), sysm, vl))
    if "linear_probe" in res["systems"]:
        baselines = res["systems"]
cols = sorted(steps_seen)
head = ["configuration", "steps"] + [a if a != "instruments" else "instr. F1" for a in ATTRS] + \
       ["all"] + [f"val loss @{s}" for s in cols]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))


def cells(sysm):
    out = []
    for a in ATTRS:
        v = sysm["instrument_family_f1"] if a == "instruments" else sysm.get(f"{a}_accuracy")
        out.append("" if v is None else f"{v:.2f}")
    return out + [f"{sysm['accuracy']:.2f}"]


for label, steps, sysm, vl in rows:
    print("| " + " | ".join([label, str(steps)] + cells(sysm) +
                            [f"{vl[s]:.3f}" if s in vl else "" for s in cols]) + " |")
if baselines:
    for name, label in (("no_audio", "baseline: same LLM, no audio"), ("majority", "baseline: majority class"),
                        ("linear_probe", "baseline: linear probe on the default's features")):
        print("| " + " | ".join([label, ""] + cells(baselines[name]) + [""] * len(cols)) + " |")
