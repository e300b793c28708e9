"""Score ``musilingo analyze`` against the rendered corpus truth, per fact, on one split.

    .venv/bin/python benchmarks/bench_analysis.py --split valid --fit --write  # fit, choose
    .venv/bin/python benchmarks/bench_analysis.py --split test          # score, once, at the end

For every clip of the split (``--limit`` takes the first N in manifest order) it measures the
clip once (:func:`musilingo.analysis.frontend.measure`, cached under ``--cache`` as
``<id>.base.npz`` / ``.notes.npz`` / ``.tags.npz``), runs the estimators and scores:

- tempo: within 10 % of the true ``tempo_bpm``; also "forgiving" octave and 3:2 errors (the
  estimate x 1/3, 1/2, 2/3, 1, 3/2, 2 or 3 within 10 %); baseline librosa's stock tempo.
- meter: exact time signature and feel (duple / triple / compound); baseline: always 4/4.
- key, where the truth is reliable (key_mode major or minor: MMA's generated key, music21's
  analysed key that agrees with signature and final bass note, ABC's K: field checked against
  the final note; modal ABC tunes and keyless scores are left out): tonic + mode exact, and the
  project's key score (0.5 tonic + 0.5 mode, ``musilingo.metrics.attributes``); baseline:
  Krumhansl-Kessler on the time-averaged CQT chroma.
- tags: precision / recall / F1 of the tags the corpus has truth for; vocals: false-positive
  rate (the corpus has no voices).
- the facts-only template (``template_*``): the evaluation baseline that answers each attribute
  question from these facts alone, scored as the model's answers are (the bar issue 17 sets the
  model: match it where the facts measure, beat it on instruments and style).

Each figure is given overall, per source (mma, music21, abc) and with / without drums, plus
seconds per clip. Results go to ``benchmarks/results/analysis-<split>.json``. ``--fit`` (with
``--split valid`` only) fits the tempo-level and meter networks on the train split's clips
(``--train-limit``; only librosa's part of the frontend is measured for them) and chooses their
size, penalty and everything else on dev: the key evidence / profile / bass weight, the tag
thresholds and the confidence tables; it prints them and writes
``benchmarks/results/analysis-fit-valid.json``; ``--write`` writes them to
``musilingo/analysis/fitted.py`` and ``fitted_nets.safetensors`` (docs/analysis.md).
``--from-state`` reads the records of a render still in progress
(``<corpus>/state/done/*.json``) instead of the manifest.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from musilingo.analysis import calibration, key, meter, tags, tempo  # noqa: E402
from musilingo.analysis.frontend import Frontend, measure  # noqa: E402

WITHIN = 0.10
RATIOS = (1.0, 2.0, 0.5, 3.0, 1 / 3, 1.5, 2 / 3)
TEMPO_HIDDEN = ((32,), (64, 32))  # network sizes tried for the tempo level (dev chooses)
TEMPO_ALPHA = (0.001, 0.01, 0.1, 1.0)  # L2 penalties tried
TEMPO_SEEDS = 3  # networks averaged (one per seed): a single seed moves dev accuracy by +-2 points
METER_HIDDEN = ((32,), (64, 32))  # meter network sizes tried (dev chooses)
METER_ALPHA = (0.3, 1.0, 3.0)
METER_SEEDS = 3
METER_CLASS = {"2/4": "2/4", "2/2": "2/2", "4/4": "4/4", "4/2": "4/2", "3/4": "3/4",
               "3/2": "3/4", "3/8": "6/8", "6/8": "6/8", "9/8": "6/8", "12/8": "6/8"}


# ----------------------------------------------------------------------------------- data

def load_records(args, split: str | None = None, limit: int | None = None) -> list[dict]:
    """The records of ``split`` (default ``--split``), the first ``limit`` (default ``--limit``)."""
    if args.from_state:
        paths = sorted((Path(args.corpus) / "state" / "done").glob("*.json"))
        recs = [json.loads(p.read_text()) for p in paths]
    else:
        with open(Path(args.corpus) / "manifest.jsonl") as f:
            recs = [json.loads(line) for line in f if line.strip()]
    recs = [r for r in recs if r.get("split") == (split or args.split)]
    limit = args.limit if limit is None else limit
    return recs[:limit] if limit else recs


def frontend(rec: dict, args, parts=("base", "notes", "tags")) -> tuple[Frontend, float]:
    """The clip's cached measurements (computed and cached when missing) and measuring seconds."""
    from musilingo.analysis import frontend as fm
    from musilingo.audio import load_audio, resample
    from musilingo.encoders.musicnn import VARIANTS, tag_probabilities

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    data, seconds, y = {}, 0.0, None
    for part in parts:
        p = cache / f"{rec['id']}.{part}.npz"
        if not p.exists():
            if y is None:
                y, sr = load_audio(Path(args.corpus) / rec["audio"], fm.SAMPLE_RATE)
            t = time.perf_counter()
            if part == "base":
                d = measure(y, sr, notes=False, tags=False).to_npz()
            elif part == "notes":
                m, lo = fm._note_summary(y)
                d = {"note_mean": m, "note_lowest": lo}
            else:
                y16 = resample(y, sr, 16000)
                d = {f"tag_probs.{v}": tag_probabilities(y16, v) for v in VARIANTS}
            d["seconds"] = np.float64(time.perf_counter() - t)
            np.savez(p, **d)
        z = dict(np.load(p))
        seconds += float(z.pop("seconds", np.nan))
        data.update(z)
    return Frontend.from_npz(data), seconds


