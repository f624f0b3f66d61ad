"""Issue 14 (part 1): morphology measurement speed and agreement, galtaxa vs plain statmorph on the full stamp.

For each galaxy, in the same process and one right after the other (the order alternates from galaxy to
galaxy), :func:`galtaxa.measure.measure.measure_image` runs

* ``engine="statmorph"``: galtaxa's background and segmentation, then plain
  :func:`statmorph.source_morphology` on the whole stamp (galtaxa's measurement before issue 14);
* ``engine="galtaxa"`` (the default): the same background and segmentation, then the galaxy's footprint
  (statmorph's own stamp) and :class:`~galtaxa.measure.fast_statmorph.FastSourceMorphology`;
* ``engine="galtaxa"`` with ``families=["cas", "gini_m20"]``: the five numbers method M3 fuses.

Each call is timed in process CPU seconds (``time.process_time``: on this 2-core machine shared with other jobs,
wall-clock time depends on the load, CPU time much less) and wall seconds.  Per data set the records give
galaxies per second per core (galaxies over summed CPU seconds), the speed-up (summed CPU of the reference over
summed CPU of galtaxa, and the median of the per-galaxy ratios) and, per parameter, the relative difference
``|galtaxa - statmorph| / |statmorph|`` over galaxies both measured (median, 95th percentile, maximum), with the
share of galaxies whose ``status``, ``flag`` and ``flag_sersic`` agree.

Data sets: ``gz1`` = the native 423 x 423 px Galaxy Zoo 1 JPEGs as the pipeline's measure stage reads them
(``open_dataset(gz1, mode="rgb")``, channel mean, ``background="auto"``), a seeded random subset;
``sim100`` = :func:`galtaxa.datasets.simulate` HST-like galaxies on 100 x 100 px stamps (seed 0);
``sdss_fits`` = the raw SDSS FITS stamps (71-211 px, soft bias included, ``background="auto"``).
Also: statmorph's reference galaxy (``statmorph_slice``) against the values in ``../shared/data/README.md``, and
with ``--e2e N`` :func:`galtaxa.measure.measure` with 2 worker processes on N gz1 galaxies (wall clock,
extrapolated to the 3,999).

Per-galaxy results are cached in ``benchmarks/cache/measure_speed/`` (keyed by the measure package's git tree,
so a code change starts afresh), which makes long runs resumable.

Usage::

    .venv/bin/python benchmarks/measure_speed.py --gz1 300 --sim 100 --sdss --workers 2
    .venv/bin/python benchmarks/measure_speed.py --quick            # 3 galaxies per set, ~2 min
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
PARAMS = ["C", "A", "S", "gini", "m20", "sersic_n", "r_e_px"]  # the tolerance list
OTHER = ["multimode", "intensity", "deviation", "rpetro_circ", "rhalf_circ", "r20", "r80", "ellipticity",
         "sn_per_pixel", "g2", "psi"]
M3 = ["cas", "gini_m20"]
SLICE_REFERENCE = {  # ../shared/data/README.md (statmorph 0.7.2)
    "gini": 0.38993180299621, "m20": -1.54448930789228, "C": 2.19100140632153, "A": 0.00377345808887,
    "S": 0.00430880839402, "rpetro_circ": 40.93755531944313, "rhalf_circ": 21.60803205322342,
    "r20": 11.69548630967248, "r80": 32.07883340820674, "multimode": 0.23423423423423,
    "intensity": 0.51203949030140, "deviation": 0.01522525597953, "sersic_n": 0.61206828194077,
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gz1", type=int, default=300, help="gz1 galaxies (seeded random subset; 0 = none)")
    p.add_argument("--sim", type=int, default=100, help="simulated 100 px galaxies (0 = none)")
    p.add_argument("--sdss", action="store_true", help="also the 99 readable SDSS FITS stamps")
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


def _init(name: str, n: int):
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _WORKER["galaxies"], _ = LOADERS[name](n)


def _timed(image, **kw):
    from galtaxa.measure.measure import measure_image

    cpu, wall = time.process_time(), time.perf_counter()
    row = measure_image(image, background="auto", **kw)
    return row, time.process_time() - cpu, time.perf_counter() - wall


def _one(i: int) -> dict:
    galaxies = _WORKER["galaxies"]
    image = _image(galaxies, i)
    rec = {"index": i, "id": str(galaxies.ids[i]), "shape": list(np.shape(image))}
    runs = [("statmorph", {"engine": "statmorph"}), ("galtaxa", {}), ("galtaxa_m3", {"families": M3})]
    if i % 2:  # alternate the order, so neither engine is always the one that runs first
        runs = runs[1:] + runs[:1]
    for name, kw in runs:
        row, cpu, wall = _timed(image, **kw)
        rec[name] = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        rec[f"cpu_{name}"], rec[f"wall_{name}"] = round(cpu, 4), round(wall, 4)
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


def measure_set(name: str, n: int, workers: int, log=print, cached_only: bool = False) -> tuple[list[dict], int]:
    """Per-galaxy records of one data set, resumed from (and appended to) the cache, and the number planned.

    With ``cached_only`` nothing is measured: the records are those of the planned galaxies already cached.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}-{_code_key()}.jsonl"
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

            with mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(name, n)) as pool:
                for rec in pool.imap_unordered(_one, todo):
                    keep(rec)
        elif todo:
            _init(name, n)
            for i in todo:
                keep(_one(i))
    return [done[i] for i in indices], len(indices)


