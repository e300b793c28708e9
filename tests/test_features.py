"""Feature cache: keys per encoder configuration, reuse, resume and bad clips."""

import json

import pytest
import soundfile as sf
import torch

from musilingo.data.manifest import Record
from musilingo.encoders.mert import random_mert
from musilingo.errors import CheckpointError
from musilingo.features import FeatureCache, FeatureSpec, build_feature_cache, key_hash

from conftest import SR, tone


def _records(tmp_path, n=3):
    recs = []
    for i in range(n):
        p = tmp_path / f"c{i}.wav"
        sf.write(str(p), tone(2 + i, SR, 200 + 100 * i), SR)
        recs.append(Record(id=f"c{i}", audio=str(p)))
    return recs


def test_cache_is_keyed_by_encoder_configuration(tmp_path):
    a, b = random_mert(layers="all"), random_mert(layers=[0])
    sa, sb = FeatureSpec(a, 325, 30.0), FeatureSpec(b, 325, 30.0)
    assert key_hash(sa.key()) != key_hash(sb.key())
    assert key_hash(sa.key()) != key_hash(FeatureSpec(a, 100, 30.0).key())
    recs = _records(tmp_path)
    ca, _ = build_feature_cache(sa, recs, tmp_path / "cache", progress=False)
    cb, _ = build_feature_cache(sb, recs, tmp_path / "cache", progress=False)
    assert ca.dir != cb.dir and not torch.allclose(ca["c0"], cb["c0"])
    # a folder whose key.json says otherwise is refused
    (cb.dir / "key.json").write_text(json.dumps({"other": 1}))
    with pytest.raises(CheckpointError, match="does not match"):
        FeatureCache(tmp_path / "cache", sb)


def test_features_equal_direct_encoding_and_are_reused(tmp_path):
    enc = random_mert()
    recs = _records(tmp_path)
    cache, stats = build_feature_cache(FeatureSpec(enc, 325), recs, tmp_path / "cache", batch_size=2,
                                       progress=False)
    assert stats["encoded"] == 3 and len(cache) == 3
    direct = enc.encode([torch.from_numpy(tone(3, SR, 300))])
    assert cache["c1"].shape == (1, 32)
    torch.testing.assert_close(cache["c1"][0], direct.frames[0].mean(0), atol=1e-5, rtol=1e-4)
    again, stats2 = build_feature_cache(FeatureSpec(enc, 325), recs, tmp_path / "cache", progress=False)
    assert stats2["encoded"] == 0 and stats2["cached_before"] == 3
    torch.testing.assert_close(again["c2"], cache["c2"])


def test_resume_only_encodes_missing_and_errors_are_listed(tmp_path):
    enc = random_mert()
    recs = _records(tmp_path, 4)
    build_feature_cache(FeatureSpec(enc, 325), recs[:2], tmp_path / "cache", progress=False)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope")
    recs.append(Record(id="bad", audio=str(bad)))
    cache, stats = build_feature_cache(FeatureSpec(enc, 325), recs, tmp_path / "cache", progress=False)
    assert stats["encoded"] == 2 and stats["errors"] == 1 and len(cache) == 4
    err = [json.loads(line) for line in (cache.dir / "errors.jsonl").read_text().splitlines()]
    assert err[0]["id"] == "bad" and "bad.wav" in err[0]["error"]


def test_long_clip_features_concatenate_windows(tmp_path):
    enc = random_mert()
    p = tmp_path / "long.wav"
    sf.write(str(p), tone(65, SR), SR)
    cache, _ = build_feature_cache(FeatureSpec(enc, 325, window_s=30.0),
                                   [Record(id="long", audio=str(p))], tmp_path / "c", progress=False)
    assert cache["long"].shape[0] == 7 + 7 + 2


def test_loudness_normalisation_makes_features_level_independent(tmp_path):
    """musicnn log-compresses magnitudes, so a quieter copy of a clip gives other features; with
    ``loudness_lufs`` both copies give the same features, and the cache key records the option."""
    pytest.importorskip("musicnn.configuration")
    from musilingo.encoders.base import encode_pooled
    from musilingo.encoders.musicnn import MusicnnEncoder

    enc = MusicnnEncoder("MSD_musicnn")
    x = tone(4, enc.sample_rate, 330)
    loud, quiet = 0.5 * x, 0.03 * x
    raw = encode_pooled(enc, [loud, quiet], 1)
    assert (raw[0] - raw[1]).abs().max() > 0.05
    norm = encode_pooled(enc, [loud, quiet], 1, loudness_lufs=-23.0)
    torch.testing.assert_close(norm[0], norm[1], atol=1e-4, rtol=1e-4)
    assert "loudness_lufs" not in FeatureSpec(enc, 1, 30.0).key()  # caches made without the option stay valid
    assert key_hash(FeatureSpec(enc, 1, 30.0).key()) != key_hash(FeatureSpec(enc, 1, 30.0, -23.0).key())
    p = tmp_path / "q.wav"
    sf.write(str(p), quiet, enc.sample_rate, subtype="FLOAT")
    cache, _ = build_feature_cache(FeatureSpec(enc, 1, loudness_lufs=-23.0),
                                   [Record(id="q", audio=str(p))], tmp_path / "c", progress=False)
    torch.testing.assert_close(cache["q"], norm[0], atol=1e-4, rtol=1e-4)


def test_append_after_a_torn_line_starts_a_new_line(tmp_path):
    """A job killed mid-append leaves a torn last line; the next append must not glue its line
    to it (that record would be lost to the reader as well)."""
    from musilingo.data.manifest import append_jsonl

    p = tmp_path / "done.jsonl"
    append_jsonl(p, {"id": "a"})
    with open(p, "a") as f:
        f.write('{"id": "b", "win')  # killed here
    append_jsonl(p, {"id": "c"})
    append_jsonl(p, {"id": "d"})
    rows = []
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line)["id"])
        except ValueError:
            continue
    assert rows == ["a", "c", "d"]