# ------------------------------------------------------------------------------- scoring

def within(est: float, truth: float) -> bool:
    return abs(est / truth - 1.0) <= WITHIN


def forgiving(est: float, truth: float) -> bool:
    return any(within(est * r, truth) for r in RATIOS)


def groups_of(rec: dict) -> list[str]:
    a = rec["attributes"]
    return ["all", "source:" + rec["source"].split(":")[0],
            "drums" if a.get("drums") else "no drums", "truth meter:" + str(a.get("meter"))]


def summarise(rows: list[dict], metrics: list[str]) -> dict:
    out: dict = {}
    by = defaultdict(list)
    for r in rows:
        for g in r["groups"]:
            by[g].append(r)
    for g in sorted(by, key=lambda s: (s != "all", s)):
        rs = by[g]
        d = {"n": len(rs)}
        for m in metrics:
            vals = [r[m] for r in rs if r.get(m) is not None]
            d[m] = round(float(np.mean(vals)), 4) if vals else None
            if m.startswith("key") and vals:
                d[m + "_n"] = len(vals)
        out[g] = d
    return out


def reliable_key(a: dict) -> bool:
    return a.get("key_mode") in ("major", "minor") and bool(a.get("key_tonic"))


# -------------------------------------------------------------------------------- the run

def clip_state(fe: Frontend) -> tempo.Periodicity:
    """What the estimators need besides the frontend, computed once per clip."""
    return tempo.periodicity(fe)


def run_clip(rec: dict, fe: Frontend, st: dict, with_tags: bool) -> dict:
    from musilingo.analysis.pipeline import estimate
    from musilingo.music import pitch_class

    a = rec["attributes"]
    t0 = time.perf_counter()
    facts = estimate(fe)
    est_s = time.perf_counter() - t0
    row = {"id": rec["id"], "groups": groups_of(rec), "estimate_s": est_s}
    truth_bpm = float(a["tempo_bpm"])
    row.update(tempo_within=within(facts.tempo.bpm, truth_bpm),
               tempo_forgiving=forgiving(facts.tempo.bpm, truth_bpm),
               stock_within=within(st.stock_bpm, truth_bpm),
               stock_forgiving=forgiving(st.stock_bpm, truth_bpm),
               tempo_confidence=facts.tempo.confidence, bpm=facts.tempo.bpm, truth_bpm=truth_bpm)
    if a.get("meter"):
        sig = a["meter"]
        row.update(meter_exact=facts.meter.signature == sig,
                   meter_feel=facts.meter.feel == meter.feel(sig),
                   meter_always_44=sig == "4/4", meter_feel_always_duple=meter.feel(sig) == "duple",
                   meter_pred=facts.meter.signature, meter_truth=sig)
    if reliable_key(a):
        tpc, tmode = pitch_class(a["key_tonic"]), a["key_mode"]
        pred_pc = pitch_class(facts.key.tonic)
        base = key.baseline_key(fe)
        row.update(key_exact=pred_pc == tpc and facts.key.mode == tmode,
                   key_score=0.5 * (pred_pc == tpc) + 0.5 * (facts.key.mode == tmode),
                   key_baseline_exact=base.tonic_pc == tpc and base.mode == tmode,
                   key_baseline_score=0.5 * (base.tonic_pc == tpc) + 0.5 * (base.mode == tmode),
                   key_tonal=facts.key.tonal)
    if with_tags and facts.tags is not None:
        row["vocals_false_positive"] = facts.tags.vocals
        row["tags"] = [f"{g.source}:{g.name}" for g in facts.tags.tags]
    row.update(template_scores(rec, facts))
    return row


