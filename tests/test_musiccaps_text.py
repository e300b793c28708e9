"""Text-only MusicCaps samples (musilingo.data.musiccaps_text): reading, the split rule, the tags
line, the vocals rule, answers that say only what the row's aspects say, determinism."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import pytest

from musilingo.attributes import SCHEMA
from musilingo.data import musiccaps_text as mt
from musilingo.errors import ManifestError
from musilingo.prompts import CAPTION_INSTRUCTION

EXCERPT = Path(__file__).resolve().parent / "fixtures" / "musiccaps-excerpt.csv"
FULL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "musiccaps-public.csv"
needs_full = pytest.mark.skipif(not FULL.is_file(),
                                reason=f"the full MusicCaps CSV is not at {FULL}")

# Words an answer may use besides the row's own aspect words: the templates' function words and
# the few nouns the templates name the question's subject with.
TEMPLATE_WORDS = frozenset((
    "yes", "no", "a", "an", "the", "i", "can", "hear", "there", "is", "are", "it", "this", "and",
    "voice", "voices", "sing", "sings", "vocals", "music", "style", "mood", "feels", "sounds",
    "features", "instruments", "has",
))


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _write_csv(path: Path, rows: list[dict]) -> Path:
    cols = ("ytid", "start_s", "end_s", "audioset_positive_labels", "aspect_list", "caption",
            "author_id", "is_balanced_subset", "is_audioset_eval")
    base = {"start_s": "30", "end_s": "40", "audioset_positive_labels": "/m/04rlf",
            "aspect_list": "['rock', 'male vocal']", "caption": "A rock song.", "author_id": "1",
            "is_balanced_subset": "False", "is_audioset_eval": "False"}
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({**base, **r})
    return path


# ------------------------------------------------------------------------------------------
# Reading


def test_read_musiccaps_types_and_columns():
    rows = mt.read_musiccaps(EXCERPT)
    assert len(rows) == 30
    r = rows[1]
    assert r["ytid"] == "-0SdAVK79lg" and r["is_audioset_eval"] is False
    assert r["aspect_list"][:2] == ["guitar song", "piano backing"]
    assert r["start_s"] == 30.0 and r["end_s"] == 40.0 and r["is_balanced_subset"] is False
    assert sum(x["is_audioset_eval"] for x in rows) == 17


@pytest.mark.parametrize("row, message", [
    ({"ytid": "bad", "aspect_list": "['rock', 'male vocal'"}, r":3: field 'aspect_list'"),
    ({"ytid": "bad", "is_audioset_eval": "maybe"}, r":3: field 'is_audioset_eval'"),
    ({"ytid": "bad", "caption": "  "}, r":3: empty 'caption'"),
    ({"ytid": "bad", "aspect_list": "['rock', 3]"}, r": row 'bad': aspect_list holds 3"),
])
def test_malformed_rows_name_file_and_line(tmp_path, row, message):
    path = _write_csv(tmp_path / "mc.csv", [{"ytid": "good"}, row])
    with pytest.raises(ManifestError, match=re.escape(str(path)) + message):
        mt.text_samples(path)


def test_missing_column_and_missing_file(tmp_path):
    path = tmp_path / "mc.csv"
    path.write_text("ytid,caption\nabc,A song.\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="lacks column"):
        mt.read_musiccaps(path)
    with pytest.raises(ManifestError, match="not found"):
        mt.read_musiccaps(tmp_path / "absent.csv")


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        mt.text_samples(EXCERPT, split="test")
    with pytest.raises(ValueError, match="qa_per_row"):
        mt.text_samples(EXCERPT, qa_per_row=-1)


# ------------------------------------------------------------------------------------------
# Splits


def _row_ids(samples) -> set[str]:
    return {s.id.rsplit("/", 1)[0] for s in samples}


def test_split_rule_excerpt():
    rows = mt.read_musiccaps(EXCERPT)
    evaluation = {r["ytid"] for r in rows if r["is_audioset_eval"]}
    train, held = mt.text_samples(EXCERPT), mt.text_samples(EXCERPT, split="eval")
    assert _row_ids(train) == {r["ytid"] for r in rows} - evaluation  # 13 rows
    assert _row_ids(held) == evaluation  # 17 rows
    assert all(s.source == "musiccaps-text" for s in train + held)


@needs_full
def test_split_rule_full_csv_no_eval_row_in_train():
    rows = mt.read_musiccaps(FULL)
    evaluation = {r["ytid"] for r in rows if r["is_audioset_eval"]}
    assert len(rows) == 5521 and len(evaluation) == 2858
    train = _row_ids(mt.text_samples(FULL))
    assert not train & evaluation and len(train) == 5521 - 2858


# ------------------------------------------------------------------------------------------
# Vocals rule

VOCALS_TABLE = [
    # aspects, caption, expected
    (["soft female vocal", "sad"], "", True),
    (["male singer"], "", True),
    (["rap", "hip hop"], "", True),
    (["male voice rapping"], "", True),
    (["choir", "church"], "", True),
    (["male voice speaking", "tutorial"], "", True),
    (["vocalisation"], "", True),
    (["instrumental", "piano"], "", False),
    (["no voice", "guitar"], "", False),
    (["no singer"], "", False),
    (["hard rock instrumental"], "", False),
    (["instrumental music"], "", False),
    (["instrumental", "male voice speaking"], "", None),  # a guitar lesson: contradiction
    (["playback instrumental", "female vocal"], "", True),  # a backing track under a voice
    (["piano", "sad"], "", None),
    (["singing bowls", "meditation"], "", None),
    (["birds singing"], "", None),
    (["crowd cheering", "people talking"], "", None),
    (["female voice like sound", "theremin"], "", None),
    (["humming noise"], "", None),
    (["singer-songwriter"], "", None),
    (["no other instruments", "no percussion"], "", None),
    # the caption only when the aspects say nothing
    (["piano"], "A piano plays. There are no voices in this song.", False),
    (["piano"], "This is an instrumental piece for piano.", False),
    (["piano"], "A male voice sings over a piano.", True),
    (["piano"], "The synth sounds like a human voice.", None),
    (["piano"], "There are no vocals. A man is singing.", None),
    (["piano"], "A piano plays softly.", None),
    (["instrumental"], "A male voice sings over a piano.", False),  # the aspects decide
]


@pytest.mark.parametrize("aspects, caption, expected", VOCALS_TABLE)
def test_vocals_rule(aspects, caption, expected):
    assert mt.vocals(aspects, caption) is expected


@pytest.mark.parametrize("aspects, caption, line", [
    (["Soft  Female Vocal", "sad", "sad", "ballad"], "",
     "Tags: soft female vocal, sad, ballad, vocals"),
    (["piano", "instrumental"], "", "Tags: piano, instrumental, no vocals"),
    (["piano"], "", "Tags: piano"),
    (["piano"], "There are no voices.", "Tags: piano, no vocals"),
    (["no vocals", "piano", "no voice"], "", "Tags: piano, no vocals"),
    ([f"tag {i}" for i in range(12)] + ["male singer"], "",
     "Tags: " + ", ".join(f"tag {i}" for i in range(mt.MAX_TAGS)) + ", vocals"),
])
def test_tags_line(aspects, caption, line):
    assert mt.tags_line(aspects, caption) == line


def test_tags_line_mirrors_the_facts_line():
    # Facts.summary(): "Measured: ...; tags: piano, classical, no vocals"
    line = mt.tags_line(["piano", "classical", "no voice"])
    assert line == "Tags: piano, classical, no vocals"
    assert re.fullmatch(r"Tags: [^;]+", line)


# ------------------------------------------------------------------------------------------
# Answers


@pytest.mark.parametrize("aspects, kind, answer", [
    (["soft female vocal"], "vocals", "Yes, a soft female voice sings."),
    (["backup singers"], "vocals", "Yes, backup voices sing."),
    (["high pitched female vocal melody"], "vocals", "Yes, a high pitched female voice sings."),
    (["male voice singing"], "vocals", "Yes, a male voice sings."),
    (["male voice"], "vocals", "Yes, there is a male voice."),
    (["rap"], "vocals", "Yes, I can hear rap."),
    (["instrumental music"], "vocals", "No, it is instrumental."),
    (["no singer"], "vocals", "No, there is no singer."),
    (["no voices"], "vocals", "No, there are no vocals."),  # "no voices" is not shown
    (["rock music", "pop song"], "style", None),
    (["sad", "happy mood"], "mood", None),
    (["mellow piano melody", "electric guitars", "guitar solo"], "instruments", None),
    (["slow tempo"], "tempo", None),
    (["steady drumming"], "drums", "Yes, I can hear steady drumming."),
    (["no percussion"], "drums", "No, there is no percussion."),
])
def test_answers(aspects, kind, answer):
    qa = dict(mt.row_qa(aspects, random.Random(0), qa_per_row=9))
    assert kind in qa and qa[kind].question in mt.QUESTIONS[kind]
    if answer is not None:
        assert qa[kind].answer == answer


def test_vocabulary_readers():
    assert mt.genres(["rock music", "pop song", "drum & bass", "country feel", "hip-hop"]) == \
        ["rock", "pop", "drum & bass", "hip-hop"]
    assert mt.moods(["happy mood", "sad", "slow tempo", "Sad"]) == ["happy", "sad"]
    assert mt.instruments(["mellow piano melody", "electric guitars", "guitar solo",
                           "synth pop", "drum & bass", "no drums", "bass"]) == \
        ["piano", "electric guitars", "bass"]
    assert mt.drums(["acoustic drums"]) is True
    assert mt.drums(["no drums"]) is False
    assert mt.drums(["drum & bass", "steel drums"]) is None
    assert mt.drums(["no percussion", "drum machine"]) is None


def test_no_kind_without_support():
    assert mt.row_qa(["low quality", "noisy"], random.Random(0)) == []
    kinds = [k for k, _ in mt.row_qa(["slow tempo", "fast tempo"], random.Random(0), 9)]
    assert "tempo" not in kinds  # a tempo that changes is not answered


def test_speech_is_not_called_singing():
    for seed in range(20):
        qa = dict(mt.row_qa(["guitar lesson", "male voice speaking"], random.Random(seed), 9))
        assert qa["vocals"].question == "Is there a voice in this music?"


def test_questions_use_the_attribute_wordings():
    for kind in ("instruments", "style", "tempo", "drums"):
        assert mt.QUESTIONS[kind][0] == SCHEMA[kind].question


def test_caption_sample():
    samples = mt.text_samples(EXCERPT)
    rows = {r["ytid"]: r for r in mt.read_musiccaps(EXCERPT)}
    caps = [s for s in samples if s.kinds == ["caption"]]
    assert len(caps) == 13
    for s in caps:
        (turn,) = s.turns
        assert turn.question == CAPTION_INSTRUCTION
        assert turn.answer == " ".join(rows[s.id.split("/")[0]]["caption"].split())
    first = next(s for s in samples if s.id == "-0SdAVK79lg/caption")
    assert first.tags_line == ("Tags: guitar song, piano backing, simple percussion, relaxing "
                               "melody, slow tempo, bass, country feel, instrumental, no vocals")


def test_deterministic_for_a_seed():
    a, b = mt.text_samples(EXCERPT, seed=3), mt.text_samples(EXCERPT, seed=3)
    assert a == b
    c = mt.text_samples(EXCERPT, seed=4)
    assert [s.turns for s in a] != [s.turns for s in c]
    assert [s.tags_line for s in a] == [s.tags_line for s in c]
    assert all(len(s.turns) <= 1 for s in mt.text_samples(EXCERPT, qa_per_row=1))
    assert all(s.kinds == ["caption"] for s in mt.text_samples(EXCERPT, qa_per_row=0))


def test_summary_excerpt():
    got = mt.summary(mt.text_samples(EXCERPT))
    assert got["rows"] == 13 and got["caption_samples"] == 13
    assert got["samples"] == got["caption_samples"] + got["qa_samples"]
    assert got["turns"] == got["caption_samples"] + sum(got["qa_kinds"].values())
    assert got["vocals"] == {"yes": 5, "no": 2, "unknown": 6}
    assert set(got["qa_kinds"]) <= set(mt.QA_KINDS)


# ------------------------------------------------------------------------------------------
# Property: every answer says only what the row's aspects (and its tags line) say


def _check_row_answers(samples, rows):
    for s in samples:
        row = rows[s.id.rsplit("/", 1)[0]]
        aspect_words = _words(" ".join(row["aspect_list"]))
        line_words = _words(s.tags_line.removeprefix("Tags: "))
        for kind, turn in zip(s.kinds, s.turns):
            if kind == "caption":
                continue
            extra = _words(turn.answer) - aspect_words - TEMPLATE_WORDS
            assert not extra, (s.id, turn.answer, extra)
            assert not _words(turn.answer) - line_words - TEMPLATE_WORDS, (s.id, turn.answer)
            if kind == "vocals":  # the yes / no is the rule's verdict, which the line ends with
                says = mt.vocals(mt.clean_aspects(row["aspect_list"]))
                assert says is not None and turn.answer.startswith("Yes" if says else "No")
                assert s.tags_line.endswith(", vocals" if says else ", no vocals")
            if kind == "drums":
                says = mt.drums(mt.shown_tags(row["aspect_list"]))
                assert says is not None and turn.answer.startswith("Yes" if says else "No")


def test_answers_come_from_the_aspects_excerpt():
    rows = {r["ytid"]: r for r in mt.read_musiccaps(EXCERPT)}
    _check_row_answers(mt.text_samples(EXCERPT) + mt.text_samples(EXCERPT, split="eval"), rows)


@needs_full
def test_answers_come_from_the_aspects_all_train_rows():
    rows = {r["ytid"]: r for r in mt.read_musiccaps(FULL)}
    samples = mt.text_samples(FULL, qa_per_row=len(mt.QA_KINDS))  # every supported kind
    _check_row_answers(samples, rows)
    got = mt.summary(samples)
    assert got["rows"] == 2663 and got["caption_samples"] == 2663
