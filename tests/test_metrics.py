"""Caption / answer metrics: hand-computed cases, parity with reference implementations,
the MU-LLaMA quirks, offline WordNet, BERTScore on the shipped MiniLM and the file entry."""

from __future__ import annotations

import json
import math
import os
import random

import pytest

from musilingo.errors import ConfigError, ManifestError
from musilingo.metrics import lpmc, mullama
from musilingo.text import normalize_text

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VOCAB = ("the a slow fast piano guitar drums song piece melody calm loud soft with and of in "
         "plays is are, . waltz rock 3/4 120-bpm it's don't (live) \"quoted\" e.g. & 1,000 "
         "-dash- U.S. tempo").split()


def _sentence(rng: random.Random, lo: int = 4, hi: int = 18) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(lo, hi)))


def _pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    preds, refs = [], []
    for _ in range(n):
        ref = _sentence(rng)
        words = ref.split()
        pred = " ".join(w if rng.random() < 0.6 else rng.choice(VOCAB) for w in words)
        if rng.random() < 0.3:
            pred += " " + _sentence(rng, 1, 5)
        preds.append(pred)
        refs.append(ref)
    return preds, refs


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    old = os.environ.get("MUSILINGO_CACHE")
    os.environ["MUSILINGO_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("MUSILINGO_CACHE", None)
    else:
        os.environ["MUSILINGO_CACHE"] = old


# --- text -----------------------------------------------------------------------------------


def test_normalize_text():
    assert normalize_text("  F\u266f  Minor\u2014B\u266d ") == "f# minor - bb"
    assert normalize_text("It\u2019s  3\u20444") == "it's 3/4"


# --- lpmc: 13a tokenizer and BLEU -------------------------------------------------------------


def test_tokenize_13a_hand():
    assert lpmc.tokenize_13a("Hello, world. It's 3.5 bpm-ish (live) & 1,000 ok.") == [
        "Hello", ",", "world", ".", "It's", "3.5", "bpm-ish", "(", "live", ")", "&", "1,000",
        "ok", "."]  # fmt: skip
    assert lpmc.tokenize_13a("a 12-bar &quot;blues&quot;") == ["a", "12", "-", "bar", '"', "blues", '"']


def test_bleu_hand_computed():
    # 3 hypothesis tokens, 4 reference tokens, all n-grams match: BLEU = BP = exp(1 - 4/3)
    bp = math.exp(1 - 4 / 3)
    for n in (1, 2, 3):
        r = lpmc.corpus_bleu(["the cat sat"], [["the cat sat on"]], n)
        assert r.bleu == pytest.approx(bp) and r.brevity_penalty == pytest.approx(bp)
    # no 4-gram in a 3-token hypothesis: precision 0 -> BLEU-4 = 0 (no smoothing)
    assert lpmc.corpus_bleu(["the cat sat"], [["the cat sat on"]], 4).bleu == 0.0
    # p1 = 2/4, p2 = 1/3, longer than reference: BLEU-2 = sqrt(1/2 * 1/3)
    r = lpmc.corpus_bleu(["the cat is here"], [["the cat"]], 2)
    assert r.precisions == pytest.approx([0.5, 1 / 3]) and r.brevity_penalty == 1.0
    assert r.bleu == pytest.approx(math.sqrt(1 / 6))
    # several references: clipped counts from their union, length of the SHORTEST reference
    r = lpmc.corpus_bleu(["a b c d"], [["a b x x x x", "c d"]], 1)
    assert r.reference_length == 2 and r.bleu == pytest.approx(1.0)
    assert lpmc.corpus_bleu([""], [["a b"]], 1).bleu == 0.0


def test_bleu_matches_sacrebleu_on_generated_pairs():
    sacrebleu = pytest.importorskip("sacrebleu")
    preds, refs = _pairs(300)
    for n in (1, 2, 3, 4):
        ours = lpmc.corpus_bleu(preds, [[r] for r in refs], n)
        bleu = sacrebleu.metrics.BLEU(tokenize="13a", smooth_method="none", max_ngram_order=n)
        theirs = bleu.corpus_score(preds, [refs])
        assert ours.bleu * 100 == pytest.approx(theirs.score, rel=1e-9, abs=1e-9)
        assert ours.translation_length == theirs.sys_len and ours.reference_length == theirs.ref_len
    for p, r in zip(preds[:50], refs[:50]):  # and sentence by sentence
        assert lpmc.tokenize_13a(p) == sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a()(p).split()


def test_bleu_matches_nltk_corpus_bleu_on_13a_tokens():
    from nltk.translate.bleu_score import corpus_bleu

    preds, refs = _pairs(300, seed=1)
    hyp = [lpmc.tokenize_13a(p) for p in preds]
    ref = [[lpmc.tokenize_13a(r)] for r in refs]
    for n in (1, 2, 3, 4):
        ours = lpmc.compute_bleu(ref, hyp, n).bleu
        assert ours == pytest.approx(corpus_bleu(ref, hyp, weights=(1 / n,) * n), rel=1e-9)
    # several references of equal length: shortest == closest, so nltk agrees too
    rng = random.Random(2)
    multi = [[lpmc.tokenize_13a(r), [rng.choice(VOCAB) for _ in lpmc.tokenize_13a(r)]] for r in refs]
    assert lpmc.compute_bleu(multi, hyp, 4).bleu == pytest.approx(corpus_bleu(multi, hyp), rel=1e-9)


def test_lpmc_meteor_and_rouge_hand():
    # identical 3-token sentences: fmean 1, one chunk -> penalty 0.5 * (1/3)^3
    assert lpmc.meteor_scores(["slow piano waltz"], [["slow piano waltz"]]) == [
        pytest.approx(1 - 0.5 / 27)]
    # evaluate tokenises with word_tokenize: "waltz." -> "waltz", "."
    assert lpmc.word_tokenize("A slow waltz.") == ["A", "slow", "waltz", "."]
    r = lpmc.rouge_l_scores(["piano piece"], [["a slow piano piece"]])[0]
    assert (r["precision"], r["recall"]) == (1.0, 0.5) and r["f1"] == pytest.approx(2 / 3)
    # no stemmer in lpmc: "pianos" does not match "piano"
    assert lpmc.rouge_l_scores(["pianos"], [["piano"]])[0]["f1"] == 0.0


# --- mullama quirks ----------------------------------------------------------------------------


def test_mullama_bleu_is_character_level():
    from nltk.translate.bleu_score import sentence_bleu

    # an anagram shares every character unigram and some bigrams: word-level BLEU would be 0
    assert mullama.char_bleu("listen", "silent", (1.0,)) == pytest.approx(1.0)
    assert sentence_bleu([["silent"]], ["listen"], weights=(1.0,)) == 0.0
    pred, ref = "a slow piano waltz", "a slow waltz on the piano"
    assert mullama.char_bleu(pred, ref) == pytest.approx(sentence_bleu([list(ref)], list(pred)))
    assert mullama.char_bleu(pred, ref) > 0.3  # word-level BLEU-4 here is 0
    assert sentence_bleu([ref.split()], pred.split()) < 1e-100


def test_mullama_rouge_recall_with_stemmer_and_meteor_wordpunct():
    assert mullama.rouge_l_recall("pianos", "a slow piano piece") == pytest.approx(0.25)
    assert mullama.rouge_l_recall("a slow piano piece with soft strings", "piano piece") == 1.0
    # wordpunct splits "it's" into it ' s; identical strings still score 1 - penalty
    s = mullama.wordpunct_meteor("it's slow", "it's slow")
    assert s == pytest.approx(1 - 0.5 * (1 / 4) ** 3)


def test_mullama_metric_means_and_single_reference():
    m = mullama.MullamaMetric()
    m.update(["piano", "fast drums"], ["a slow piano piece", ["fast drums"]])
    res = m.compute()
    assert res["rougeL"] == pytest.approx((0.25 + 1.0) / 2)
    assert res["n"] == 2 and "bertscore" not in res
    with pytest.raises(ValueError, match="one reference"):
        m.update(["x"], [["a", "b"]])


# --- wordnet -------------------------------------------------------------------------------------


def test_wordnet_built_offline(tmp_path, monkeypatch):
    import nltk

    from musilingo.metrics import wordnet

    lines = wordnet.lexnames_text().splitlines()
    assert len(lines) == 45 and lines[0] == "00\tadj.all\t3" and lines[44] == "44\tadj.ppl\t3"
    assert lines[3] == "03\tnoun.Tops\t1" and lines[29] == "29\tverb.body\t2"
    if not wordnet.DEBIAN_WORDNET.is_dir():
        pytest.skip("Debian wordnet-base not installed")
    folder = wordnet.build_wordnet(nltk_data=tmp_path / "nltk_data")
    assert (folder / "corpora" / "wordnet" / "lexnames").is_file()
    assert wordnet.build_wordnet(nltk_data=folder) == folder  # second call: no-op
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    monkeypatch.setattr(nltk.data, "path", [str(folder), *nltk.data.path])  # nltk path guard

    wn = WordNetCorpusReader(str(folder / "corpora" / "wordnet"), None)
    assert "piano" in {lem.name() for s in wn.synsets("pianoforte") for lem in s.lemmas()}


def test_wordnet_missing_names_the_apt_package(tmp_path):
    from musilingo.metrics import wordnet

    with pytest.raises(ConfigError, match="apt-get install wordnet-base"):
        wordnet.build_wordnet(source=tmp_path / "nowhere", nltk_data=tmp_path / "d")


# --- bertscore -----------------------------------------------------------------------------------


def test_bertscore_minilm_offline(monkeypatch):
    from musilingo.metrics import bertscore

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = bertscore.resolve_model(None)
    assert spec.num_layers == 6 and not spec.comparable and "NOT comparable" in spec.note
    out = bertscore.bert_score(["a slow piano waltz", "fast rock"],
                               ["a slow piano waltz", "calm harp music"])
    assert out["f1"][0] == pytest.approx(1.0, abs=1e-5)
    assert out["f1"][1] < 0.95 and "NOT comparable" in out["note"]
    with pytest.raises(ConfigError, match="local folder"):
        bertscore.resolve_model("roberta-large")


def test_bertscore_roberta_large_folder_is_layer_17(tmp_path):
    from musilingo.metrics.bertscore import resolve_model

    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "roberta", "num_hidden_layers": 24, "hidden_size": 1024}))
    spec = resolve_model(tmp_path)
    assert spec.num_layers == 17 and spec.comparable and spec.name == "roberta-large"