def template_scores(rec: dict, facts) -> dict:
    """The facts-only template's attribute scores (``template_<attribute>``, and their mean as
    ``template_all``): the evaluation's baseline (``musilingo.evaluate.baselines.facts_classes``)
    answering each canonical question from these facts, scored by ``musilingo.metrics.attributes``
    as the model's answers are."""
    from musilingo.attributes import class_sentence
    from musilingo.data.manifest import Record
    from musilingo.evaluate.baselines import facts_classes
    from musilingo.evaluate.items import build_items
    from musilingo.metrics.attributes import score_attribute

    r = Record(id=rec["id"], audio=rec["audio"], attributes=rec["attributes"])
    items = build_items([r], "attributes")
    classes = facts_classes(items, {r.id: facts})
    out = {f"template_{it.attribute}": score_attribute(
        it.attribute, class_sentence(it.attribute, classes[it.id]) if it.id in classes else "",
        rec["attributes"]) for it in items}
    out["template_all"] = float(np.mean(list(out.values()))) if out else None
    return out


TAG_TRUTH = {  # "HEAD:tag" -> truth from a record (None: no truth for this clip)
    "MTT:piano": lambda r, a: "piano" in a.get("instrument_families", []),
    "MTT:guitar": lambda r, a: "guitar" in a.get("instrument_families", []),
    "MSD:guitar": lambda r, a: "guitar" in a.get("instrument_families", []),
    "MTT:strings": lambda r, a: bool({"strings", "ensemble"} & set(a.get("instrument_families", []))),
    "MTT:violin": lambda r, a: any("violin" in i.lower() or "fiddle" in i.lower()
                                   for i in a.get("instruments", [])),
    "MTT:cello": lambda r, a: any("cello" in i.lower() for i in a.get("instruments", [])),
    "MTT:harpsichord": lambda r, a: any("harpsichord" in i.lower() for i in a.get("instruments", [])),
    "MTT:flute": lambda r, a: any("flute" in i.lower() for i in a.get("instruments", [])),
    "MTT:harp": lambda r, a: any(i.lower() == "orchestral harp" for i in a.get("instruments", [])),
    "MTT:sitar": lambda r, a: any("sitar" in i.lower() for i in a.get("instruments", [])),
    "MTT:synth": lambda r, a: bool({"synth lead", "synth pad"} & set(a.get("instrument_families", []))),
    "MTT:drums": lambda r, a: bool(a.get("drums")),
    "MTT:classical": lambda r, a: r["source"].startswith("music21"),
    "MTT:classic": lambda r, a: r["source"].startswith("music21"),
    "MSD:jazz": lambda r, a: (a.get("genre") == "jazz") if r["source"].startswith("mma") else False,
    "MSD:blues": lambda r, a: (a.get("genre") == "blues") if r["source"].startswith("mma") else False,
    "MSD:country": lambda r, a: (a.get("genre") == "country") if r["source"].startswith("mma") else False,
    "MSD:rock": lambda r, a: (a.get("genre") == "rock") if r["source"].startswith("mma") else False,
    "MSD:folk": lambda r, a: r["source"].startswith("abc"),
}
# Tags the rendered corpus certainly lacks: the threshold bounds their false positives on dev.
ABSENT_TAGS = ("MTT:techno", "MTT:electronic", "MTT:metal", "MTT:indian", "MTT:dance",
               "MTT:weird", "MSD:electronic", "MSD:metal", "MSD:Hip-Hop", "MSD:punk",
               "MSD:hard rock", "MSD:heavy metal", "MSD:House", "MSD:electro", "MSD:rnb",
               "MSD:electronica", "MSD:dance", "MSD:soul")


