"""Morphology measurement speed and agreement, the fast engine against plain statmorph.

For each galaxy, in the same process and one right after the other (the order alternates from galaxy to
galaxy), :func:`galtaxa.measure.measure.measure_image` runs

* ``engine="statmorph"``: galtaxa's background and segmentation, then plain :func:`statmorph.source_morphology`
  on the whole stamp: the reference;
* ``engine="fast"`` (the pipeline's default, ``measure.engine``): the fast engine
  (:mod:`galtaxa.measure.fast_engine`: statmorph's definitions within a stated tolerance);
* with ``--exact``, also ``engine="exact"``: statmorph's numbers to 1e-9 (the footprint and
  :class:`~galtaxa.measure.fast_statmorph.FastSourceMorphology`).

Each call is timed in process CPU seconds (``time.process_time``: on this 2-core machine shared with other jobs,
wall-clock time depends on the load, CPU time much less) and wall seconds, with one BLAS thread.  Per data set
the records give galaxies per second per core (galaxies over summed CPU seconds), the speed-up (summed CPU of
statmorph over summed CPU of the engine, and the median of the per-galaxy ratios) and the agreement with
statmorph set as the fast engine's tolerance: for C, A, S, Gini, M20, Sérsic n, r_e,
ellipticity, r_petro, G2 and Psi the median relative difference ``|fast - statmorph| / |statmorph|`` under 1 %
and its 95th percentile under 5 % (A: the absolute difference, under 0.02), over the galaxies both measured, and
``status``, ``flag`` and ``flag_sersic`` equal on at least 99 % of the galaxies.  The other columns (MID,
radii, ...) are reported too.

Data sets: ``gz1`` = the native 423 x 423 px Galaxy Zoo 1 JPEGs as the pipeline's measure stage reads them
(``open_dataset(gz1, mode="rgb")``, channel mean, ``background="auto"``), a seeded random subset;
``sim100`` = :func:`galtaxa.datasets.simulate` HST-like galaxies on 100 x 100 px stamps (seed 0);
``sdss_fits`` = the raw SDSS FITS stamps (71-391 px, soft bias included, ``background="auto"``).
Also: statmorph's reference galaxy (``statmorph_slice``) with each engine against the values in
``../shared/data/README.md``, and with ``--e2e N`` :func:`galtaxa.measure.measure` (fast engine) with 2 worker
processes on N gz1 galaxies (wall clock, extrapolated to the 3,999).

Per-galaxy results are cached in ``benchmarks/cache/measure_speed/`` (keyed by the measure package's code and the
engines compared, so a code change starts afresh), which makes long runs resumable.

Usage::

    .venv/bin/python benchmarks/measure_speed.py --gz1 100 --sim 100 --sdss
    .venv/bin/python benchmarks/measure_speed.py --quick            # 3 galaxies per set
    .venv/bin/python benchmarks/measure_speed.py --e2e 200          # measure() on 200 gz1 galaxies, 2 workers
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line, git_commit, machine_info, now, save_result  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CACHE = HERE / "cache" / "measure_speed"
RESULTS = HERE / "results"
#: The fast engine's tolerance: these columns within a median relative difference of 1 % and a 95th percentile of 5 %
#: (A: an absolute difference of 0.02), status and flags equal on 99 % of the galaxies.
TOLERANCE_COLUMNS = ["C", "A", "S", "gini", "m20", "sersic_n", "r_e_px", "ellipticity", "rpetro_circ", "g2", "psi"]
OTHER = ["A_noise_matched", "multimode", "intensity", "deviation", "rhalf_circ", "r20", "r80", "sn_per_pixel"]
ABSOLUTE = {"A": 0.02, "A_noise_matched": 0.02}
MEDIAN_MAX, P95_MAX, FLAGS_MIN = 0.01, 0.05, 0.99
REFERENCE = "statmorph"
SLICE_REFERENCE = {  # ../shared/data/README.md (statmorph 0.7.2)
    "gini": 0.38993180299621, "m20": -1.54448930789228, "C": 2.19100140632153, "A": 0.00377345808887,
    "S": 0.00430880839402, "rpetro_circ": 40.93755531944313, "rhalf_circ": 21.60803205322342,
    "r20": 11.69548630967248, "r80": 32.07883340820674, "multimode": 0.23423423423423,
    "intensity": 0.51203949030140, "deviation": 0.01522525597953, "sersic_n": 0.61206828194077,
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gz1", type=int, default=100, help="gz1 galaxies (seeded random subset; 0 = none)")
    p.add_argument("--sim", type=int, default=100, help="simulated 100 px galaxies (0 = none)")
    p.add_argument("--sdss", action="store_true", help="also the 99 readable SDSS FITS stamps")
    p.add_argument("--exact", action="store_true", help="also time the exact engine")
    p.add_argument("--workers", type=int, default=1, help="processes measuring galaxies side by side")
    p.add_argument("--e2e", type=int, default=0, help="also time measure() (2 workers) on this many gz1 galaxies")
    p.add_argument("--quick", action="store_true", help="3 galaxies per set")
    p.add_argument("--summarise-only", action="store_true",
                   help="measure nothing: summarise the galaxies already cached (a set still being measured is "
                        "reported as the part done, with the number planned)")
    p.add_argument("--out", type=Path, default=None, help="result JSON (the Markdown goes beside it)")
    args = p.parse_args(argv)
    if args.quick:
        args.gz1, args.sim = min(args.gz1, 3), min(args.sim, 3)
    if args.out is None:
        args.out = RESULTS / ("measure_speed_quick.json" if args.quick else "measure_speed.json")
    args.engines = ["statmorph", "fast"] + (["exact"] if args.exact else [])
    args.command = command_line(argv=argv)
    return args


# ------------------------------------------------------------------ data
def _gz1(n: int):
    from galtaxa.io import open_dataset

    source = open_dataset(DATA / "gz1", mode="rgb")
    idx = np.sort(np.random.default_rng(0).choice(len(source.ids), n, replace=False))
    return source, [int(i) for i in idx]


def _sim(n: int):
    from galtaxa.datasets import simulate

    galaxies, _ = simulate(n=n, size=100, seed=0)
    return galaxies, list(range(n))


def _sdss(_n):
    from galtaxa.io import open_dataset

    source = open_dataset(DATA / "sdss_fits")
    return source, [i for i in range(len(source.ids)) if source.meta.at[i, "status"] == "ok"]


LOADERS = {"gz1": _gz1, "sim100": _sim, "sdss_fits": _sdss}


def _image(galaxies, i):
    return galaxies.read(i) if hasattr(galaxies, "read") else np.asarray(galaxies.images[i])


# --------------------------------------------------------------- workers
_WORKER: dict = {}


def _init(name: str, n: int, engines: list[str]):
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _WORKER["galaxies"], _ = LOADERS[name](n)
    _WORKER["engines"] = list(engines)


def _timed(image, engine):
    from galtaxa.measure.measure import measure_image

    cpu, wall = time.process_time(), time.perf_counter()
    row = measure_image(image, background="auto", engine=engine)
    return row, time.process_time() - cpu, time.perf_counter() - wall


def _one(i: int) -> dict:
    galaxies = _WORKER["galaxies"]
    image = _image(galaxies, i)
    rec = {"index": i, "id": str(galaxies.ids[i]), "shape": list(np.shape(image))}
    runs = list(_WORKER["engines"])
    if i % 2:  # alternate the order, so neither engine is always the one that runs first
        runs = runs[::-1]
    for engine in runs:
        row, cpu, wall = _timed(image, engine)
        rec[engine] = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        rec[f"cpu_{engine}"], rec[f"wall_{engine}"] = round(cpu, 5), round(wall, 5)
    return rec


def _code_key() -> str:
    """Hash of the measure package's modules without docstrings and comments (their abstract syntax trees;
    ``__init__.py`` only re-exports): per-galaxy results cached under this key stay valid while the measuring
    code is unchanged."""
    import ast
    import hashlib

    h = hashlib.sha256()
    for path in sorted((ROOT / "src" / "galtaxa" / "measure").glob("*.py")):
        if path.name == "__init__.py":  # re-exports only
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
        h.update(path.name.encode() + ast.dump(tree).encode())
    return h.hexdigest()[:12]


def measure_set(name: str, n: int, engines: list[str], workers: int, log=print,
                cached_only: bool = False) -> tuple[list[dict], int]:
    """Per-galaxy records of one data set, resumed from (and appended to) the cache, and the number planned.

    With ``cached_only`` nothing is measured: the records are those of the planned galaxies already cached.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}-{'-'.join(engines)}-{_code_key()}.jsonl"
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            done[rec["index"]] = rec
    _, indices = LOADERS[name](n)
    if cached_only:
        return [done[i] for i in indices if i in done], len(indices)
    todo = [i for i in indices if i not in done]
    log(f"{name}: {len(indices)} galaxies, {len(indices) - len(todo)} cached in {path.name}, {len(todo)} to measure")
    t0 = time.perf_counter()
    with path.open("a") as fh:
        def keep(rec):
            done[rec["index"]] = rec
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            k = len(done)
            if k % 10 == 0 or k == len(indices):
                log(f"  {name}: {k}/{len(indices)} ({time.perf_counter() - t0:.0f} s)")
        if workers > 1 and len(todo) > 1:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(name, n, engines)) as pool:
                for rec in pool.imap_unordered(_one, todo):
                    keep(rec)
        elif todo:
            _init(name, n, engines)
            for i in todo:
                keep(_one(i))
    return [done[i] for i in indices], len(indices)


