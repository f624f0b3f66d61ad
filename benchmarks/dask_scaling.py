"""Dask scaling: simulated galaxies through read -> measure (-> encode -> cluster) on the local
path and on a 2-worker ``LocalCluster``, plus the subset measurements behind the README's 10^7-row plan.

Each path runs in its own subprocess (``galtaxa`` with ``compute.scheduler: local`` and ``measure.n_jobs`` =
the worker count, then ``compute.scheduler: processes`` with ``compute.n_workers`` workers), so its peak memory
is its own: the client's peak resident memory is its ``VmHWM``; the workers' are the ``VmHWM`` of every process
below the client (the measure pool of the local path, the Dask worker processes of the cluster and helpers such
as the resource tracker), read from ``/proc`` just before they are shut down (the JSON also has ``getrusage(RUSAGE_CHILDREN)`` of the
processes that had ended, an upper bound only: a forked helper starts with its parent's resident memory).  Throughput is galaxies per second of wall time for the read
and measure stages and, with ``--encode``, for the encode + cluster stage (the encoder's batches run on the
workers in the cluster path; reduction and clustering stay on the client).  The catalogs of the two paths are compared (ids, statuses, measurements).

The target is 10^4 galaxies; the default is 2,000 and the recorded run used fewer (see RESULTS.md): on the
2-core machine it was written on, the measurement alone costs about 0.1-0.3 s per 64 px galaxy per core.

``--plan`` adds the measurements of the 10^7-row plan: the project's default clustering (the voting ensemble,
k-means + BIRCH + Ward, 20 groups) on ``--plan-n`` x 64 random features and the PCA reduction
(``PCAReducer(n_components=50)``) of ``--plan-n`` x 1280 features (EfficientNet-Lite0's width), each in its own
subprocess (own peak RSS).

Usage::

    .venv/bin/python benchmarks/dask_scaling.py                       # 2,000 galaxies, 64 px
    .venv/bin/python benchmarks/dask_scaling.py --n 10000 --encode    # the target size
    .venv/bin/python benchmarks/dask_scaling.py --n 300 --plan        # what the recorded run did

Writes ``benchmarks/results/dask_scaling.{json,md}`` (``benchmarks/run_all.py`` includes the ``.md`` in
RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["main", "run_path", "pca_piece", "render"]

RESULTS = ROOT / "benchmarks" / "results"


def _hwm_mib(pid: int | str = "self") -> float | None:
    """Peak resident memory (``VmHWM``) of a process, MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _children_hwm() -> dict:
    """``{pid: (name, peak RSS MiB)}`` of every process below this one."""
    import psutil

    out = {}
    for child in psutil.Process().children(recursive=True):
        try:
            out[child.pid] = (" ".join(child.cmdline()[:3])[-80:], _hwm_mib(child.pid))
        except psutil.Error:
            continue
    return out


def _config(data: Path, run_dir: Path, scheduler: str, workers: int, chunk: int, size: int) -> dict:
    from galtaxa.config import load_config

    return load_config(overrides={
        "seed": 0, "run_dir": str(run_dir), "input": {"path": str(data)},
        "conditioning": {"size": size, "scaling": "asinh"},
        "encoder": {"input_size": 64, "batch_size": 32},
        "reduce": {"n_components": 16}, "cluster": {"n_clusters": 8},
        "measure": {"n_jobs": workers},
        "compute": {"scheduler": scheduler, "n_workers": workers, "chunk_size": chunk},
        "report": {"enabled": False}, "output": {"formats": ["parquet"]},
    })


