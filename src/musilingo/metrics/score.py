"""One entry for scoring predictions: read pairs from files, pick a protocol, write results.json.

Inputs (see :func:`read_pairs`):

- a JSON list of ``{"prediction": str, "ground_truth": str | [str, ...]}`` (LP-MusicCaps's
  published ``inference.json`` format), or JSONL with one such object per line;
- or a predictions file (JSON list / JSONL of ``{"id", "prediction"}``) plus a references file
  (JSON list / JSONL of ``{"id", "reference" | "ground_truth" | "caption" | "answer"}``) joined
  by ``id``; several reference lines per id make several references (``coco``, ``lpmc``).

For ``protocol="attributes"`` each item also holds ``"attribute"`` (tempo, meter, instruments,
drums, key, style) and ``ground_truth`` is the truth mapping (manifest ``attributes`` keys).

This module reads and writes files and dispatches; the metrics live in the protocol modules.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

from musilingo.errors import ManifestError

Protocol = Literal["lpmc", "mullama", "coco", "attributes"]
PROTOCOLS: tuple[str, ...] = Protocol.__args__
_REF_KEYS = ("reference", "references", "ground_truth", "caption", "answer")


def _load_records(path: Path) -> list[Any]:
    """A JSON list (or a JSON object of records) or JSONL lines, as a list of records."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read ({e})") from None
    if not text.strip():
        raise ManifestError(f"{path}: file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ManifestError(
                    f"{path}:{lineno}: not valid JSON or JSONL ({e.msg} at column {e.colno})"
                ) from None
        return records
    if isinstance(data, dict):
        # {"0": {...}, "1": {...}} inference dumps, or a single record
        if all(isinstance(v, dict) for v in data.values()) and "prediction" not in data:
            return list(data.values())
        return [data]
    if not isinstance(data, list):
        raise ManifestError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    return data


def _check_text(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{where}: {what} must be a string, got {type(value).__name__}")
    return value


def _refs(value: Any, where: str, protocol: str) -> Any:
    if protocol == "attributes":
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: ground_truth must be an object of attributes "
                                f"(tempo_bpm, meter, ...) for the attributes protocol")
        return value
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ManifestError(f"{where}: ground_truth must be a string or a non-empty list of strings")


def normalize_pairs(pairs: Iterable[Mapping], protocol: str, source: str = "pairs") -> list[dict]:
    """Validate in-memory pairs; ``ground_truth`` becomes a list of strings (or the truth dict)."""
    out = []
    for i, item in enumerate(pairs):
        where = f"{source}: item {i}"
        if not isinstance(item, Mapping):
            raise ManifestError(f"{where}: expected an object, got {type(item).__name__}")
        if "prediction" not in item:
            raise ManifestError(f"{where}: missing field 'prediction'")
        truth_key = next((k for k in ("ground_truth", *_REF_KEYS) if k in item), None)
        if truth_key is None:
            raise ManifestError(f"{where}: missing field 'ground_truth'")
        rec = {"prediction": _check_text(item["prediction"], where, "prediction"),
               "ground_truth": _refs(item[truth_key], where, protocol)}
        if "id" in item:
            rec["id"] = str(item["id"])
        if protocol == "attributes":
            attr = item.get("attribute") or item.get("kind")
            if not isinstance(attr, str):
                raise ManifestError(f"{where}: missing field 'attribute' (tempo, meter, ...)")
            rec["attribute"] = attr
        out.append(rec)
    if not out:
        raise ManifestError(f"{source}: no items")
    return out


def read_pairs(pairs: str | os.PathLike, references: str | os.PathLike | None = None,
               protocol: str = "lpmc") -> list[dict]:
    """Read scoring items from files (formats in the module docstring)."""
    path = Path(pairs)
    records = _load_records(path)
    if references is None:
        return normalize_pairs(records, protocol, str(path))
    ref_path = Path(references)
    refs: dict[str, list] = {}
    for i, rec in enumerate(_load_records(ref_path)):
        where = f"{ref_path}: item {i}"
        if not isinstance(rec, dict) or "id" not in rec:
            raise ManifestError(f"{where}: expected an object with an 'id'")
        key = next((k for k in _REF_KEYS if k in rec), None)
        if key is None:
            raise ManifestError(f"{where}: no reference field (one of {', '.join(_REF_KEYS)})")
        if protocol == "attributes":
            refs[str(rec["id"])] = [rec[key]]
        else:
            refs.setdefault(str(rec["id"]), []).extend(_refs(rec[key], where, protocol))
    items = []
    for i, rec in enumerate(records):
        where = f"{path}: item {i}"
        if not isinstance(rec, dict) or "id" not in rec:
            raise ManifestError(f"{where}: expected an object with an 'id' and a 'prediction'")
        rid = str(rec["id"])
        if rid not in refs:
            raise ManifestError(f"{where}: id {rid!r} has no reference in {ref_path}")
        truth = refs[rid][0] if protocol == "attributes" else refs[rid]
        items.append({**rec, "ground_truth": truth})
    return normalize_pairs(items, protocol, str(path))


