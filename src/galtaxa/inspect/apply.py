"""Applying the inspectors' group names to the catalog, from the app.

What applying does is :mod:`galtaxa.pipeline.apply_mapping`'s (``galtaxa run`` again with the run's
``mapping.yaml``, every cached stage reused, the classifier's predictions kept).  It runs in a separate process
(``python -m galtaxa.pipeline.apply_mapping RUN_DIR``), started and watched by :class:`ApplyJob`: the app keeps
answering while it runs, a crash of the run cannot take the app down, and the run takes the run folder's lock
like any ``galtaxa run`` (a second run on the folder is refused with a message naming it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

__all__ = ["ApplyJob"]

#: Lines of the run's output kept for the page.
LOG_LINES = 200


class ApplyJob:
    """One run of :func:`galtaxa.pipeline.apply_mapping.main` at a time for a run folder, in a child process, its
    output kept.

    Parameters
    ----------
    run_dir : Path
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._log: deque[str] = deque(maxlen=LOG_LINES)
        self.state = "idle"
        self.started: float | None = None
        self.finished: float | None = None
        self.returncode: int | None = None
        self.by: str | None = None

    def start(self, by: str) -> bool:
        """Start the run (``False``: one is running already)."""
        with self._lock:
            if self.state == "running":
                return False
            env = dict(os.environ, GALTAXA_PROGRESS="0", PYTHONUNBUFFERED="1")
            src = str(Path(__file__).resolve().parents[2])  # the galtaxa the app runs, in the child too
            env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            self._log.clear()
            self._proc = subprocess.Popen(  # noqa: S603 - our own module, a path argument, no shell
                [sys.executable, "-m", "galtaxa.pipeline.apply_mapping", str(self.run_dir)], cwd=self.run_dir, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                encoding="utf-8", errors="replace")
            self.state, self.started, self.finished, self.returncode, self.by = "running", time.time(), None, None, by
            threading.Thread(target=self._watch, args=(self._proc,), name="galtaxa-inspect-apply", daemon=True).start()
            return True

    def _watch(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        root = f"{self.run_dir.resolve()}/"
        for line in proc.stdout:
            line = line.rstrip().replace(root, "")  # paths in the run folder, relative to it
            if line:
                self._log.append(line[:500])
        code = proc.wait()
        with self._lock:
            self.returncode = code
            self.finished = time.time()
            self.state = "done" if code == 0 else "failed"

    def wait(self, timeout: float | None = None) -> str:
        """Wait for the run to end (tests); returns the state."""
        t0 = time.time()
        while self.state == "running" and (timeout is None or time.time() - t0 < timeout):
            time.sleep(0.1)
        return self.state

    def describe(self) -> dict:
        """The job for the page: state, times (UTC, ISO 8601), who started it, its last output lines."""
        def iso(t):
            return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

        with self._lock:
            lines = list(self._log)
            error = next((ln for ln in reversed(lines) if ln.startswith("error:")), None)
            if self.state == "failed" and error is None and lines:
                error = lines[-1]
            return {"state": self.state, "started": iso(self.started), "finished": iso(self.finished),
                    "by": self.by, "returncode": self.returncode, "log": lines[-30:], "error": error}
