"""Basic Pitch posteriorgrams as encoder frames: pitch and harmony at ~86 frames per second.

Runs Spotify's Basic Pitch model (ICASSP 2022, Apache-2.0) from the ONNX file shipped inside the
``basic-pitch`` wheel with onnxruntime on the CPU. Each frame is the concatenation of the three
posteriorgrams the model outputs, all in [0, 1]:

    note    [88]   a piano key (MIDI 21..108) sounds,  bin k = MIDI 21 + k
    onset   [88]   a note starts on that key
    contour [264]  fine pitch salience, 3 bins per semitone; bin 3k + 1 is centred on key k

for ``feature_dim = 440``. The windowing and stitching reproduce ``basic_pitch.inference.
run_inference`` exactly (``stitching="basic_pitch"``, the default): the clip is prefixed with
3840 zeros (15 frames), cut into windows of ``WINDOW_SAMPLES`` = 43844 samples every
``HOP_SAMPLES`` = 36164 samples, the model gives 172 frames per window, 15 frames are dropped
at each end of every window, the rest are concatenated and trimmed to
``floor(num_samples * 86 / 22050)`` frames. Upstream's hop is not a whole number of frames, so
its stitched frames drift against the nominal 256-sample grid by 188 samples (8.5 ms) per
window (about 0.15 s after 30 s) and the last ~0.7 % of a clip is not covered.
``stitching="aligned"`` instead steps windows by exactly 142 frames (36352 samples), so frame
``k`` is centred on sample ``256 k`` for the whole clip, and keeps ``ceil(num_samples / 256)``
frames; the per-window model outputs are the same kind, only the window starts differ.

Every clip is windowed from its own valid samples only, so a padded batch gives the same frames
as each clip alone; windows of all clips in a batch go through the model together.

What it does not do: resample (input must be 22050 Hz mono float32), turn posteriorgrams into
notes or MIDI (that is basic-pitch's ``note_creation``, which needs more packages), train, or
import the ``basic_pitch`` package itself (its ``__init__`` probes TensorFlow, CoreML and TFLite
and logs warnings; the ONNX file is located with :func:`importlib.util.find_spec` only).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import torch

from musilingo.encoders.base import Encoder, EncoderOutput, check_batch
from musilingo.errors import ConfigError

SAMPLE_RATE = 22050  # Hz, the model's input rate
FFT_HOP = 256  # samples per output frame
FRAME_RATE = SAMPLE_RATE / FFT_HOP  # 86.1328125 frames/s
UPSTREAM_FPS = SAMPLE_RATE // FFT_HOP  # 86: basic-pitch's integer rate, used to trim its output
WINDOW_SAMPLES = 2 * SAMPLE_RATE - FFT_HOP  # 43844 samples = 2 s less one hop: the model input
WINDOW_FRAMES = 172  # model output frames per window (= 1 + 43844 // 256)
OVERLAP_FRAMES = 30  # frames shared by neighbouring windows; half of them dropped at each end
OVERLAP_SAMPLES = OVERLAP_FRAMES * FFT_HOP  # 7680 samples
KEPT_FRAMES = WINDOW_FRAMES - OVERLAP_FRAMES  # 142 frames kept from each window
HOP_SAMPLES = WINDOW_SAMPLES - OVERLAP_SAMPLES  # 36164 samples between windows (basic-pitch)
ALIGNED_HOP_SAMPLES = KEPT_FRAMES * FFT_HOP  # 36352 samples between windows ("aligned")
N_NOTE, N_ONSET, N_CONTOUR = 88, 88, 264  # posteriorgram bins
FEATURE_DIM = N_NOTE + N_ONSET + N_CONTOUR  # 440
LOWEST_MIDI = 21  # note bin 0 = A0

ONNX_RELPATH = "saved_models/icassp_2022/nmp.onnx"
_INPUT_NAME = "serving_default_input_2:0"
# output tensor names in the order note, onset, contour (from basic_pitch.inference.Model)
_OUTPUT_NAMES = [
    "StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0",
]
_STITCHINGS = ("basic_pitch", "aligned")


def find_onnx_model() -> Path:
    """Path of ``nmp.onnx`` in the installed ``basic-pitch`` wheel (the package is not imported)."""
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the basic-pitch package is not installed; its wheel carries the model: "
                          "pip install --no-deps basic-pitch==0.4.0")
    for root in spec.submodule_search_locations:
        path = Path(root) / ONNX_RELPATH
        if path.is_file():
            return path
    raise ConfigError(f"basic-pitch is installed but holds no {ONNX_RELPATH}")


class BasicPitchEncoder(Encoder):
    """Frozen Basic Pitch model: 22050 Hz audio -> [note 88 | onset 88 | contour 264] frames.

    Args:
        model_path: an ``nmp.onnx`` file; default: the one inside the installed wheel.
        num_threads: onnxruntime intra-op threads; ``None`` lets onnxruntime choose (all cores).
        window_batch: model windows (2 s each) per onnxruntime call; bounds memory.
        stitching: ``"basic_pitch"`` (reproduce upstream exactly) or ``"aligned"`` (drift-free
            frame grid); see the module docstring.
    """

    sample_rate = SAMPLE_RATE
    frame_rate = FRAME_RATE
    feature_dim = FEATURE_DIM

    def __init__(
        self,
        model_path: str | Path | None = None,
        num_threads: int | None = None,
        window_batch: int = 16,
        stitching: str = "basic_pitch",
    ):
        super().__init__()
        if stitching not in _STITCHINGS:
            raise ConfigError(f"stitching must be one of {_STITCHINGS}, got {stitching!r}")
        if window_batch < 1:
            raise ConfigError(f"window_batch must be >= 1, got {window_batch}")
        if num_threads is not None and num_threads < 1:
            raise ConfigError(f"num_threads must be >= 1 or None, got {num_threads}")
        self.model_path = Path(model_path) if model_path is not None else find_onnx_model()
        if not self.model_path.is_file():
            raise ConfigError(f"{self.model_path}: no such ONNX model file")
        self.num_threads = num_threads
        self.window_batch = window_batch
        self.stitching = stitching
        self._hop = HOP_SAMPLES if stitching == "basic_pitch" else ALIGNED_HOP_SAMPLES
        self._session = None  # onnxruntime.InferenceSession, created on first use
        self._sha256: str | None = None

    # ------------------------------------------------------------------ public API

    def num_frames(self, num_samples: int) -> int:
        """Frames for a clip of ``num_samples`` samples at 22050 Hz (0 for an empty clip)."""
        n = int(num_samples)
        if n <= 0:
            return 0
        if self.stitching == "basic_pitch":
            return n * UPSTREAM_FPS // SAMPLE_RATE  # floor(n * 86 / 22050), as upstream trims
        return -(-n // FFT_HOP)  # ceil(n / 256): frames centred on samples 0, 256, ... < n

    def cache_key(self) -> dict:
        """Name, sha256 of the ONNX file and every setting that changes the frames."""
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self.model_path.read_bytes()).hexdigest()
        return {
            "name": "basic_pitch",
            "model": "icassp_2022/nmp.onnx",
            "model_sha256": self._sha256,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "features": "note88+onset88+contour264",
            "stitching": self.stitching,
        }

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """audio [B, S] float32 at 22050 Hz, lengths [B] -> frames [B, T, 440], mask [B, T].

        T is the largest :meth:`num_frames` of the batch; frames past a clip's end are zero.
        """
        lens = check_batch(audio, lengths)
        B, S = audio.shape
        samples = audio.detach().to("cpu", torch.float32).numpy()
        posts = self._posteriorgrams([samples[b, :n] for b, n in enumerate(lens)])
        counts = [p.shape[0] for p in posts]
        T = max(counts, default=0)
        frames = np.zeros((B, T, FEATURE_DIM), dtype=np.float32)
        for b, p in enumerate(posts):
            frames[b, : p.shape[0]] = p
        mask = torch.arange(T)[None, :] < torch.tensor(counts, dtype=torch.long)[:, None]
        return EncoderOutput(torch.from_numpy(frames).to(audio.device), mask.to(audio.device))

    def posteriorgrams(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """One clip ``samples [S]`` (22050 Hz) -> ``{"note": [T, 88], "onset": [T, 88],
        "contour": [T, 264]}``, the dict ``basic_pitch.inference.run_inference`` returns."""
        (post,) = self._posteriorgrams([np.asarray(samples, dtype=np.float32).reshape(-1)])
        return {
            "note": post[:, :N_NOTE],
            "onset": post[:, N_NOTE : N_NOTE + N_ONSET],
            "contour": post[:, N_NOTE + N_ONSET :],
        }

    # ------------------------------------------------------------------ internals

    def _window_starts(self, num_samples: int) -> range:
        """Start of every window in the clip prefixed with OVERLAP_SAMPLES / 2 zeros (none when
        the clip yields no frame)."""
        if self.num_frames(num_samples) == 0:
            return range(0)
        return range(0, num_samples + OVERLAP_SAMPLES // 2, self._hop)

    def _posteriorgrams(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Clips [S_b] -> stitched frames [num_frames(S_b), 440] each; windows of all clips are
        batched together."""
        jobs = [(b, w, start) for b, clip in enumerate(clips)
                for w, start in enumerate(self._window_starts(len(clip)))]
        stitched = [np.zeros((len(self._window_starts(len(c))) * KEPT_FRAMES, FEATURE_DIM),
                             dtype=np.float32) for c in clips]
        trim = OVERLAP_FRAMES // 2
        for first in range(0, len(jobs), self.window_batch):
            chunk = jobs[first : first + self.window_batch]
            x = np.zeros((len(chunk), WINDOW_SAMPLES, 1), dtype=np.float32)
            for row, (b, _, start) in enumerate(chunk):
                padded_start = start - OVERLAP_SAMPLES // 2  # position in the unpadded clip
                lo = max(padded_start, 0)
                seg = clips[b][lo : padded_start + WINDOW_SAMPLES]
                x[row, lo - padded_start : lo - padded_start + len(seg), 0] = seg
            out = np.concatenate(self._run(x), axis=-1)  # [n, 172, 440]
            for row, (b, w, _) in enumerate(chunk):
                stitched[b][w * KEPT_FRAMES : (w + 1) * KEPT_FRAMES] = out[row, trim:-trim]
        return [s[: self.num_frames(len(c))] for s, c in zip(stitched, clips, strict=True)]

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        """x [n, 43844, 1] -> [note [n, 172, 88], onset [n, 172, 88], contour [n, 172, 264]]."""
        return self._get_session().run(_OUTPUT_NAMES, {_INPUT_NAME: x})

    def _get_session(self):
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            if self.num_threads is not None:
                opts.intra_op_num_threads = self.num_threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3  # errors only
            self._session = ort.InferenceSession(str(self.model_path), sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
        return self._session

    def __getstate__(self):  # an onnxruntime session does not pickle; rebuild it lazily
        state = self.__dict__.copy()
        state["_session"] = None
        return state

    def extra_repr(self) -> str:
        return f"stitching={self.stitching!r}, num_threads={self.num_threads}"


def feature_offsets(encoder) -> list[int]:
    """Where Basic Pitch's 440 features start in ``encoder``'s frames: ``[0]`` for Basic Pitch
    itself, one offset per Basic Pitch child of a composite encoder, ``[]`` when there is none."""
    if isinstance(encoder, BasicPitchEncoder):
        return [0]
    offsets, start = [], 0
    for child in getattr(encoder, "encoders", ()):
        offsets += [start + o for o in feature_offsets(child)]
        start += int(child.feature_dim)
    return offsets


def transpose_features(frames: torch.Tensor, semitones: int, offset: int = 0) -> torch.Tensor:
    """``frames`` [..., D] with the Basic Pitch features at ``offset`` moved ``semitones`` up (down
    when negative): note and onset bins by that many keys, contour bins by three per semitone.

    What the posteriorgrams of the same music played that much higher or lower would roughly be
    (Basic Pitch is close to pitch-equivariant on its log-frequency input). Bins moved past either
    end are dropped; the freed ones repeat the end bin's value (the posteriorgrams' background
    level there, which is not 0). Other features are unchanged.
    """
    if not -12 <= semitones <= 12:
        raise ValueError(f"transpose by at most an octave (got {semitones})")
    if frames.shape[-1] < offset + FEATURE_DIM:
        raise ValueError(f"frames have {frames.shape[-1]} features; Basic Pitch's {FEATURE_DIM} "
                         f"at offset {offset} do not fit")
    out = frames.clone()
    start = offset
    for n, per in ((N_NOTE, 1), (N_ONSET, 1), (N_CONTOUR, 3)):
        s = semitones * per
        block = frames[..., start: start + n]
        moved = block.clone()
        if s > 0:
            moved[..., s:] = block[..., : n - s]
            moved[..., :s] = block[..., :1]
        elif s < 0:
            moved[..., : n + s] = block[..., -s:]
            moved[..., n + s:] = block[..., -1:]
        out[..., start: start + n] = moved
        start += n
    return out
