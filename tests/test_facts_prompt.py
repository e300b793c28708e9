"""The measured-facts line: in the prompt, cached beside the features, merged over windows, read
by a model that says it reads facts (its answers carry the line they read)."""

import json
import warnings

import pytest
import soundfile as sf
import torch

from musilingo.analysis.facts import Facts, Key, Loudness, Meter, Tag, Tags, Tempo, merge_facts
from musilingo.data.manifest import Record
from musilingo.errors import ConfigError
from musilingo.llm import tiny_tokenizer
from musilingo.prompts import AUDIO_SLOT, Turn, get_prompt_style

from conftest import SR, tone

LINE = "Measured: 96 bpm (sure), 3/4 (fairly sure), G major (unsure); tags: piano, no vocals"


def fake_facts(bpm=96.0, sig="3/4", tonic="G", mode="major", tags=("piano",), vocals=False,
               duration=10.0, conf=0.9) -> Facts:
    feel = {"3/4": "triple", "6/8": "compound"}.get(sig, "duple")
    return Facts(
        duration_s=duration,
        tempo=Tempo(bpm, conf, [0.5, 1.1], [0.5], bpm),
        meter=Meter(sig, feel, int(sig[0]) if sig[0] in "234" else 2, conf, conf),
        key=Key(tonic, mode, conf, True, 0.8, "krumhansl"),
        loudness=Loudness(-20.0, 3.0, -1.0, "steady"),
        tags=Tags([Tag(t, "MTT", 0.9, 0.5) for t in tags], vocals, 0.8, 0.7 if vocals else 0.1))


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def test_chat_style_puts_the_facts_line_after_the_audio_and_never_in_the_loss(tok):
    style = get_prompt_style("chat", tok)
    r = style.render([Turn("Describe it.", "A waltz.")], tok, 2, facts=LINE)
    assert r.text.startswith(f"<|im_start|>user\n<AudioHere>\n{LINE}\nDescribe it.<|im_end|>")
    answer = tok.decode([i for i, m in zip(r.ids, r.loss_mask) if m])
    assert answer == "A waltz.<|im_end|>"
    after_audio = r.ids[r.ids.index(AUDIO_SLOT) + 2:]
    assert tok.decode(after_audio).startswith(f"\n{LINE}\nDescribe")
    # no facts: the prompt is exactly the one without
    plain = style.render([Turn("Describe it.", "A waltz.")], tok, 2)
    assert LINE not in plain.text and "<AudioHere>\nDescribe it." in plain.text


def test_musilingo_style_facts_and_bad_lines(tok):
    r = get_prompt_style("musilingo").render([Turn("What key?")], tok, 1, facts=LINE)
    assert r.text == f"###Human: <Audio><AudioHere></Audio> {LINE} What key? ###Assistant: "
    for bad in ("", "two\nlines", "x <AudioHere>"):
        with pytest.raises(ValueError, match="facts line"):
            get_prompt_style("musilingo").render([Turn("Q")], tok, 1, facts=bad)
    with pytest.raises(ConfigError, match="facts"):
        get_prompt_style("plain").render([Turn("", "cap")], tok, 1, facts=LINE)


def test_facts_round_trip_through_json_and_merge_over_windows():
    f = fake_facts()
    again = Facts.from_dict(json.loads(json.dumps(f.to_dict())))
    assert again == f and again.summary() == f.summary()
    a = fake_facts(bpm=120, tonic="D", tags=("guitar", "rock"), vocals=True, duration=30)
    b = fake_facts(bpm=121, tonic="D", tags=("guitar",), duration=30)
    c = fake_facts(bpm=90, tonic="A", mode="minor", tags=("piano",), duration=10)
    m = merge_facts([a, b, c])
    assert round(m.tempo.bpm) in (120, 121) and (m.key.tonic, m.key.mode) == ("D", "major")
    assert m.duration_s == 70 and m.tags.vocals  # a voice anywhere is a voice in the track
    assert [t.name for t in m.tags.tags] == ["guitar"]  # in 60 of 70 s; rock (30 s) and piano are not
    assert m.tempo.beats[-1] == pytest.approx(60 + 1.1)  # beat times on the track's clock
    assert m.key.confidence < a.key.confidence  # a disagreeing window lowers it
    assert merge_facts([a]) is a
    with pytest.raises(ValueError):
        merge_facts([])


