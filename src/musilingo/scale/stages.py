"""The work of one batch of files, as plain callables that Ray Data runs in actors (and tests
call directly): :class:`EncodeStage` decodes, windows and encodes; :class:`GenerateStage` answers
from the features with the model's own rule (``MusiLingo.answer_features``); :func:`write_stage`
writes a shard. No Ray import here.

Batches are column dicts (Ray Data's ``numpy`` batch format): ``source`` and ``location`` in;
``source``, ``payload`` (pickled window features) and ``error`` between the stages; ``source``,
``rows`` (pickled output rows of the file) and ``error`` into the writer. A missing value is
``""`` / ``b""``, never None, so every block has the same Arrow types.

A file's problem (unreadable, too long; or an exception while encoding or answering it alone)
becomes its ``error``; the rest of the batch goes on. An exception that hits a whole batch is
retried file by file, so only the file that causes it is recorded as failed.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from musilingo.scale.job import JobSpec

log = logging.getLogger(__name__)

Batch = dict[str, Sequence]
BatchHook = Callable[[list[str]], None]


def _problem(e: BaseException) -> str:
    from musilingo.errors import AudioError

    return e.problem if isinstance(e, AudioError) else f"{type(e).__name__}: {e}"


def _column(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _pack(rows: list[dict]) -> bytes:
    return pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)


def error_rows(job: JobSpec, source: str, problem: str) -> list[dict]:
    """The one row of a failed file."""
    if job.task == "features":
        return [
            {
                "scope": "track",
                "source": source,
                "start_s": None,
                "end_s": None,
                "n_tokens": None,
                "dim": None,
                "features": None,
                "error": problem,
            }
        ]
    if job.task == "analyze":
        return [
            {"scope": "track", "source": source, "facts": None, "summary": None, "error": problem}
        ]
    return [
        {
            "scope": "track",
            "source": source,
            "question": job.prompt,
            "text": None,
            "start_s": None,
            "end_s": None,
            "error": problem,
        }
    ]


def answer_rows(
    source: str,
    question: str,
    duration_s: float,
    spans: list,
    track: str | None,
    window_texts: list[str],
) -> list[dict]:
    """A file's rows, exactly as the plain CLI writes them (``--json``): one per window of a
    long file, then the track's."""
    from musilingo.model import Answer

    ans = Answer(source=source, question=question, text=track, start_s=0.0, end_s=duration_s)
    ans.windows = [
        Answer(source=source, question=question, text=t, start_s=s, end_s=e)
        for (s, e), t in zip(spans, window_texts)
    ]
    rows = [{"scope": "window", **w.to_json()} for w in ans.windows]
    whole = ans.to_json()
    whole.pop("windows", None)
    return rows + [{"scope": "track", **whole}]


def feature_rows(source: str, spans: list, features: list[np.ndarray]) -> list[dict]:
    """A file's rows of a ``features`` job: one per window, its [n, D] matrix flattened."""
    return [
        {
            "scope": "window",
            "source": source,
            "start_s": s,
            "end_s": e,
            "n_tokens": int(f.shape[0]),
            "dim": int(f.shape[1]),
            "features": f.astype(np.float32).ravel().tolist(),
            "error": None,
        }
        for (s, e), f in zip(spans, features)
    ]


class _Stage:
    """What every stage actor sets up first: torch's thread count (``threads``: its share of
    the node's CPUs), the job, the device and the per-batch hook (tests inject failures there);
    then :meth:`setup` loads what the stage holds."""

    def __init__(
        self,
        job: JobSpec,
        device: str = "cpu",
        threads: int | None = None,
        on_batch: BatchHook | None = None,
    ):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.job, self.device, self.on_batch = job, device, on_batch
        self.setup()

    def setup(self) -> None:
        """Load what the stage holds for its lifetime (a model, an encoder); nothing here."""