def run_path(data: str, run_dir: str, scheduler: str, workers: int, chunk: int, size: int, encode: bool) -> dict:
    """One path (``local`` or ``processes``) in this process; returns its record."""
    import torch

    from galtaxa.cache import RunCache
    from galtaxa.pipeline import RunPlan, read_stage, run_on_galaxies

    torch.set_num_threads(workers)
    cfg = _config(Path(data), Path(run_dir), scheduler, workers, chunk, size)
    rec: dict = {"path": scheduler, "workers": workers, "chunk_size": chunk}
    t0 = time.perf_counter()
    with RunPlan.from_config(cfg, progress=False) as plan:
        cfg, source, runner = plan.cfg, plan.source, plan.runner
        galaxies, read = read_stage(plan, RunCache(cfg["run_dir"]))
        rec["read_s"] = round(time.perf_counter() - t0, 2)
        t1 = time.perf_counter()
        result = run_on_galaxies(cfg, galaxies, raw=source, stages=("measure",), progress=False, upstream=(read,),
                                 runner=runner)
        rec["measure_s"] = round(time.perf_counter() - t1, 2)
        if encode:
            t2 = time.perf_counter()
            result = run_on_galaxies(cfg, galaxies, raw=source, stages=("measure", "cluster"), progress=False,
                                     upstream=(read,), runner=runner)
            rec["encode_cluster_s"] = round(time.perf_counter() - t2, 2)
        workers_hwm = _children_hwm()  # before the cluster (or the measure pool) goes away
    n = len(result.catalog)
    rec.update(n=n, read_measure_gal_per_s=round(n / (rec["read_s"] + rec["measure_s"]), 3),
               measure_gal_per_s=round(n / rec["measure_s"], 3),
               client_peak_rss_mib=round(_hwm_mib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               worker_processes=len(workers_hwm),
               ended_children_peak_rss_mib=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
               workers_peak_rss_mib=sorted(round(v, 1) for _, v in workers_hwm.values() if v is not None),
               measured_ok=int((result.catalog["measure_status"] == "ok").sum()))
    if encode:
        rec["encode_cluster_gal_per_s"] = round(n / rec["encode_cluster_s"], 3)
    return rec


def pca_piece(n: int, d: int, k: int = 50, seed: int = 0) -> dict:
    """The default reduction (``PCAReducer(n_components=50)``) of ``n`` x ``d`` float32 features, timed."""
    from galtaxa.reduce import PCAReducer

    x = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
    t0 = time.perf_counter()
    z = PCAReducer(n_components=k, random_state=seed).fit_transform(x)
    secs = time.perf_counter() - t0
    return {"algorithm": f"pca->{k}", "n": n, "d": d, "seconds": round(secs, 2), "status": "ok",
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "load_avg_1min": round(os.getloadavg()[0], 2), "details": {"out_dim": int(z.shape[1]),
                                                                       "data_gib": round(x.nbytes / 2**30, 3)}}


def _child(args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    env = {**os.environ, "GALTAXA_PROGRESS": "0", "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout > {timeout:.0f} s", "args": args}
    if out.returncode != 0:
        return {"status": f"failed (rc {out.returncode})", "args": args, "details": out.stderr[-1500:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _compare(run_a: Path, run_b: Path) -> dict:
    """Catalogs of the two paths: same ids / statuses / groups, largest measurement difference."""
    import pandas as pd

    from galtaxa.measure import CATALOG_COLUMNS

    a, b = pd.read_parquet(run_a / "catalog.parquet"), pd.read_parquet(run_b / "catalog.parquet")
    num = [c for c in CATALOG_COLUMNS if c in a and pd.api.types.is_numeric_dtype(a[c])]
    diff = np.abs(a[num].to_numpy(float) - b[num].to_numpy(float))
    same_nan = bool((np.isnan(a[num].to_numpy(float)) == np.isnan(b[num].to_numpy(float))).all())
    out = {"same_ids": bool((a["id"] == b["id"]).all()),
           "same_status": bool((a["status"] == b["status"]).all() and (a["measure_status"] == b["measure_status"]).all()),
           "same_nan": same_nan, "max_abs_diff": float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0}
    if "group" in a and "group" in b:
        out["same_groups"] = bool((a["group"] == b["group"]).all())
    return out


def render(doc: dict) -> str:
    """``dask_scaling.md``: the two paths, their agreement and the plan's subset measurements."""
    m = doc["machine"]
    lines = ["# Dask scaling\n",
             f"- command: `{doc['command']}`\n- commit: `{doc['commit']}`, date {doc['date']}\n"
             f"- machine: {m['platform']}, {m.get('cpu', '')}, {m['cpu_count']} cores, {m['ram_gib']} GiB RAM, "
             f"GPU: {m.get('gpu')}; load average at start {doc['load_avg_start']}, at end {doc.get('load_avg_end')} "
             "(**the CPU was shared with other jobs**)\n",
             f"- {doc['n']} simulated galaxies ({doc['size']} px, `galtaxa.datasets.simulate(seed=0)`, an `.npy` "
             "read lazily)" + ("; the target is 10^4: rerun with `--n 10000 --encode`" if doc["n"] < 10_000 else "")
             + "\n",
             "\n| path | workers | read s | measure s | read+measure gal/s | measure gal/s | encode+cluster s | "
             "client peak RSS MiB | worker processes: peak RSS MiB |\n"
             "|---|---:|---:|---:|---:|---:|---:|---:|---|\n"]
    for r in doc["paths"]:
        if "measure_s" not in r:
            lines.append(f"| {r.get('path', r.get('args'))} | | | | | | | | {r.get('status')} |\n")
            continue
        lines.append(f"| {r['path']} | {r['workers']} | {r['read_s']} | {r['measure_s']} | "
                     f"{r['read_measure_gal_per_s']} | {r['measure_gal_per_s']} | {r.get('encode_cluster_s', '-')} | "
                     f"{r['client_peak_rss_mib']:.0f} | {r['worker_processes']}: "
                     f"{', '.join(f'{v:.0f}' for v in r['workers_peak_rss_mib'])} |\n")
    if doc.get("agreement"):
        lines.append(f"\nCatalog of the cluster run against the local run: {doc['agreement']}\n")
    if doc.get("plan"):
        origin = doc.get("plan_from")
        origin = f" (measured by `{origin['command']}` at `{origin['commit']}`, {origin['date']})" if origin else ""
        lines.append("\nSubset measurements for the 10^7-row plan (README, \"Running on many machines\"); each "
                     f"piece in its own process{origin}:\n\n| piece | N | d | s | peak RSS MiB | load | details |\n"
                     "|---|---:|---:|---:|---:|---:|---|\n")
        for r in doc["plan"]:
            lines.append(f"| {r.get('algorithm')} | {r.get('n')} | {r.get('d')} | {r.get('seconds')} | "
                         f"{r.get('peak_rss_mib')} | {r.get('load_avg_1min')} | {r.get('status')} "
                         f"{r.get('details', '')} |\n")
    if doc.get("notes"):
        lines.append("\n" + doc["notes"] + "\n")
    return "".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="simulated galaxies (the target is 10^4)")
    p.add_argument("--size", type=int, default=64, help="stamp side (px)")
    p.add_argument("--workers", type=int, default=2, help="Dask workers (and measure.n_jobs of the local path)")
    p.add_argument("--chunk-size", type=int, default=50, help="galaxies per task")
    p.add_argument("--encode", action="store_true", help="also time encode + cluster")
    p.add_argument("--images", type=Path, default=None,
                   help="use the first --n images of this (N, 1, size, size) .npy instead of simulating them")
    p.add_argument("--plan", action="store_true", help="also the clustering / PCA subset measurements")
    p.add_argument("--plan-n", type=int, default=100000, help="rows of the plan's subset measurements")
    p.add_argument("--timeout", type=float, default=1800, help="wall-clock limit per subprocess (s)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        kind, *rest = a.child
        if kind == "path":
            data, run_dir, scheduler = rest
            print(json.dumps(run_path(data, run_dir, scheduler, a.workers, a.chunk_size, a.size, a.encode)))
        elif kind == "pca":
            print(json.dumps(pca_piece(int(rest[0]), int(rest[1]))))
        return 0
    from benchmarks.stages import command_line, git_commit, machine_info, now
    from galtaxa.datasets import simulate

    out = a.out or RESULTS / "dask_scaling.json"
    doc = {"machine": machine_info(), "commit": git_commit(), "command": command_line(), "date": now(),
           "load_avg_start": [round(x, 2) for x in os.getloadavg()], "n": a.n, "size": a.size, "paths": []}
    with tempfile.TemporaryDirectory(prefix="galtaxa-dask-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        if a.images is not None:  # e.g. the sim.npy of an earlier, larger run (simulate(seed=0) at this size)
            images = np.load(a.images, mmap_mode="r")
            if images.shape[0] < a.n or images.shape[-2:] != (a.size, a.size):
                raise SystemExit(f"{a.images}: {images.shape} has fewer than {a.n} images of {a.size} px")
            np.save(tmp / "sim.npy", np.asarray(images[:a.n]))
            doc["images"] = f"first {a.n} of {a.images.name} {tuple(images.shape)}"
            del images
        else:
            gs, _truth = simulate(n=a.n, size=a.size, seed=0)
            np.save(tmp / "sim.npy", np.asarray(gs.images))
            del gs
            doc["simulate_s"] = round(time.perf_counter() - t0, 1)
        common = ["--workers", str(a.workers), "--chunk-size", str(a.chunk_size), "--size", str(a.size)]
        common += ["--encode"] if a.encode else []
        for scheduler in ("local", "processes"):
            rec = _child(["--child", "path", str(tmp / "sim.npy"), str(tmp / scheduler), scheduler, *common], a.timeout)
            rec.setdefault("path", scheduler)
            doc["paths"].append(rec)
            print(json.dumps(rec), flush=True)
        if all("measure_s" in r for r in doc["paths"]):
            doc["agreement"] = _compare(tmp / "local", tmp / "processes")
            print(doc["agreement"], flush=True)
    if a.plan:
        from benchmarks.scale_clustering import _child as clustering_child

        doc["plan"] = [clustering_child("voting", a.plan_n, 64, a.timeout)]
        print(doc["plan"][-1], flush=True)
        rec = _child(["--child", "pca", str(a.plan_n), "1280"], a.timeout)
        rec.update(algorithm="pca->50", n=a.plan_n, d=1280) if "seconds" not in rec else None
        doc["plan"].append(rec)
        print(rec, flush=True)
    doc["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    previous = json.loads(out.read_text()) if out.exists() else {}
    if previous.get("notes") and previous.get("n") == doc["n"]:
        doc["notes"] = previous["notes"]  # hand-written reading of the numbers, kept across reruns of the same size
    if "plan" not in doc and previous.get("plan"):  # the plan's pieces do not depend on --n: keep the last ones
        doc["plan"] = previous["plan"]
        doc["plan_from"] = previous.get("plan_from") or {k: previous.get(k) for k in ("commit", "date", "command")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, default=str))
    if a.out is None:
        (RESULTS / "dask_scaling.md").write_text(render(doc))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