def _clips(tmp_path, n=2):
    recs = []
    for i in range(n):
        p = tmp_path / f"c{i}.wav"
        sf.write(str(p), tone(3, SR, 220 * (i + 1)), SR)
        recs.append(Record(id=f"c{i}", audio=str(p)))
    return recs


def test_feature_cache_keeps_facts_per_window_and_survives_a_torn_line(tmp_path, monkeypatch):
    from musilingo.analysis import pipeline
    from musilingo.encoders.mert import random_mert
    from musilingo.features import FeatureCache, FeatureSpec, build_feature_cache

    calls = []
    monkeypatch.setattr(pipeline, "analyze", lambda x, sr, with_tags=True: calls.append(len(x)) or fake_facts())
    spec = FeatureSpec(random_mert(), 325, facts=True)
    recs = _clips(tmp_path)
    # features first without facts (an older cache), then facts added without re-encoding
    build_feature_cache(FeatureSpec(spec.encoder, 325), recs, tmp_path / "cache", progress=False)
    cache, stats = build_feature_cache(spec, recs, tmp_path / "cache", progress=False)
    assert stats["encoded"] == 0 and len(calls) == 2
    assert cache.facts("c1")[0].summary() == fake_facts().summary()
    # the same key: a facts spec reads the same features
    assert FeatureCache(tmp_path / "cache", spec).dir == cache.dir
    with open(cache.dir / "facts.jsonl", "a") as f:
        f.write('{"id": "c9", "wind')  # a line torn by a kill
    again = FeatureCache(tmp_path / "cache", spec)
    assert again.has_facts("c0") and not again.has_facts("c9")
    # merged over its windows as the model reads them; None for a clip without facts here
    assert again.merged_facts("c0").summary() == fake_facts().summary()
    assert again.merged_facts("c9") is None
    again.put_facts({"c8": [None]})  # no window could be measured
    assert again.has_facts("c8") and again.merged_facts("c8") is None
    # facts measured by another analysis (other fitted constants) are measured again
    import musilingo.analysis as analysis_pkg
    from musilingo.analysis import fitted

    fp = analysis_pkg.fingerprint()
    monkeypatch.setattr(fitted, "VOCALS_THRESHOLD", fitted.VOCALS_THRESHOLD + 0.1)
    assert analysis_pkg.fingerprint() != fp
    refit = FeatureCache(tmp_path / "cache", spec)
    assert not refit.has_facts("c0") and not refit.has_facts("c1")
    cache, stats = build_feature_cache(spec, recs, tmp_path / "cache", progress=False)
    assert stats["encoded"] == 0 and len(calls) == 4
    assert FeatureCache(tmp_path / "cache", spec).has_facts("c0")
    # a clip the analysis cannot measure gets None for that window, not an error
    monkeypatch.setattr(pipeline, "analyze", lambda x, sr, with_tags=True: (_ for _ in ()).throw(ValueError("silent")))
    assert spec.measure([tone(1, SR)]) == [None]


@pytest.fixture(scope="module")
def facts_model():
    from musilingo.model import MusiLingo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MusiLingo.from_pretrained("tiny", device="cpu", overrides={"facts": True})
    assert m.config.facts and m.feature_spec.facts
    return m


def test_a_facts_model_reads_the_line_and_reports_it(facts_model, wav_factory, monkeypatch):
    from musilingo.analysis import pipeline

    monkeypatch.setattr(pipeline, "analyze", lambda x, sr, with_tags=True: fake_facts(duration=len(x) / sr))
    seen = []
    real = facts_model.build_inputs

    def spy(*a, **kw):
        seen.append(kw.get("facts"))
        return real(*a, **kw)

    monkeypatch.setattr(facts_model, "build_inputs", spy)
    ans = facts_model.ask(wav_factory("a.wav", seconds=3.0), "What key?",
                          options=None, batch_size=2)
    assert ans.error is None and ans.facts == fake_facts(duration=3.0).summary()
    assert seen[-1] == [ans.facts]
    assert ans.to_json()["facts"] == ans.facts
    # features without facts are refused, not answered blind
    with pytest.raises(ValueError, match="measured facts"):
        facts_model.answer_features([[torch.zeros(2, facts_model.encoder.feature_dim)]], [[Turn("Q")]])
    chat = facts_model.start_chat(wav_factory("b.wav", seconds=3.0))
    assert chat.facts == ans.facts