# ------------------------------------------------------------- summaries
def _rel(a, b):
    if a is None or b is None:
        return None
    return abs(a - b) / abs(b) if b != 0 else (0.0 if a == 0 else float("inf"))


def summarise(name: str, recs: list[dict], planned: int | None = None) -> dict:
    """Speed and agreement of one data set (``planned``: galaxies the set was to have, when only part is done)."""
    n = len(recs)
    cpu = {k: float(sum(r[f"cpu_{k}"] for r in recs)) for k in ("statmorph", "galtaxa", "galtaxa_m3")}
    wall = {k: float(sum(r[f"wall_{k}"] for r in recs)) for k in ("statmorph", "galtaxa", "galtaxa_m3")}
    out = {
        "dataset": name, "n": n, "n_planned": planned or n,
        "stamp_shapes": sorted({tuple(r["shape"][-2:]) for r in recs})[:5],
        "gal_per_s_per_core": {k: round(n / v, 4) for k, v in cpu.items()},
        "cpu_s_per_galaxy": {k: round(v / n, 3) for k, v in cpu.items()},
        "wall_s_per_galaxy": {k: round(v / n, 3) for k, v in wall.items()},
        "speedup_cpu_total": round(cpu["statmorph"] / cpu["galtaxa"], 2),
        "speedup_cpu_median_per_galaxy": round(float(np.median([r["cpu_statmorph"] / r["cpu_galtaxa"]
                                                                for r in recs])), 2),
        "speedup_wall_total": round(wall["statmorph"] / wall["galtaxa"], 2),
        "speedup_m3_cpu_total": round(cpu["statmorph"] / cpu["galtaxa_m3"], 2),
    }
    agree = {f: sum(r["statmorph"][f] == r["galtaxa"][f] for r in recs) for f in ("status", "flag", "flag_sersic")}
    out["agreement"] = {f: f"{k}/{n}" for f, k in agree.items()}
    out["status_counts"] = {s: sum(r["galtaxa"]["status"] == s for r in recs)
                            for s in sorted({r["galtaxa"]["status"] for r in recs})}
    diffs = {}
    for p in PARAMS + OTHER:
        d = [_rel(r["galtaxa"][p], r["statmorph"][p]) for r in recs
             if r["galtaxa"]["status"] == r["statmorph"]["status"] == "ok"]
        d = np.array([x for x in d if x is not None], dtype=float)
        both_nan = sum(r["galtaxa"][p] is None and r["statmorph"][p] is None for r in recs)
        diffs[p] = {"n": int(d.size), "both_nan": int(both_nan),
                    "median": float(np.median(d)) if d.size else None,
                    "p95": float(np.percentile(d, 95)) if d.size else None,
                    "max": float(d.max()) if d.size else None,
                    "n_above_1e-6": int((d > 1e-6).sum())}
    out["relative_difference"] = diffs
    m3_equal = [all(_rel(r["galtaxa_m3"][p], r["galtaxa"][p]) in (None, 0.0) or
                    _rel(r["galtaxa_m3"][p], r["galtaxa"][p]) < 1e-12 for p in ("C", "A", "S", "gini", "m20"))
                for r in recs if r["galtaxa"]["status"] == "ok"]
    out["m3_same_five_numbers"] = f"{sum(m3_equal)}/{len(m3_equal)}"
    return out


