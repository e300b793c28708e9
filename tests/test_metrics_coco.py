"""coco protocol: musilingo.metrics.coco equals pycocoevalcap called directly (needs Java).

Kept apart from test_metrics.py because the two METEOR 1.5 JVM starts take ~25 s on 2 cores.
"""

from __future__ import annotations

import random
import shutil

import pytest

WORDS = "the a slow fast piano guitar drums song melody calm loud with and of in plays waltz rock".split()


def _pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    refs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + "." for _ in range(n)]
    preds = [" ".join(w if rng.random() < 0.6 else rng.choice(WORDS) for w in r.split()) for r in refs]
    return preds, refs




@pytest.mark.skipif(shutil.which("java") is None, reason="coco needs Java")
def test_coco_equals_pycocoevalcap_direct():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from musilingo.metrics.coco import CocoMetric

    preds, refs = _pairs(20, seed=3)
    multi = [[r, p[::-1]] for p, r in zip(preds, refs)]
    metric = CocoMetric()
    metric.update(preds[:10], multi[:10])
    metric.update(preds[10:], multi[10:])
    ours = metric.compute()
    assert ours.pop("n") == 20 and any("SPICE" in n for n in ours.pop("notes"))
    gts = {i: [{"caption": r} for r in rs] for i, rs in enumerate(multi)}
    res = {i: [{"caption": p}] for i, p in enumerate(preds)}
    tok = PTBTokenizer()
    g, r = tok.tokenize(gts), tok.tokenize(res)
    bleu, _ = Bleu(4).compute_score(g, r)
    direct = {f"Bleu_{i + 1}": b for i, b in enumerate(bleu)}
    direct["METEOR"] = Meteor().compute_score(g, r)[0]
    direct["ROUGE_L"] = Rouge().compute_score(g, r)[0]
    direct["CIDEr"] = Cider().compute_score(g, r)[0]
    assert ours == pytest.approx(direct, rel=1e-12)