def test_each_file_keeps_its_own_facts_across_groups(facts_model, wav_factory, monkeypatch):
    """Answered in groups, each file gets its own facts line, a bad file its error, a window the
    analysis cannot measure no line, and an analysis crash reaches the caller."""
    from musilingo.analysis import pipeline

    def fake(x, sr, with_tags=True):
        if len(x) / sr > 3.4:
            raise ValueError("silent")
        return fake_facts(bpm=round(len(x) / sr * 10), duration=len(x) / sr)

    monkeypatch.setattr(pipeline, "analyze", fake)
    files = [wav_factory(f"f{i}.wav", seconds=s) for i, s in enumerate((2.1, 2.5, 3.5, 2.8, 3.1))]
    bad = wav_factory("empty.wav", seconds=0.0)
    out = dict(facts_model.iter_answers(files[:2] + [bad] + files[2:], "What tempo?", batch_size=2))
    assert out[2].error and out[2].facts is None
    assert out[3].error is None and out[3].facts is None  # not measurable: answered without a line
    for k, secs in ((0, 2.1), (1, 2.5), (4, 2.8), (5, 3.1)):
        assert out[k].error is None
        assert out[k].facts == fake_facts(bpm=round(secs * 10), duration=secs).summary()

    def crash(x, sr, with_tags=True):
        raise RuntimeError("analysis crashed")

    monkeypatch.setattr(pipeline, "analyze", crash)
    with pytest.raises(RuntimeError, match="analysis crashed"):
        facts_model.prepare([files[0]])


def test_an_answer_of_a_model_without_facts_has_no_facts_key(tiny_model, wav_factory):
    ans = tiny_model.ask(wav_factory("c.wav", seconds=2.0), "What key?")
    assert ans.facts is None and "facts" not in ans.to_json()


def test_training_with_facts_text_samples_and_an_extra_manifest(tmp_path, monkeypatch):
    """A tiny run that reads measured facts (never the truth), mixes in MusicCaps text-only samples
    (no audio tokens) and a second manifest; the facts lines of transposed key samples move with
    the features."""
    from pathlib import Path

    from musilingo.analysis import pipeline
    from musilingo.data.manifest import QA, write_manifest
    from musilingo.model import MusiLingo
    from musilingo.train import TrainConfig, train
    from musilingo.train.feature_source import FeatureSource
    from musilingo.train.samples import Sample, text_only_samples

    monkeypatch.setattr(pipeline, "analyze", lambda x, sr, with_tags=True: fake_facts(tonic="G"))
    recs = []
    for i in range(3):
        p = tmp_path / f"c{i}.wav"
        sf.write(str(p), tone(2.0, SR, 220 * (i + 1), seed=i), SR)
        recs.append(Record(id=f"c{i}", audio=str(p), split="train", caption="a tone.",
                           qa=[QA("What key?", "A major.", "key")],
                           attributes={"key_tonic": "A", "key_mode": "major"}))
    write_manifest(tmp_path / "m.jsonl", recs[:2])
    write_manifest(tmp_path / "extra.jsonl", recs[2:])
    csv = Path(__file__).parent / "fixtures" / "musiccaps-excerpt.csv"
    cfg = TrainConfig(train=str(tmp_path / "m.jsonl"), extra_train=[str(tmp_path / "extra.jsonl")],
                      out=str(tmp_path / "run"), init="tiny", facts=True, musiccaps_text=str(csv),
                      musiccaps_text_limit=3, lr=1e-2, min_lr=1e-3, warmup_steps=1, max_steps=3,
                      batch_size=4, save_every=3, val_every=3, log_every=1,
                      feature_cache=str(tmp_path / "cache"), seed=0)
    texts = text_only_samples(cfg)
    assert len(texts) == 3 and all(s.clip_id is None and s.facts.startswith("Tags: ") for s in texts)
    folder = train(cfg)
    config = json.loads((folder / "config.json").read_text())
    assert config["facts"] is True and "extra.jsonl" in config["trained_on"]
    assert "3 text-only samples from the MusicCaps captions" in config["trained_on"]
    # what the batches carried: the cached facts (G major, not the truth's A major), moved by
    # a transposed sample's interval (built by hand: the tiny encoder has no Basic Pitch bins for
    # key_transpose to move); text-only samples bring their tags line and no audio
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MusiLingo.from_pretrained(str(folder), device="cpu")
    source = FeatureSource(model, recs, cfg)
    batch = [Sample("c0", recs[0].audio, [Turn("What key?", "C major.")], transpose=5), texts[0]]
    lines = source.facts(batch)
    assert "C major" in lines[0] and "G major" not in lines[0]
    assert lines[1] == texts[0].facts
    assert source.batch(batch)[1].shape[0] == 0
    with pytest.raises(ConfigError, match="feature_cache"):
        TrainConfig(train="m.jsonl", facts=True, feature_cache=None)