# ------------------------------------------------------------- summaries
def _difference(a, b, column: str):
    """``|a - b|`` for the absolute columns, ``|a - b| / |b|`` otherwise (None when either is missing)."""
    if a is None or b is None:
        return None
    if column in ABSOLUTE:
        return abs(a - b)
    return abs(a - b) / abs(b) if b != 0 else (0.0 if a == 0 else float("inf"))


def agreement(recs: list[dict], engine: str) -> dict:
    """Agreement of ``engine`` with statmorph on ``recs``: per column (median, 95th percentile, maximum of the
    difference, over the galaxies both measured ``ok``) and the share of galaxies whose status and flags agree,
    each with its verdict against the tolerance."""
    n = len(recs)
    equal = {f: sum(r[REFERENCE][f] == r[engine][f] for r in recs) for f in ("status", "flag", "flag_sersic")}
    both = sum(all(r[REFERENCE][f] == r[engine][f] for f in ("status", "flag", "flag_sersic")) for r in recs)
    out = {"n": n, "equal": {f: f"{k}/{n}" for f, k in equal.items()},
           "status_and_flags_equal": round(both / n, 4) if n else None,
           "status_and_flags_ok": bool(n and both / n >= FLAGS_MIN), "columns": {}}
    for col in TOLERANCE_COLUMNS + OTHER:
        d = [_difference(r[engine][col], r[REFERENCE][col], col) for r in recs
             if r[engine]["status"] == r[REFERENCE]["status"] == "ok"]
        d = np.array([x for x in d if x is not None], dtype=float)
        entry = {"n": int(d.size), "kind": "absolute" if col in ABSOLUTE else "relative",
                 "median": float(np.median(d)) if d.size else None,
                 "p95": float(np.percentile(d, 95)) if d.size else None,
                 "max": float(d.max()) if d.size else None,
                 "worst": None}
        if d.size:
            ok_recs = [r for r in recs if r[engine]["status"] == r[REFERENCE]["status"] == "ok"
                       and _difference(r[engine][col], r[REFERENCE][col], col) is not None]
            entry["worst"] = ok_recs[int(np.argmax(d))]["id"]
        if col in TOLERANCE_COLUMNS and d.size:
            if col in ABSOLUTE:
                entry["ok"] = bool(entry["p95"] < ABSOLUTE[col])
            else:
                entry["ok"] = bool(entry["median"] < MEDIAN_MAX and entry["p95"] < P95_MAX)
        out["columns"][col] = entry
    out["within_tolerance"] = bool(out["status_and_flags_ok"] and all(
        e.get("ok", True) for c, e in out["columns"].items() if c in TOLERANCE_COLUMNS))
    return out


