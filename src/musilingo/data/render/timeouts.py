"""Time limits of one clip: the timeout error and external tools run under the clip's deadline.

What it does: defines the exception a clip that runs out of time raises, the SIGALRM handler
that raises it, and :func:`_run`, which runs an external program (abc2midi, mma, fluidsynth)
with what is left of the deadline.

What it does not: decide the limit or retry a clip (:mod:`.pool`).
"""

from __future__ import annotations

import subprocess


class _ClipTimeout(Exception):
    pass


def _on_alarm(signum, frame):  # pragma: no cover - only runs on a hang
    raise _ClipTimeout("clip timed out")


def _run(cmd: list[str], timeout: float, cwd: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              timeout=max(timeout, 1.0), errors="replace")
    except subprocess.TimeoutExpired:
        raise _ClipTimeout(f"{cmd[0]} timed out after {timeout:.0f} s") from None
