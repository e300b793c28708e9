"""Does a model's named tonic follow the pitch content? Ask the key question of N clips of a split
with their cached Basic Pitch features as they are and moved by K semitones (the transposition
`key_transpose` trains with), and count how often the named tonic is the truth moved by K, the
untransposed answer moved by K, or unchanged. A model that reads the key from the pitch content
keeps its accuracy under K; one that recognises the work keeps its answer.
Usage: python scripts/transpose_diagnostic.py MODEL MANIFEST FEATURE_CACHE [--split valid] [-n 96] [-k 3 -4]
(clips not yet in the feature cache are encoded into it first, as `musilingo eval` does)."""

import argparse
import random

from musilingo.data.manifest import read_manifest
from musilingo.encoders.basic_pitch import feature_offsets, transpose_features
from musilingo.evaluate.items import build_items, select_records
from musilingo.features import build_feature_cache
from musilingo.metrics.attributes import parse_key
from musilingo.music import pitch_class
from musilingo.generation import GenerationOptions
from musilingo.model import load_model
from musilingo.prompts import Turn

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("model")
ap.add_argument("manifest")
ap.add_argument("feature_cache")
ap.add_argument("--split", default="valid")
ap.add_argument("-n", type=int, default=96, help="key questions (a seeded random choice)")
ap.add_argument("-k", type=int, nargs="+", default=[3, -4], help="semitones to move by")
args = ap.parse_args()

model, _ = load_model(args.model, "cpu")
records = select_records(read_manifest(args.manifest), args.split, args.manifest)
items = [it for it in build_items(records, "attributes", args.manifest) if it.attribute == "key"]
random.Random(0).shuffle(items)
items = items[: args.n]
c = model.config
cache, _ = build_feature_cache(model.feature_spec, [it.record for it in items], args.feature_cache)
missing = [it.record.id for it in items if it.record.id not in cache]
if missing:
    raise SystemExit(f"{args.feature_cache}: {len(missing)} clips could not be encoded (e.g. {missing[0]})")
offsets = feature_offsets(model.encoder)
if not offsets:
    raise SystemExit(f"{args.model}: the encoder has no Basic Pitch features to move")
options = GenerationOptions.named("greedy", c.max_new_tokens)


def named_tonics(k: int) -> list[int | None]:
    out = []
    for j in range(0, len(items), 8):
        part = items[j: j + 8]
        feats = []
        for it in part:
            f = cache[it.record.id]
            for o in offsets if k else ():
                f = transpose_features(f, k, o)
            feats.append([f])
        answers = model.answer_features(feats, [[Turn(it.question)] for it in part], options,
                                        per_window=False)
        for text, _ in answers:
            tonic = parse_key(text).tonic.positive
            out.append(pitch_class(tonic[0]) if tonic else None)
    return out


truth = [pitch_class(it.truth["key_tonic"]) for it in items]
base = named_tonics(0)
n = len(items)
print(f"{args.model}: {n} key questions of split {args.split!r}")
print(f"  as they are: tonic right {sum(p == t for p, t in zip(base, truth))}/{n}")
for k in args.k:
    moved = named_tonics(k)
    right = sum(p is not None and p == (t + k) % 12 for p, t in zip(moved, truth))
    follow = sum(p is not None and b is not None and p == (b + k) % 12 for p, b in zip(moved, base))
    same = sum(p is not None and p == b for p, b in zip(moved, base))
    print(f"  moved {k:+d}: tonic right (truth {k:+d}) {right}/{n}, the unmoved answer {k:+d} {follow}/{n}, "
          f"unchanged {same}/{n}")
