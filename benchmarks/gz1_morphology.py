"""Non-parametric morphology of the Galaxy Zoo 1 galaxies per visual class, and the validation report.

Measurement (shared cache ``benchmarks/cache/gz1_morphology.parquet``, built by ``benchmarks/_gz1_morph_cache.py``)
--------------------------------------------------------------------------------------------------------------
* ``open_dataset(../shared/data/gz1, mode="rgb")`` then
  ``Conditioner(size=212, geometry="crop", scaling=None, channels=0)``: channel 0 = the **r band of the gri
  JPEG composite** (identical pixels to ``mode="r"``), the **central 212 x 212 px** of the 423 x 423 cutouts, no
  rescaling (statmorph wants flux-like pixels);
* :func:`galtaxa.measure.measure` (statmorph 0.7.2 behind galtaxa's segmentation, plus G2 and Psi), ``n_jobs=-1``
  (2 workers here), in slices of 400 galaxies written atomically (resumable).
* **No pixel scale is assumed**: the GZ1 data README does not give the cutouts' angular scale (Galaxy Zoo
  cutouts are scaled to each galaxy's size, so there is no single value to invent), so ``r_e`` stays in pixels
  (``r_e_px``) and ``r_e_arcsec`` / ``r_e_kpc`` are empty.

Caveats, stated with every number: JPEG pixels are **not linear flux** (the SDSS colour composites are an
asinh-like, saturating stretch, 8-bit quantised, lossy-compressed), so concentration, Gini and above all the
Sérsic index are biased low for centrally concentrated galaxies compared with the same measurement on calibrated
frames; SDSS seeing (~1.4") and the r band are not the papers' HST F814W at 0.03"/px.

What this script does
---------------------
1. Loads the table (or, while the shared run is still going and ``--partial`` is given, the slices finished so
   far; the result is then labelled ``partial`` with the number of galaxies measured).
2. Joins the GZ1 labels (0 -> E, 1+2 -> S_faceon, 3 -> S_edgeon, 5 -> merger; 4 "don't know" excluded) and
   writes per-class medians with 95% percentile-bootstrap intervals (1,000 resamples, seed 0) of C, Gini, M20, A
   and Sérsic n, on galaxies with ``status == "ok"``; also with the statmorph ``flag <= 1`` cut.
3. The fraction of each status, and the measurement throughput from the slice files' times (2 cores shared with
   other jobs: an upper bound on the time per galaxy).
4. :func:`galtaxa.report.build_report` with the labels as classes (ETG = E, LTG = both spirals): the HTML and the
   figures go to ``benchmarks/cache/gz1_report/`` (git-ignored), the numbers to
   ``benchmarks/results/gz1_report/report.json``.

Usage::

    .venv/bin/python benchmarks/gz1_morphology.py                 # waits for / builds the full table
    .venv/bin/python benchmarks/gz1_morphology.py --partial       # use the slices finished so far
    .venv/bin/python benchmarks/gz1_morphology.py --no-report     # medians only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _gz1_morph_cache as shared  # noqa: E402
from benchmarks.stages import command_line, git_commit, machine_info, now  # noqa: E402

RESULTS = HERE / "results"
REPORT_HTML_DIR = HERE / "cache" / "gz1_report"
REPORT_JSON_DIR = RESULTS / "gz1_report"
LOCK = shared.MORPH.with_suffix(".lock")
PARTS = shared.CACHE / "gz1_morphology_parts"
LABEL_NAMES = {"0": "E", "1": "S_faceon", "2": "S_faceon", "3": "S_edgeon", "5": "merger"}
CLASSES = ("E", "S_faceon", "S_edgeon", "merger")
PARAMS = ("C", "gini", "m20", "A", "sersic_n")
#: Paper medians (Fang et al. 2025, arXiv 2512.15137, M* > 1e9): SPH / ETD / LTD / IRR, HST F814W.
PAPER_M2 = {"sersic_n": (4.06, 1.81, 1.10, 0.74), "gini": (0.57, 0.52, 0.49, 0.47),
            "m20": (-2.08, -1.79, -1.55, -1.19), "C": (3.59, 3.00, 2.75, 2.54)}


def _parts() -> list[Path]:
    return sorted(PARTS.glob("part_*.parquet"))


def load_table(data: Path, partial: bool, n_jobs: int) -> tuple[pd.DataFrame, bool]:
    """The morphology table and whether it is partial.

    Full table if it exists; else, with ``partial``, the finished slices; else measure (resumably, through
    the shared cache module), holding ``gz1_morphology.lock`` while measuring.
    """
    if shared.MORPH.exists():
        return pd.read_parquet(shared.MORPH), False
    if partial:
        parts = _parts()
        if not parts:
            raise SystemExit("no finished morphology slice yet under " + str(PARTS))
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True), True
    while not shared.MORPH.exists() and _other_run_active():
        print(f"another process is measuring ({len(_parts())} slices done); waiting for {shared.MORPH.name} "
              "(or rerun with --partial)", flush=True)
        time.sleep(60)
    if shared.MORPH.exists():
        return pd.read_parquet(shared.MORPH), False
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    LOCK.write_text(f"pid {os.getpid()} since {now()}\n")
    try:
        table = shared.morphology_table(data, n_jobs=n_jobs, progress=True)
    finally:
        LOCK.unlink(missing_ok=True)
    return table, False


def _other_run_active(stale_s: float = 1800.0) -> bool:
    """A lock file exists, or the shared run wrote a slice (or its image set) less than ``stale_s`` ago."""
    if LOCK.exists():
        return True
    stamps = [p.stat().st_mtime for p in _parts()]
    meta = PARTS / "gz1_r212" / "meta.parquet"
    if meta.exists():
        stamps.append(meta.stat().st_mtime)
    return bool(stamps) and time.time() - max(stamps) < stale_s


def throughput() -> dict:
    """Galaxies per second of the shared-cache run, from the modification times of its slice files."""
    images_meta = PARTS / "gz1_r212" / "meta.parquet"
    times = [p.stat().st_mtime for p in _parts()]
    if not times or not images_meta.exists():
        return {}
    starts = [images_meta.stat().st_mtime] + times[:-1]
    sizes = [len(pd.read_parquet(p, columns=["id"])) for p in _parts()]
    per = [n / (b - a) for n, a, b in zip(sizes, starts, times) if b > a]
    total = sum(sizes) / (times[-1] - starts[0])
    typical = float(np.median(per)) if per else float("nan")
    return {"galaxies_per_s": typical, "s_per_galaxy": 1 / typical, "per_slice_galaxies_per_s": per,
            "overall_galaxies_per_s": total, "n_measured": int(sum(sizes)),
            "workers": "n_jobs=-1 (2 worker processes)",
            "note": "galaxies_per_s is the median over slices of 400 galaxies (wall clock between slice files); the "
                    "slices were measured over two sessions, some while the 2 cores were shared with other jobs "
                    "(load 8-13), so the overall figure (first to last file) includes idle time between sessions"}


def with_labels(table: pd.DataFrame, data: Path) -> pd.DataFrame:
    lab = pd.read_csv(data / "labels.csv", dtype=str)
    lab = lab.rename(columns={"objid": "id"})[["id", "label"]]
    out = table.merge(lab, on="id", how="left")
    out["class"] = out["label"].map(LABEL_NAMES).fillna("")
    return out


def medians(cat: pd.DataFrame, max_flag: int | None, n_boot: int) -> dict:
    from galtaxa.analysis import median_ci

    sel = cat["status"] == "ok"
    if max_flag is not None:
        sel &= cat["flag"] <= max_flag
    out = {}
    for cls in CLASSES:
        sub = cat[sel & (cat["class"] == cls)]
        out[cls] = {"n": int(len(sub))}
        for p in PARAMS:
            m = median_ci(sub[p].to_numpy(dtype=float), n_boot=n_boot, seed=0)
            out[cls][p] = {"median": m.median, "lo": m.low, "hi": m.high}
    return out


def _ci_fields(m) -> tuple[float, float, float]:
    return m["median"], m["lo"], m["hi"]


def medians_markdown(med: dict) -> str:
    head = "| class | N | C | Gini | M20 | A | Sérsic n |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for cls, rec in med.items():
        cells = []
        for p in PARAMS:
            v, lo, hi = _ci_fields(rec[p])
            cells.append(f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(v) else "–")
        lines.append(f"| {cls} | {rec['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def trends(med: dict) -> dict:
    """Does each parameter move the way the papers' SPH -> IRR sequence does, from E to merger?

    Papers (M1/M2): n, C, Gini fall and M20 rises from SPH to IRR.  Here the sequence compared is
    E -> S_faceon -> merger (S_edgeon reported apart: inclination changes every index).
    """
    expect = {"sersic_n": -1, "C": -1, "gini": -1, "m20": +1, "A": +1}
    out = {}
    for p, sign in expect.items():
        seq = [med[c][p]["median"] for c in ("E", "S_faceon", "merger")]
        steps = np.sign(np.diff(seq))
        out[p] = {"E_Sfaceon_merger": seq, "expected_direction": "falls" if sign < 0 else "rises",
                  "monotonic_as_expected": bool(np.all(steps == sign)),
                  "E_vs_S_faceon_as_expected": bool(steps[0] == sign)}
    return out


def run_report(cat: pd.DataFrame, out_html: Path, n_boot: int) -> dict:
    from galtaxa.galaxyset import GalaxySet
    from galtaxa.report import build_report

    images = PARTS / "gz1_r212"
    galaxies = None
    if (images / "meta.parquet").exists():
        gs = GalaxySet.load(images)
        keep = np.isin(np.asarray(gs.ids).astype(str), cat["id"].astype(str).to_numpy())
        galaxies = gs.subset(np.flatnonzero(keep))
    t0 = time.perf_counter()
    cat = cat.copy()
    cat["label"] = cat["class"]
    build_report(cat, out_html, features=None, galaxies=galaxies, title="galtaxa validation on Galaxy Zoo 1 (r band "
                 "of the JPEG composites, labels as classes)", class_column="class", label_column="label",
                 etg=("E",), ltg=("S_faceon", "S_edgeon"), maps=(), n_boot=n_boot)
    return {"seconds": time.perf_counter() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=shared.DEFAULT_DATA)
    ap.add_argument("--partial", action="store_true", help="use the finished slices while the shared run goes on")
    ap.add_argument("--n-jobs", type=int, default=-1)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args(argv)
    table, partial = load_table(args.data, args.partial, args.n_jobs)
    cat = with_labels(table, args.data)
    status = cat["status"].value_counts(normalize=True).to_dict()
    reasons = cat.loc[cat["status"] != "ok", "reason"].value_counts().head(10).to_dict()
    med = medians(cat, None, args.n_boot)
    med_flag = medians(cat, 1, args.n_boot)
    md = medians_markdown(med)
    result = {
        "benchmark": "gz1_morphology", "date": now(), "command": command_line(), "git_commit": git_commit(),
        "machine": machine_info(), "partial": partial, "n_galaxies_measured": int(len(cat)),
        "n_galaxies_total": 3999, "measurement": {
            "reader": "open_dataset(gz1, mode='rgb'), channel 0 = r band of the gri JPEG composite",
            "conditioner": shared.CONDITIONING, "pixel_scale": None,
            "caveat": "JPEG pixels are a non-linear (asinh-like, saturating) 8-bit stretch, not flux: C, Gini and "
                      "Sersic n of concentrated galaxies are biased low; SDSS seeing ~1.4 arcsec; r band"},
        "label_counts_measured": cat["class"].replace("", "unknown").value_counts().to_dict(),
        "status_fractions": status, "non_ok_reasons": reasons,
        "flag_fractions": cat.loc[cat["status"] == "ok", "flag"].value_counts(normalize=True).sort_index()
        .rename(index=str).to_dict(),
        "medians_status_ok": med, "medians_flag_le_1": med_flag, "trends": trends(med),
        "paper_m2_medians_SPH_ETD_LTD_IRR": PAPER_M2, "throughput": throughput(), "markdown": md,
    }
    if not args.no_report:
        result["report"] = run_report(cat, REPORT_HTML_DIR, args.n_boot)
        REPORT_JSON_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPORT_HTML_DIR / "report.json", REPORT_JSON_DIR / "report.json")
        rep = json.loads((REPORT_JSON_DIR / "report.json").read_text())
        result["report"]["consistency"] = rep.get("consistency")
        result["report"]["html"] = str(REPORT_HTML_DIR.relative_to(ROOT) / "report.html") + " (git-ignored)"
    from galtaxa.utils.atomic import atomic_write_text

    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "gz1_morphology_partial" if partial else "gz1_morphology"
    atomic_write_text(RESULTS / f"{name}.json", json.dumps(result, indent=1, default=str))
    tp = result["throughput"]
    text = (f"# Morphology per GZ1 class ({now()}, {git_commit()})\n\n`{command_line()}`\n\n"
            f"{'PARTIAL: ' if partial else ''}{len(cat)} of 3,999 galaxies measured; status fractions "
            f"{ {k: round(v, 4) for k, v in status.items()} }. Medians of status-ok galaxies with 95% bootstrap "
            f"intervals (r band of the JPEG composites, central 212 px, no pixel scale):\n\n{md}\n\n"
            f"Throughput {tp.get('galaxies_per_s', float('nan')):.2f} galaxies/s on 2 cores (median over slices of 400 "
            f"galaxies; the 2 cores were at times shared with other jobs).\n")
    atomic_write_text(RESULTS / f"{name}.md", text)
    print(text)
    print(json.dumps(result["trends"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