def summarise(name: str, recs: list[dict], engines: list[str], planned: int | None = None) -> dict:
    """Speed and agreement of one data set (``planned``: galaxies the set was to have, when only part is done)."""
    n = len(recs)
    cpu = {e: float(sum(r[f"cpu_{e}"] for r in recs)) for e in engines}
    wall = {e: float(sum(r[f"wall_{e}"] for r in recs)) for e in engines}
    out = {
        "dataset": name, "n": n, "n_planned": planned or n,
        "stamp_shapes": sorted({tuple(r["shape"][-2:]) for r in recs})[:5],
        "gal_per_s_per_core": {e: round(n / v, 4) for e, v in cpu.items()},
        "cpu_s_per_galaxy": {e: round(v / n, 4) for e, v in cpu.items()},
        "wall_s_per_galaxy": {e: round(v / n, 4) for e, v in wall.items()},
        "speedup_cpu_total": {e: round(cpu[REFERENCE] / cpu[e], 2) for e in engines if e != REFERENCE},
        "speedup_cpu_median_per_galaxy": {e: round(float(np.median([r[f"cpu_{REFERENCE}"] / r[f"cpu_{e}"]
                                                                     for r in recs])), 2)
                                          for e in engines if e != REFERENCE},
        "speedup_wall_total": {e: round(wall[REFERENCE] / wall[e], 2) for e in engines if e != REFERENCE},
        "status_counts": {s: sum(r[REFERENCE]["status"] == s for r in recs)
                          for s in sorted({r[REFERENCE]["status"] for r in recs})},
        "agreement": {e: agreement(recs, e) for e in engines if e != REFERENCE},
    }
    return out


