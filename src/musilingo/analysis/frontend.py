"""The shared measurements every fact is estimated from: one pass over the audio.

:func:`measure` turns mono audio into a :class:`Frontend`: librosa's onset-strength envelopes
(full band and bass band), a semitone constant-Q spectrum (per-frame chroma and its time average
per semitone), Basic Pitch's note posteriors averaged per piano key (optional), musicnn's tag
probabilities from both shipped heads (optional) and loudness figures. The fact modules
(:mod:`.tempo`, :mod:`.meter`, :mod:`.key`, :mod:`.tags`, :mod:`.loudness`) read only this
object, so the benchmark can cache it per clip and re-run every decision on the dev split in
milliseconds.

What it does not: decide anything (no tempo, key or tag is chosen here), decode files
(:func:`musilingo.audio.load_audio`). librosa is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

SAMPLE_RATE = 22050  # Hz: librosa's default and Basic Pitch's input rate
HOP = 512  # samples per frame: 22050 / 512 = 43.07 frames/s (23.2 ms)
FRAME_RATE = SAMPLE_RATE / HOP
CQT_FMIN_MIDI = 24  # C1 (32.7 Hz): the lowest semitone of the constant-Q spectrum
CQT_SEMITONES = 84  # 7 octaves, C1..B7 (32.7 Hz - 3951 Hz)
CQT_BINS_PER_SEMITONE = 3  # 36 bins per octave, summed per semitone: robust to mistuning
BASS_CUTOFF_HZ = 200.0  # mel bands below this make the bass onset envelope
BASS_CHROMA_BELOW_MIDI = 48  # C3 (131 Hz): the semitones C1..B2 make the bass chroma
MIN_DURATION_S = 2.0  # shorter audio holds too few beats to measure anything


@dataclass
class Frontend:
    """Raw measurements of one clip (arrays are float32; T frames at :data:`FRAME_RATE`)."""

    duration_s: float
    """length of the analysed audio in seconds"""
    onset_env: np.ndarray
    """[T] librosa onset strength (spectral flux over 128 mel bands, median aggregated)"""
    bass_onset_env: np.ndarray
    """[T] onset strength over the mel bands below BASS_CUTOFF_HZ"""
    chroma: np.ndarray
    """[12, T] constant-Q chroma per frame (log-compressed semitone energy folded to C..B)"""
    cqt_mean: np.ndarray
    """[84] time-averaged log-compressed constant-Q energy per semitone, C1..B7"""
    note_mean: np.ndarray | None
    """[88] Basic Pitch note posteriors averaged over time per piano key A0..C8; None if skipped"""
    note_lowest: np.ndarray | None
    """[88] fraction of frames in which each key is the lowest one sounding (posterior > 0.5)"""
    tag_probs: dict[str, np.ndarray] | None
    """variant ("MTT_musicnn", "MSD_musicnn") -> [50] clip-level tag probabilities; None if skipped"""
    lufs: float
    """integrated loudness (ITU-R BS.1770-4) in LUFS; -inf for silence"""
    short_term_lufs: np.ndarray
    """[n] loudness of 3 s windows every 1 s (EBU R128 short-term), for the loudness range"""
    peak_dbfs: float
    """sample peak in dBFS"""
    bass_chroma: np.ndarray | None = None
    """[12, T] the same chroma from the semitones below BASS_CHROMA_BELOW_MIDI only (chord
    roots); None in measurements cached before it existed"""

    def to_npz(self) -> dict[str, np.ndarray]:
        """Flat arrays for ``np.savez`` (None fields are left out)."""
        out: dict[str, np.ndarray] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, dict):
                for k, a in v.items():
                    out[f"tag_probs.{k}"] = np.asarray(a)
            else:
                out[f.name] = np.asarray(v)
        return out

    @classmethod
    def from_npz(cls, z) -> Frontend:
        """The inverse of :meth:`to_npz` (``z``: an ``np.load`` result or a dict)."""
        keys = set(z.keys())
        tags = {k.split(".", 1)[1]: np.asarray(z[k]) for k in keys if k.startswith("tag_probs.")}
        kw = {}
        for f in fields(cls):
            if f.name == "tag_probs":
                kw[f.name] = tags or None
            elif f.name in keys:
                a = np.asarray(z[f.name])
                kw[f.name] = float(a) if a.ndim == 0 else a
            else:
                kw[f.name] = None
        return cls(**kw)


def _loudness(samples: np.ndarray, sr: int) -> tuple[float, np.ndarray, float]:
    import pyloudnorm

    x = np.asarray(samples, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    peak_db = 20.0 * np.log10(peak) if peak > 0 else float("-inf")
    meter = pyloudnorm.Meter(sr)
    lufs = float(meter.integrated_loudness(x)) if len(x) > int(0.4 * sr) else float("-inf")
    win, step = 3 * sr, sr  # EBU R128 short-term loudness: 3 s windows, here every 1 s
    st = [meter.integrated_loudness(x[s:s + win]) for s in range(0, max(1, len(x) - win + 1), step)
          if len(x[s:s + win]) > int(0.4 * sr)]
    # integrated_loudness gates at -70 LUFS; a window of silence comes back -inf
    return lufs, np.asarray(st, dtype=np.float32), peak_db


def _semitone_cqt(samples: np.ndarray) -> np.ndarray:
    """[84, T] log-compressed constant-Q energy per semitone C1..B7 (22050 Hz input)."""
    import librosa

    bps = CQT_BINS_PER_SEMITONE
    # the centre bin of each semitone's three sits on the equal-tempered pitch
    fmin = librosa.midi_to_hz(CQT_FMIN_MIDI) * 2.0 ** (-1.0 / (12 * bps))
    C = np.abs(librosa.cqt(samples, sr=SAMPLE_RATE, hop_length=HOP, fmin=fmin,
                           n_bins=CQT_SEMITONES * bps, bins_per_octave=12 * bps))
    energy = (C**2).reshape(CQT_SEMITONES, bps, -1).sum(axis=1)
    return np.log1p(100.0 * np.sqrt(energy)).astype(np.float32)


def _note_summary(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    note = _basic_pitch().posteriorgrams(samples)["note"]  # [T, 88]
    if len(note) == 0:
        return np.zeros(88, np.float32), np.zeros(88, np.float32)
    active = note > 0.5
    lowest = np.zeros(88, np.float32)
    has = active.any(axis=1)
    idx = np.argmax(active, axis=1)[has]
    np.add.at(lowest, idx, 1.0)
    return note.mean(axis=0).astype(np.float32), lowest / max(1, len(note))


_BP = None


def _basic_pitch():
    global _BP
    if _BP is None:
        from musilingo.encoders.basic_pitch import BasicPitchEncoder

        _BP = BasicPitchEncoder()
    return _BP


def measure(samples: np.ndarray, sr: int, notes: bool = True, tags: bool = True) -> Frontend:
    """Measure mono ``samples [S]`` at ``sr`` Hz (resampled to 22050 Hz here).

    ``notes``: run Basic Pitch (key evidence from transcribed notes); ``tags``: run both musicnn
    heads. Raises ValueError for audio shorter than :data:`MIN_DURATION_S` or silent audio
    (callers turn it into a per-file error).
    """
    import librosa

    from musilingo.audio import SILENCE_PEAK, resample

    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    duration = len(x) / sr
    if duration < MIN_DURATION_S:
        raise ValueError(f"too short to measure: {duration:.2f} s (at least {MIN_DURATION_S:g} s)")
    if not np.isfinite(x).all():
        raise ValueError("contains NaN or infinite samples")
    if float(np.max(np.abs(x))) < SILENCE_PEAK:
        raise ValueError(f"silent (peak below {SILENCE_PEAK:g}): nothing to measure")
    y = resample(x, sr, SAMPLE_RATE)
    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, hop_length=HOP, n_mels=128)
    S = librosa.power_to_db(mel, ref=np.max)
    onset_env = librosa.onset.onset_strength(S=S, sr=SAMPLE_RATE, hop_length=HOP)
    mel_f = librosa.mel_frequencies(n_mels=128, fmax=SAMPLE_RATE / 2)
    bass_env = librosa.onset.onset_strength(S=S[mel_f < BASS_CUTOFF_HZ], sr=SAMPLE_RATE,
                                            hop_length=HOP)
    cqt = _semitone_cqt(y)
    chroma = np.zeros((12, cqt.shape[1]), np.float32)
    bass_chroma = np.zeros_like(chroma)
    for s in range(CQT_SEMITONES):
        chroma[(CQT_FMIN_MIDI + s) % 12] += cqt[s]
        if CQT_FMIN_MIDI + s < BASS_CHROMA_BELOW_MIDI:
            bass_chroma[(CQT_FMIN_MIDI + s) % 12] += cqt[s]
    note_mean = note_lowest = None
    if notes:
        note_mean, note_lowest = _note_summary(y)
    tag_probs = None
    if tags:
        from musilingo.encoders.musicnn import SAMPLE_RATE as MUSICNN_SR
        from musilingo.encoders.musicnn import VARIANTS, tag_probabilities

        y16 = resample(x, sr, MUSICNN_SR)
        tag_probs = {v: tag_probabilities(y16, v) for v in VARIANTS}
    lufs, st, peak = _loudness(x, sr)
    return Frontend(duration_s=float(duration), onset_env=onset_env.astype(np.float32),
                    bass_onset_env=bass_env.astype(np.float32), chroma=chroma,
                    cqt_mean=cqt.mean(axis=1), note_mean=note_mean, note_lowest=note_lowest,
                    tag_probs=tag_probs, lufs=lufs, short_term_lufs=st, peak_dbfs=peak,
                    bass_chroma=bass_chroma)
