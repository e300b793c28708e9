"""The measured facts of one clip: typed, JSON-serialisable, with a stable one-line summary.

Every fact carries a ``confidence`` in [0, 1]: the estimated probability that the fact is right,
read from a calibration table fitted on the dev split of the rendered corpus (see
:mod:`.calibration` and docs/analysis.md). :func:`confidence_word` turns it into the word the
summary line uses.

What it does not: measure anything (:mod:`.pipeline` does), or parse a summary back.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field

#: tag names about the voice (both heads): the vocals fact speaks for them in the summary
VOICE_TAGS = frozenset({
    "vocal", "vocals", "singing", "voice", "male", "female", "woman", "man", "male vocal",
    "female vocal", "male voice", "female voice", "choir", "choral", "opera", "male vocalists",
    "female vocalists", "female vocalist", "no vocals", "no vocal", "no voice",
})  # fmt: skip
NO_VOICE_TAGS = ("no vocals", "no vocal", "no voice")

SURE_FROM = 0.85  # confidence >= 0.85: "sure"
FAIRLY_SURE_FROM = 0.6  # 0.6 <= confidence < 0.85: "fairly sure"; below: "unsure"
SUMMARY_MAX_TAGS = 5  # tags named in the summary line, strongest first


def confidence_word(confidence: float) -> str:
    """``"sure"`` from 0.85, ``"fairly sure"`` from 0.6, else ``"unsure"``."""
    if confidence >= SURE_FROM:
        return "sure"
    return "fairly sure" if confidence >= FAIRLY_SURE_FROM else "unsure"


def _r(x: float, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


@dataclass
class Tempo:
    """Tempo of the felt beat (the dotted quarter in compound meters, as the corpus counts it)."""

    bpm: float
    """beats per minute"""
    confidence: float
    """probability that ``bpm`` is within 10 % of the true tempo (dev-calibrated)"""
    beats: list[float] = field(default_factory=list)
    """beat times in seconds (librosa's dynamic-programming beat tracker at ``bpm``)"""
    downbeats: list[float] = field(default_factory=list)
    """bar starts in seconds (every ``beats_per_bar``-th beat from the meter's phase)"""
    stock_bpm: float | None = None
    """librosa's stock estimate (``feature.rhythm.tempo``), before octave / 3:2 resolution"""


@dataclass
class Meter:
    """Time signature guess from beat-level accent periodicity."""

    signature: str
    """"2/4", "3/4", "4/4", "6/8", "9/8" or "12/8\""""
    feel: str
    """"duple" (2 or 4 beats, split in two), "triple" (3 beats) or "compound" (beats split in three)"""
    beats_per_bar: int
    """felt beats per bar: 2, 3 or 4"""
    confidence: float
    """probability that ``signature`` is exactly right (dev-calibrated)"""
    feel_confidence: float
    """probability that ``feel`` is right (dev-calibrated)"""


@dataclass
class Key:
    """Tonic and mode from pitch-class evidence correlated with a key profile."""

    tonic: str
    """conventional spelling for the mode (``musilingo.music.tonic_name``)"""
    mode: str
    """"major" or "minor\""""
    confidence: float
    """probability that tonic and mode are both right (dev-calibrated)"""
    tonal: bool
    """False when the best profile correlation is too weak to claim a key (noise, drums, atonal)"""
    correlation: float
    """Pearson correlation of the evidence with the best key's profile"""
    profile: str
    """key profile used (a key of ``musilingo.music.KEY_PROFILES``)"""


@dataclass
class Tag:
    """A musicnn tag whose probability passed its threshold."""

    name: str
    source: str
    """"MTT" (MagnaTagATune head) or "MSD" (Million Song Dataset head)"""
    probability: float
    threshold: float
    """per-tag threshold (docs/analysis.md says how each was chosen)"""


@dataclass
class Tags:
    """Real-world tags from both musicnn heads, and the vocals fact."""

    tags: list[Tag]
    """tags over their thresholds, strongest (probability / threshold) first"""
    vocals: bool
    """a voice sings or speaks"""
    vocals_confidence: float
    """confidence in ``vocals`` (see docs/analysis.md: vocals could not be calibrated on data)"""
    vocal_probability: float
    """musicnn's evidence for a voice (largest MTT voice-tag probability)"""


@dataclass
class Loudness:
    """Loudness (ITU-R BS.1770-4 / EBU R128, via pyloudnorm) and dynamics."""

    lufs: float
    """integrated loudness in LUFS"""
    loudness_range_lu: float
    """spread of the 3 s short-term loudness, 95th - 10th percentile (EBU R128 LRA without its
    relative gate), in LU"""
    peak_dbfs: float
    """sample peak in dBFS"""
    dynamics: str
    """"steady" (range < 4 LU), "varied" (4-10 LU) or "wide" (>= 10 LU)"""
    confidence: float = 1.0
    """a measurement, not an estimate"""


@dataclass
class ChordSegment:
    """One stretch of the clip with one chord."""

    start: float
    """seconds"""
    end: float
    """seconds"""
    label: str
    """Harte syntax: ``"C:maj"``, ``"F#:min"``, or ``"N"`` (no chord)"""
    confidence: float
    """mean posterior of the chord over the segment (not calibrated: docs/analysis.md)"""


@dataclass
class Chords:
    """Major / minor triads over time (:mod:`.chords`)."""

    segments: list[ChordSegment]

    def progression(self, max_chords: int = 8) -> list[str]:
        """The first ``max_chords`` chord symbols in order of sounding, each change once:
        ``["C", "G", "Am", "F"]`` (segments of no chord left out)."""
        from musilingo.music import NO_CHORD, chord_symbol

        out: list[str] = []
        for seg in self.segments:
            if seg.label != NO_CHORD and (not out or out[-1] != chord_symbol(seg.label)):
                out.append(chord_symbol(seg.label))
        return out[:max_chords]


@dataclass
class Facts:
    """Everything measured on one clip."""

    duration_s: float
    tempo: Tempo
    meter: Meter
    key: Key
    loudness: Loudness
    tags: Tags | None = None
    """None when tagging was skipped"""
    chords: Chords | None = None
    """None in facts cached before chords were estimated (not part of the summary line: the
    shipped models were trained on summaries without them)"""
    seconds: float | None = None
    """analysis time (not part of the summary)"""

    def to_dict(self) -> dict:
        """A JSON-ready dict (non-finite numbers become None)."""

        def clean(v):
            if isinstance(v, float):
                return _r(v, 4)
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        return clean(asdict(self))

    def to_json(self) -> str:
        """One line of JSON (keys in field order)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def summary(self) -> str:
        """The compact, deterministic facts line, e.g. ``Measured: 96 bpm (sure), 3/4 (fairly
        sure), G major (fairly sure); tags: piano, classical, no vocals``.

        Tempo as a whole number, meter and key each with their confidence word; an untonal clip
        says "no clear key"; then up to SUMMARY_MAX_TAGS tags (voice tags left out: the vocals
        fact ends the line as "vocals" or "no vocals").
        """
        t, m, k = self.tempo, self.meter, self.key
        key = (f"{k.tonic} {k.mode} ({confidence_word(k.confidence)})" if k.tonal
               else "no clear key")
        line = (f"Measured: {round(t.bpm)} bpm ({confidence_word(t.confidence)}), "
                f"{m.signature} ({confidence_word(m.confidence)}), {key}")
        if self.tags is not None:
            names: list[str] = []
            for tag in self.tags.tags:
                n = tag.name.lower()
                if n not in VOICE_TAGS and n not in names:
                    names.append(n)
            names = names[:SUMMARY_MAX_TAGS]
            names.append("vocals" if self.tags.vocals else "no vocals")
            line += "; tags: " + ", ".join(names)
        return line

    @classmethod
    def from_dict(cls, d: dict) -> Facts:
        """The inverse of :meth:`to_dict` (as cached next to the features)."""
        tags = d.get("tags")
        return cls(
            duration_s=d["duration_s"], tempo=Tempo(**d["tempo"]), meter=Meter(**d["meter"]),
            key=Key(**d["key"]),
            loudness=Loudness(**{k: (v if v is not None else float("nan"))
                                 for k, v in d["loudness"].items()}),
            tags=None if tags is None else Tags([Tag(**t) for t in tags["tags"]], tags["vocals"],
                                                tags["vocals_confidence"], tags["vocal_probability"]),
            chords=None if d.get("chords") is None
            else Chords([ChordSegment(**c) for c in d["chords"]["segments"]]),
            seconds=d.get("seconds"))


def merge_facts(windows: list[Facts]) -> Facts:
    """One set of facts for a track measured window by window (what a whole-track answer reads).

    Each categorical fact (tempo rounded to 2 bpm, time signature, tonic + mode) takes the value
    with the largest summed confidence x window length, its confidence the mean over the windows
    that agree (windows that disagree lower it by their share); tags keep those found in at least
    half of the track's length, and vocals are present when any window has them. Loudness is the
    longest window's. A single window is returned as it is.
    """
    if not windows:
        raise ValueError("merge_facts needs at least one window")
    if len(windows) == 1:
        return windows[0]
    total = sum(w.duration_s for w in windows) or 1.0

    def vote(value, conf):
        score: dict = {}
        for w in windows:
            score[value(w)] = score.get(value(w), 0.0) + conf(w) * w.duration_s + 1e-9
        best = max(score, key=score.get)
        agree = [w for w in windows if value(w) == best]
        share = sum(w.duration_s for w in agree) / total
        return agree, share * sum(conf(w) for w in agree) / len(agree)

    t_agree, t_conf = vote(lambda w: round(w.tempo.bpm / 2), lambda w: w.tempo.confidence)
    m_agree, m_conf = vote(lambda w: w.meter.signature, lambda w: w.meter.confidence)
    k_agree, k_conf = vote(lambda w: (w.key.tonal, w.key.tonic, w.key.mode), lambda w: w.key.confidence)
    t0, m0, k0 = t_agree[0], m_agree[0], k_agree[0]
    beats, downbeats, start = [], [], 0.0
    for w in windows:  # beat times on the track's clock
        beats += [round(b + start, 3) for b in w.tempo.beats]
        downbeats += [round(b + start, 3) for b in w.tempo.downbeats]
        start += w.duration_s
    tags = None
    if all(w.tags is not None for w in windows):
        seen: dict[tuple[str, str], tuple[float, Tag]] = {}
        for w in windows:
            for g in w.tags.tags:
                d, best = seen.get((g.source, g.name), (0.0, g))
                seen[(g.source, g.name)] = (d + w.duration_s, max(best, g, key=lambda x: x.probability))
        kept = [g for d, g in seen.values() if d >= total / 2]
        kept.sort(key=lambda g: (-g.probability / g.threshold, g.source, g.name))
        voiced = [w for w in windows if w.tags.vocals]
        ref = max(voiced or windows, key=lambda w: w.tags.vocal_probability)
        tags = Tags(kept, bool(voiced), ref.tags.vocals_confidence, ref.tags.vocal_probability)
    chords = None
    if all(w.chords is not None for w in windows):  # the windows' segments on the track's clock
        chords, start = Chords([]), 0.0
        for w in windows:
            chords.segments += [ChordSegment(round(c.start + start, 3), round(c.end + start, 3),
                                             c.label, c.confidence) for c in w.chords.segments]
            start += w.duration_s
    longest = max(windows, key=lambda w: w.duration_s)
    return Facts(
        duration_s=round(total, 3),
        tempo=Tempo(float(statistics.median(w.tempo.bpm for w in t_agree)), round(t_conf, 4), beats,
                    downbeats, t0.tempo.stock_bpm),
        meter=Meter(m0.meter.signature, m0.meter.feel, m0.meter.beats_per_bar, round(m_conf, 4),
                    m0.meter.feel_confidence),
        key=Key(k0.key.tonic, k0.key.mode, round(k_conf, 4), k0.key.tonal, k0.key.correlation,
                k0.key.profile),
        loudness=longest.loudness, tags=tags, chords=chords)