def test_facts_only_template_answers_from_the_measured_facts_and_is_scored_like_the_model():
    from musilingo.attributes import class_sentence
    from musilingo.evaluate.baselines import facts_classes
    from musilingo.evaluate.items import build_items
    from musilingo.metrics.attributes import score_attribute

    truth = {"tempo_bpm": 130.0, "meter": "3/4", "key_tonic": "D", "key_mode": "minor",
             "instrument_families": ["piano", "strings"], "drums": False, "style": "rock"}
    rec = Record(id="r", audio="r.wav", attributes=truth)
    items = build_items([rec], "attributes")
    facts = fake_facts(bpm=128, sig="3/4", tonic="D", mode="minor", tags=("piano", "violin", "rock"))
    classes = facts_classes(items, {"r": facts})
    by_attr = {it.attribute: classes.get(it.id) for it in items}
    assert by_attr == {"tempo": "fast", "meter": "3/4", "key": ("D", "minor"),
                       "instruments": frozenset({"piano", "strings"}), "drums": "no", "style": "rock"}
    for it in items:  # the sentences parse back to the classes: every one is right here
        assert score_attribute(it.attribute, class_sentence(it.attribute, classes[it.id]), truth) == 1.0
    # no tags: no claim about instruments, drums or style; an untonal clip claims no key
    facts.tags, facts.key.tonal = None, False
    bare = facts_classes(items, {"r": facts})
    assert {it.attribute for it in items if it.id in bare} == {"tempo", "meter", "key"}
    assert bare["r:key"] == (None, None)


def test_chords_merge_on_the_track_clock_and_reach_the_http_answer():
    """Windows' chord segments are laid end to end on the track's clock; the server answers them
    as spans with lead-sheet symbols, and null when no window was measured."""
    from musilingo.analysis.facts import Chords, ChordSegment
    from musilingo.model import PreparedAudio
    from musilingo.serve.pipeline import _chord_spans

    a, b = fake_facts(duration=30.0), fake_facts(duration=10.0)
    a.chords = Chords([ChordSegment(0.0, 20.0, "A:min", 0.9), ChordSegment(20.0, 30.0, "F:maj", 0.8)])
    b.chords = Chords([ChordSegment(0.0, 10.0, "C:maj", 0.7)])
    m = merge_facts([a, b])
    assert [(c.start, c.end, c.label) for c in m.chords.segments] == [
        (0.0, 20.0, "A:min"), (20.0, 30.0, "F:maj"), (30.0, 40.0, "C:maj")]
    assert m.chords.progression() == ["Am", "F", "C"]
    assert Facts.from_dict(json.loads(m.to_json())).chords == m.chords
    assert merge_facts([a, fake_facts()]).chords is None  # a window without chords: none claimed
    prepared = PreparedAudio("x.wav", 40.0, [(0.0, 30.0), (30.0, 40.0)], [], facts=[a, b])
    spans = _chord_spans(prepared)
    assert [(s.start_s, s.end_s, s.chord, s.label) for s in spans] == [
        (0.0, 20.0, "Am", "A:min"), (20.0, 30.0, "F", "F:maj"), (30.0, 40.0, "C", "C:maj")]
    assert _chord_spans(PreparedAudio("x.wav", 3.0, [(0.0, 3.0)], [], facts=[])) is None
