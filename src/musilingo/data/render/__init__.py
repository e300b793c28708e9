"""Render a training corpus whose musical truth is known: symbolic music -> MIDI -> audio.

What it does: plans a deterministic list of clips for a seed from three sources -
``music21`` (scores of music21's bundled corpus: Bach chorales, Palestrina and other Renaissance or
medieval polyphony, Classical/Romantic works), ``abc`` (folk tunes from the corpus's ABC files:
Essen folk songs, O'Neill's and Ryan's Irish dance tunes, Aird's airs... through ``abc2midi``) and
``mma`` (accompaniment grooves of the MMA library over generated chord progressions) - assigns
General MIDI instruments per part, randomises tempo and transposition, re-saves the MIDI through
pretty_midi, renders it with the ``fluidsynth`` CLI under a timeout, cuts a 10-30 s mono 24 kHz
clip and reads the TRUE tempo, meter and instruments back from the written MIDI (the key comes
from the symbolic source, transposed). It writes ``audio/<id>.wav``, one JSON per finished clip
in ``state/done/`` (so a killed run resumes without redoing clips), failures in ``state/failed/``,
and finally ``manifest.jsonl`` atomically, with a caption and Q&A per clip
(:mod:`musilingo.data.captions`).

What it does not: download anything, use the soundfonts/synths reserved for independent
evaluation (MuseScore General, timidity/freepats, game-music packages), add vocals, or decide
train/valid/test by clip - splits are by work (tunes by normalised title), so no work is in two.

Modules, one job each:

- :mod:`.options` - :class:`RenderOptions` and the defaults it checks against.
- :mod:`.catalogue` - the source collections, what is known about them, the works each offers.
- :mod:`.plan` - :class:`ClipSpec`, :func:`plan_clips` and the split of a work.
- :mod:`.instruments` - General MIDI programs by role and kind of music.
- :mod:`.midi_edit` - transposing, looping and windowing a pretty_midi object.
- :mod:`.convert_music21`, :mod:`.convert_abc`, :mod:`.convert_mma` - one source -> MIDI + metadata.
- :mod:`.midi_analysis` - tempo, meter and instruments read back from the written MIDI.
- :mod:`.synth` - MIDI -> audio with fluidsynth.
- :mod:`.timeouts` - the clip timeout and external tools run under a deadline.
- :mod:`.clip` - :func:`render_clip`, one clip start to end.
- :mod:`.pool` - :func:`render_corpus`: resumable, parallel, with one retry of a timed-out clip.
- :mod:`.command` - :func:`render_command`, the ``musilingo data render`` entry point.

Importing this package loads numpy and the standard library only; music21, pretty_midi and
soundfile are imported when a clip is planned or rendered.
"""

from __future__ import annotations

from musilingo.data.render.clip import MIN_CLIP_RMS, render_clip
from musilingo.data.render.command import render_command
from musilingo.data.render.convert_abc import DANCE_QPM
from musilingo.data.render.midi_analysis import beat_bpm
from musilingo.data.render.options import DEFAULT_SOUNDFONTS, RenderOptions
from musilingo.data.render.plan import ClipSpec, plan_clips, split_for
from musilingo.data.render.pool import TIMEOUT_RETRY_FACTOR, render_corpus
from musilingo.data.render.synth import SAMPLE_RATE

__all__ = [
    "DANCE_QPM",
    "DEFAULT_SOUNDFONTS",
    "MIN_CLIP_RMS",
    "SAMPLE_RATE",
    "TIMEOUT_RETRY_FACTOR",
    "ClipSpec",
    "RenderOptions",
    "beat_bpm",
    "plan_clips",
    "render_clip",
    "render_command",
    "render_corpus",
    "split_for",
]
