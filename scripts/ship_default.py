"""Copy a trained run into the package as the `default` preset, with its recipe, a summary of the
data it was trained on and its evaluation results (what `MusiLingo.from_pretrained("default")`
loads). A run that continues others (its recipe's ``init`` is a model folder, as the default's
anneal and key phases) also ships each earlier phase's recipe, log and loss curve as ``phaseN-*``.
Usage: python scripts/ship_default.py RUN_DIR MANIFEST [NOTE]   (NOTE: where/how it was trained)"""

import hashlib
import json
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import yaml

from musilingo.data.manifest import read_manifest

run, manifest = Path(sys.argv[1]), sys.argv[2]
# MUSILINGO_SHIP_DEST: another destination folder (the tests ship into a temporary one)
dest = Path(os.environ.get("MUSILINGO_SHIP_DEST")
            or Path(__file__).resolve().parents[1] / "src" / "musilingo" / "presets" / "default")
# MODEL_CARD.md is written by hand, not by a run: keep it across a reship (and update its figures
# from the new results.json files)
card = (dest / "MODEL_CARD.md").read_text() if (dest / "MODEL_CARD.md").is_file() else None
# A run that continues the shipped default itself (its recipe's ``init`` is this folder): keep the
# old default's files aside, so its phases become the new default's earlier phases.
previous = None
_init = (yaml.safe_load((run / "recipe.yaml").read_text()) or {}).get("init")
if dest.exists() and _init and Path(str(_init)).resolve() == dest.resolve():
    import tempfile

    previous = Path(tempfile.mkdtemp(prefix="previous-default-")) / "model"
    shutil.copytree(dest, previous)
if dest.exists():
    shutil.rmtree(dest)
shutil.copytree(run / "model", dest)
# The shipped default decodes with llama.cpp where it can run (the same answers as torch in
# float32, several times faster on CPU: benchmarks/README.md), torch elsewhere.
_config = json.loads((dest / "config.json").read_text())
_config.setdefault("inference", {})["runtime"] = "auto"
(dest / "config.json").write_text(json.dumps(_config, indent=2) + "\n")
if card is not None:
    (dest / "MODEL_CARD.md").write_text(card)
for name in ("log.jsonl", "loss.png"):
    if (run / name).is_file():
        shutil.copy(run / name, dest / name)


def copy_evals(run_dir: Path, prefix: str = "") -> None:
    """A run's evaluations (results, report and plots; not predictions or features) as
    ``<prefix>eval-*`` in dest."""
    for ev in sorted(run_dir.glob("eval-*")):
        if (ev / "results.json").is_file():
            (dest / f"{prefix}{ev.name}").mkdir()
            for name in ("results.json", "report.md"):
                if (ev / name).is_file():
                    shutil.copy(ev / name, dest / f"{prefix}{ev.name}" / name)
            if (ev / "plots").is_dir():
                shutil.copytree(ev / "plots", dest / f"{prefix}{ev.name}" / "plots")


copy_evals(run)
recs = read_manifest(manifest)
summary = {
    "manifest": manifest,
    "clips": Counter(r.split for r in recs),
    "hours": round(sum(r.duration or 0 for r in recs) / 3600, 2),
    "sources": Counter((r.source or "?").split(":")[0] for r in recs),
    "soundfonts": Counter(Path(r.attributes.get("soundfont", "?")).name for r in recs),
    "licence_note": "music21 corpus parts (Essen, Palestrina/Bach kern, Monteverdi) are non-commercial "
                    "or rights-reserved encodings: treat this model as research / non-commercial.",
}


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def phase_figures(recipe: dict, log: list[dict]) -> dict:
    """Steps trained, schedule length and last validation loss of one training phase."""
    return {"steps": recipe.get("end_at_step") or recipe["max_steps"], "schedule_steps": recipe["max_steps"],
            "final_val_loss": next((r["val_loss"] for r in reversed(log) if "val_loss" in r), None)}