# --- entry point and files -----------------------------------------------------------------------


def test_score_command_json_jsonl_and_joined_files(tmp_path):
    from musilingo.metrics.score import score_command

    pairs = [{"prediction": "a slow piano waltz", "ground_truth": "a slow waltz on the piano"},
             {"prediction": "fast rock with drums", "ground_truth": "rock song with loud drums"}]
    (tmp_path / "p.json").write_text(json.dumps(pairs))
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    a = score_command(str(tmp_path / "p.json"), "lpmc", bertscore=False,
                      out=str(tmp_path / "r" / "results.json"))
    b = score_command(str(tmp_path / "p.jsonl"), "lpmc", bertscore=False)
    assert json.loads((tmp_path / "r" / "results.json").read_text())["bleu1"] == a["bleu1"]
    assert a["bleu4"] == b["bleu4"] and a["n"] == 2 and a["protocol"] == "lpmc"
    preds = [{"id": "x", "prediction": "a slow piano waltz"}]
    refs = [{"id": "x", "reference": "a slow waltz on the piano"},
            {"id": "x", "reference": "piano waltz"}]
    (tmp_path / "pred.jsonl").write_text("\n".join(json.dumps(p) for p in preds))
    (tmp_path / "ref.json").write_text(json.dumps(refs))
    c = score_command(str(tmp_path / "pred.jsonl"), "lpmc", references=str(tmp_path / "ref.json"),
                      bertscore=False)
    assert c["bleu1"] == pytest.approx(lpmc.corpus_bleu(
        ["a slow piano waltz"], [["a slow waltz on the piano", "piano waltz"]], 1).bleu)
    m = score_command(str(tmp_path / "p.json"), "mullama", bertscore=False)
    assert set(m) >= {"bleu", "bleu4", "meteor", "rougeL"}