def tag_scores(recs: list[dict], probs: dict[str, np.ndarray], thresholds: dict[str, float]) -> dict:
    """Per calibrated tag: prevalence, precision, recall, F1 at its threshold."""
    out = {}
    for tag, fn in TAG_TRUTH.items():
        if tag not in probs:
            continue
        y = np.array([bool(fn(r, r["attributes"])) for r in recs])
        pred = probs[tag] >= thresholds.get(tag, tags.DEFAULT_THRESHOLD)
        tp = int((pred & y).sum())
        prec = tp / max(int(pred.sum()), 1)
        rec_ = tp / max(int(y.sum()), 1)
        f1 = 2 * prec * rec_ / (prec + rec_) if prec + rec_ else 0.0
        out[tag] = {"positives": int(y.sum()), "n": len(y), "precision": round(prec, 3),
                    "recall": round(rec_, 3), "f1": round(f1, 3),
                    "threshold": round(thresholds.get(tag, tags.DEFAULT_THRESHOLD), 3)}
    return out


def tag_matrix(fes: list[Frontend]) -> dict[str, np.ndarray]:
    probs = {}
    for src, variant in tags.HEADS.items():
        names = tags.tag_names(src)
        mat = np.stack([fe.tag_probs[variant] for fe in fes])
        for j, n in enumerate(names):
            probs[f"{src}:{n}"] = mat[:, j]
    return probs


# ------------------------------------------------------------------------------------ fit

