"""Resumable evaluation output: ``run.json`` (the settings the predictions were made with),
``predictions.jsonl`` (appended and fsynced one answer at a time; a torn last line is dropped on
resume) and ``baselines.jsonl``. Generates and scores nothing."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from musilingo.data.manifest import atomic_write_text
from musilingo.errors import ConfigError
from musilingo.evaluate.items import Item

log = logging.getLogger(__name__)

# run.json keys that must agree for earlier predictions to be reused
_RUN_KEYS = ("model", "data", "task", "split", "decoding", "max_new_tokens", "precision", "runtime")


def load_predictions(path: Path) -> dict[tuple[str, str], dict]:
    """Finished predictions ``(system, id) -> line``; lines with an error are not finished.

    A line that is not valid JSON (cut by a kill) is dropped and the file rewritten without it.
    """
    done: dict[tuple[str, str], dict] = {}
    if not path.is_file():
        return done
    raw = path.read_text(encoding="utf-8")
    lines = raw.splitlines(keepends=True)
    good = []
    for line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or "system" not in obj or "id" not in obj:
            continue
        good.append(line if line.endswith("\n") else line + "\n")
        if obj.get("error") is None and isinstance(obj.get("prediction"), str):
            done[(obj["system"], obj["id"])] = obj
    if "".join(good) != raw:
        log.warning("%s: dropped %d unreadable line(s) (a run killed mid-write)", path,
                    len(lines) - len(good))
        atomic_write_text(path, "".join(good))
    return done


def check_run(out: Path, run: dict) -> None:
    """Refuse to mix predictions of different settings in one folder; write run.json."""
    path = out / "run.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
        diff = [k for k in _RUN_KEYS if k in old and old[k] != run[k]]
        if diff:
            shown = ", ".join(f"{k}: {old[k]!r} -> {run[k]!r}" for k in diff)
            raise ConfigError(f"{out} holds predictions of a different run ({shown}); "
                              "use another output folder or delete it")
    atomic_write_text(path, json.dumps(run, indent=2) + "\n")


def write_baselines(path: Path, items: Sequence[Item],
                     preds: Mapping[str, Mapping[str, str]]) -> None:
    lines = []
    for s in ("majority", "linear_probe", "facts_only"):
        for it in items:
            if it.id in preds.get(s, {}):
                row = it.line(s, preds[s][it.id])
                row.pop("time")
                lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + "\n" if lines else "")