def slice_check() -> dict:
    from astropy.io import fits

    from galtaxa.measure import measure_one

    with fits.open(DATA / "statmorph_slice" / "slice.fits") as hdul:
        image, segmap, mask = (h.data.copy() for h in hdul[:3])
    res = measure_one(image, segmap, mask=mask.astype(bool), gain=1.0)
    rel = {k: abs(res[k] - v) / abs(v) for k, v in SLICE_REFERENCE.items()}
    return {"status": res["status"], "max_rel_diff": max(rel.values()),
            "worst": max(rel, key=rel.get), "rel_diff": rel}


def end_to_end(n: int, log=print) -> dict:
    """:func:`galtaxa.measure.measure` (2 worker processes) on ``n`` gz1 galaxies read from the JPEG folder."""
    from galtaxa.measure import measure
    from galtaxa.io.base import SourceView

    source, idx = _gz1(n)
    part = SourceView(source, idx)
    cpu0, t0 = os.times(), time.perf_counter()
    table = measure(part, n_jobs=2, progress=False)
    wall = time.perf_counter() - t0
    cpu1 = os.times()
    cpu = (cpu1.user + cpu1.system + cpu1.children_user + cpu1.children_system
           - cpu0.user - cpu0.system - cpu0.children_user - cpu0.children_system)
    rec = {"n": n, "wall_s": round(wall, 1), "gal_per_s": round(n / wall, 3),
           "extrapolated_wall_s_for_3999": round(wall * 3999 / n, 0),
           "ok": int((table["status"] == "ok").sum()), "load_avg_end": [round(x, 2) for x in os.getloadavg()],
           "note": "CPU of the loky workers is not in os.times() (they are not waited-for children)"
                   if cpu < 0.5 * wall else f"process + children CPU {cpu:.0f} s"}
    log(f"e2e measure on {n} gz1 galaxies: {wall:.0f} s wall")
    return rec


# --------------------------------------------------------------- markdown
def _fmt(x, nd=2):
    return "-" if x is None else (f"{x:.1e}" if abs(x) < 10 ** -nd and x != 0 else f"{x:.{nd}f}")


