"""``musilingo eval`` end to end with the tiny preset: files written, resume, baselines, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import SR, tone
from musilingo import evaluate
from musilingo.evaluate import baselines, scoring
from musilingo.evaluate.options import EvalOptions
from musilingo.errors import ConfigError, ManifestError

STYLES = ("waltz", "tango", "rock", "march")
FAMILIES = (["piano"], ["piano", "strings"], ["guitar", "bass"], ["brass", "reed"])


def _record(i: int, split: str) -> dict:
    k = i % 4
    return {
        "id": f"clip{i}", "audio": f"audio/clip{i}.wav", "split": split,
        "caption": f"A {('slow', 'fast')[k % 2]} {STYLES[k]} played on {FAMILIES[k][0]}.",
        "qa": [{"question": "What is the tempo?", "answer": f"About {60 + 30 * k} bpm.",
                "kind": "tempo"},
               {"question": "Which style is it?", "answer": f"It is a {STYLES[k]}.",
                "kind": "style"}],
        "attributes": {"tempo_bpm": 60.0 + 30 * k, "meter": ("3/4", "2/4", "4/4", "6/8")[k],
                       "key_tonic": ("C", "F#", "Bb", "A")[k],
                       "key_mode": ("major", "minor")[k % 2],
                       "instrument_families": FAMILIES[k], "drums": bool(k % 2),
                       "style": STYLES[k]},
    }


def write_dataset(folder, n_train: int = 8, n_test: int = 4, missing: str | None = None,
                  mutate=None) -> str:
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    rows = [_record(i, "train") for i in range(n_train)]
    rows += [_record(n_train + i, "test") for i in range(n_test)]
    for i, r in enumerate(rows):
        if r["id"] != missing:
            sf.write(str(folder / r["audio"]), tone(0.5, SR, 200 + 90 * (i % 4), seed=i), SR)
        if mutate:
            mutate(r)
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def dataset(tmp_path):
    return write_dataset(tmp_path / "data")


@pytest.fixture
def counted_generate(monkeypatch, tiny_model):
    """The tiny model, loaded once, with its generate calls counted."""
    from musilingo.model import MusiLingo

    monkeypatch.setattr(MusiLingo, "from_pretrained", classmethod(lambda cls, *a, **k: tiny_model))
    calls = {"n": 0, "answers": 0}
    real = tiny_model.generate

    def generate(features, conversations, options=None, facts=None):
        calls["n"] += 1
        calls["answers"] += len(features)
        return real(features, conversations, options, facts=facts)

    monkeypatch.setattr(tiny_model, "generate", generate)
    return calls


def _eval(model, data, out, **options):
    return evaluate.eval_command(data, out=out, model=model, options=EvalOptions(**options))


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_attributes_eval_writes_results_report_and_baselines(dataset, tmp_path, counted_generate,
                                                            monkeypatch):
    import musilingo.features as features_mod

    loaded = []
    real_load = features_mod.load_audio

    def counting_load(path, *a, **k):
        loaded.append(str(path))
        return real_load(path, *a, **k)

    monkeypatch.setattr(features_mod, "load_audio", counting_load)
    out = tmp_path / "out"
    code = _eval("tiny", dataset, str(out), task="attributes", max_new_tokens=4,
                                 batch_size=4, bertscore=False)
    assert code == 0
    # each clip's audio is decoded once: encoded and, for the facts-only template, measured
    assert loaded and len(loaded) == len(set(loaded))
    preds = _lines(out / "predictions.jsonl")
    # 4 test clips x 6 attributes, for the model and the no-audio LLM
    assert sum(p["system"] == "model" for p in preds) == 24
    assert sum(p["system"] == "no_audio" for p in preds) == 24
    assert all(isinstance(p["prediction"], str) and "truth" in p for p in preds)
    # no-audio answers depend on the question only: 6 distinct questions, generated once each
    assert counted_generate["answers"] == 24 + 6

    res = json.loads((out / "results.json").read_text())
    assert set(res["systems"]) == {"model", "no_audio", "majority", "linear_probe", "facts_only"}
    for system in res["systems"].values():
        for attr in ("tempo", "meter", "key", "instruments", "drums", "style"):
            assert 0.0 <= system[f"{attr}_accuracy"] <= 1.0
        assert 0.0 <= system["instrument_family_f1"] <= 1.0
    # the probe separates these four tones perfectly; majority gets the shared classes right
    assert res["systems"]["linear_probe"]["accuracy"] == pytest.approx(1.0)
    assert res["systems"]["majority"]["accuracy"] < 0.6
    assert set(res["confusion"]["model"]) == {"tempo", "meter", "key"}
    tempo = res["confusion"]["linear_probe"]["tempo"]
    assert tempo["truth"] == ["slow", "moderate", "fast"]
    assert np.trace(np.array(tempo["counts"])) == 4

    report = (out / "report.md").read_text()
    assert "linear probe" in report and "majority class" in report
    for name in ("attribute_accuracy", "confusion_tempo", "confusion_meter", "confusion_key"):
        png = out / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{name}.png" in report
    # majority, probe and the facts-only template (musilingo analyze on each clip), 24 each
    assert len(_lines(out / "baselines.jsonl")) == 72
    assert "facts-only template" in report
    assert (out / "features" ).is_dir() and list((out / "features").glob("*/index.json"))

    # rerun: nothing is generated again and the finished lines are untouched
    before = (out / "predictions.jsonl").read_text()
    calls = counted_generate["n"]
    assert _eval("tiny", dataset, str(out), task="attributes", max_new_tokens=4,
                                 batch_size=4, bertscore=False) == 0
    assert counted_generate["n"] == calls
    assert (out / "predictions.jsonl").read_text() == before


def test_caption_eval_resumes_after_a_torn_line(dataset, tmp_path, counted_generate):
    out = tmp_path / "cap"
    kw = {"task": "caption", "protocols": ["lpmc", "mullama"], "max_new_tokens": 3,
          "bertscore": False}
    assert _eval("tiny", dataset, str(out), limit=2, **kw) == 0
    first = _lines(out / "predictions.jsonl")
    assert [p["id"] for p in first] == ["clip8:caption", "clip9:caption"]
    with open(out / "predictions.jsonl", "a") as f:
        f.write('{"system": "model", "id": "clip10:cap')  # a line cut by a kill
    counted_generate["answers"] = 0
    assert _eval("tiny", dataset, str(out), **kw) == 0
    assert counted_generate["answers"] == 2  # only the two new clips
    rows = _lines(out / "predictions.jsonl")
    assert rows[:2] == first  # kept as they were, timestamps included
    assert [p["id"] for p in rows] == [f"clip{i}:caption" for i in range(8, 12)]
    res = json.loads((out / "results.json").read_text())
    assert set(res["scores"]) == {"lpmc", "mullama"} and res["scores"]["lpmc"]["n"] == 4
    assert len(res["lengths"]["prediction_words"]) == 4
    assert (out / "plots" / "lengths.png").is_file()
    assert "## Examples" in (out / "report.md").read_text()


def test_qa_eval_asks_every_pair(dataset, tmp_path, counted_generate):
    out = tmp_path / "qa"
    assert _eval("tiny", dataset, str(out), task="qa", protocols=["mullama"],
                                 max_new_tokens=3, bertscore=False) == 0
    ids = [p["id"] for p in _lines(out / "predictions.jsonl")]
    assert ids == [f"clip{i}:qa{j}" for i in range(8, 12) for j in range(2)]
    assert json.loads((out / "results.json").read_text())["scores"]["mullama"]["n"] == 8


def test_other_settings_in_the_same_folder_are_refused(dataset, tmp_path, counted_generate):
    out = tmp_path / "o"
    _eval("tiny", dataset, str(out), task="qa", protocols=["mullama"],
                          max_new_tokens=2, bertscore=False, limit=1)
    with pytest.raises(ConfigError, match="different run"):
        _eval("tiny", dataset, str(out), task="qa", protocols=["mullama"],
                              max_new_tokens=3, bertscore=False, limit=1)



def test_precision_is_recorded_and_another_is_refused(dataset, tmp_path, counted_generate):
    out = tmp_path / "p"
    kw = dict(task="qa", protocols=["mullama"], max_new_tokens=2, bertscore=False, limit=1)
    _eval("tiny", dataset, str(out), precision="float32", **kw)
    assert json.loads((out / "run.json").read_text())["precision"] == "float32"
    with pytest.raises(ConfigError, match="precision: 'float32' -> 'int8'"):
        _eval("tiny", dataset, str(out), precision="int8", **kw)

def test_no_audio_prompt_renders_zero_audio_tokens(tiny_model):
    import torch

    from musilingo.prompts import Turn

    empty = torch.zeros(0, tiny_model.encoder.feature_dim)
    batch = tiny_model.build_inputs([empty], [[Turn("What is the tempo?")]])
    rendered = tiny_model.prompt.render([Turn("What is the tempo?")], tiny_model.tokenizer,
                                        n_audio=0)
    assert batch["inputs_embeds"].shape[1] == len(rendered) and not any(rendered.audio_mask)
    from musilingo.model import GenerationOptions

    assert len(tiny_model.generate([empty, empty], [[Turn("a")], [Turn("b")]],
                                   GenerationOptions(max_new_tokens=2))) == 2


@pytest.mark.parametrize("attr,truth", [
    ("tempo", {"tempo_bpm": 60}), ("tempo", {"tempo_bpm": 100}), ("tempo", {"tempo_bpm": 150}),
    ("meter", {"meter": "6/8"}), ("meter", {"meter": "3/4"}),
    ("key", {"key_tonic": "A", "key_mode": "minor"}),
    ("key", {"key_tonic": "Gb", "key_mode": "major"}),
    ("key", {"key_tonic": "Ab"}), ("key", {"key_mode": "minor"}), ("key", {"key_tonic": "A"}),
    ("drums", {"drums": True}), ("drums", {"drums": False}), ("style", {"style": "bossa"}),
    ("instruments", {"instrument_families": ["reed", "pipe", "chromatic percussion", "ensemble"]}),
    ("instruments", {"instrument_families": ["ethnic", "synth lead", "organ"]}),
])
def test_baseline_sentences_parse_back_to_their_class(attr, truth):
    from musilingo.attributes import class_sentence, truth_class
    from musilingo.metrics.attributes import score_attribute

    sentence = class_sentence(attr, truth_class(attr, truth))
    assert score_attribute(attr, sentence, truth) == 1.0, sentence


def test_answer_classes_for_confusion():
    assert scoring.answer_class("tempo", "It is fast, around 130 bpm.") == "fast"
    assert scoring.answer_class("tempo", "slow to moderate") == "several"
    assert scoring.answer_class("tempo", "A nice tune.") == "no claim"
    assert scoring.answer_class("key", "It is in G flat major.") == "F# major"
    assert scoring.answer_class("meter", "It is in 3/4.") == "3/4"


def test_majority_classes():
    from musilingo.data.manifest import Record

    recs = [Record(id=str(i), audio="x", attributes=_record(k, "train")["attributes"])
            for i, k in enumerate([0, 0, 0, 1, 2])]
    maj = baselines.majority_classes(recs)
    assert maj["tempo"] == "slow" and maj["meter"] == "3/4" and maj["drums"] == "no"
    assert maj["key"] == ("C", "major")
    assert maj["instruments"] == frozenset({"piano"})  # in 4 of 5 records, the others in 1


def test_bad_manifests_give_clear_errors(tmp_path, counted_generate):
    def run(data, **kw):
        _eval("tiny", data, str(tmp_path / "out"), max_new_tokens=2,
                              bertscore=False, protocols=kw.pop("protocols", ["mullama"]),
                              **kw)

    with pytest.raises(ManifestError,
                       match="no records in split 'valid'.*splits present: test, train"):
        run(write_dataset(tmp_path / "a"), split="valid")
    with pytest.raises(ManifestError, match="(?s)audio files are missing.*clip9"):
        run(write_dataset(tmp_path / "b", missing="clip9"))
    no_caption = write_dataset(tmp_path / "c", mutate=lambda r: r.pop("caption"))
    with pytest.raises(ManifestError, match="none of the 4 records has a 'caption'"):
        run(no_caption, task="caption")
    no_attrs = write_dataset(tmp_path / "d", mutate=lambda r: r.pop("attributes"))
    with pytest.raises(ManifestError, match="'attributes'"):
        run(no_attrs, task="attributes", protocols=None)
    bad_family = write_dataset(tmp_path / "e", mutate=lambda r: r["attributes"].update(
        instrument_families=["kazoo"]))
    with pytest.raises(ManifestError, match="(?s)clip8.*instruments.*kazoo"):
        run(bad_family, task="attributes", protocols=None)
    only_test = write_dataset(tmp_path / "f", n_train=0)
    with pytest.raises(ManifestError, match="train split 'train'"):
        run(only_test, task="attributes", protocols=None)
    with pytest.raises(ConfigError, match="do not apply"):
        run(write_dataset(tmp_path / "g"), task="attributes", protocols=["lpmc"])
    with pytest.raises(ConfigError, match="unknown task"):
        run(write_dataset(tmp_path / "h"), task="tags")
    assert counted_generate["n"] == 0


def test_eval_subcommand_parses_to_eval_command(monkeypatch):
    import functools

    from musilingo.cli import main
    from musilingo.evaluate import run

    seen = {}
    monkeypatch.setattr(run, "eval_command",
                        functools.wraps(run.eval_command)(lambda **kw: seen.update(kw) or 0))
    assert main(["eval", "m.jsonl", "--out", "o", "--task", "attributes", "--split", "all",
                 "--protocols", "attributes", "--no-bertscore", "--limit", "3"]) == 0
    opts = seen["options"]
    assert opts.split is None and opts.protocols == ["attributes"] and opts.limit == 3
    assert opts.bertscore is False and seen["data"] == "m.jsonl" and seen["out"] == "o"


def test_unreadable_clip_is_recorded_and_retried(tmp_path, counted_generate):
    data = write_dataset(tmp_path / "data")
    clip = tmp_path / "data" / "audio" / "clip9.wav"
    good = clip.read_bytes()
    clip.write_bytes(b"RIFF....WAVEjunk")
    out = tmp_path / "out"
    kw = {"task": "qa", "protocols": ["mullama"], "max_new_tokens": 2, "bertscore": False}
    assert _eval("tiny", data, str(out), **kw) == 1
    errors = [p for p in _lines(out / "predictions.jsonl") if p.get("error")]
    assert [p["id"] for p in errors] == ["clip9:qa0", "clip9:qa1"]
    assert "clip9.wav" in errors[0]["error"]
    assert json.loads((out / "results.json").read_text())["n_failed"] == 2
    clip.write_bytes(good)
    counted_generate["answers"] = 0
    assert _eval("tiny", data, str(out), **kw) == 0
    assert counted_generate["answers"] == 2


def test_cached_evaluation_answers_as_model_ask_does(tmp_path, tiny_model, monkeypatch):
    """Evaluation answers from the shared feature cache (windows concatenated); the answer must
    be the one ``model.ask`` gives for the same file and question, for a clip of one window and
    for a clip of several windows (whole track pooled)."""
    from musilingo.attributes import SCHEMA
    from musilingo.model import GenerationOptions, MusiLingo

    monkeypatch.setattr(MusiLingo, "from_pretrained", classmethod(lambda cls, *a, **k: tiny_model))
    monkeypatch.setattr(tiny_model.config, "window_s", 1.0)
    long_s = 3.5 * tiny_model.config.window_s
    data = write_dataset(tmp_path / "data", n_train=0, n_test=2)
    sf.write(str(tmp_path / "data" / "audio" / "clip1.wav"), tone(long_s, SR, 330, seed=5), SR)
    out = tmp_path / "out"
    assert _eval("tiny", data, str(out), task="attributes", baselines=False,
                                 max_new_tokens=6) == 0
    got = {(r["record"], r["attribute"]): r["prediction"] for r in _lines(out / "predictions.jsonl")}
    for rid in ("clip0", "clip1"):
        for attr in ("tempo", "key"):
            ans = tiny_model.ask(str(tmp_path / "data" / "audio" / f"{rid}.wav"),
                                 SCHEMA[attr].question, options=GenerationOptions(max_new_tokens=6))
            assert got[(rid, attr)] == ans.text, (rid, attr)
    # clip1 really is answered per window as well (so its track answer is the pooled one)
    assert len(tiny_model.ask(str(tmp_path / "data" / "audio" / "clip1.wav"), "Q?",
                              options=GenerationOptions(max_new_tokens=2)).windows) > 1
