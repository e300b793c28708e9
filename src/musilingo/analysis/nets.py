"""Small fitted networks: the forward pass of the multilayer perceptrons the fit exported.

The tempo-level and meter models are scikit-learn ``MLPClassifier`` networks fitted by
``benchmarks/bench_analysis.py --fit``. Only their weights are shipped, in
``fitted_nets.safetensors`` beside this module (its SHA-256 is in :mod:`.fitted`, so the
analysis fingerprint covers them), never a pickle, so loading them runs no code; this module
reads them and is their forward pass. It is written here because no inference library reads
scikit-learn weights without unpickling them, and the pass is three matrix products with ReLUs
between (scikit-learn's own ``MLPClassifier`` forward: ReLU hidden layers, then the logits of
a logistic or softmax output).

What it does not: train (the benchmark fits with scikit-learn) or choose features.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

NETS_FILE = Path(__file__).with_name("fitted_nets.safetensors")


@dataclass(frozen=True)
class Net:
    """A standardise-then-MLP model: ``(x - mean) / std`` through ReLU layers to output logits."""

    mean: np.ndarray  # [F]
    std: np.ndarray  # [F]
    weights: tuple[np.ndarray, ...]  # [F, H1], [H1, H2], ..., [Hk, C]
    biases: tuple[np.ndarray, ...]  # [H1], ..., [C]

    @classmethod
    def from_dict(cls, d: dict) -> Net:
        """From the exported form ``{"mean", "std", "weights", "biases"}`` (nested lists)."""
        w = tuple(np.asarray(a, dtype=np.float64) for a in d["weights"])
        b = tuple(np.asarray(a, dtype=np.float64) for a in d["biases"])
        mean, std = np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64)
        if len(w) != len(b) or not w or w[0].shape[0] != mean.shape[0] \
                or std.shape != mean.shape:
            raise ValueError("malformed network: layer or feature sizes do not match")
        for wi, bi, nxt in zip(w, b, w[1:] + (None,)):
            if wi.shape[1] != bi.shape[0] or (nxt is not None and nxt.shape[0] != wi.shape[1]):
                raise ValueError("malformed network: layer sizes do not chain")
        return cls(mean, std, w, b)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Output logits for ``x`` [N, F] -> [N, C] (C = 1 for a binary model)."""
        h = (np.atleast_2d(np.asarray(x, dtype=np.float64)) - self.mean) / self.std
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h


def from_sklearn(model, mean: np.ndarray, std: np.ndarray) -> Net:
    """The :class:`Net` of a fitted ``MLPClassifier`` (ReLU) trained on standardised features."""
    if getattr(model, "activation", "relu") != "relu":
        raise ValueError("only ReLU networks are exported")
    return Net(np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64),
               tuple(np.asarray(w) for w in model.coefs_),
               tuple(np.asarray(b) for b in model.intercepts_))


def mean_logits(nets, x: np.ndarray) -> np.ndarray:
    """The logits of an ensemble: the mean over its networks (each fitted with another seed)."""
    return np.mean([n.logits(x) for n in nets], axis=0)


def save_nets(path: str | Path, models: dict[str, list[Net]]) -> str:
    """Write ensembles ``{name: [Net, ...]}`` as safetensors; returns the file's SHA-256."""
    from safetensors.numpy import save_file

    tensors: dict[str, np.ndarray] = {}
    for name, ensemble in models.items():
        for i, net in enumerate(ensemble):
            p = f"{name}.{i}."
            tensors[p + "mean"], tensors[p + "std"] = net.mean, net.std
            for j, (w, b) in enumerate(zip(net.weights, net.biases)):
                tensors[f"{p}weight.{j}"], tensors[f"{p}bias.{j}"] = w, b
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
              str(path))
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_nets(path: str | Path, sha256: str | None = None) -> dict[str, tuple[Net, ...]]:
    """Read :func:`save_nets`' file; with ``sha256``, refuse a file that is not that one."""
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the analysis networks are missing (re-install musilingo "
                                "or re-run benchmarks/bench_analysis.py --fit --write)")
    if sha256 is not None and hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise ValueError(f"{path}: not the networks fitted.py was written with (SHA-256 "
                         "differs); re-run benchmarks/bench_analysis.py --fit --write")
    t = load_file(str(path))
    out: dict[str, list[Net]] = {}
    for key in sorted(k for k in t if k.endswith(".mean")):
        name, i = key.split(".")[:2]
        p = f"{name}.{i}."
        n_layers = sum(1 for k in t if k.startswith(p + "weight."))
        out.setdefault(name, []).append(Net.from_dict({
            "mean": t[p + "mean"], "std": t[p + "std"],
            "weights": [t[f"{p}weight.{j}"] for j in range(n_layers)],
            "biases": [t[f"{p}bias.{j}"] for j in range(n_layers)]}))
    return {k: tuple(v) for k, v in out.items()}


@lru_cache(maxsize=1)
def fitted_nets() -> dict[str, tuple[Net, ...]]:
    """The shipped ensembles (``"tempo"``, ``"meter"``), checked against :mod:`.fitted`."""
    from musilingo.analysis import fitted

    return load_nets(NETS_FILE, fitted.NETS_SHA256)
