"""Scale of the clustering stage: the voting ensemble and the GMM on 10^5 .. 10^6 synthetic galaxies.

Each (algorithm, N, d) piece runs in its own subprocess with a wall-clock limit, so its peak resident memory
(``getrusage(RUSAGE_SELF).ru_maxrss`` of that process, i.e. what ``/usr/bin/time -v`` reports as "Maximum
resident set size") belongs to it alone and a piece that runs away is stopped and recorded as a timeout.

The feature matrices are a seeded mixture of 20 anisotropic Gaussian blobs in ``d`` dimensions, float32,
generated in chunks (10^6 x 300 float32 = 1.2 GB).

Usage::

    .venv/bin/python benchmarks/scale_clustering.py                      # the default grid (long)
    .venv/bin/python benchmarks/scale_clustering.py --quick              # 2,000 x 16 smoke run
    .venv/bin/python benchmarks/scale_clustering.py --n 100000 --d 64 --algorithms voting,gmm

Writes ``benchmarks/results/scale_clustering.json`` (``..._quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["synthetic_features", "run_piece", "main"]

ALGORITHMS = ("kmeans", "birch", "ward", "voting", "gmm", "gmm_bic", "ward_exact_estimate")


def synthetic_features(n: int, d: int, k: int = 20, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """(n, d) float32 mixture of ``k`` Gaussian blobs with random centres and per-blob scales."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d)).astype(np.float32)
    scales = rng.uniform(0.5, 2.0, size=(k, d)).astype(np.float32)
    x = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        lab = rng.integers(0, k, m)
        x[s:s + m] = centres[lab] + scales[lab] * rng.standard_normal((m, d), dtype=np.float32)
    return x


def run_piece(algorithm: str, n: int, d: int, seed: int = 0) -> dict:
    """Run one piece in this process; returns seconds, peak RSS and details."""
    from galtaxa.cluster import VotingClustering
    from galtaxa.cluster.gmm import GMMClustering

    t0 = time.perf_counter()
    x = synthetic_features(n, d, seed=seed)
    gen_s = time.perf_counter() - t0
    details = {"data_gib": round(x.nbytes / 2**30, 3), "generate_s": round(gen_s, 1)}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if algorithm == "voting":
            vc = VotingClustering(n_clusters=20, mapping="hungarian", min_agree=2, random_state=seed).fit(x)
            details.update(kept=round(vc.kept_fraction_, 3), ward_method=vc.estimators_["ward"].method_,
                           birch_subclusters=getattr(vc, "birch_n_subclusters_", None))
        elif algorithm == "kmeans":
            from sklearn.cluster import KMeans

            KMeans(n_clusters=20, n_init=10, random_state=seed).fit(x)
        elif algorithm == "birch":
            VotingClustering(n_clusters=20, algorithms=("birch",), min_agree=1, random_state=seed).fit(x)
        elif algorithm == "ward":
            from galtaxa.cluster.scalable_ward import WardClustering

            w = WardClustering(n_clusters=20, random_state=seed).fit(x)
            details["ward_method"] = w.method_
        elif algorithm == "gmm":
            g = GMMClustering(n_components=20, covariance_type="full", random_state=seed, progress=False).fit(x)
            details.update(converged=bool(g.model_.converged_), n_iter=int(g.model_.n_iter_))
        elif algorithm == "gmm_bic":
            g = GMMClustering(n_components="bic", candidates=range(5, 31, 5), bic_sample_size=20000,
                              random_state=seed, progress=False).fit(x)
            details.update(n_components=g.n_components_)
        elif algorithm == "ward_exact_estimate":
            # scipy's Ward needs the condensed distance matrix: N (N - 1) / 2 float64
            details["condensed_matrix_gib"] = round(n * (n - 1) / 2 * 8 / 2**30, 1)
        else:
            raise ValueError(f"unknown algorithm {algorithm!r}; choose among {ALGORITHMS}")
    secs = time.perf_counter() - t0
    return {"algorithm": algorithm, "n": n, "d": d, "seconds": round(secs, 2), "status": "ok",
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "load_avg_1min": round(os.getloadavg()[0], 2), "details": details}


def _child(algorithm: str, n: int, d: int, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", algorithm, str(n), str(d)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"algorithm": algorithm, "n": n, "d": d, "seconds": None, "peak_rss_mib": None,
                "load_avg_1min": round(os.getloadavg()[0], 2), "status": f"timeout > {timeout:.0f} s", "details": ""}
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1][:200]
        return {"algorithm": algorithm, "n": n, "d": d, "seconds": None, "peak_rss_mib": None,
                "load_avg_1min": round(os.getloadavg()[0], 2),
                "status": f"failed (rc {out.returncode})", "details": tail}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--n", default="100000,1000000", help="comma-separated N")
    p.add_argument("--d", default="64,300", help="comma-separated dimensions")
    p.add_argument("--algorithms", default="voting,gmm", help=f"comma-separated among {ALGORITHMS}")
    p.add_argument("--timeout", type=float, default=600, help="wall-clock limit per piece (s)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--append", action="store_true", help="add to the records already in --out")
    p.add_argument("--child", nargs=3, metavar=("ALG", "N", "D"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(run_piece(a.child[0], int(a.child[1]), int(a.child[2]))))
        return 0
    from benchmarks.stages import command_line, git_commit, machine_info, now

    if a.quick:
        a.n, a.d, a.timeout = "2000", "16", 120
    out = a.out or ROOT / "benchmarks" / "results" / ("scale_clustering_quick.json" if a.quick else "scale_clustering.json")
    doc = {"machine": machine_info(), "commit": git_commit(), "command": command_line(), "date": now(),
           "load_avg_start": [round(x, 2) for x in os.getloadavg()], "records": []}
    if a.append and out.exists():
        old = json.loads(out.read_text())
        doc["records"] = old["records"]
        doc["command"] = old["command"] + " ; " + doc["command"]
    for n in [int(v) for v in a.n.split(",")]:
        for d in [int(v) for v in a.d.split(",")]:
            for alg in a.algorithms.split(","):
                rec = _child(alg, n, d, a.timeout)
                rec.update(command=doc["command"].split(" ; ")[-1], commit=doc["commit"], date=doc["date"])
                doc["records"].append(rec)
                print(f"{alg:20s} N={n:8d} d={d:4d} {rec['status']:24s} {rec.get('seconds')} s "
                      f"peak {rec.get('peak_rss_mib')} MiB load {rec['load_avg_1min']} {rec.get('details')}", flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                doc["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
                out.write_text(json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