class EncodeStage(_Stage):
    """Decode, window and encode a batch of files with the job's encoder (held once per actor).

    In: ``source``, ``location``. Out: ``source``, ``payload``, ``error`` (or, for a ``features``
    job, the final ``rows``).
    """

    def setup(self) -> None:
        from musilingo.features import feature_spec_from

        job = self.job
        spec = feature_spec_from(job.model)
        self.spec = replace(spec, window_s=job.window_s) if job.window_s else spec
        self.spec.encoder.to(self.device)

    def _encode(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        bs = self.job.batch_size
        for b in range(0, len(clips), bs):
            out += [f.cpu().numpy() for f in self.spec.encode(clips[b : b + bs], self.device)]
        return out

    def __call__(self, batch: Batch) -> Batch:
        from musilingo.audio import MAX_DURATION_S, split_windows
        from musilingo.scale.inputs import read_audio

        sources = [str(s) for s in batch["source"]]
        if self.on_batch:
            self.on_batch(sources)
        sr = self.spec.encoder.sample_rate
        limit = self.job.max_duration_s or MAX_DURATION_S
        decoded: dict[int, tuple[float, list, list]] = {}
        errors = [""] * len(sources)
        for i, (source, location) in enumerate(zip(sources, batch["location"])):
            try:
                samples = read_audio(str(location), source, sr, limit)
                wins = split_windows(samples, sr, self.spec.window_s)
                decoded[i] = (
                    len(samples) / sr,
                    [(w.start_s, w.end_s) for w in wins],
                    [w.samples for w in wins],
                )
            except Exception as e:  # noqa: BLE001 - a file's problem is recorded, the rest go on
                errors[i] = _problem(e).replace(str(location), source)  # named as given
        feats: dict[int, list[np.ndarray]] = {}
        order = sorted(decoded)
        try:
            flat = self._encode([c for i in order for c in decoded[i][2]])
            k = 0
            for i in order:
                n = len(decoded[i][2])
                feats[i], k = flat[k : k + n], k + n
        except Exception:  # noqa: BLE001 - find the file that breaks the batch
            log.warning("encoding a batch of %d files failed; encoding them one by one", len(order))
            for i in order:
                try:
                    feats[i] = self._encode(decoded[i][2])
                except Exception as e:  # noqa: BLE001
                    errors[i] = _problem(e)
        payloads, rows = [b""] * len(sources), [b""] * len(sources)
        for i, source in enumerate(sources):
            if errors[i]:
                rows[i] = _pack(error_rows(self.job, source, errors[i]))
                continue
            duration, spans, windows = decoded[i]
            if self.job.task == "features":
                rows[i] = _pack(feature_rows(source, spans, feats[i]))
            else:
                # a model that reads measured facts gets them per window, measured here
                facts = self.spec.measure(windows) if self.spec.facts else None
                payloads[i] = pickle.dumps(
                    (duration, spans, feats[i], facts), protocol=pickle.HIGHEST_PROTOCOL
                )
        out = {"source": _column(sources), "error": _column(errors)}
        if self.job.task == "features":
            out["rows"] = _column(rows)
        else:
            out["payload"] = _column(payloads)
        return out


class GenerateStage(_Stage):
    """Answer a batch of encoded files with the model (held once per actor).

    In: ``source``, ``payload``, ``error``. Out: ``source``, ``rows``, ``error``.
    """

    def setup(self) -> None:
        from musilingo.generation import GenerationOptions
        from musilingo.model import load_model

        job = self.job
        self.model, _ = load_model(job.model, self.device, job.llm)
        if job.window_s:
            self.model.config.window_s = job.window_s
        self.options = GenerationOptions.named(
            job.decoding, job.max_new_tokens or self.model.config.max_new_tokens
        )

    def _answer(self, payloads: list[tuple]) -> list[tuple[str | None, list[str]]]:
        """Answers for encode-stage payloads ``(duration, spans, features, facts)``."""
        import torch

        from musilingo.prompts import Turn

        feats = [[torch.from_numpy(np.asarray(f)) for f in p[2]] for p in payloads]
        facts = [p[3] for p in payloads] if self.model.config.facts else None
        return self.model.answer_features(
            feats,
            [[Turn(self.job.prompt)] for _ in payloads],
            self.options,
            self.job.batch_size,
            whole_track=self.job.whole_track,
            facts=facts,
        )

    def __call__(self, batch: Batch) -> Batch:
        sources = [str(s) for s in batch["source"]]
        if self.on_batch:
            self.on_batch(sources)
        errors = [str(e) for e in batch["error"]]
        prepared = {i: pickle.loads(p) for i, p in enumerate(batch["payload"]) if not errors[i]}
        order = sorted(prepared)
        answers: dict[int, tuple[str | None, list[str]]] = {}
        try:
            answers = dict(zip(order, self._answer([prepared[i] for i in order])))
        except Exception:  # noqa: BLE001 - find the file that breaks the batch
            log.warning(
                "answering a batch of %d files failed; answering them one by one", len(order)
            )
            for i in order:
                try:
                    answers[i] = self._answer([prepared[i]])[0]
                except Exception as e:  # noqa: BLE001
                    errors[i] = _problem(e)
        rows = []
        for i, source in enumerate(sources):
            if errors[i]:
                rows.append(_pack(error_rows(self.job, source, errors[i])))
                continue
            duration, spans = prepared[i][:2]
            track, window_texts = answers[i]
            rows.append(
                _pack(answer_rows(source, self.job.prompt, duration, spans, track, window_texts))
            )
        return {"source": _column(sources), "rows": _column(rows), "error": _column(errors)}


class AnalyzeStage(_Stage):
    """Measure the facts of a batch of files (``musilingo.analysis``; its taggers loaded once per
    actor, on first use). In: ``source``, ``location``. Out: ``source``, ``rows``, ``error``."""

    def __call__(self, batch: Batch) -> Batch:
        import json

        from musilingo.analysis.pipeline import MAX_DURATION_S, analyze_file

        sources = [str(s) for s in batch["source"]]
        if self.on_batch:
            self.on_batch(sources)
        rows, errors = [], []
        for source, location in zip(sources, batch["location"]):
            location = str(location)
            try:
                facts = analyze_file(
                    location[len("file://") :] if location.startswith("file://") else location,
                    with_tags=self.job.analysis_tags,
                    max_duration_s=self.job.max_duration_s or MAX_DURATION_S,
                )
                rows.append(
                    _pack(
                        [
                            {
                                "scope": "track",
                                "source": source,
                                "facts": json.dumps(facts.to_dict(), ensure_ascii=False),
                                "summary": facts.summary(),
                                "error": None,
                            }
                        ]
                    )
                )
                errors.append("")
            except Exception as e:  # noqa: BLE001 - a file's problem is recorded, the rest go on
                problem = _problem(e).replace(location, source)
                rows.append(_pack(error_rows(self.job, source, problem)))
                errors.append(problem)
        return {"source": _column(sources), "rows": _column(rows), "error": _column(errors)}


def write_stage(batch: Batch, out: str, fmt: str) -> Batch:
    """Write a batch of finished files as one shard; returns ``source``, ``error`` and ``shard``
    per file (what the driver counts)."""
    from musilingo.scale.sinks import ShardSink

    rows = [r for packed in batch["rows"] for r in pickle.loads(packed)]
    shard = ShardSink(out, fmt).write(rows) or ""
    n = len(batch["source"])
    return {
        "source": _column([str(s) for s in batch["source"]]),
        "error": _column([str(e) for e in batch["error"]]),
        "shard": _column([shard] * n),
    }