def render(doc: dict) -> str:
    m = doc["machine"]
    lines = ["# Morphology measurement speed (issue 14)\n",
             f"- command: `{doc['command']}`\n- commit: `{doc['commit']}`, date {doc['date']}\n"
             f"- machine: {m['platform']}, {m.get('cpu', '')}, {m['cpu_count']} cores, {m['ram_gib']} GiB RAM; "
             f"load average at start {doc['load_avg_start']}, at end {doc.get('load_avg_end')} (shared CPU: "
             "figures are process CPU seconds, both engines timed on the same galaxy one after the other)\n",
             "\n| data | n | galtaxa gal/s/core | statmorph gal/s/core | speed-up (CPU, total) | "
             "per-galaxy median | M3 families gal/s/core | M3 speed-up | status / flag / flag_sersic equal |\n"
             "|---|---:|---:|---:|---:|---:|---:|---:|---|\n"]
    for s in doc["sets"]:
        g = s["gal_per_s_per_core"]
        a = s["agreement"]
        part = "" if s.get("n_planned", s["n"]) == s["n"] else f" (of {s['n_planned']} planned)"
        lines.append(f"| {s['dataset']} | {s['n']}{part} | {g['galtaxa']:.3f} | {g['statmorph']:.3f} | "
                     f"**{s['speedup_cpu_total']:.1f}x** | {s['speedup_cpu_median_per_galaxy']:.1f}x | "
                     f"{g['galtaxa_m3']:.3f} | {s['speedup_m3_cpu_total']:.1f}x | "
                     f"{a['status']} / {a['flag']} / {a['flag_sersic']} |\n")
    lines.append("\nRelative difference |galtaxa - statmorph| / |statmorph| per parameter (galaxies both "
                 "measured; target: median < 1% for C, A, S, Gini, M20, n, r_e):\n\n"
                 "| data | parameter | n | median | 95th pct | max | galaxies > 1e-6 |\n"
                 "|---|---|---:|---:|---:|---:|---:|\n")
    for s in doc["sets"]:
        for p, d in s["relative_difference"].items():
            lines.append(f"| {s['dataset']} | {p} | {d['n']} | {_fmt(d['median'])} | {_fmt(d['p95'])} | "
                         f"{_fmt(d['max'])} | {d['n_above_1e-6']} |\n")
    sl = doc.get("slice")
    if sl:
        rest = max(v for k, v in sl["rel_diff"].items() if k != "sersic_n")
        lines.append(f"\nstatmorph's reference galaxy (`statmorph_slice`, README values): status {sl['status']}, "
                     f"largest relative difference {rest:.1e} without Sérsic n (target 1e-5), "
                     f"{sl['rel_diff']['sersic_n']:.1e} on Sérsic n (statmorph 0.7.2 itself: 2e-5; "
                     "tests/measure/test_statmorph.py allows 1e-4).\n")
    e2e = doc.get("e2e")
    if e2e:
        lines.append(f"\n`measure()` with 2 worker processes on {e2e['n']} gz1 galaxies: {e2e['wall_s']} s wall "
                     f"({e2e['gal_per_s']} galaxies/s), extrapolated to the 3,999: "
                     f"{e2e['extrapolated_wall_s_for_3999'] / 60:.0f} min ({e2e['ok']} ok).\n")
    if doc.get("notes"):
        lines.append("\n" + doc["notes"] + "\n")
    return "".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    doc = {"machine": machine_info(), "commit": git_commit(), "command": args.command, "date": now(),
           "load_avg_start": [round(x, 2) for x in os.getloadavg()], "code_key": _code_key(), "sets": []}
    print(f"measure_speed  commit {doc['commit']}  load {doc['load_avg_start']}", flush=True)
    doc["slice"] = slice_check()
    print(f"statmorph_slice: max relative difference {doc['slice']['max_rel_diff']:.1e}", flush=True)
    plan = [("sim100", args.sim)] + ([("sdss_fits", 0)] if args.sdss else []) + [("gz1", args.gz1)]
    for name, n in plan:
        if name != "sdss_fits" and n <= 0:
            continue
        recs, planned = measure_set(name, n, args.workers, log=lambda s: print(s, flush=True),
                                    cached_only=args.summarise_only)
        if not recs:
            continue
        doc["sets"].append(summarise(name, recs, planned))
        print(json.dumps({k: doc["sets"][-1][k] for k in ("dataset", "n", "speedup_cpu_total",
                                                            "gal_per_s_per_core")}), flush=True)
    if args.e2e:
        doc["e2e"] = end_to_end(args.e2e, log=print)
    doc["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    save_result(doc, args.out, render)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
