"""``musilingo train``: a recipe (YAML) with command-line overrides, run to the end."""

from __future__ import annotations

import json

from musilingo.errors import ConfigError
from musilingo.train.config import TrainConfig


def train_command(config: TrainConfig, print_recipe: bool = False, as_json: bool = False) -> int:
    """Train the projection (and optional LoRA adapters) from a YAML recipe and/or flags.

    Every option below is a key of the recipe (``--recipe``); the flags given override it. A rerun
    of the same command resumes from the last checkpoint.

    Args:
        config: the run's options.
        print_recipe: print the resulting recipe (YAML) and exit without training.
        as_json: print {"model": FOLDER} when done, instead of a sentence.
    """
    if print_recipe:
        print(config.to_yaml(), end="")
        return 0
    if not config.train:
        raise ConfigError("no training manifest: set `train:` in the recipe or pass --train")
    from musilingo.train.loop import train  # torch and accelerate: only when training

    folder = train(config)
    print(json.dumps({"model": str(folder)}) if as_json else f"wrote {folder}")
    return 0
