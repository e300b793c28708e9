"""``musilingo train``: a recipe (YAML) with command-line overrides, run to the end."""

from __future__ import annotations

from musilingo.errors import ConfigError
from musilingo.train.config import TrainConfig
from musilingo.train.loop import train


def train_command(recipe: str | None = None, print_recipe: bool = False, **overrides) -> int:
    """``musilingo train``: run a recipe (YAML) with command-line overrides."""
    cfg = TrainConfig.from_yaml(recipe, **overrides) if recipe else TrainConfig(
        **{k: v for k, v in overrides.items() if v is not None})
    if print_recipe:
        print(cfg.to_yaml(), end="")
        return 0
    if not cfg.train:
        raise ConfigError("no training manifest: set `train:` in the recipe or pass --train")
    folder = train(cfg)
    print(f"wrote {folder}")
    return 0
