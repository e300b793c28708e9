"""Which General MIDI instruments play a piece: programs by role and by kind of music.

What it does: holds the GM program tables (melody, bass, accompaniment), the instrument families
that suit each kind of music, homogeneous ensembles for part music, the programs never assigned
(voices, sound effects), and :func:`_choose_programs`, which draws programs for parts top to
bottom from a clip's random generator.

What it does not: name instruments back from MIDI (:mod:`.midi_analysis`) or touch a MIDI file.
"""

from __future__ import annotations

import numpy as np

# General MIDI programs by role. Vocal-like patches (52-54 choir/voice, 85 voice lead, 91 choir
# pad) and sound effects (120-127) are never assigned: captions must not imply voices or noises.
VOCAL_OR_FX_PROGRAMS = frozenset({52, 53, 54, 85, 91, *range(120, 128)})
GM_MELODY = {
    "piano": (0, 1, 4, 6), "chromatic percussion": (8, 11, 12, 13), "organ": (16, 19, 21),
    "guitar": (24, 25, 26, 27), "strings": (40, 41, 46), "ensemble": (48, 49),
    "brass": (56, 60, 61), "reed": (64, 65, 68, 71), "pipe": (72, 73, 74, 75, 78),
    "synth lead": (80, 81), "ethnic": (105, 109, 110),
}
GM_BASS = {
    "piano": (0,), "organ": (19,), "bass": (32, 33, 35), "strings": (42, 43),
    "brass": (57, 58), "reed": (67, 70),
}
GM_COMP = {
    "piano": (0, 1, 4, 5), "organ": (16, 17, 19), "guitar": (24, 25, 26, 27),
    "ensemble": (48, 49, 50), "brass": (61,), "synth pad": (88, 89), "strings": (46, 45),
}
# Sensible instrument families per kind of music: (melody/upper parts, bass part).
FAMILIES_BY_KIND = {
    "chorale": (("organ", "strings", "brass", "reed", "pipe", "piano", "ensemble"),
                ("organ", "strings", "brass", "reed", "piano")),
    "renaissance": (("organ", "strings", "brass", "reed", "pipe", "ensemble"),
                    ("organ", "strings", "brass", "reed")),
    "classical": (("strings", "piano", "reed", "pipe", "brass", "ensemble", "organ"),
                  ("strings", "piano", "reed", "brass")),
    "folk": (("strings", "pipe", "organ", "ethnic", "reed", "piano", "guitar",
              "chromatic percussion"), ("bass", "guitar", "piano")),
}
# Homogeneous ensembles for part music (probability HOMOGENEOUS_P): (upper programs, bass program).
HOMOGENEOUS_ENSEMBLES = (
    ((40, 40, 41), 42),      # string quartet
    ((19, 19, 19), 19),      # church organ
    ((56, 60, 57), 58),      # brass choir
    ((73, 68, 71), 70),      # wind quintet-like
    ((0, 0, 0), 0),          # piano
    ((74, 74, 74), 74),      # recorder consort
)
HOMOGENEOUS_P = 0.5


def _choose_programs(n_parts: int, kind: str, rng: np.random.Generator) -> list[int]:
    """Programs for parts ordered top (melody) to bottom (bass)."""
    if n_parts >= 2 and kind in ("chorale", "renaissance", "classical") \
            and rng.random() < HOMOGENEOUS_P:
        upper, bass = HOMOGENEOUS_ENSEMBLES[int(rng.integers(len(HOMOGENEOUS_ENSEMBLES)))]
        return [upper[min(i, len(upper) - 1)] for i in range(n_parts - 1)] + [bass]
    up_fams, bass_fams = FAMILIES_BY_KIND[kind]
    progs = []
    for i in range(n_parts):
        if n_parts >= 2 and i == n_parts - 1:
            fam = bass_fams[int(rng.integers(len(bass_fams)))]
            choices = GM_BASS[fam]
        else:
            fam = up_fams[int(rng.integers(len(up_fams)))]
            choices = GM_MELODY[fam]
        progs.append(int(choices[int(rng.integers(len(choices)))]))
    return progs
