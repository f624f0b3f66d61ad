"""Run code in a fresh interpreter and check that it never imported Dask (the local path's promise)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def assert_runs_without_dask(code: str) -> None:
    """Run ``code`` (which imports galtaxa and does the work) in a new Python process and assert that it
    succeeds and that no ``dask`` or ``distributed`` module was imported by the end."""
    code += ("\nimport sys\n"
             "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
             "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"})
    assert res.returncode == 0, res.stderr[-3000:]
