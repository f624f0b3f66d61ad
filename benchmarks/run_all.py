"""Benchmark runner: every stage of galtaxa against the papers'-style reference, and the end-to-end run.

Usage (from the repository root)::

    .venv/bin/python benchmarks/run_all.py                 # full run: gz1 subset + simulated sets + end-to-end
    .venv/bin/python benchmarks/run_all.py --quick         # smoke run on 16 simulated galaxies (~20 s)
    .venv/bin/python benchmarks/run_all.py --stages polar,encode --n 500

Writes ``benchmarks/results/run_all.json`` (``run_all_quick.json`` with ``--quick``) and, unless
``--no-markdown``, regenerates ``benchmarks/RESULTS.md`` from every JSON file in ``benchmarks/results/``.
Each record carries the machine, the commit, the exact command, the date and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import stages as S  # noqa: E402

__all__ = ["parse_args", "run", "render_markdown", "main"]

RESULTS = ROOT / "benchmarks" / "results"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run on 16 simulated galaxies")
    p.add_argument("--stages", default=",".join(S.STAGES),
                   help=f"comma-separated subset of {','.join(S.STAGES)} (default: all)")
    p.add_argument("--n", type=int, default=1000, help="gz1 galaxies in the galtaxa-vs-reference comparison")
    p.add_argument("--sim-sizes", default="256,1024", help="sizes of the simulated sets (comma-separated; '' = none)")
    p.add_argument("--no-gz1", action="store_true", help="skip the gz1 comparison (simulated sets only)")
    p.add_argument("--e2e", type=int, default=3999, help="gz1 galaxies of the end-to-end run (0 = skip)")
    p.add_argument("--measure-n", type=int, default=100, help="galaxies measured (timing extrapolated)")
    p.add_argument("--ref-polar-n", type=int, default=50, help="images unfolded by the slow reference loop")
    p.add_argument("--ref-encode-n", type=int, default=64, help="images encoded one at a time by the reference")
    p.add_argument("--cae-epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32, help="encoder batch size")
    p.add_argument("--channels-last", action="store_true", help="encoder in channels-last memory format")
    p.add_argument("--out", type=Path, default=None, help="JSON output (default benchmarks/results/run_all.json)")
    p.add_argument("--no-markdown", action="store_true", help="do not regenerate benchmarks/RESULTS.md")
    a = p.parse_args(argv)
    a.command = S.command_line(__file__, sys.argv[1:] if argv is None else list(argv))
    a.stages = [s.strip() for s in a.stages.split(",") if s.strip()]
    unknown = set(a.stages) - set(S.STAGES)
    if unknown:
        p.error(f"unknown stages {sorted(unknown)}; choose among {S.STAGES}")
    if a.quick:
        a.no_gz1, a.sim_sizes, a.e2e = True, "16", 0
        a.measure_n, a.ref_polar_n, a.ref_encode_n, a.cae_epochs = 4, 4, 4, 1
    a.sim_sizes = [int(s) for s in str(a.sim_sizes).split(",") if s.strip()]
    if a.out is None:
        a.out = RESULTS / ("run_all_quick.json" if a.quick else "run_all.json")
    return a


def _bench_dataset(name: str, raws, files, args, log, save=lambda recs: None) -> list[dict]:
    """All selected stages on one data set; ``raws`` are native images, ``files`` the pictures (or None)."""
    import numpy as np

    recs: list[dict] = []
    want = set(args.stages)
    n = len(raws) if raws is not None else len(files)

    def add(rs):
        for r in rs:
            r["dataset"] = name
            log(f"  {r['stage']:9s} {r['impl'][:60]:60s} n={r['n']:5d} {r['seconds']:9.3f} s "
                f"{r['gal_per_s'] or 0:9.1f} gal/s  peak {r['peak_rss_mib']:7.0f} MiB  load {r['load_avg_1min']}")
        recs.extend(rs)
        save(recs)

    if files is not None:
        rs, raws = S.stage_read(files)
        if "read" in want:
            add(rs)
    size = 100 if files is not None else min(64, raws[0].shape[-1])
    rs, images = S.stage_condition(raws, size=size)
    if "condition" in want:
        add(rs)
    if "cae" in want:
        add(S.stage_cae(images[: min(n, 1024)], epochs=args.cae_epochs))
    if "polar" in want or "encode" in want:
        rs, polar = S.stage_polar(images, ref_n=args.ref_polar_n)
        if "polar" in want:
            add(rs)
    feats = None
    if "encode" in want:
        rs, feats = S.stage_encode(polar, batch_size=args.batch_size, ref_n=args.ref_encode_n,
                                   channels_last=args.channels_last)
        add(rs)
    if feats is None and ({"reduce", "cluster"} & want):
        feats = np.random.default_rng(0).normal(size=(n, 1280)).astype(np.float32)
        log("  (reduce/cluster on random features: encode not selected)")
    k = max(2, min(20, n // 4))
    if {"reduce", "cluster"} & want:
        rs, z = S.stage_reduce(feats, n_components=min(50, n - 1, feats.shape[1]))
        if "reduce" in want:
            add(rs)
        if "cluster" in want:
            rs, _labels = S.stage_cluster(z, n_clusters=k)
            add(rs)
    if "measure" in want:
        m = min(args.measure_n, n)
        add(S.stage_measure(list(raws[:m]), n_jobs=2, n_total=n if name.startswith("gz1") else None))
    if "write" in want:
        add(S.stage_write(n))
    return recs


def _end_to_end(n: int, log) -> list[dict]:
    """The default galtaxa pipeline on ``n`` gz1 galaxies (morphology measurement off: extrapolated apart)."""
    from galtaxa.pipeline import run_pipeline

    files = S.gz1_files(n)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = S.gz1_run_config(files, Path(tmp))
        cfg["measure"]["enabled"] = False
        with S.StageTimer() as t:
            result = run_pipeline(cfg, progress=False)
        kept = float((result.catalog["group"] >= 0).mean())
    rec = t.record("end-to-end", "galtaxa run_pipeline (default config, measure off)", len(files), kept=round(kept, 4))
    rec["dataset"] = f"gz1 ({len(files)})"
    log(f"  end-to-end {len(files)} galaxies: {t.seconds:.1f} s, peak {t.peak_rss_mib:.0f} MiB, load {rec['load_avg_1min']}")
    return [rec]


def run(args: argparse.Namespace, log=print) -> dict:
    """Run the benchmarks described by ``args``; returns (and writes) the result document."""
    import torch

    doc = {"machine": S.machine_info(), "commit": S.git_commit(), "command": args.command, "date": S.now(),
           "load_avg_start": [round(x, 2) for x in os.getloadavg()], "records": []}
    log(f"galtaxa benchmarks  commit {doc['commit']}  {doc['machine']['cpu_count']} cores  "
        f"torch threads {torch.get_num_threads()}  load {doc['load_avg_start']}")
    t0 = time.perf_counter()

    def save(partial=()):  # written after every stage, so an interrupted run keeps what it measured
        doc["total_seconds"] = round(time.perf_counter() - t0, 1)
        doc["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        recs = doc["records"] + list(partial)
        for r in recs:  # every record is self-describing
            r.update(commit=doc["commit"], command=doc["command"], date=doc["date"],
                     machine=doc["machine"]["platform"], cpu_count=doc["machine"]["cpu_count"])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**doc, "records": recs}, indent=1, default=str))

    if not args.no_gz1:
        files = S.gz1_files(args.n)
        log(f"gz1: {len(files)} galaxies")
        doc["records"] += _bench_dataset(f"gz1 ({len(files)})", None, files, args, log, save)
    for size in args.sim_sizes:
        log(f"simulated: {size} galaxies (GalSim, 64x64)")
        raws = list(S.simulated_images(size, size=64))
        doc["records"] += _bench_dataset(f"simulated ({size})", raws, None, args, log, save)
    if args.e2e:
        doc["records"] += _end_to_end(args.e2e, log)
    save()
    doc = json.loads(args.out.read_text())
    log(f"wrote {args.out}")
    return doc


# ----------------------------------------------------------------- markdown
def _speedups(records: list[dict]) -> list[str]:
    """Per-galaxy speed-up galtaxa/reference per (dataset, stage), from records of the same run."""
    rows = []
    keyed: dict[tuple, dict] = {}
    for r in records:
        keyed.setdefault((r.get("dataset"), r["stage"]), {})[r["impl"]] = r
    for (ds, stage), impls in keyed.items():
        gal = next((v for k, v in impls.items() if k.startswith("galtaxa") and "fit" not in k
                    and "papers' centre" not in k), None)
        ref = next((v for k, v in impls.items() if k.startswith(("reference", "serial"))), None)
        if gal and ref and gal["gal_per_s"] and ref["gal_per_s"]:
            rows.append(f"| {ds} | {stage} | {gal['gal_per_s']:.1f} | {ref['gal_per_s']:.1f} | "
                        f"**{gal['gal_per_s'] / ref['gal_per_s']:.1f}x** |")
    return rows


def _fmt_extra(r: dict) -> str:
    skip = {"stage", "impl", "n", "seconds", "gal_per_s", "cpu_seconds", "peak_rss_mib", "peak_is_process_lifetime",
            "load_avg_1min", "dataset", "commit", "command", "date", "machine", "cpu_count"}
    return "; ".join(f"{k}={v}" for k, v in r.items() if k not in skip)


def render_markdown(results_dir: Path = RESULTS, header: str | None = None) -> str:
    """RESULTS.md text from the ``run_all*.json`` and ``scale_clustering*.json`` documents in ``results_dir``,
    followed by ``representation.md``, ``supervised.md``, ``measure_speed.md``, ``gz1_end_to_end.md``,
    ``dask_scaling.md``, ``measure_truth.md`` and ``startup.md``."""
    parts = [header or (ROOT / "benchmarks" / "RESULTS_HEADER.md").read_text()
             if (ROOT / "benchmarks" / "RESULTS_HEADER.md").exists() else "# galtaxa benchmark results\n"]
    paths = sorted(results_dir.glob("run_all*.json")) + sorted(results_dir.glob("scale_clustering*.json"))
    for path in paths:  # other helpers' result files in the same folder have their own formats
        doc = json.loads(path.read_text())
        m = doc["machine"]
        parts.append(f"\n## `{path.name}`\n\n- command: `{doc['command']}`\n- commit: `{doc['commit']}`, date "
                     f"{doc['date']}\n- machine: {m['platform']}, {m.get('cpu', '')}, {m['cpu_count']} cores, "
                     f"{m['ram_gib']} GiB RAM, torch {m.get('torch')} ({m.get('torch_threads')} threads), "
                     f"GPU: {m.get('gpu')}\n- load average (1/5/15 min) at start {doc.get('load_avg_start')}, "
                     f"at end {doc.get('load_avg_end')}: **the CPU was shared with other jobs**; compare ratios "
                     "measured in the same run rather than absolute times\n")
        recs = doc["records"]
        if recs and "impl" in recs[0]:
            sp = _speedups(recs)
            if sp:
                parts.append("\n### Speed-up of galtaxa over the reference (same data, same run, galaxies/s)\n\n"
                             "| data | stage | galtaxa | reference | speed-up |\n|---|---|---:|---:|---:|\n"
                             + "\n".join(sp) + "\n")
            parts.append("\n### All records\n\n| data | stage | implementation | n | s | gal/s | peak RSS MiB | "
                         "load | details |\n|---|---|---|---:|---:|---:|---:|---:|---|\n")
            for r in recs:
                parts.append(f"| {r.get('dataset', '')} | {r['stage']} | {r['impl']} | {r['n']} | {r['seconds']:.3f} | "
                             f"{r['gal_per_s'] or 0:.1f} | {r['peak_rss_mib']:.0f} | {r['load_avg_1min']} | "
                             f"{_fmt_extra(r)} |\n")
        else:  # scale_clustering
            parts.append("\n| algorithm | N | d | s | peak RSS MiB | load | status | details |\n"
                         "|---|---:|---:|---:|---:|---:|---|---|\n")
            for r in recs:
                parts.append(f"| {r['algorithm']} | {r['n']} | {r['d']} | {r.get('seconds') or float('nan'):.1f} | "
                             f"{r.get('peak_rss_mib') or float('nan'):.0f} | {r.get('load_avg_1min')} | "
                             f"{r.get('status')} | {r.get('details', '')} |\n")
        if doc.get("notes"):
            parts.append("\n" + doc["notes"] + "\n")
    # the sections other scripts write (benchmarks/<name>.py -> results/<name>.md), their titles one level down
    for name, title in (("representation", "Representation"), ("supervised", "Supervised"),
                        ("measure_speed", "Morphology measurement"), ("gz1_end_to_end", "End to end"),
                        ("dask_scaling", "Dask scaling"), ("measure_truth", "Truth recovery"),
                        ("startup", "Start-up time")):
        section = results_dir / f"{name}.md"
        if section.exists():
            parts.append("\n" + section.read_text().replace(f"# {title}", f"## {title}", 1))
    return "".join(parts)


def main(argv=None) -> int:
    args = parse_args(argv)
    run(args)
    if not args.no_markdown and not args.quick:
        (ROOT / "benchmarks" / "RESULTS.md").write_text(render_markdown())
        print(f"wrote {ROOT / 'benchmarks' / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
