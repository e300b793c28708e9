"""Real recordings from Debian packages, pseudo-labelled the LP-MusicCaps way
(``musilingo data real-music``).

What it does: for each package (default :data:`musilingo.data.debian.DEFAULT_PACKAGES`) fetches
and unpacks it and reads the licence of each music file (:mod:`musilingo.data.debian`), decodes
each track with :func:`musilingo.audio.load_audio` (mono, 24 kHz), cuts up to
``max_clips_per_track`` clips of ``clip_s`` seconds spread over it (tracks shorter than one clip
and quiet clips are skipped), writes each clip to ``audio/PACKAGE/ID.wav`` and measures it with
:mod:`musilingo.analysis` (tempo, meter, key with confidences, loudness, both musicnn heads'
tags, vocals present / absent). The caption and Q&A are written from those pseudo labels only
(:func:`pseudo_attributes`): facts the analysis is at least "fairly sure" of (confidence >= 0.6),
teacher tags over their thresholds in plain words (:data:`INSTRUMENT_TAGS`, :data:`GENRE_TAGS`,
:data:`MOOD_TAGS`, the voice tags) and vocals / no vocals. Tempo, meter, key, drums and
instrument sentences come from :mod:`musilingo.data.captions`; the genre, voice and mood
sentences, which rendered MIDI never needed, are here. Splits are by track (``work_id``), ~80/10/10
by hash. Writes ``manifest.jsonl``, ``LICENCES.md``, ``licences.json`` and a copy of each
package's copyright file under ``licences/``.

Resumable: clips are written atomically and each finished clip is recorded in
``state/done/ID.json`` (its whole manifest line); a rerun skips finished clips and decodes only
tracks with clips left. A killed run loses at most the clip in progress.

What it does not: claim what the analysis is unsure of, say "no drums" (a missing tag is not
evidence), name instrument families (the tags name a few instruments, never all of them, so
``instrument_families`` is left out and the set is not scored on instruments), or use the
packages reserved for evaluation (:data:`musilingo.data.debian.RESERVED`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musilingo.analysis.facts import FAIRLY_SURE_FROM, NO_VOICE_TAGS, VOICE_TAGS
from musilingo.attributes import SCHEMA
from musilingo.data import debian

# captions.py's sentence helpers and long-answer questions, shared so both sets read alike
from musilingo.data.captions import _Q, _article, _cap, _join, make_caption, make_qa
from musilingo.data.manifest import (
    QA,
    Record,
    atomic_write_bytes,
    atomic_write_text,
    write_manifest,
)
from musilingo.data.render.plan import split_for
from musilingo.errors import AudioError, ConfigError, MusiLingoError

SAMPLE_RATE = 24_000  # Hz, as the rendered corpus (20 s clip = 480,000 samples)
DEFAULT_CLIP_S = 20.0
DEFAULT_MAX_CLIPS_PER_TRACK = 3
MIN_CLIP_S = 5.0  # shorter clips hold too few beats for the analysis
QUIET_RMS_DBFS = -45.0  # a clip whose RMS is below this is skipped as (near) silence
ACTIVE_FRAME_DBFS = -55.0  # a 0.5 s frame above this RMS counts as sounding ...
MIN_ACTIVE_FRACTION = 0.6  # ... and a clip needs this share of sounding frames
SURE_ENOUGH = FAIRLY_SURE_FROM  # 0.6: a fact is stated from "fairly sure" up
MAX_GENRES = 3  # genre words named per clip, strongest first

# musicnn tag (lower case, either head) -> the words a caption uses for it.
INSTRUMENT_TAGS = {
    "guitar": "guitar", "piano": "piano", "strings": "strings", "violin": "violin",
    "cello": "cello", "harp": "harp", "harpsichord": "harpsichord", "flute": "flute",
    "sitar": "sitar", "synth": "synthesizer",
}  # fmt: skip
#: a guitar is "electric" when one of these genre tags is there, "acoustic" with one of the next
ELECTRIC_GUITAR_TAGS = ("rock", "metal", "hard rock", "heavy metal", "punk", "classic rock",
                        "alternative rock", "indie rock", "progressive rock", "alternative")
ACOUSTIC_GUITAR_TAGS = ("acoustic", "folk", "country")
DRUM_TAGS = ("drums",)
GENRE_TAGS = {
    "classical": "classical", "classic": "classical", "techno": "techno",
    "electronic": "electronic", "rock": "rock", "ambient": "ambient", "indian": "Indian",
    "pop": "pop", "new age": "new age", "dance": "dance", "country": "country", "metal": "metal",
    "alternative": "alternative rock", "indie": "indie", "alternative rock": "alternative rock",
    "jazz": "jazz", "classic rock": "classic rock", "soul": "soul", "indie rock": "indie rock",
    "electronica": "electronica", "folk": "folk", "punk": "punk", "blues": "blues",
    "hard rock": "hard rock", "experimental": "experimental", "hip-hop": "hip-hop",
    "funk": "funk", "electro": "electro", "heavy metal": "heavy metal",
    "progressive rock": "progressive rock", "rnb": "rhythm and blues", "indie pop": "indie pop",
    "house": "house", "easy listening": "easy listening", "chillout": "chill-out",
}  # fmt: skip
MOOD_TAGS = {
    "beautiful": "beautiful", "mellow": "mellow", "chill": "relaxed", "sad": "sad",
    "happy": "happy", "catchy": "catchy", "weird": "strange", "soft": "soft", "sexy": "sensual",
}  # fmt: skip
#: voice tags (either head) -> who sings; "vocal", "singing", "voice"... only say that one does
VOICE_KINDS = {
    "female": "female", "woman": "female", "female vocal": "female", "female voice": "female",
    "female vocalists": "female", "female vocalist": "female", "male": "male", "man": "male",
    "male vocal": "male", "male voice": "male", "male vocalists": "male", "choir": "choir",
    "choral": "choir", "opera": "opera",
}  # fmt: skip
VOICE_PHRASES = {"female": "a female voice", "male": "a male voice",
                 "female+male": "male and female voices", "choir": "a choir",
                 "opera": "an operatic voice", None: "a voice"}
#: tags never put in words: decades, tempo and loudness words (measured instead), the vocals
#: tags (the vocals fact speaks for them) and a few that say nothing about the sound
UNSPOKEN_TAGS = frozenset({
    "00s", "60s", "70s", "80s", "90s", "oldies", "slow", "fast", "loud", "quiet", "beat",
    "beats", "solo", "instrumental", "acoustic", "party",
}) | VOICE_TAGS  # fmt: skip


# ------------------------------------------------------------------------------------------
# Pseudo labels


def _sure(fact: Mapping[str, Any] | None) -> bool:
    return bool(fact) and (fact.get("confidence") or 0.0) >= SURE_ENOUGH


def voice_kind(voice_tags: list[str]) -> str | None:
    """Who sings, from the voice tags over threshold: "female", "male", "female+male", "choir",
    "opera" or None (a voice, no more known)."""
    kinds = {VOICE_KINDS[t] for t in voice_tags if t in VOICE_KINDS}
    if "female" in kinds and "male" in kinds:
        return "female+male"
    for k in ("female", "male", "choir", "opera"):
        if k in kinds:
            return k
    return None


def pseudo_attributes(facts: Mapping[str, Any], voice_tags: list[str] = ()) -> dict[str, Any]:
    """The attributes a caption may state about a clip, from its facts (``Facts.to_dict()``)
    and the voice tags over threshold; everything else is left out.

    Keys as the rendered corpus spells them where they exist (``tempo_bpm``, ``meter``,
    ``key_tonic`` / ``key_mode``, ``instruments``, ``drums``, ``style``), plus ``genres``,
    ``moods``, ``vocals`` and ``voice``. Facts need confidence >= :data:`SURE_ENOUGH`;
    ``drums`` is only ever True.
    """
    a: dict[str, Any] = {}
    tempo, meter, key = facts.get("tempo"), facts.get("meter"), facts.get("key")
    if _sure(tempo) and tempo.get("bpm"):
        a["tempo_bpm"] = float(tempo["bpm"])
    if _sure(meter):
        a["meter"] = meter["signature"]
    if _sure(key) and key.get("tonal"):
        a["key_tonic"], a["key_mode"] = key["tonic"], key["mode"]
    tags = facts.get("tags") or {}
    names = [t["name"].lower() for t in tags.get("tags", [])]  # strongest first
    electric = any(n in ELECTRIC_GUITAR_TAGS for n in names)
    acoustic = any(n in ACOUSTIC_GUITAR_TAGS for n in names)
    instruments, genres, moods = [], [], []
    for n in names:
        if n in UNSPOKEN_TAGS:
            continue
        if n in INSTRUMENT_TAGS:
            word = INSTRUMENT_TAGS[n]
            if word == "guitar" and electric != acoustic:
                word = "electric guitar" if electric else "acoustic guitar"
            instruments.append(word)
        elif n in DRUM_TAGS:
            a["drums"] = True
        elif n in GENRE_TAGS:
            genres.append(GENRE_TAGS[n])
        elif n in MOOD_TAGS:
            moods.append(MOOD_TAGS[n])
    if instruments:
        a["instruments"] = list(dict.fromkeys(instruments))
    if genres:
        a["genres"] = list(dict.fromkeys(genres))[:MAX_GENRES]
        a["style"] = a["genres"][0]
    if moods:
        a["moods"] = list(dict.fromkeys(moods))
    if tags and (tags.get("vocals_confidence") or 0.0) >= SURE_ENOUGH:
        a["vocals"] = bool(tags["vocals"])
        if a["vocals"]:
            kind = voice_kind(list(voice_tags))
            if kind:
                a["voice"] = kind
    return a


# ------------------------------------------------------------------------------------------
# Captions and Q&A from the pseudo labels


def _voice_np(a: Mapping[str, Any]) -> tuple[str, str]:
    """("a female voice", "sings") or ("male and female voices", "sing")."""
    phrase = VOICE_PHRASES[a.get("voice")]
    return phrase, ("sing" if phrase.endswith("voices") else "sings")


def _s_real_opening(a: Mapping[str, Any], r: random.Random) -> str | None:
    g, vocals = a.get("style"), a.get("vocals")
    if vocals is True:
        v, sings = _voice_np(a)
        if g:
            return r.choice([f"This is {_article(g)} track with {v} singing.",
                             f"{_cap(_article(g))} song in which {v} {sings}.",
                             f"The music is {g}, and {v} {sings} over it."])
        return r.choice([f"{_cap(v)} {sings} in this track.",
                         f"The track features {v} singing."])
    if vocals is False:
        if g:
            return r.choice([f"This is an instrumental {g} track.",
                             f"An instrumental {g} piece with no vocals.",
                             f"The music is instrumental {g}, without vocals."])
        return r.choice(["This is an instrumental track with no vocals.",
                         "The music is instrumental; there is no singing."])
    if g:
        return r.choice([f"This is {_article(g)} track.", f"The music is {g}.",
                         f"A piece of {g} music."])
    return None


def _s_more_genres(a: Mapping[str, Any], r: random.Random) -> str | None:
    more = list(a.get("genres", []))[1:]
    if not more:
        return None
    m = f"{_join(more)} music"
    return r.choice([f"It also draws on {m}.", f"There are elements of {m}."])


def _s_one_instrument(a: Mapping[str, Any], r: random.Random) -> str | None:
    inst = a.get("instruments") or []
    if len(inst) != 1:  # two or more: captions.py's instrument sentence
        return None
    n = _article(inst[0])
    return r.choice([f"{_cap(n)} can be heard.", f"It features {n}.", f"You can hear {n}."])


def _s_moods(a: Mapping[str, Any], r: random.Random) -> str | None:
    moods = a.get("moods") or []
    if not moods:
        return None
    m = _join(list(moods))
    return r.choice([f"The mood is {m}.", f"It sounds {m}.", f"The atmosphere is {m}."])


def _body(a: Mapping[str, Any]) -> dict[str, Any]:
    """What captions.py says in its own sentences: two or more instruments (one instrument
    would read "the only instrument"), drums, tempo, meter, key."""
    keys = ("drums", "tempo_bpm", "meter", "key_tonic", "key_mode")
    body = {k: a[k] for k in keys if k in a}
    if len(a.get("instruments") or []) >= 2:
        body["instruments"] = list(a["instruments"])
    return body


def real_caption(a: Mapping[str, Any], seed: int = 0) -> str:
    """A MusicCaps-style caption stating only what ``a`` (:func:`pseudo_attributes`) holds."""
    r = random.Random(f"real-caption:{seed}")
    parts = [_s_real_opening(a, r), _s_more_genres(a, r), _s_one_instrument(a, r)]
    body = _body(a)
    if body:
        parts.append(make_caption(body, seed=seed))
    parts.append(_s_moods(a, r))
    parts = [p for p in parts if p]
    return " ".join(parts) if parts else "An excerpt of a music recording."


_STYLE_Q = (SCHEMA["style"].question, "What genre is this music?",
            "What genre does this track belong to?", "What kind of music is this?")
# (question, the answer "yes" means vocals)
_VOCALS_Q = (("Are there vocals in this music?", True), ("Is there singing in this track?", True),
             ("Does someone sing in this track?", True), ("Is this music instrumental?", False))
_VOICE_Q = ("What kind of voice sings here?", "Who is singing?", "Describe the vocals.")
_MOOD_Q = ("What is the mood of this music?", "How does this music feel?",
           "What atmosphere does this track have?")


def real_qa(a: Mapping[str, Any], seed: int = 0, num_long: int = 1) -> list[QA]:
    """Short Q&A per attribute ``a`` holds (tempo, meter, key, drums and two or more instruments
    through captions.py) plus genre, one instrument, vocals, voice and mood, and ``num_long``
    caption-like answers."""
    r = random.Random(f"real-qa:{seed}")
    out = make_qa(_body(a), seed=seed, num_long=0)
    if a.get("style"):
        g = a["style"]
        ans = r.choice([f"This is {_article(g)} track.", f"It is {g} music.",
                        f"The style is {g}."])
        more = list(a.get("genres", []))[1:]
        if more:
            ans += f" It also has elements of {_join(more)} music."
        out.append(QA(r.choice(_STYLE_Q), ans, kind="style"))
    if len(a.get("instruments") or []) == 1:
        n = _article(a["instruments"][0])
        out.append(QA(SCHEMA["instruments"].question,
                      r.choice([f"I can hear {n}.", f"{_cap(n)} can be heard."]),
                      kind="instruments"))
    if "vocals" in a:
        q, yes_means_vocals = r.choice(_VOCALS_Q)
        if a["vocals"]:
            v, sings = _voice_np(a)
            said = f"{_cap(v)} {sings}."
            ans = f"Yes, {v} {sings}." if yes_means_vocals else f"No, {v} {sings}."
            ans = r.choice([ans, f"{'Yes' if yes_means_vocals else 'No'}. {said}"])
        else:
            ans = ("No, it is instrumental; there are no vocals." if yes_means_vocals
                   else "Yes, it is instrumental, with no vocals.")
        out.append(QA(q, ans, kind="vocals"))
        if a["vocals"] and a.get("voice"):
            v, sings = _voice_np(a)
            out.append(QA(r.choice(_VOICE_Q), f"{_cap(v)} {sings}.", kind="voice"))
    if a.get("moods"):
        m = _join(list(a["moods"]))
        out.append(QA(r.choice(_MOOD_Q), r.choice([f"It sounds {m}.", f"The mood is {m}."]),
                      kind="mood"))
    for j in range(num_long):
        out.append(QA(r.choice(_Q["long"]), real_caption(a, seed=seed * 7919 + 17 + j),
                      kind="description", length="long"))
    return out


# ------------------------------------------------------------------------------------------
# Analysis


def voice_tags(tag_probs: Mapping[str, np.ndarray]) -> list[str]:
    """Voice tags (both heads, lower case) whose probability reaches the tag's threshold;
    the analysis's ``Tags`` keeps only the vocals fact, not who sings."""
    from musilingo.analysis import tags as tagging

    found = []
    for source, variant in tagging.HEADS.items():
        for name, p in zip(tagging.tag_names(source), np.asarray(tag_probs[variant])):
            n = name.lower()
            if n in VOICE_TAGS and n not in NO_VOICE_TAGS and p >= tagging.threshold(source, name):
                found.append(n)
    return list(dict.fromkeys(found))


