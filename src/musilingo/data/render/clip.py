"""One clip, start to end: converter -> MIDI -> window -> audio -> checks -> manifest record.

What it does: :func:`render_clip` runs the spec's converter, loops a short tune, re-saves the
MIDI through pretty_midi (the truth is read from that file), draws the clip start, synthesises
only the window around it, rejects silent or short clips, reads tempo/meter/instruments back,
writes ``audio/<id>.wav`` (and ``midi/<id>.mid`` if asked) and returns the record with its
caption and Q&A.

What it does not: enforce the time limit by alarm, retry, keep state or run in parallel
(:mod:`.pool`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from musilingo.data.manifest import Record
from musilingo.data.render.convert_abc import _abc_midi
from musilingo.data.render.convert_mma import _mma_midi
from musilingo.data.render.convert_music21 import _music21_midi
from musilingo.data.render.midi_analysis import (
    _chord_timeline,
    _instrument_summary,
    _meter_at,
    _tempo_in_window,
    beat_bpm,
)
from musilingo.data.render.midi_edit import _loop_to_length, _window_midi
from musilingo.data.render.options import RenderOptions
from musilingo.data.render.plan import ClipSpec, split_for
from musilingo.data.render.synth import SAMPLE_RATE, _render_wav
from musilingo.music import tonic_name

TAIL_SECONDS = 1.0  # rendered beyond the clip so releases are not cut
PREROLL_SECONDS = 0.5  # rendered before the clip so attacks/controllers settle
SILENCE_DBFS = -60.0  # frames quieter than this count as silence
SILENCE_FRAME_S = 0.05
MAX_SILENT_FRACTION = 0.5  # a clip more silent than this is rejected
MIN_CLIP_RMS = 1e-3


def _frame_db(x: np.ndarray) -> np.ndarray:
    hop = int(SILENCE_FRAME_S * SAMPLE_RATE)
    n = len(x) // hop
    if n == 0:
        return np.full(1, -120.0)
    frames = x[: n * hop].reshape(n, hop)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    return 20 * np.log10(rms)


def render_clip(spec: ClipSpec, options: RenderOptions) -> dict:
    """Render one clip to audio/<id>.wav and return its manifest record as a JSON dict."""
    import pretty_midi
    import soundfile as sf

    from musilingo.data import captions

    deadline = time.monotonic() + options.timeout_s
    rng = np.random.default_rng(spec.seed)
    with tempfile.TemporaryDirectory(prefix="render-") as td:
        tmp = Path(td)
        if spec.source == "music21":
            pm, meta = _music21_midi(spec, rng, tmp)
        elif spec.source == "abc":
            pm, meta = _abc_midi(spec, rng, tmp, deadline)
        else:
            pm, meta = _mma_midi(spec, rng, tmp, deadline)
        if spec.source != "mma":
            meta["repeats"] = _loop_to_length(pm, spec.clip_len) or None
        # Re-save through pretty_midi: orders note on/off so FluidSynth 2.3.1 never hangs on a
        # stuck note; the saved file is the truth the attributes are read from.
        midi_path = tmp / "final.mid"
        pm.write(str(midi_path))
        pm = pretty_midi.PrettyMIDI(str(midi_path))
        starts = [n.start for i in pm.instruments for n in i.notes]
        ends = [n.end for i in pm.instruments for n in i.notes]
        if not starts:
            raise ValueError("MIDI has no notes")
        first, last = min(starts), max(ends)  # skip the silence before the first note
        avail = last - first
        clip_len = min(spec.clip_len, avail)
        if clip_len < options.clip_seconds[0]:
            raise ValueError(f"piece too short: {avail:.1f} s of notes")
        t0 = round(float(first + float(rng.random()) * max(0.0, avail - clip_len)), 3)
        # Render only the window around the clip (long pieces would waste synth time).
        w0 = max(0.0, t0 - PREROLL_SECONDS)
        window = _window_midi(pm, w0, t0 + clip_len + TAIL_SECONDS)
        window_path = tmp / "window.mid"
        window.write(str(window_path))
        wav = _render_wav(window_path, tmp / "window.wav", spec.soundfont, deadline)
        a = int(round((t0 - w0) * SAMPLE_RATE))
        clip = wav[a:a + int(round(clip_len * SAMPLE_RATE))]
        peak = float(np.max(np.abs(clip))) if len(clip) else 0.0
        if peak > 0.99:
            clip = clip * (0.99 / peak)
        rms = float(np.sqrt(np.mean(clip**2))) if len(clip) else 0.0
        silent_frac = float(np.mean(_frame_db(clip) <= SILENCE_DBFS))
        if rms < MIN_CLIP_RMS or silent_frac > MAX_SILENT_FRACTION:
            raise ValueError(f"clip too quiet (rms {rms:.4f}, {silent_frac:.0%} silent)")
        duration = len(clip) / SAMPLE_RATE
        if abs(duration - clip_len) > 0.05:
            raise ValueError(f"clip is {duration:.2f} s, expected {clip_len:.2f} s")
        t1 = t0 + duration
        qpm, varies = _tempo_in_window(pm, t0, t1)
        meter = _meter_at(pm, t0)
        attrs: dict[str, Any] = {}
        if "key" in meta:
            pc, mode = meta["key"]
            attrs["key_tonic"] = tonic_name(pc, mode)
            attrs["key_mode"] = mode
        attrs["tempo_bpm"] = round(float(beat_bpm(qpm, meter)), 1)
        attrs["tempo_qpm"] = round(float(qpm), 1)
        if varies:
            attrs["tempo_varies"] = True
        if meter is not None:
            attrs["meter"] = f"{meter[0]}/{meter[1]}"
        attrs.update(_instrument_summary(pm, t0, t1, meta.get("lead_index")))
        for k in ("style", "genre", "dance_type", "origin", "composer", "collection", "groove",
                  "chords", "transpose", "repeats"):
            if meta.get(k) is not None:
                attrs[k] = meta[k]
        if meta.get("chord_progression"):  # the chords sounding in the clip (chord truth)
            attrs["chord_timeline"] = _chord_timeline(pm, meta["chord_progression"], t0, t1)
        attrs["soundfont"] = Path(spec.soundfont).stem
        attrs["clip_start_s"] = t0
        if not attrs["instruments"]:
            raise ValueError("no pitched instrument sounds in the clip")
        audio_rel = f"audio/{spec.clip_id}.wav"
        out_wav = options.out_dir / audio_rel
        out_wav.parent.mkdir(parents=True, exist_ok=True)
        tmp_wav = out_wav.with_suffix(".tmp.wav")
        sf.write(str(tmp_wav), clip, SAMPLE_RATE, subtype="PCM_16")
        os.replace(tmp_wav, out_wav)
        if options.keep_midi:
            (options.out_dir / "midi").mkdir(parents=True, exist_ok=True)
            shutil.copy(midi_path, options.out_dir / "midi" / f"{spec.clip_id}.mid")
    caption = captions.make_caption(attrs, seed=spec.seed)
    qa = captions.make_qa(attrs, seed=spec.seed)
    rec = Record(id=spec.clip_id, audio=audio_rel, duration=round(duration, 3),
                 split=split_for(spec.split_key), source=f"{spec.source}:{spec.collection}",
                 work_id=spec.work_id, caption=caption, qa=qa, attributes=attrs)
    return rec.to_json()
