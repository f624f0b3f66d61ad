"""Peak memory and time of the PCA reduction (fit + transform) on a features memory map, with and without
``reduce.fit_rows`` (the out-of-core PCA of :class:`galtaxa.reduce.PCAReducer`).

Writes an ``N x d`` float32 ``.npy`` memory map of synthetic features (rank 64 plus noise, columns on different
scales, like an encoder's output), then runs ``PCAReducer(n_components=k).fit_transform`` on it, each setting in
a fresh Python process, and records per setting:

* ``numpy_peak_gib``: the peak of memory allocated through NumPy (``tracemalloc``, which NumPy reports its
  array buffers to): what the reduction needs, whatever the page cache does;
* ``anon_peak_gib``: the peak of the process's anonymous resident memory (``RssAnon`` of ``/proc/self/status``
  sampled every 20 ms), which also counts the interpreter and the libraries; pages of the memory map are
  file-backed (``RssFile``), evictable, and not counted;
* ``wall_s``.

Usage::

    PYTHONPATH=src python benchmarks/pca_memory.py --n 200000 --d 1280 --k 50 --fit-rows 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

GIB = 2.0 ** 30


def write_features(path: Path, n: int, d: int, seed: int = 0, chunk: int = 20000) -> None:
    """Synthetic features: rank 64 plus noise, column scales from 1 to 100, float32, written by chunks."""
    gen = np.random.default_rng(seed)
    basis = gen.normal(size=(64, d)).astype(np.float32)
    scale = np.logspace(0, 2, d).astype(np.float32)
    weights = np.linspace(8, 1, 64).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        latent = gen.standard_normal((m, 64), dtype=np.float32) * weights
        out[start:start + m] = (latent @ basis + 0.1 * gen.standard_normal((m, d), dtype=np.float32)) * scale
    out.flush()
    del out


def _anon_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def measure_one(path: str, k: int, fit_rows: int | None, chunk_rows: int) -> dict:
    """fit_transform of the memory map in this process; peak memory and wall time."""
    import tracemalloc

    from galtaxa.reduce import PCAReducer

    X = np.load(path, mmap_mode="r")
    peak = [_anon_kib()]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _anon_kib())
            time.sleep(0.02)

    before = _anon_kib()
    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    tracemalloc.start()
    t0 = time.perf_counter()
    red = PCAReducer(n_components=k, fit_rows=fit_rows, chunk_rows=chunk_rows, random_state=0)
    Z = red.fit_transform(X)
    wall = time.perf_counter() - t0
    _cur, numpy_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stop.set()
    watcher.join()
    return {"fit_rows": fit_rows, "chunk_rows": chunk_rows, "wall_s": round(wall, 1),
            "numpy_peak_gib": round(numpy_peak / GIB, 3), "anon_peak_gib": round(peak[0] / 2 ** 20, 3),
            "anon_before_gib": round(before / 2 ** 20, 3), "output_gib": round(Z.nbytes / GIB, 3),
            "explained_variance": round(float(red.explained_variance_ratio_.sum()), 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--d", type=int, default=1280)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--fit-rows", type=int, default=20000)
    ap.add_argument("--chunk-rows", type=int, default=65536)
    ap.add_argument("--folder", default=None, help="where the memory map is written (default: a temp folder)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: "path:fit_rows"
    args = ap.parse_args(argv)
    if args.one is not None:
        path, fit_rows = args.one.rsplit(":", 1)
        print(json.dumps(measure_one(path, args.k, None if fit_rows == "none" else int(fit_rows), args.chunk_rows)))
        return 0
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        path = Path(tmp) / "features.npy"
        t0 = time.perf_counter()
        write_features(path, args.n, args.d)
        print(f"wrote {args.n} x {args.d} float32 ({path.stat().st_size / GIB:.2f} GiB) in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
        rows = []
        for fit_rows in (None, args.fit_rows):
            cmd = [sys.executable, __file__, "--one", f"{path}:{fit_rows or 'none'}", "--k", str(args.k),
                   "--chunk-rows", str(args.chunk_rows)]
            res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    report = {"n": args.n, "d": args.d, "k": args.k, "features_gib": round(args.n * args.d * 4 / GIB, 3),
              "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, load average "
                         f"{os.getloadavg()[0]:.1f}", "results": rows}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