def analyze_clip(samples: np.ndarray, sr: int) -> tuple[dict, list[str]]:
    """Facts (``Facts.to_dict()``) and voice tags of mono ``samples [S]``: the steps of
    ``musilingo.analysis.analyze``, keeping the tag probabilities for :func:`voice_tags`.
    Raises ValueError for audio the analysis cannot measure."""
    from musilingo.analysis import key, pipeline
    from musilingo.analysis.frontend import measure

    t0 = time.perf_counter()
    fe = measure(samples, sr, notes=key.EVIDENCE in ("notes", "both"), tags=True)
    facts = pipeline.estimate(fe)
    facts.seconds = round(time.perf_counter() - t0, 3)
    return facts.to_dict(), voice_tags(fe.tag_probs)


# ------------------------------------------------------------------------------------------
# Tracks and clips


def clip_spans(duration_s: float, clip_s: float, max_clips: int) -> list[tuple[float, float]]:
    """Up to ``max_clips`` spans of ``clip_s`` seconds spread over a track: the track is cut in
    equal parts and one clip is centred in each. None for a track shorter than one clip."""
    n = min(max_clips, int(duration_s // clip_s))
    if n < 1:
        return []
    part = duration_s / n
    return [(round(k * part + (part - clip_s) / 2, 3), round(k * part + (part + clip_s) / 2, 3))
            for k in range(n)]


def quiet_problem(samples: np.ndarray, sr: int) -> str | None:
    """Why a clip is too quiet to use (RMS or share of sounding 0.5 s frames), or None."""
    x = np.asarray(samples, dtype=np.float64)
    def db(v: float) -> float:
        return 20 * np.log10(max(float(v), 1e-10))

    rms = db(np.sqrt(np.mean(x**2)))
    if rms < QUIET_RMS_DBFS:
        return f"quiet (RMS {rms:.0f} dBFS < {QUIET_RMS_DBFS:g})"
    hop = sr // 2
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    active = float(np.mean([db(np.sqrt(np.mean(f**2))) > ACTIVE_FRAME_DBFS for f in frames]))
    if active < MIN_ACTIVE_FRACTION:
        return f"mostly silent ({active:.0%} of it sounds)"
    return None


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")[:80]


def _seed(clip_id: str) -> int:
    return int(hashlib.sha1(clip_id.encode("utf-8")).hexdigest()[:8], 16)


def _wav_bytes(samples: np.ndarray, sr: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@dataclass
class Track:
    """One music file of a package and what is recorded about it."""

    package: str
    version: str
    path: Path
    work_id: str
    """PACKAGE/path-below-the-package's-music-folder, without suffix (the split key)"""
    licence: debian.Licence
    sidecar: str | None = None


def make_record(track: Track, clip_id: str, span: tuple[float, float], facts: dict,
                voices: list[str], audio: str) -> Record:
    """The manifest line of one clip: pseudo labels, caption, Q&A, licence and provenance."""
    attrs = pseudo_attributes(facts, voices)
    seed = _seed(clip_id)
    lic = track.licence
    return Record(
        id=clip_id, audio=audio, duration=round(span[1] - span[0], 3),
        split=split_for(track.work_id), source=f"debian:{track.package}", work_id=track.work_id,
        caption=real_caption(attrs, seed), qa=real_qa(attrs, seed), attributes=attrs,
        extra={"pseudo_labelled": True, "facts": facts, "voice_tags": voices,
               "licence": {"name": lic.name, "holder": lic.holder,
                           "copyright_file": f"licences/{track.package}.copyright",
                           "stanza": lic.stanza, "sidecar": track.sidecar},
               "origin": {"package": track.package, "version": track.version,
                          "file": track.path.name, "start_s": span[0], "end_s": span[1]}})


# ------------------------------------------------------------------------------------------
# The job


@dataclass
class RealMusicResult:
    """What :func:`build_real_music` did."""

    manifest: Path
    clips: int = 0
    new_clips: int = 0
    skipped: list[str] = field(default_factory=list)
    """notes on what was left out on purpose (short tracks, quiet clips, tracker modules)"""
    failed: list[str] = field(default_factory=list)
    """problems, each naming its package or file (fetch, licence, decode, analysis)"""
    seconds: float = 0.0


def _tracks(package: str, root: Path, version: str, res: RealMusicResult) -> list[Track]:
    files, notes = debian.find_music(root, package)
    res.skipped += notes
    if not files:
        res.skipped.append(f"{package}: no music files found")
        return []
    base = Path(os.path.commonpath([str(p.parent) for p in files]))
    out = []
    for p in files:
        try:
            lic = debian.read_licence(root, package, p)
        except debian.LicenceError as e:
            res.failed.append(str(e))
            continue
        rel = p.relative_to(base).with_suffix("").as_posix()
        side = debian.sidecar_licence(p)
        out.append(Track(package, version, p, f"{package}/{rel}", lic,
                         str(side.relative_to(root)) if side else None))
    return out


def _do_track(track: Track, out: Path, clip_s: float, max_clips: int,
              analyze: Callable[[np.ndarray, int], tuple[dict, list[str]]],
              res: RealMusicResult, log: Callable[[str], None]) -> None:
    import warnings

    from musilingo.audio import SilentAudioWarning, load_audio

    done_dir, state_dir = out / "state" / "done", out / "state" / "tracks"
    base_id = _slug(track.work_id.replace("/", "-"))
    plan_file = state_dir / f"{base_id}.json"
    if plan_file.is_file():
        plan = json.loads(plan_file.read_text())
        if all((done_dir / f"{c}.json").is_file() for c in plan["clips"]):
            res.clips += len(plan["clips"])
            return
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SilentAudioWarning)  # reported as quiet below
            samples, sr = load_audio(track.path, SAMPLE_RATE)
    except AudioError as e:
        res.failed.append(f"{e} (skipped)")
        return
    duration = len(samples) / sr
    clips, spans = [], {}
    for k, span in enumerate(clip_spans(duration, clip_s, max_clips)):
        clip_id = f"{base_id}-{k}"
        seg = samples[int(span[0] * sr):int(span[0] * sr) + round(clip_s * sr)]
        why = quiet_problem(seg, sr)
        if why:
            res.skipped.append(f"{track.path} at {span[0]:.0f} s: {why}")
            continue
        clips.append(clip_id)
        spans[clip_id] = (span, seg)
    if not spans:
        res.skipped.append(f"{track.path}: no usable clip ({duration:.1f} s long, clips of "
                           f"{clip_s:g} s)")
    atomic_write_text(plan_file, json.dumps({"work_id": track.work_id, "duration_s": duration,
                                             "clips": clips}))
    new = 0
    for clip_id, (span, seg) in spans.items():
        done = done_dir / f"{clip_id}.json"
        if done.is_file():
            res.clips += 1
            continue
        rel_audio = f"audio/{track.package}/{clip_id}.wav"
        wav = out / rel_audio
        if not wav.is_file():
            atomic_write_bytes(wav, _wav_bytes(seg, sr))
        try:
            facts, voices = analyze(seg, sr)
        except (ValueError, MusiLingoError) as e:
            res.failed.append(f"{wav}: analysis failed: {e}")
            continue
        rec = make_record(track, clip_id, span, facts, voices, rel_audio)
        atomic_write_text(done, json.dumps(rec.to_json(), ensure_ascii=False))
        res.clips += 1
        new += 1
    res.new_clips += new
    log(f"{track.work_id}: {len(clips)} clips ({new} new) of {duration:.0f} s, "
        f"{time.perf_counter() - t0:.1f} s")


def build_real_music(out: str | os.PathLike, packages: list[str] | None = None,
                     max_clips_per_track: int = DEFAULT_MAX_CLIPS_PER_TRACK,
                     clip_s: float = DEFAULT_CLIP_S,
                     analyze: Callable[[np.ndarray, int], tuple[dict, list[str]]] | None = None,
                     log: Callable[[str], None] | None = None) -> RealMusicResult:
    """Build (or resume) the pseudo-labelled real-music set in ``out``.

    ``packages``: Debian package names (default :data:`debian.DEFAULT_PACKAGES`); a reserved
    one raises :class:`ConfigError` before anything is fetched. ``analyze``: the clip analysis
    (default :func:`analyze_clip`; tests pass a fast stand-in). ``log``: progress lines.
    """
    t0 = time.perf_counter()
    pkgs = list(packages) if packages else list(debian.DEFAULT_PACKAGES)
    for p in pkgs:
        debian.check_not_reserved(p)
    if clip_s < MIN_CLIP_S:
        raise ConfigError(f"clip_s must be at least {MIN_CLIP_S:g} s, got {clip_s:g}")
    if max_clips_per_track < 1:
        raise ConfigError(f"max_clips_per_track must be >= 1, got {max_clips_per_track}")
    out = Path(out)
    log = log or (lambda s: None)
    analyze = analyze or analyze_clip
    res = RealMusicResult(manifest=out / "manifest.jsonl")
    for package in pkgs:
        try:
            root, version = debian.fetch_package(package, out / "packages")
        except MusiLingoError as e:
            res.failed.append(f"{package}: {e}")
            continue
        cfile = debian.copyright_path(root, package)
        if cfile.is_file():
            atomic_write_bytes(out / "licences" / f"{package}.copyright", cfile.read_bytes())
        for track in _tracks(package, root, version, res):
            _do_track(track, out, clip_s, max_clips_per_track, analyze, res, log)
    records = collect_records(out, pkgs)
    if not records:
        raise MusiLingoError(f"{out}: no clips were made"
                             + (f"; first problem: {res.failed[0]}" if res.failed else ""))
    write_manifest(res.manifest, records)
    write_licences(out, records)
    res.seconds = round(time.perf_counter() - t0, 1)
    return res


def collect_records(out: Path, packages: list[str]) -> list[Record]:
    """The finished clips of ``packages`` in ``out/state/done``, sorted by id."""
    wanted = {f"debian:{p}" for p in packages}
    records = []
    for p in sorted((out / "state" / "done").glob("*.json")):
        rec = Record.from_json(json.loads(p.read_text(encoding="utf-8")), str(p))
        if rec.source in wanted and (out / rec.audio).is_file():
            records.append(rec)
    return records


def licence_summary(records: list[Record]) -> dict[str, dict]:
    """Per package: version, each (licence, holder) with its tracks, clips per split."""
    summary: dict[str, dict] = {}
    for r in records:
        pkg = r.extra["origin"]["package"]
        s = summary.setdefault(pkg, {"version": r.extra["origin"]["version"], "licences": {},
                                     "copyright_file": r.extra["licence"]["copyright_file"],
                                     "sidecar_files": [], "clips": {}, "tracks": 0})
        lic = r.extra["licence"]
        entry = s["licences"].setdefault(f"{lic['name']}\t{lic['holder']}",
                                         {"licence": lic["name"], "holder": lic["holder"],
                                          "tracks": []})
        if r.work_id not in entry["tracks"]:
            entry["tracks"].append(r.work_id)
        if lic.get("sidecar") and lic["sidecar"] not in s["sidecar_files"]:
            s["sidecar_files"].append(lic["sidecar"])
        s["clips"][r.split] = s["clips"].get(r.split, 0) + 1
    for s in summary.values():
        s["licences"] = list(s["licences"].values())
        s["tracks"] = sum(len(e["tracks"]) for e in s["licences"])
    return summary


def write_licences(out: Path, records: list[Record]) -> None:
    """``licences.json`` (:func:`licence_summary`) and ``LICENCES.md`` (attribution)."""
    summary = licence_summary(records)
    atomic_write_text(out / "licences.json", json.dumps(summary, ensure_ascii=False, indent=1)
                      + "\n")
    lines = ["# Licences of the real-music set", "",
             "Built by `musilingo data real-music` from the Debian packages below. Each clip is an",
             "excerpt of a track, cut and re-encoded (mono, 24 kHz, 16-bit WAV); captions and Q&A",
             "were generated from automatic analysis. The licence and copyright holder of every",
             "track are as its package's `usr/share/doc/PACKAGE/copyright` states them; that file",
             "is copied to `licences/PACKAGE.copyright`. Share-alike licences apply to the clips.",
             "", "| package | version | licence | copyright holder | tracks | clips |",
             "|---|---|---|---|---:|---:|"]
    for pkg, s in sorted(summary.items()):
        for e in s["licences"]:
            n_clips = sum(1 for r in records if r.work_id in e["tracks"])
            holder = e["holder"].replace("|", "/")
            lines.append(f"| {pkg} | {s['version']} | {e['licence']} | {holder} | "
                         f"{len(e['tracks'])} | {n_clips} |")
    lines += ["", "Clips per split:", ""]
    for pkg, s in sorted(summary.items()):
        counts = ", ".join(f"{k} {s['clips'].get(k, 0)}" for k in ("train", "valid", "test"))
        lines.append(f"- {pkg}: {counts}")
    sidecars = [(pkg, f) for pkg, s in sorted(summary.items()) for f in s["sidecar_files"]]
    if sidecars:
        lines += ["", "Licence files shipped beside the tracks (in the package):", ""]
        lines += [f"- {pkg}: `{f}`" for pkg, f in sidecars]
    atomic_write_text(out / "LICENCES.md", "\n".join(lines) + "\n")


def limit_threads(threads: int) -> None:
    """Run the analysis's networks (musicnn in torch, Basic Pitch in onnxruntime) on
    ``threads`` threads. The analysis has no option for it, so Basic Pitch's shared instance is
    made here once."""
    import torch

    from musilingo.analysis import frontend
    from musilingo.encoders.basic_pitch import BasicPitchEncoder

    torch.set_num_threads(threads)
    if frontend._BP is None:
        frontend._BP = BasicPitchEncoder(num_threads=threads)


def real_music_command(out: str, packages: list[str] | None = None,
                       max_clips_per_track: int = DEFAULT_MAX_CLIPS_PER_TRACK,
                       clip_s: float = DEFAULT_CLIP_S, threads: int = 1,
                       quiet: bool = False) -> int:
    """Build a pseudo-labelled set of real recordings from Debian packages (resumable).

    Fetches each package with apt-get download, cuts its music into clips, measures each clip
    (musilingo analyze) and writes captions and Q&A from what is measured with confidence and
    what the musicnn taggers say, with the licence of every track. Exit code 1 when a package,
    file or clip failed (each is reported); rerun the same command to resume.

    Args:
        out: output folder (manifest.jsonl, audio/, LICENCES.md, licences.json, state/).
        packages: Debian packages to take music from (default: the hand-checked game
            soundtracks listed in docs/training.md); reserved evaluation packages are refused.
        max_clips_per_track: most clips cut from one track, spread over it.
        clip_s: clip length in seconds.
        threads: CPU threads for the analysis's networks.
        quiet: print only problems and the summary line.
    """
    def log(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    for p in packages or []:  # refused before any model is loaded
        debian.check_not_reserved(p)
    limit_threads(threads)
    res = build_real_music(out, packages, max_clips_per_track, clip_s, log=log)
    for line in res.skipped:
        log(f"skipped: {line}")
    for line in res.failed:
        print(f"failed: {line}", file=sys.stderr)
    print(f"manifest: {res.manifest} ({res.clips} clips, {res.new_clips} new, "
          f"{len(res.failed)} problems, {res.seconds:.0f} s); licences: "
          f"{Path(out) / 'LICENCES.md'}")
    return 1 if res.failed else 0
