"""ABC folk tune -> MIDI (through ``abc2midi``): one clip's tempo, instruments, transposition,
dance type, origin and key truth.

What it does: cuts one tune out of an ABC file, reads its header (R: dance type -> tempo range,
O: Essen origin, K: key checked against the final melody note), replaces its tempo with the
drawn one, runs ``abc2midi`` under the clip's deadline, assigns programs to the melody and the
abc2midi accompaniment and transposes; returns the pretty_midi object and the clip's metadata.

What it does not: render audio, cut the clip or read tempo/meter/instruments back
(:mod:`.clip`, :mod:`.midi_analysis`).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from musilingo.data.render.catalogue import ABC_GROUPS, _abc_tune_starts
from musilingo.data.render.instruments import GM_BASS, GM_COMP, _choose_programs
from musilingo.data.render.midi_edit import MAX_TRANSPOSE, _drop_empty, _transpose_pm
from musilingo.data.render.plan import ClipSpec
from musilingo.data.render.timeouts import _run
from musilingo.music import pitch_class

ABC2MIDI_BIN = "abc2midi"
# Dance type (normalised R: header) -> qpm range (quarter notes per minute as written to MIDI).
DANCE_QPM = {
    "reel": (180, 220), "hornpipe": (140, 176), "jig": (150, 186), "double jig": (150, 186),
    "slip jig": (150, 180), "single jig": (150, 186), "slide": (170, 200),
    "strathspey": (110, 140), "highland fling": (120, 150), "clog": (140, 170),
    "polka": (170, 210), "waltz": (120, 160), "march": (100, 124), "air": (60, 90),
    "barndance": (140, 170), "schottische": (130, 160), "mazurka": (120, 150),
    "set dance": (120, 150), "gavotte": (90, 120), "walkaround": (100, 130),
}
DANCE_ALIASES = {"slipjig": "slip jig", "fling": "highland fling", "double-jig": "double jig",
                 "slow air": "air", "set": "set dance", "barn dance": "barndance"}
SONG_QPM = (70, 120)
# Essen O: (origin) words -> English adjective; the most specific match wins.
ESSEN_ORIGINS = (
    ("Europa", "European"), ("Mitteleuropa", "Central European"), ("Osteuropa", "Eastern European"),
    ("Suedosteuropa", "Southeast European"), ("Deutschland", "German"), ("China", "Chinese"),
    ("Luxemburg", "Luxembourgish"), ("Lothringen", "Lorraine"), ("Jugoslawien", "Yugoslav"),
    ("Frankreich", "French"), ("Niederlande", "Dutch"), ("Irland", "Irish"),
    ("UdSSR", "Russian"), ("Russland", "Russian"), ("Ungarn", "Hungarian"),
    ("Tschechoslowakei", "Czech"), ("Schweiz", "Swiss"), ("Rumaenien", "Romanian"),
    ("Polen", "Polish"), ("Oesterreich", "Austrian"), ("Daenemark", "Danish"),
    ("Schweden", "Swedish"), ("Italien", "Italian"), ("England", "English"),
    ("Schottland", "Scottish"), ("Norwegen", "Norwegian"), ("Finnland", "Finnish"),
    ("Belgien", "Belgian"), ("Griechenland", "Greek"), ("Spanien", "Spanish"),
)


def _essen_origin(o_field: str) -> str | None:
    best = None
    for comp in o_field.split(","):
        for word, adj in ESSEN_ORIGINS:
            if re.search(rf"\b{word}\b", comp):
                best = adj
                break
    return best
_MODE_OFFSETS = {"major": 0, "dorian": 2, "phrygian": 4, "lydian": 5, "mixolydian": 7,
                 "minor": 9, "locrian": 11}  # tonic above the relative major
_MODE_BY_OFFSET = {v: k for k, v in _MODE_OFFSETS.items()}
_ABC_MODE = {"": "major", "maj": "major", "ion": "major", "m": "minor", "min": "minor",
             "aeo": "minor", "dor": "dorian", "phr": "phrygian", "lyd": "lydian",
             "mix": "mixolydian", "loc": "locrian"}


def _key_from_signature_and_final(sig_major_pc: int,
                                  final_pc: int | None) -> tuple[int, str] | None:
    """Mode from where the tune ends within its key signature (folk tunes end on the tonic)."""
    if final_pc is None:
        return None
    off = (final_pc - sig_major_pc) % 12
    mode = _MODE_BY_OFFSET.get(off)
    return (final_pc, mode) if mode else None


def _abc_tune_text(path: str, tune: int) -> str:
    text = Path(path).read_text(encoding="latin-1")
    starts = _abc_tune_starts(text) + [len(text)]
    return text[starts[tune]:starts[tune + 1]]


def _parse_abc_key(value: str) -> tuple[int, str, int] | None:
    """K: value -> (tonic pc, mode, pc of the relative major); None for K:none/percussion."""
    m = re.match(r"\s*([A-Ga-g])([#b]?)\s*([A-Za-z]*)", value)
    if not m:
        return None
    pc = pitch_class(m.group(1) + m.group(2))
    mode_word = m.group(3).lower()[:3]
    if mode_word in ("non", "per", "exp"):
        return None
    mode = _ABC_MODE.get(mode_word, _ABC_MODE.get(mode_word[:1], "major"))
    return pc, mode, (pc - _MODE_OFFSETS[mode]) % 12


def _normalise_dance(r: str) -> str | None:
    r = re.sub(r"[^a-z ]+", " ", r.lower()).strip()
    r = re.sub(r"\s+", " ", r)
    r = DANCE_ALIASES.get(r, r)
    return r if r in DANCE_QPM else None


def _abc_midi(spec: ClipSpec, rng: np.random.Generator, tmp: Path, deadline: float):
    import pretty_midi

    text = _abc_tune_text(spec.path, spec.tune)
    header = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]):\s*(.*)$", line)
        if m and m.group(1) not in header:
            header[m.group(1)] = m.group(2).strip()
        if line.startswith("K:"):
            break
    dance = _normalise_dance(header.get("R", "")) if spec.group != "essen" else None
    lo, hi = DANCE_QPM.get(dance, SONG_QPM) if dance else SONG_QPM
    qpm = int(rng.integers(lo, hi + 1))
    # Replace tempo fields (header and inline) with ours; Q: goes right after X:.
    lines = [ln for ln in text.splitlines() if not ln.startswith("Q:")]
    body = re.sub(r"\[Q:[^\]]*\]", "", "\n".join(lines[1:]))
    tune_txt = f"{lines[0]}\nQ:1/4={qpm}\n{body}\n"
    abc_path, midi_path = tmp / "tune.abc", tmp / "abc.mid"
    abc_path.write_text(tune_txt, encoding="latin-1")
    _run([ABC2MIDI_BIN, str(abc_path), "-o", str(midi_path)], deadline - time.monotonic())
    if not midi_path.is_file():
        raise ValueError("abc2midi wrote no MIDI")
    pm = pretty_midi.PrettyMIDI(str(midi_path))
    _drop_empty(pm)
    if not pm.instruments:
        raise ValueError("tune produced no notes")
    # Truth for the key: the K: field, checked against the final melody note.
    key = None
    parsed = _parse_abc_key(header.get("K", ""))
    if parsed is not None:
        tonic_pc, mode, rel_major = parsed
        melody = pm.instruments[0]
        last_on = max(n.start for n in melody.notes)
        final_pc = min(n.pitch for n in melody.notes if n.start == last_on) % 12
        if final_pc == tonic_pc:
            key = (tonic_pc, mode)
        elif mode == "major" and spec.group == "essen":
            # Essen's K: gives only the signature; the final note tells the mode.
            key = _key_from_signature_and_final(rel_major, final_pc)
        elif mode != "major":
            key = (tonic_pc, mode)  # explicit mode written by the transcriber
    programs = _choose_programs(len(pm.instruments), "folk", rng)
    if len(pm.instruments) >= 2:  # abc2midi accompaniment: chords and bass from "gchords"
        mean_pitch = [float(np.mean([n.pitch for n in inst.notes])) for inst in pm.instruments]
        bass_j = 1 + int(np.argmin(mean_pitch[1:])) if len(pm.instruments) > 2 else -1
        for j in range(1, len(pm.instruments)):
            if j == bass_j:
                table, fams = GM_BASS, ["bass", "piano"]
            else:
                table, fams = GM_COMP, list(GM_COMP)
            fam = fams[int(rng.integers(len(fams)))]
            choices = table[fam]
            programs[j] = int(choices[int(rng.integers(len(choices)))])
    for inst, prog in zip(pm.instruments, programs):
        inst.program, inst.is_drum = prog, False
    semis = int(rng.integers(-MAX_TRANSPOSE, MAX_TRANSPOSE + 1))
    _transpose_pm(pm, semis)
    origin = _essen_origin(header.get("O", "")) if spec.group == "essen" else None
    if spec.group == "essen":
        style = f"{origin} folk song" if origin else "folk song"
    elif dance:
        style = dance
    else:
        style = ABC_GROUPS[spec.group]["style"]
    meta = {"style": style, "collection": spec.collection, "transpose": semis, "lead_index": 0}
    if dance:
        meta["dance_type"] = dance
    if origin:
        meta["origin"] = origin
    if key is not None:
        meta["key"] = ((key[0] + semis) % 12, key[1])
    return pm, meta
