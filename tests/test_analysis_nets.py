"""musilingo.analysis.nets: the shipped tempo and meter networks and their forward pass.

The forward pass must equal scikit-learn's own for the networks the fit exports; the weights
file must round-trip, and a missing, altered or malformed file must give a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from musilingo.analysis import nets


def _fit(y, n_features=5, seed=0):
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(y), n_features)) * 3 + 1
    mean, std = x.mean(axis=0), x.std(axis=0)
    m = MLPClassifier(hidden_layer_sizes=(8, 4), max_iter=300, random_state=0)
    m.fit((x - mean) / std, y)
    return m, x, mean, std


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_forward_pass_equals_sklearn_binary_and_multiclass():
    rng = np.random.default_rng(1)
    for y in (rng.integers(0, 2, 60), rng.integers(0, 4, 80)):
        m, x, mean, std = _fit(y)
        z = nets.from_sklearn(m, mean, std).logits(x)
        if z.shape[1] == 1:
            p = 1 / (1 + np.exp(-z[:, 0]))
            np.testing.assert_allclose(p, m.predict_proba((x - mean) / std)[:, 1], atol=1e-9)
        else:
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            np.testing.assert_allclose(p, m.predict_proba((x - mean) / std), atol=1e-9)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_weights_file_round_trips_and_bad_files_are_refused(tmp_path):
    m, x, mean, std = _fit(np.random.default_rng(2).integers(0, 3, 50))
    net = nets.from_sklearn(m, mean, std)
    path = tmp_path / "n.safetensors"
    sha = nets.save_nets(path, {"meter": [net, net], "tempo": [net]})
    back = nets.load_nets(path, sha)
    assert len(back["meter"]) == 2 and len(back["tempo"]) == 1
    np.testing.assert_allclose(nets.mean_logits(back["meter"], x), net.logits(x), rtol=1e-4,
                               atol=1e-4)  # stored as float32
    with pytest.raises(ValueError, match="SHA-256"):
        nets.load_nets(path, "0" * 64)
    with pytest.raises(FileNotFoundError, match="missing"):
        nets.load_nets(tmp_path / "nope.safetensors")
    d = {"mean": net.mean, "std": net.std, "weights": list(net.weights), "biases": list(net.biases)}
    nets.Net.from_dict(d)
    with pytest.raises(ValueError, match="malformed"):  # a layer that does not chain
        unchained = [d["weights"][0], d["weights"][1][:-1]] + d["weights"][2:]
        nets.Net.from_dict({**d, "weights": unchained})
    with pytest.raises(ValueError, match="malformed"):  # std of another length than mean
        nets.Net.from_dict({**d, "std": d["std"][:-1]})


def test_shipped_networks_match_fitted_and_features():
    from musilingo.analysis import meter, tempo

    shipped = nets.fitted_nets()  # checks the file's SHA-256 against fitted.NETS_SHA256
    assert shipped["tempo"] and shipped["meter"]
    for n in shipped["tempo"]:
        assert n.mean.shape == (len(tempo.FEATURES),) and n.weights[-1].shape[1] == 1
    for n in shipped["meter"]:
        assert n.mean.shape == (len(meter.FEATURES),)
        assert n.weights[-1].shape[1] == len(meter.CLASSES)