def _metric(protocol: str):
    if protocol == "lpmc":
        from musilingo.metrics.lpmc import LpmcMetric

        return LpmcMetric()
    if protocol == "mullama":
        from musilingo.metrics.mullama import MullamaMetric

        return MullamaMetric()
    if protocol == "coco":
        from musilingo.metrics.coco import CocoMetric

        return CocoMetric()
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")


def _score_attributes(items: Sequence[dict]) -> dict:
    from musilingo.metrics.attributes import ATTRIBUTES, score_attribute

    per: dict[str, list[float]] = {}
    for i, item in enumerate(items):
        attr = item["attribute"]
        if attr not in ATTRIBUTES:
            raise ManifestError(f"item {i}: unknown attribute {attr!r}; expected one of {ATTRIBUTES}")
        try:
            s = score_attribute(attr, item["prediction"], item["ground_truth"])
        except (KeyError, ValueError) as e:
            raise ManifestError(f"item {i}: {e}") from None
        per.setdefault(attr, []).append(s)
    res: dict = {"n": len(items)}
    for attr, scores in per.items():
        res[f"{attr}_accuracy"] = sum(scores) / len(scores)
        res[f"{attr}_n"] = len(scores)
    all_scores = [s for v in per.values() for s in v]
    res["accuracy"] = sum(all_scores) / len(all_scores)
    res["notes"] = ["attribute answers parsed by musilingo.metrics.attributes; "
                    "an answer that claims nothing scores 0"]
    return res


def score_predictions(pairs: Sequence[Mapping], protocol: str = "lpmc",
                      bertscore_model: str | os.PathLike | None = None,
                      bertscore: bool = True) -> dict:
    """Score ``pairs`` (``{"prediction", "ground_truth"}`` mappings) with ``protocol``.

    ``bertscore_model``: ``None``/``"minilm"`` (shipped MiniLM, not comparable with published
    numbers) or a local roberta-large folder; ``bertscore=False`` skips BERTScore.
    Returns ``{"protocol", "n", <metric>: float, ..., "notes": [...]}``.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    items = normalize_pairs(pairs, protocol)
    if protocol == "attributes":
        res = _score_attributes(items)
    else:
        metric = _metric(protocol)
        try:
            metric.update([it["prediction"] for it in items], [it["ground_truth"] for it in items])
        except ValueError as e:
            raise ManifestError(f"pairs: {e}") from None
        model = None
        if bertscore:
            from musilingo.metrics.bertscore import resolve_model

            model = resolve_model(bertscore_model)
        res = metric.compute(bertscore_model=model)
    return {"protocol": protocol, **res}


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def write_results(results: Mapping, out: str | os.PathLike) -> Path:
    """Write ``results`` as JSON atomically (temp file + rename)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_json_safe(dict(results)), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def score_command(pairs: str, protocol: Protocol = "lpmc", references: str | None = None,
                  out: str | None = None, bertscore: bool = True,
                  bertscore_model: str | None = None) -> dict:
    """Score generated captions/answers against references.

    Args:
        pairs: JSON list / JSONL of {"prediction", "ground_truth"}; or, with ``references``,
            predictions as {"id", "prediction"}.
        protocol: lpmc (LP-MusicCaps), mullama (MusicQA), coco (pycocoevalcap) or attributes.
        references: file of {"id", "reference"} joined to ``pairs`` by id (several per id allowed).
        out: write the results JSON here.
        bertscore: compute BERTScore (F1 for lpmc/coco, recall for mullama).
        bertscore_model: local model folder (e.g. roberta-large); default the shipped MiniLM,
            whose numbers are not comparable with published ones.
    """
    if protocol not in PROTOCOLS:
        from musilingo.errors import ConfigError

        raise ConfigError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    items = read_pairs(pairs, references, protocol)
    results = score_predictions(items, protocol, bertscore_model=bertscore_model,
                                bertscore=bertscore)
    results["source"] = {"pairs": str(pairs), "references": references}
    if out:
        write_results(results, out)
    return results