def slice_check(engines) -> dict:
    """statmorph's reference galaxy (its segmap, mask and gain) with each engine, against the README's values."""
    from astropy.io import fits

    from galtaxa.measure import measure_one

    with fits.open(DATA / "statmorph_slice" / "slice.fits") as hdul:
        image, segmap, mask = (h.data.copy() for h in hdul[:3])
    out = {}
    for engine in engines:
        res = measure_one(image, segmap, mask=mask.astype(bool), gain=1.0, engine=engine)
        rel = {k: abs(res[k] - v) / abs(v) for k, v in SLICE_REFERENCE.items()}
        out[engine] = {"status": res["status"], "flag": res["flag"], "max_rel_diff": max(rel.values()),
                       "worst": max(rel, key=rel.get), "rel_diff": rel}
    return out


def end_to_end(n: int, log=print) -> dict:
    """:func:`galtaxa.measure.measure` (fast engine, 2 worker processes) on ``n`` gz1 galaxies read from the JPEGs."""
    from galtaxa.io.base import SourceView
    from galtaxa.measure import measure

    source, idx = _gz1(n)
    part = SourceView(source, idx)
    t0 = time.perf_counter()
    table = measure(part, n_jobs=2, progress=False, engine="fast")
    wall = time.perf_counter() - t0
    rec = {"n": n, "wall_s": round(wall, 1), "gal_per_s": round(n / wall, 3),
           "extrapolated_wall_s_for_3999": round(wall * 3999 / n, 0),
           "ok": int((table["status"] == "ok").sum()), "load_avg_end": [round(x, 2) for x in os.getloadavg()]}
    log(f"e2e measure on {n} gz1 galaxies: {wall:.0f} s wall")
    return rec


# --------------------------------------------------------------- markdown
def _fmt(x, nd=2):
    return "-" if x is None else (f"{x:.1e}" if abs(x) < 10 ** -nd and x != 0 else f"{x:.{nd}f}")


def _pct(x):
    return "-" if x is None else f"{100 * x:.2g} %" if x >= 1e-4 else f"{100 * x:.0e} %"


