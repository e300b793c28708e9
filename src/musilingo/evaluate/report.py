"""The human-readable side of an evaluation: ``report.md`` and the PNG plots in ``plots/``.

Plots (matplotlib, drawn on bare ``Figure`` objects with the Agg canvas, so pyplot's global state
and the user's backend are never touched):

- ``attribute_accuracy.png``: per-attribute mean score, the model next to each baseline;
- ``confusion_<tempo|meter|key>.png``: truth class (rows) against the class the answer claims
  (columns; "several" for a hedge, "no claim" when it names none), shaded by row share; one
  panel each for the model, the no-audio LLM and the linear probe;
- ``lengths.png``: word counts of predictions against references (caption / qa tasks).

This module reads the ``results`` dict built by :mod:`musilingo.evaluate.run`; it computes no metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from musilingo.data.manifest import atomic_write_text

SYSTEM_LABELS = {"model": "model", "no_audio": "LLM, no audio", "majority": "majority class",
                 "linear_probe": "linear probe", "facts_only": "facts-only template"}
SYSTEM_COLORS = {"model": "#1f77b4", "no_audio": "#aaaaaa", "majority": "#ff7f0e",
                 "linear_probe": "#2ca02c", "facts_only": "#9467bd"}


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_attribute_accuracy(systems: Mapping[str, Mapping[str, Any]], path: Path) -> Path | None:
    """Grouped bars: one group per attribute, one bar per system."""
    import numpy as np

    from musilingo.attributes import ATTRIBUTES

    attrs = [a for a in ATTRIBUTES if any(f"{a}_accuracy" in s for s in systems.values())]
    if not attrs:
        return None
    names = list(systems)
    fig = _figure(max(6.0, 1.3 * len(attrs) + 2), 4.2)
    ax = fig.subplots()
    width = 0.8 / len(names)
    x = np.arange(len(attrs))
    for k, name in enumerate(names):
        vals = [systems[name].get(f"{a}_accuracy", np.nan) for a in attrs]
        bars = ax.bar(x + (k - (len(names) - 1) / 2) * width, vals, width,
                      label=SYSTEM_LABELS.get(name, name), color=SYSTEM_COLORS.get(name))
        for b, v in zip(bars, vals):
            if not np.isnan(v):
                ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, v), ha="center",
                            va="bottom", fontsize=7, xytext=(0, 1), textcoords="offset points")
    labels = [f"{a}\n(mean F1)" if a == "instruments" else a for a in attrs]
    ns = [next((s.get(f"{a}_n") for s in systems.values() if f"{a}_n" in s), None) for a in attrs]
    ax.set_xticks(x, [f"{lab}\nn={n}" for lab, n in zip(labels, ns)], fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("mean score (1 = right)")
    ax.set_title("Attribute answers: model vs baselines")
    ax.legend(fontsize=8, ncols=min(4, len(names)), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_confusion(confs: Mapping[str, Mapping[str, Any]], attr: str, path: Path) -> Path | None:
    """One panel per system (``system -> {"truth", "answer", "counts"}``): counts of truth (rows)
    against the class the answer claims (columns, the same in every panel), shaded by row share."""
    import numpy as np

    confs = {s: c for s, c in confs.items() if c}
    if not confs:
        return None
    rows = list(next(iter(confs.values()))["truth"])
    for c in confs.values():
        rows += [r for r in c["truth"] if r not in rows]
    tail = [x for x in ("several", "no claim") if any(x in c["answer"] for c in confs.values())]
    cols = list(rows)
    for c in confs.values():
        cols += [a for a in c["answer"] if a not in cols and a not in tail]
    cols += tail
    n = len(confs)
    fig = _figure(n * max(3.4, 0.55 * len(cols) + 1.6) + 1.0, max(3.0, 0.45 * len(rows) + 2.0))
    axes = np.atleast_1d(fig.subplots(1, n, sharey=True))
    im = None
    for ax, (system, conf) in zip(axes, confs.items()):
        counts = np.zeros((len(rows), len(cols)))
        for i, r in enumerate(conf["truth"]):
            for j, a in enumerate(conf["answer"]):
                counts[rows.index(r), cols.index(a)] = conf["counts"][i][j]
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        for i in range(len(rows)):
            for j in range(len(cols)):
                if counts[i, j]:
                    ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8,
                            color="white" if share[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_xlabel("class claimed by the answer", fontsize=9)
        exact = int(sum(counts[i, cols.index(r)] for i, r in enumerate(rows)))
        ax.set_title(f"{attr}, {SYSTEM_LABELS.get(system, system)}: "
                     f"{exact}/{int(counts.sum())} exact", fontsize=9)
    axes[0].set_ylabel("truth")
    fig.colorbar(im, ax=list(axes), fraction=0.03, pad=0.02, label="share of the row")
    fig.savefig(path, bbox_inches="tight")
    return path


def plot_lengths(pred_words: Sequence[int], ref_words: Sequence[int], path: Path) -> Path | None:
    """Overlaid histograms of prediction and reference word counts."""
    import numpy as np

    if not pred_words:
        return None
    top = max(max(pred_words), max(ref_words), 1)
    bins = np.linspace(0, top + 1, min(30, top + 2))
    fig = _figure(6.0, 3.6)
    ax = fig.subplots()
    ax.hist(ref_words, bins=bins, alpha=0.55, label=f"reference (mean {np.mean(ref_words):.1f})",
            color="#ff7f0e")
    ax.hist(pred_words, bins=bins, alpha=0.55, label=f"prediction (mean {np.mean(pred_words):.1f})",
            color="#1f77b4")
    ax.set_xlabel("words")
    ax.set_ylabel("answers")
    ax.set_title("Answer length: prediction vs reference")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _cell(text: Any, limit: int = 160) -> str:
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("|", "\\|")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "–" if v is None else str(v)


def write_report(results: dict, out_dir: Path, items: Sequence[Any] = (),
                 predictions: Mapping[str, Mapping[str, str]] | None = None,
                 n_examples: int = 8) -> list[str]:
    """Draw the plots into ``out_dir/plots`` and write ``out_dir/report.md`` (atomically).

    ``items`` / ``predictions`` (system -> item id -> answer) supply the example table.
    Returns the plot paths relative to ``out_dir``.
    """
    out_dir = Path(out_dir)
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    predictions = predictions or {}
    plots: list[str] = []

    def rel(p: Path | None) -> None:
        if p is not None:
            plots.append(str(p.relative_to(out_dir)))

    r = results
    md = [f"# Evaluation: {r['task']} — `{r['model']}`", "",
          (f"- data: `{r['data']}`, split `{r['split']}`: {r['n_records']} clips, "
           f"{r['n_items']} questions, {r['n_answered']} answered, {r['n_failed']} failed"),
          (f"- decoding: `{r['options']['decoding']}` (max {r['generation']['max_new_tokens']} "
           f"new tokens); musilingo {r['musilingo_version']}; {r['created']}"), ""]
    for note in results.get("notes", []):
        md += [f"> **Note:** {note}", ""]

    if results["task"] == "attributes":
        systems = results.get("systems", {})
        names = list(systems)
        md += ["## Attribute scores", "",
               ("Mean score per attribute (1 = the answer names the right class; hedges earn a "
               "share; an answer that claims nothing scores 0). Instruments: mean per-answer F1 of "
               "the instrument families named."), "",
               "| attribute | n | " + " | ".join(SYSTEM_LABELS.get(s, s) for s in names) + " |",
               "|---|---:|" + "---:|" * len(names)]
        from musilingo.attributes import ATTRIBUTES

        rows = [(a, f"{a}_accuracy") for a in ATTRIBUTES
                if any(f"{a}_accuracy" in systems[s] for s in names)]
        rows += [("**all answers**", "accuracy"),
                 ("instrument families, micro F1", "instrument_family_f1")]
        for label, key in rows:
            vals = [systems[s].get(key) for s in names]
            if all(v is None for v in vals):
                continue
            best = max((v for v in vals if v is not None), default=None)
            n = next((systems[s].get(key.replace("_accuracy", "_n")) for s in names
                      if key.endswith("_accuracy") and key != "accuracy"), "")
            if key == "accuracy":
                n = systems[names[0]].get("n", "")
            bold = [v is not None and v == best and len(names) > 1 for v in vals]
            cells = [f"**{_fmt(v)}**" if b else _fmt(v) for v, b in zip(vals, bold)]
            md.append(f"| {label} | {n or ''} | " + " | ".join(cells) + " |")
        md.append("")
        if results.get("baselines"):
            md += ["Baselines: " + "; ".join(f"*{SYSTEM_LABELS.get(k, k)}*: {v}"
                                              for k, v in results["baselines"].items()) + ".", ""]
        rel(plot_attribute_accuracy(systems, plots_dir / "attribute_accuracy.png"))
        conf = results.get("confusion", {})
        shown = [s for s in ("model", "no_audio", "linear_probe") if s in conf]
        for attr in ("tempo", "meter", "key"):
            rel(plot_confusion({s: conf[s].get(attr) for s in shown}, attr,
                               plots_dir / f"confusion_{attr}.png"))
    else:
        md += ["## Scores", ""]
        for proto, res in results.get("scores", {}).items():
            keys = [k for k, v in res.items() if isinstance(v, (int, float)) and k != "n"]
            md += [f"**{proto}** (n = {res.get('n')})", "",
                   "| " + " | ".join(keys) + " |", "|" + "---:|" * len(keys),
                   "| " + " | ".join(_fmt(res[k]) for k in keys) + " |", ""]
            md += [f"- {n}" for n in res.get("notes", [])] + [""]
        lengths = results.get("lengths")
        if lengths:
            rel(plot_lengths(lengths["prediction_words"], lengths["reference_words"],
                             plots_dir / "lengths.png"))

    if plots:
        md += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots] + [""]

    model_preds = predictions.get("model", {})
    shown = [it for it in items if it.id in model_preds][:n_examples]
    if shown:
        md += ["## Examples", ""]
        if results["task"] == "attributes":
            others = [s for s in ("no_audio", "linear_probe") if predictions.get(s)]
            head = " | ".join(["clip", "question", "truth", "model",
                               *(SYSTEM_LABELS[s] for s in others)])
            md += [f"| {head} |", "|---|---|---|---|" + "---|" * len(others)]
            for it in shown:
                truth = {k: it.truth[k] for k in _truth_keys(it.attribute) if k in it.truth}
                cells = [_cell(predictions[s].get(it.id, "–")) for s in others]
                md.append(f"| {_cell(it.record.id, 40)} | {_cell(it.question)} | "
                          f"{_cell(', '.join(f'{k}={v}' for k, v in truth.items()))} | "
                          f"{_cell(model_preds[it.id])} | " + " | ".join(cells) + " |")
        else:
            md += ["| clip | question | reference | model |", "|---|---|---|---|"]
            for it in shown:
                md.append(f"| {_cell(it.record.id, 40)} | {_cell(it.question)} | "
                          f"{_cell(it.reference)} | {_cell(model_preds[it.id])} |")
        files = "`predictions.jsonl`" + (", `baselines.jsonl`" if results["task"] == "attributes"
                                         and results.get("baselines") else "")
        md += ["", f"All answers: {files}, written by `musilingo eval` beside this report (a copy "
               "shipped with a model keeps only this report, `results.json` and the plots); "
               "numbers: `results.json`.", ""]
    atomic_write_text(out_dir / "report.md", "\n".join(md))
    return plots


def _truth_keys(attr: str) -> tuple[str, ...]:
    from musilingo.attributes import SCHEMA

    return SCHEMA[attr].fields if attr in SCHEMA else ()