def tempo_table(recs, states) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every clip's candidates: features (compound = the truth's feel), within 10 %, clip index."""
    rows_x, rows_y, rows_g = [], [], []
    for i, (r, per) in enumerate(zip(recs, states)):
        t = float(r["attributes"]["tempo_bpm"])
        cp = meter.feel(r["attributes"].get("meter") or "4/4") == "compound"
        for b in tempo.candidates(per):
            rows_x.append(tempo.candidate_features(per, b, cp))
            rows_y.append(within(b, t))
            rows_g.append(i)
    return np.array(rows_x), np.array(rows_y), np.array(rows_g)


def clip_accuracy(scores: np.ndarray, y: np.ndarray, g: np.ndarray) -> float:
    """Fraction of clips whose best-scored candidate is right."""
    return float(np.mean([bool(y[g == i][int(np.argmax(scores[g == i]))]) for i in np.unique(g)]))


def fit_nets(x, y, hidden, alpha, seeds) -> list:
    """One standardise-then-MLP network per seed (scikit-learn), exported as analysis.nets.Net."""
    from sklearn.neural_network import MLPClassifier

    from musilingo.analysis import nets

    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    out = []
    for seed in seeds:
        m = MLPClassifier(hidden_layer_sizes=hidden, alpha=alpha, max_iter=2000,
                          random_state=seed).fit((x - mean) / std, y)
        out.append(nets.from_sklearn(m, mean, std))
    return out


def choose_nets(name, x, y, hiddens, alphas, seeds, dev_accuracy, dev_x) -> tuple[dict, list]:
    """Fit an ensemble (one network per seed) for every size and penalty on train (``x``, ``y``);
    score each network and each ensemble on dev (``dev_accuracy`` of the logits on ``dev_x``);
    return the best grid point (its ``ensemble`` included) and the whole grid."""
    from musilingo.analysis import nets

    grid = []
    for hidden, alpha in itertools.product(hiddens, alphas):
        ensemble = fit_nets(x, y, hidden, alpha, range(seeds))
        singles = [dev_accuracy(n.logits(dev_x)) for n in ensemble]
        both = dev_accuracy(nets.mean_logits(ensemble, dev_x))
        grid.append({"hidden": list(hidden), "alpha": alpha, "dev_single_seeds": singles,
                     "dev_ensemble": both, "ensemble": ensemble})
        print(f"{name} {hidden} alpha={alpha}: seeds {np.round(singles, 3).tolist()}, "
              f"ensemble {both:.3f}", file=sys.stderr, flush=True)
    return max(grid, key=lambda g: g["dev_ensemble"]), grid


def fit(recs, fes, states, with_tags: bool, train: tuple[list, list, list]) -> dict:
    """Fit the models on the train split (``train``: its records, clip states and frontends)
    and choose every constant and setting on this (dev) split; returns them (printed and saved
    by main)."""
    chosen: dict = {}
    # 1. tempo: networks "candidate within 10 % of the truth" over every clip's candidates, fitted
    #    on train; size, regularisation and ensemble chosen on dev (compound = the truth's feel
    #    here; the pipeline uses the predicted meter)
    from musilingo.analysis import nets

    TX, TY, TG = tempo_table(train[0], train[1])
    DX, DY, DG = tempo_table(recs, states)
    best, grid = choose_nets("tempo", TX, TY, TEMPO_HIDDEN, TEMPO_ALPHA, TEMPO_SEEDS,
                             lambda z: clip_accuracy(z[:, 0], DY, DG), DX)
    tempo.NETS = tuple(best["ensemble"])
    chosen["tempo"] = {"hidden": best["hidden"], "alpha": best["alpha"],
                       "dev_clip_accuracy": round(best["dev_ensemble"], 4),
                       "train_clip_accuracy": round(clip_accuracy(
                           nets.mean_logits(tempo.NETS, TX)[:, 0], TY, TG), 4),
                       "train_clips": len(train[0]), "dev_clips": len(recs),
                       "grid": [{k: v for k, v in g.items() if k != "ensemble"} for g in grid],
                       "features": list(tempo.FEATURES)}
    # 2. meter networks on features at the simple-meter tempo, fitted on train, chosen on dev
    def meter_table(fes_, states_, recs_):
        X, y = [], []
        for fe, per, r in zip(fes_, states_, recs_):
            t = tempo.estimate_tempo(per, False)
            x, _ = meter.meter_features(fe, per, t.bpm, tempo.track_beats(fe, t.bpm))
            X.append(x)
            y.append(meter.CLASSES.index(METER_CLASS.get(r["attributes"].get("meter") or "4/4",
                                                         "4/4")))
        return np.array(X), np.array(y)

    MX, MY = meter_table(train[2], train[1], train[0])
    VX, VY = meter_table(fes, states, recs)
    missing = sorted(set(range(len(meter.CLASSES))) - set(MY.tolist()))
    if missing:
        raise SystemExit(f"the train clips lack meter classes {[meter.CLASSES[i] for i in missing]}"
                         "; fit on more of them (--train-limit)")
    best, grid = choose_nets("meter", MX, MY, METER_HIDDEN, METER_ALPHA, METER_SEEDS,
                             lambda z: float(np.mean(np.argmax(z, axis=1) == VY)), VX)
    meter.NETS = tuple(best["ensemble"])
    chosen["meter"] = {"hidden": best["hidden"], "alpha": best["alpha"],
                       "dev_class_accuracy": round(best["dev_ensemble"], 4),
                       "grid": [{k: v for k, v in g.items() if k != "ensemble"} for g in grid],
                       "train_class_counts": {c: int((MY == i).sum())
                                              for i, c in enumerate(meter.CLASSES)},
                       "dev_class_counts": {c: int((VY == i).sum())
                                            for i, c in enumerate(meter.CLASSES)}}
    # 3. key: evidence, profile, bass weighting
    from musilingo.music import KEY_PROFILES, pitch_class

    rel = [(fe, pitch_class(r["attributes"]["key_tonic"]), r["attributes"]["key_mode"])
           for fe, r in zip(fes, recs) if reliable_key(r["attributes"])]
    kinds = ["cqt"] + (["notes", "both"] if all(fe.note_mean is not None for fe, _, _ in rel)
                       else [])
    grid = []
    for kind, prof, bw, split, lw in itertools.product(
            kinds, sorted(KEY_PROFILES), (0.0, 0.5, 1.0, 2.0, 4.0), (48, 55), (0.0, 1.0)):
        if kind == "cqt" and lw:
            continue
        ok = [(lambda k: k.tonic_pc == t and k.mode == m)(
            key.estimate_key(key.evidence(fe, kind, bw, split, lw), prof, -1.0))
            for fe, t, m in rel]
        grid.append((float(np.mean(ok)), kind, prof, bw, split, lw))
    grid.sort(key=lambda g: (-g[0], g[1] != "cqt", g[3]))  # ties: cheaper evidence, less bass
    acc, kind, prof, bw, split, lw = grid[0]
    key.EVIDENCE, key.PROFILE, key.BASS_WEIGHT, key.BASS_SPLIT_MIDI, key.LOWEST_WEIGHT = \
        kind, prof, bw, split, lw
    corr = np.array([key.estimate_key(key.evidence(fe), prof, -1.0).correlation
                     for fe, _, _ in rel])
    tonal_min = round(float(np.percentile(corr, 2)), 3) if len(corr) else key.TONAL_MIN_CORRELATION
    contrast = np.array([key.estimate_key(key.evidence(fe), prof, -1.0).contrast
                         for fe, _, _ in rel])
    min_contrast = round(float(np.percentile(contrast, 1)) / 2, 3) if len(contrast) \
        else key.MIN_PC_CONTRAST
    key.TONAL_MIN_CORRELATION, key.MIN_PC_CONTRAST = tonal_min, min_contrast
    chosen["key"] = {"EVIDENCE": kind, "PROFILE": prof, "BASS_WEIGHT": bw, "BASS_SPLIT_MIDI": split,
                     "LOWEST_WEIGHT": lw, "TONAL_MIN_CORRELATION": tonal_min,
                     "MIN_PC_CONTRAST": min_contrast,
                     "dev_exact": round(acc, 4), "dev_n": len(rel),
                     "grid_top10": [list(g) for g in grid[:10]],
                     "per_profile_best": {p: max(g[0] for g in grid if g[2] == p)
                                          for p in sorted(KEY_PROFILES)},
                     "per_evidence_best": {e: max(g[0] for g in grid if g[1] == e) for e in kinds},
                     "per_bass_weight_best": {str(b): max(g[0] for g in grid if g[3] == b)
                                              for b in (0.0, 0.5, 1.0, 2.0, 4.0)}}
    # 4. tags
    if with_tags:
        probs = tag_matrix(fes)
        th = {}
        for tag, fn in TAG_TRUTH.items():
            yy = np.array([bool(fn(r, r["attributes"])) for r in recs])
            if yy.sum() < 3 or (~yy).sum() < 3:
                continue
            # F0.5 (precision counts twice as much as recall: a tag should not claim what is
            # not there); a tag that cannot reach precision 0.5 at any threshold keeps the default
            cands = np.unique(np.round(probs[tag], 3))
            scores = []
            for c in cands[cands >= 0.05]:
                pred = probs[tag] >= c
                tp = float((pred & yy).sum())
                prec, rec_ = tp / max(pred.sum(), 1), tp / max(yy.sum(), 1)
                if prec >= 0.5 and tp > 0:
                    scores.append((1.25 * prec * rec_ / (0.25 * prec + rec_), -float(c)))
            if scores:
                th[tag] = round(-max(scores)[1], 3)
        for tag in ABSENT_TAGS:
            th[tag] = round(max(float(np.percentile(probs[tag], 99)), tags.DEFAULT_THRESHOLD), 3)
        pv = np.array([tags.vocal_probability(fe.tag_probs[tags.HEADS["MTT"]]) for fe in fes])
        vth = round(max(float(np.percentile(pv, 95)), 0.2), 3)
        tags.THRESHOLDS, tags.VOCALS_THRESHOLD = th, vth
        chosen["tags"] = {"THRESHOLDS": th, "VOCALS_THRESHOLD": vth,
                          "dev_vocal_probability_percentiles": {
                              q: round(float(np.percentile(pv, q)), 4) for q in (50, 90, 95, 99)}}
    # 5. confidence tables from the fitted estimators
    from musilingo.analysis.pipeline import estimate

    raws = defaultdict(list)
    for fe, per, r in zip(fes, states, recs):
        a = r["attributes"]
        t_simple = tempo.estimate_tempo(per, False)
        beats = tempo.track_beats(fe, t_simple.bpm)
        x, ph = meter.meter_features(fe, per, t_simple.bpm, beats)
        m = meter.estimate_meter(x, ph)
        t = t_simple if meter.feel(m.signature) != "compound" else \
            tempo.estimate_tempo(per, True)
        raws["tempo"].append((t.margin, within(t.bpm, float(a["tempo_bpm"]))))
        if a.get("meter"):
            p = m.probabilities
            feel_p = sum(v for s, v in p.items() if meter.feel(s) == meter.feel(m.signature))
            raws["meter"].append((p[m.signature], m.signature == a["meter"]))
            raws["meter_feel"].append((feel_p, meter.feel(m.signature) == meter.feel(a["meter"])))
        if reliable_key(a):
            k = key.estimate_key(key.evidence(fe))
            raws["key"].append((k.correlation, k.tonic_pc == pitch_class(a["key_tonic"])
                                and k.mode == a["key_mode"]))
    tables = {}
    for fact, pairs in raws.items():
        xs, ps = calibration.fit_table(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
        tables[fact] = [xs, ps]
    calibration.TABLES = {k: (tuple(v[0]), tuple(v[1])) for k, v in tables.items()}
    chosen["calibration"] = tables
    del estimate
    return chosen


def write_fitted(chosen: dict, n: int, path: Path) -> None:
    """Write the dev-chosen constants as ``musilingo/analysis/fitted.py``."""
    from musilingo.analysis import nets

    t, k = chosen["tempo"], chosen["key"]
    sha = nets.save_nets(nets.NETS_FILE, {"tempo": list(tempo.NETS), "meter": list(meter.NETS)})
    g = chosen.get("tags", {"THRESHOLDS": {}, "VOCALS_THRESHOLD": tags.DEFAULT_THRESHOLD})
    cal = {f: (tuple(v[0]), tuple(v[1])) for f, v in chosen["calibration"].items()}
    lines = [
        '"""Constants fitted on the train split and chosen on the dev split ("valid") of the',
        "rendered corpus.",
        "",
        f"Generated by ``benchmarks/bench_analysis.py --fit --write`` from {t['train_clips']} train "
        f"and {n} dev",
        "clips (the tempo and meter networks learn from train; every setting, threshold and",
        "confidence table is chosen on dev); the modules that use them say what they mean,",
        'docs/analysis.md how they were chosen. Do not edit by hand: re-run the fit."""',
        "",
        "# ruff: noqa: E501",
        "# SHA-256 of fitted_nets.safetensors (written with this file): the tempo networks",
        "# (tempo.FEATURES -> 'candidate within 10 % of the true beat') and the meter networks",
        "# (meter.FEATURES -> meter.CLASSES logits), each an ensemble averaged over seeds",
        f"NETS_SHA256 = {sha!r}",
        "# key: evidence, profile, bass weighting, when to say 'no clear key'",
        f"KEY_EVIDENCE = {k['EVIDENCE']!r}",
        f"KEY_PROFILE = {k['PROFILE']!r}",
        f"KEY_BASS_SPLIT_MIDI = {k['BASS_SPLIT_MIDI']}",
        f"KEY_BASS_WEIGHT = {k['BASS_WEIGHT']}",
        f"KEY_LOWEST_WEIGHT = {k['LOWEST_WEIGHT']}",
        f"KEY_TONAL_MIN_CORRELATION = {k['TONAL_MIN_CORRELATION']}",
        f"KEY_MIN_PC_CONTRAST = {k['MIN_PC_CONTRAST']}",
        "# tags: per-tag thresholds ('HEAD:name'); tags not listed use tags.DEFAULT_THRESHOLD",
        f"TAG_THRESHOLDS = {json.dumps(g['THRESHOLDS'], indent=4, sort_keys=True, default=float)}",
        f"VOCALS_THRESHOLD = {g['VOCALS_THRESHOLD']}",
        "# calibration: fact -> (raw-score knots, probability right at each knot)",
        f"CALIBRATION = {cal!r}",
    ]
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / "corpus"))
    ap.add_argument("--split", default="valid", choices=("valid", "test"))
    ap.add_argument("--limit", type=int, default=0, help="first N clips of the split (0: all)")
    ap.add_argument("--cache", default=str(ROOT / "corpus" / "analysis-cache"))
    ap.add_argument("--from-state", action="store_true",
                    help="read <corpus>/state/done/*.json (a render in progress)")
    ap.add_argument("--fit", action="store_true", help="choose the constants on this split")
    ap.add_argument("--train-limit", type=int, default=0,
                    help="with --fit: fit the models on the first N train clips (0: all)")
    ap.add_argument("--no-tags", action="store_true", help="skip musicnn tags")
    ap.add_argument("--write", action="store_true",
                    help="with --fit: write the chosen constants to musilingo/analysis/fitted.py")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.fit and args.split != "valid":
        ap.error("--fit chooses constants, and only on the dev split (valid)")
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    from musilingo.analysis import key as key_mod

    recs = load_records(args)
    parts = ["base"] + (["notes"] if args.fit or key_mod.EVIDENCE != "cqt" else []) \
        + ([] if args.no_tags else ["tags"])
    fes, states, secs = [], [], []
    for i, r in enumerate(recs):
        fe, s = frontend(r, args, parts)
        fes.append(fe)
        states.append(clip_state(fe))
        secs.append(s)
        if (i + 1) % 25 == 0:
            print(f"measured {i + 1}/{len(recs)}", file=sys.stderr, flush=True)
    result: dict = {"split": args.split, "clips": len(recs), "ids": [r["id"] for r in recs],
                    "records": "state/done (render in progress)" if args.from_state
                    else "manifest.jsonl"}
    if args.fit:
        train_recs = load_records(args, "train", args.train_limit)
        train_fes, train_states = [], []
        for i, r in enumerate(train_recs):
            train_fes.append(frontend(r, args, ["base"])[0])
            train_states.append(clip_state(train_fes[-1]))
            if (i + 1) % 100 == 0:
                print(f"measured train {i + 1}/{len(train_recs)}", file=sys.stderr, flush=True)
        chosen = fit(recs, fes, states, not args.no_tags and all(fe.tag_probs for fe in fes),
                     (train_recs, train_states, train_fes))
        print(json.dumps(chosen, indent=1, default=float))
        (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "benchmarks" / "results" / "analysis-fit-valid.json").write_text(
            json.dumps({"clips": len(recs), "chosen": chosen}, indent=1, default=float) + "\n")
        if args.write:
            write_fitted(chosen, len(recs), ROOT / "src" / "musilingo" / "analysis" / "fitted.py")
    rows = [run_clip(r, fe, st, not args.no_tags) for r, fe, st in zip(recs, fes, states)]
    metrics = ["tempo_within", "tempo_forgiving", "stock_within", "stock_forgiving",
               "meter_exact", "meter_feel", "meter_always_44", "meter_feel_always_duple",
               "key_exact", "key_score", "key_baseline_exact", "key_baseline_score",
               "vocals_false_positive", "template_all", "template_tempo", "template_meter",
               "template_key", "template_instruments", "template_drums", "template_style"]
    result["facts"] = summarise(rows, metrics)
    if not args.no_tags:
        probs = tag_matrix(fes)
        result["tags"] = tag_scores(recs, probs, tags.THRESHOLDS)
        counts = defaultdict(int)
        for r in rows:
            for t in r.get("tags", []):
                counts[t] += 1
        result["tags_reported"] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    conf = defaultdict(int)
    for r in rows:
        if "meter_truth" in r:
            conf[f"{r['meter_truth']}->{r['meter_pred']}"] += 1
    result["meter_confusion"] = dict(sorted(conf.items(), key=lambda kv: -kv[1]))
    ms = [s for s in secs if np.isfinite(s)]
    result["seconds_per_clip"] = {
        "measure_mean": round(float(np.mean(ms)), 3) if ms else None,
        "estimate_mean": round(float(np.mean([r["estimate_s"] for r in rows])), 3),
        "clip_duration_mean": round(float(np.mean([fe.duration_s for fe in fes])), 2),
        "note": "measured on 2 shared CPU cores while other jobs ran; measure = frontend parts "
                "computed for this run (librosa, Basic Pitch when used, both musicnn heads)"}
    result["targets"] = {"tempo_within >= 0.85": result["facts"]["all"]["tempo_within"],
                         "tempo_within (no drums) >= 0.75":
                             result["facts"].get("no drums", {}).get("tempo_within"),
                         "meter_feel >= 0.80": result["facts"]["all"]["meter_feel"],
                         "meter_exact (>= 0.80 if read as exact)": result["facts"]["all"]["meter_exact"],
                         "key_exact >= 0.70": result["facts"]["all"]["key_exact"]}
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"analysis-{args.split}.json"
    out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps({k: result[k] for k in ("split", "clips", "facts", "targets",
                                             "seconds_per_clip")}, indent=1, default=float))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
