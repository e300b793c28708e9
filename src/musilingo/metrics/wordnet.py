"""Make nltk's WordNet corpus available offline, built from Debian's WordNet 3.0 files.

nltk's METEOR needs ``nltk.corpus.wordnet``; the nltk data packages cannot be downloaded here and
the ones on PyPI are empty. Debian's ``wordnet-base`` (+ ``wordnet-sense-index``) ship the same
WordNet 3.0 database files in ``/usr/share/wordnet``; only the ``lexnames`` file is missing, so it
is written from the 45 standard lexicographer file names. The folder is built once, atomically
(temp dir + rename), under ``$MUSILINGO_CACHE/nltk_data`` (default ``~/.cache/musilingo``), and
added to ``nltk.data.path``.

This module does not download anything and does not touch nltk's own data folders. Debian
revised a few entries of the 3.0 data files (2021 dates), so synset offsets may differ from the
nltk ``wordnet`` package in rare cases; METEOR only uses lemma/synonym look-ups.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from musilingo.errors import ConfigError

DEBIAN_WORDNET = Path("/usr/share/wordnet")

# The files nltk's WordNetCorpusReader opens (index.sense / cntlist.rev only for sense keys).
WORDNET_FILES = (
    "adj.exc", "adv.exc", "noun.exc", "verb.exc",
    "data.adj", "data.adv", "data.noun", "data.verb",
    "index.adj", "index.adv", "index.noun", "index.verb",
    "index.sense", "cntlist.rev",
)  # fmt: skip
OPTIONAL_FILES = ("index.sense", "cntlist.rev")

# WordNet 3.0 lexicographer files: number, name, syntactic category (1 noun 2 verb 3 adj 4 adv).
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather",
    "adj.ppl",
)  # fmt: skip
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}

_ready: Path | None = None


def cache_dir() -> Path:
    """The musilingo cache folder: ``$MUSILINGO_CACHE`` or ``~/.cache/musilingo``."""
    env = os.environ.get("MUSILINGO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "musilingo"


def lexnames_text() -> str:
    """The ``lexnames`` file content: ``NN<TAB>name<TAB>category`` per line, 45 lines."""
    return "".join(
        f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES)
    )


def build_wordnet(source: Path = DEBIAN_WORDNET, nltk_data: Path | None = None) -> Path:
    """Build ``<nltk_data>/corpora/wordnet`` from Debian's files once; return ``nltk_data``."""
    nltk_data = nltk_data or cache_dir() / "nltk_data"
    target = nltk_data / "corpora" / "wordnet"
    if (target / "lexnames").is_file():
        return nltk_data
    missing = [f for f in WORDNET_FILES if f not in OPTIONAL_FILES and not (source / f).is_file()]
    if missing:
        raise ConfigError(
            f"{source}: WordNet files missing ({', '.join(missing)}); nltk METEOR needs them. "
            "Install the Debian packages: apt-get install wordnet-base wordnet-sense-index "
            "(or run scripts/install_java_wordnet.sh as root)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    try:
        for name in WORDNET_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
        (tmp / "lexnames").write_text(lexnames_text())
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race; its folder is complete
            if not (target / "lexnames").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return nltk_data


def ensure_wordnet() -> Path:
    """Make ``nltk.corpus.wordnet`` loadable offline; return the nltk_data folder used.

    Uses an nltk WordNet that is already installed when there is one, else builds the Debian copy.
    """
    global _ready
    if _ready is not None:
        return _ready
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
        found = True
    except LookupError:
        try:
            nltk.data.find("corpora/wordnet.zip")
            found = True
        except LookupError:
            found = False
    if found:
        _ready = Path(nltk.data.path[0])
        return _ready
    folder = build_wordnet()
    if str(folder) not in nltk.data.path:
        nltk.data.path.insert(0, str(folder))
    _ready = folder
    return folder