recipe = yaml.safe_load((run / "recipe.yaml").read_text())
log = read_log(run / "log.jsonl")
speed = [r["samples_per_s"] for r in log if r.get("samples_per_s")]
train_recs = [r for r in recs if r.split == (recipe.get("train_split") or r.split)]
figures = phase_figures(recipe, log)
steps = figures["steps"]
summary["training"] = {
    "recipe": "recipe.yaml",
    "steps": steps, "schedule_steps": figures["schedule_steps"],
    "batch_size": recipe["batch_size"],
    "qa_per_sample": recipe.get("qa_per_sample", 1),
    "train_clips": len(train_recs),
    "samples_per_s_final": round(speed[-1], 3) if speed else None,
    "train_minutes_approx": round(steps * recipe["batch_size"] / speed[-1] / 60, 1) if speed else None,
    "final_val_loss": figures["final_val_loss"],
}
# A continued run (its recipe's ``init`` is a model folder, as the default's later phases): walk
# the chain back and ship every earlier phase's recipe, log, loss curve and evaluations as
# phase1-*, phase2-*... The walk stops at a shipped default (a model folder with its own
# data_summary.json: the default itself when continued in place, or an earlier default kept
# elsewhere, as a rebuild from the phase-3 weights): its own phases come first, then itself.


def shipped_phases(preset: Path, label: str) -> list[dict]:
    """Copy a shipped default's earlier phases (its phaseN-* files) and the default itself (as the
    next phase) into dest; their ``continues`` entries, earliest first."""
    old = json.loads((preset / "data_summary.json").read_text()).get("training", {})
    entries, n = [], 0
    for n, entry in enumerate(old.get("continues", []), 1):
        for name in ("recipe.yaml", "log.jsonl", "loss.png"):
            if (preset / f"phase{n}-{name}").is_file():
                shutil.copy(preset / f"phase{n}-{name}", dest / f"phase{n}-{name}")
        for ev in sorted(preset.glob(f"phase{n}-eval-*")):  # earlier phases' figures stay too
            shutil.copytree(ev, dest / ev.name)
        entries.append({**entry, "recipe": f"phase{n}-recipe.yaml"})
    n += 1
    for name in ("recipe.yaml", "log.jsonl", "loss.png"):
        if (preset / name).is_file():
            shutil.copy(preset / name, dest / f"phase{n}-{name}")
    for ev in sorted(preset.glob("eval-*")):  # the old default's figures stay backed by files
        shutil.copytree(ev, dest / f"phase{n}-{ev.name}")
    entries.append({"recipe": f"phase{n}-recipe.yaml", "model": label,
                    **phase_figures(yaml.safe_load((preset / "recipe.yaml").read_text()),
                                    read_log(preset / "log.jsonl")),
                    # its path is often a temporary unpack (git archive): the hashes say which
                    # weights it was, to check against the default in git history
                    "weights_sha256": weight_hashes(preset),
                    **({"note": old["note"]} if old.get("note") else {})})
    return entries


def weight_hashes(model_dir: Path) -> dict[str, str]:
    """sha256 of every weights file (``*.safetensors``) of a model folder, by relative path."""
    return {p.relative_to(model_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(model_dir.rglob("*.safetensors"))}


base, base_label = None, ""
if previous is not None:  # continuing the shipped default in place (kept aside above)
    base, base_label = previous, f"{_init} (the default shipped before)"
phases, init = [], Path(str(recipe.get("init") or ""))
while base is None and (init / "recipe.yaml").is_file() and len(phases) < 20:
    if (init / "data_summary.json").is_file():  # a shipped default kept elsewhere
        base, base_label = init, f"{init} (a shipped default)"
        break
    phases.append((init, yaml.safe_load((init / "recipe.yaml").read_text())))
    init = Path(str(phases[-1][1].get("init") or ""))
continues = shipped_phases(base, base_label) if base is not None else []
if previous is not None:
    shutil.rmtree(previous.parent)
for i, (model_dir, r) in enumerate(reversed(phases), len(continues) + 1):
    shutil.copy(model_dir / "recipe.yaml", dest / f"phase{i}-recipe.yaml")
    for name in ("log.jsonl", "loss.png"):
        if (model_dir.parent / name).is_file():
            shutil.copy(model_dir.parent / name, dest / f"phase{i}-{name}")
    copy_evals(model_dir.parent, f"phase{i}-")
    continues.append({"recipe": f"phase{i}-recipe.yaml", "model": str(model_dir),
                      **phase_figures(r, read_log(model_dir.parent / "log.jsonl"))})
if continues:
    summary["training"]["continues"] = continues  # earliest phase first
if len(sys.argv) > 3:
    summary["training"]["note"] = sys.argv[3]
(dest / "data_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(f"shipped {run / 'model'} -> {dest}")