def test_score_attributes_protocol():
    from musilingo.metrics.score import score_predictions

    truth = {"tempo_bpm": 70.0, "key_tonic": "G", "key_mode": "major", "drums": False}
    res = score_predictions([
        {"prediction": "slow", "ground_truth": truth, "attribute": "tempo"},
        {"prediction": "fast", "ground_truth": truth, "attribute": "tempo"},
        {"prediction": "G major", "ground_truth": truth, "attribute": "key"},
        {"prediction": "no drums", "ground_truth": truth, "attribute": "drums"},
    ], "attributes")
    assert res["tempo_accuracy"] == 0.5 and res["key_accuracy"] == 1.0
    assert res["accuracy"] == pytest.approx(3 / 4)


@pytest.mark.parametrize("content,problem", [
    ("", "empty"),
    ("{not json\n", "not valid JSON"),
    ('[{"prediction": "x"}]', "ground_truth"),
    ('[{"ground_truth": "x"}]', "prediction"),
    ('[{"prediction": 3, "ground_truth": "x"}]', "must be a string"),
    ('[{"prediction": "x", "ground_truth": []}]', "non-empty list"),
    ('"just a string"', "expected a JSON list"),
    ("[]", "no items"),
])  # fmt: skip
def test_malformed_files_name_file_and_problem(tmp_path, content, problem):
    from musilingo.metrics.score import read_pairs

    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ManifestError, match=problem) as e:
        read_pairs(path)
    assert str(path) in str(e.value)


def test_missing_files_and_unmatched_ids(tmp_path):
    from musilingo.metrics.score import read_pairs

    with pytest.raises(ManifestError, match="not found"):
        read_pairs(tmp_path / "nope.json")
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prediction": "x"}\n')
    (tmp_path / "r.jsonl").write_text('{"id": "b", "reference": "y"}\n')
    with pytest.raises(ManifestError, match="'a' has no reference"):
        read_pairs(tmp_path / "p.jsonl", tmp_path / "r.jsonl")


def test_import_has_no_side_effects():
    import subprocess
    import sys

    code = ("import sys, musilingo.metrics.score, musilingo.metrics.lpmc, musilingo.metrics.coco, "
            "musilingo.metrics.mullama, musilingo.metrics.attributes, musilingo.metrics.bertscore;"
            "print(any(m in sys.modules for m in ('torch', 'bert_score', 'nltk', 'pycocoevalcap')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
