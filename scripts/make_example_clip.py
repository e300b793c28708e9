"""Make the example clip shipped with the package (src/musilingo/assets/example.ogg).

An original 12-bar waltz in G major, 3/4 at 96 bpm: piano melody, string-ensemble chords and an
acoustic bass, no drums; rendered with FluidSynth and the FluidR3_GM soundfont (MIT licence) at
24 kHz mono. Its true attributes are written beside it (example.json). Rerun to rebuild:
    python scripts/make_example_clip.py
Needs the Debian packages fluidsynth and fluid-soundfont-gm, and pretty_midi.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

from musilingo.music import chord_label

OUT = Path(__file__).resolve().parents[1] / "src" / "musilingo" / "assets"
SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
BPM = 96.0
BEAT = 60.0 / BPM
# (chord root MIDI, chord quality) per bar: I vi IV V ... in G major
BARS = [(55, "maj"), (52, "min"), (48, "maj"), (50, "maj")] * 3
MELODY = [71, 74, 72, 71, 69, 67, 69, 71, 72, 74, 72, 69, 71, 67, 71, 74, 76, 74, 72, 71, 69, 67, 66, 67,
          71, 74, 72, 71, 69, 67, 69, 71, 72, 74, 72, 69]


def build() -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=BPM)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(3, 4, 0.0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(pretty_midi.key_name_to_key_number("G major"), 0.0))
    piano = pretty_midi.Instrument(program=0, name="piano")
    strings = pretty_midi.Instrument(program=48, name="strings")
    bass = pretty_midi.Instrument(program=32, name="bass")
    for bar, (root, quality) in enumerate(BARS):
        t0 = bar * 3 * BEAT
        third = 3 if quality == "min" else 4
        for p in (root, root + third, root + 7):
            strings.notes.append(pretty_midi.Note(70, p, t0 + BEAT, t0 + 3 * BEAT))
        bass.notes.append(pretty_midi.Note(90, root - 12, t0, t0 + BEAT * 0.9))
        for k in range(3):
            pitch = MELODY[(bar * 3 + k) % len(MELODY)]
            piano.notes.append(pretty_midi.Note(95, pitch, t0 + k * BEAT, t0 + (k + 0.95) * BEAT))
    pm.instruments += [piano, strings, bass]
    return pm


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp, "ex.mid"), Path(tmp, "ex.wav")
        build().write(str(mid))
        subprocess.run(["fluidsynth", "-ni", "-F", str(wav), "-r", "24000", "-g", "0.7", SF2, str(mid)],
                       check=True, capture_output=True, timeout=60)
        audio, sr = sf.read(str(wav), dtype="float32")
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    mono = mono[: int(len(BARS) * 3 * BEAT * sr + 0.8 * sr)]
    mono = 0.9 * mono / max(1e-6, float(np.abs(mono).max()))
    sf.write(str(OUT / "example.ogg"), mono, sr, format="OGG", subtype="VORBIS")
    truth = {"file": "example.ogg", "duration_s": round(len(mono) / sr, 2), "key_tonic": "G",
             "key_mode": "major", "tempo_bpm": BPM, "meter": "3/4", "style": "waltz",
             "instruments": ["Acoustic Grand Piano", "String Ensemble 1", "Acoustic Bass"],
             "instrument_families": ["piano", "ensemble", "bass"], "drums": False,
             "chord_timeline": [[round(b * 3 * BEAT, 3), round((b + 1) * 3 * BEAT, 3),
                                 chord_label(root % 12, quality)] for b, (root, quality) in enumerate(BARS)],
             "made_by": "scripts/make_example_clip.py (original composition; FluidR3_GM soundfont, MIT)"}
    (OUT / "example.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"wrote {OUT / 'example.ogg'} ({truth['duration_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