def render(doc: dict) -> str:
    m = doc["machine"]
    engines = [e for e in doc["engines"] if e != REFERENCE]
    lines = ["# Morphology measurement speed: the fast engine against plain statmorph\n",
             f"- command: `{doc['command']}`\n- commit: `{doc['commit']}`, date {doc['date']}\n"
             f"- machine: {m['platform']}, {m.get('cpu', '')}, {m['cpu_count']} cores, {m['ram_gib']} GiB RAM; "
             f"load average at start {doc['load_avg_start']}, at end {doc.get('load_avg_end')} (shared CPU: "
             "figures are process CPU seconds with one BLAS thread, every engine timed on the same galaxy one "
             "after the other, the order alternating)\n",
             f"- tolerance: for {', '.join(TOLERANCE_COLUMNS)}: median relative difference to statmorph "
             f"< {MEDIAN_MAX:.0%}, 95th percentile < {P95_MAX:.0%} (A: absolute difference < {ABSOLUTE['A']}); "
             f"status, flag and flag_sersic equal for >= {FLAGS_MIN:.0%} of the galaxies\n",
             "\n| data | n | engine | gal/s/core | statmorph gal/s/core | speed-up (CPU, total) | per-galaxy median | "
             "status+flags equal | within tolerance |\n|---|---:|---|---:|---:|---:|---:|---:|---|\n"]
    for s in doc["sets"]:
        g = s["gal_per_s_per_core"]
        part = "" if s.get("n_planned", s["n"]) == s["n"] else f" (of {s['n_planned']} planned)"
        for e in engines:
            a = s["agreement"][e]
            lines.append(f"| {s['dataset']} | {s['n']}{part} | {e} | {g[e]:.3f} | {g[REFERENCE]:.3f} | "
                         f"**{s['speedup_cpu_total'][e]:.1f}x** | {s['speedup_cpu_median_per_galaxy'][e]:.1f}x | "
                         f"{100 * a['status_and_flags_equal']:.0f} % | "
                         f"{'yes' if a['within_tolerance'] else '**no**'} |\n")
    for e in engines:
        lines.append(f"\nAgreement of the {e} engine with statmorph per column (relative difference, A: absolute; "
                     "galaxies both measured; the first columns are those of the tolerance):\n\n"
                     "| data | column | n | median | 95th pct | max | ok |\n|---|---|---:|---:|---:|---:|---|\n")
        for s in doc["sets"]:
            for col, d in s["agreement"][e]["columns"].items():
                med, p95, mx = ((_fmt(d[k], 3) for k in ("median", "p95", "max")) if d["kind"] == "absolute"
                                else (_pct(d[k]) for k in ("median", "p95", "max")))
                ok = {True: "yes", False: "**no**"}.get(d.get("ok"), "")
                lines.append(f"| {s['dataset']} | {col} | {d['n']} | {med} | {p95} | {mx} | {ok} |\n")
    sl = doc.get("slice")
    if sl:
        lines.append("\nstatmorph's reference galaxy (`statmorph_slice`, its segmap, mask and gain; README values): " +
                     "; ".join(f"{e}: status {r['status']}, flag {r['flag']}, largest relative difference "
                               f"{r['max_rel_diff']:.1e} ({r['worst']})" for e, r in sl.items()) + ".\n")
    e2e = doc.get("e2e")
    if e2e:
        lines.append(f"\n`measure(engine=\"fast\")` with 2 worker processes on {e2e['n']} gz1 galaxies: "
                     f"{e2e['wall_s']} s wall ({e2e['gal_per_s']} galaxies/s), extrapolated to the 3,999: "
                     f"{e2e['extrapolated_wall_s_for_3999'] / 60:.1f} min ({e2e['ok']} ok).\n")
    if doc.get("notes"):
        lines.append("\n" + doc["notes"] + "\n")
    return "".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    doc = {"machine": machine_info(), "commit": git_commit(), "command": args.command, "date": now(),
           "load_avg_start": [round(x, 2) for x in os.getloadavg()], "code_key": _code_key(),
           "engines": args.engines, "sets": []}
    print(f"measure_speed  commit {doc['commit']}  load {doc['load_avg_start']}", flush=True)
    doc["slice"] = slice_check([e for e in ("fast", "exact") if e in args.engines])
    plan = [("sim100", args.sim)] + ([("sdss_fits", 0)] if args.sdss else []) + [("gz1", args.gz1)]
    for name, n in plan:
        if name != "sdss_fits" and n <= 0:
            continue
        recs, planned = measure_set(name, n, args.engines, args.workers, log=lambda s: print(s, flush=True),
                                    cached_only=args.summarise_only)
        if not recs:
            continue
        doc["sets"].append(summarise(name, recs, args.engines, planned))
        s = doc["sets"][-1]
        print(json.dumps({"dataset": name, "n": s["n"], "speedup": s["speedup_cpu_total"],
                          "within_tolerance": {e: a["within_tolerance"] for e, a in s["agreement"].items()}}),
              flush=True)
    if args.e2e:
        doc["e2e"] = end_to_end(args.e2e, log=print)
    doc["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    save_result(doc, args.out, render)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
