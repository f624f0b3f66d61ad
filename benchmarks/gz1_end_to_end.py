"""The default ``galtaxa run`` on the Galaxy Zoo 1 galaxies, with the morphology measurement.

The run is timed in two steps in one run folder, so the measurement's share is its own figure:

1. ``run_pipeline`` with the default config and ``measure.enabled: false`` (read, condition, encode, reduce,
   cluster, vote, catalog, report);
2. the same config with the measurement on (the default), in the same run folder: the cached stages are reused,
   so this step is the measure stage on the native stamps (``measure.n_jobs: -1``, every core) plus the catalog
   and report written again.

The sum is the default run's wall time.  ``--families cas gini_m20`` measures only what method M3 needs.  Peak
memory is the process's ``VmHWM`` per step (the measure workers' peaks from ``getrusage(RUSAGE_CHILDREN)``).

Usage::

    .venv/bin/python benchmarks/gz1_end_to_end.py                 # all 3,999 gz1 galaxies
    .venv/bin/python benchmarks/gz1_end_to_end.py --n 400         # a seeded subset (extrapolated to 3,999)

Writes ``benchmarks/results/gz1_end_to_end.{json,md}`` (``benchmarks/run_all.py`` includes the ``.md`` in
RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import stages as S  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
N_GZ1 = 3999
TARGET_S = 15 * 60


def _step(cfg: dict, name: str) -> dict:
    from galtaxa.pipeline import run_pipeline

    with S.StageTimer() as t:
        result = run_pipeline(cfg, progress=False)
    cat = result.catalog
    rec = t.record(name, "galtaxa run_pipeline", len(cat), kept=round(float((cat["group"] >= 0).mean()), 4),
                   children_peak_rss_mib=round(t.children_peak_rss_mib))
    if "measure_status" in cat:
        rec["measured_ok"] = int((cat["measure_status"] == "ok").sum())
    print(f"{name}: {t.seconds:.0f} s wall, peak {t.peak_rss_mib:.0f} MiB, load {rec['load_avg_1min']}", flush=True)
    return rec


def run(n: int | None, families: list[str] | None, engine: str | None = None) -> dict:
    """Both steps on ``n`` gz1 galaxies (None: all); returns the result document."""
    files = S.gz1_files(n)
    doc = {"machine": S.machine_info(), "commit": S.git_commit(), "command": S.command_line(), "date": S.now(),
           "load_avg_start": [round(x, 2) for x in os.getloadavg()], "n": len(files), "families": families,
           "steps": []}
    with tempfile.TemporaryDirectory(prefix="galtaxa-e2e-") as tmp:
        cfg = S.gz1_run_config(files, Path(tmp))
        cfg["measure"]["enabled"] = False
        doc["steps"].append(_step(cfg, "without measurement"))
        cfg["measure"]["enabled"] = True
        cfg["measure"]["families"] = families
        if engine is not None:
            cfg["measure"]["engine"] = engine
        doc["engine"] = cfg["measure"]["engine"]
        doc["steps"].append(_step(cfg, "measurement (+ catalog, report)"))
    total = sum(s["seconds"] for s in doc["steps"])
    doc["total_s"] = round(total, 1)
    doc["extrapolated_total_s_for_3999"] = round(total * N_GZ1 / len(files), 0)
    doc["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return doc


def render(doc: dict) -> str:
    m = doc["machine"]
    fam = "all families" if not doc.get("families") else "families " + ", ".join(doc["families"])
    lines = ["# End to end on gz1 with the measurement\n",
             f"- command: `{doc['command']}`\n- commit: `{doc['commit']}`, date {doc['date']}\n"
             f"- machine: {m['platform']}, {m.get('cpu', '')}, {m['cpu_count']} cores, {m['ram_gib']} GiB RAM; "
             f"load average at start {doc['load_avg_start']}, at end {doc['load_avg_end']}\n"
             f"- {doc['n']} gz1 galaxies (native 423 px JPEG stamps), default config, measurement of {fam}, "
             f"engine {doc.get('engine', 'exact')}\n",
             "\n| step | s | galaxies/s | CPU s (this process) | peak RSS MiB | workers' peak RSS MiB | load | "
             "kept by the vote | measured ok |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"]
    for s in doc["steps"]:
        lines.append(f"| {s['stage']} | {s['seconds']:.0f} | {s['gal_per_s']} | {s['cpu_seconds']:.0f} | "
                     f"{s['peak_rss_mib']:.0f} | {s.get('children_peak_rss_mib', '-')} | {s['load_avg_1min']} | "
                     f"{s['kept']:.3f} | {s.get('measured_ok', '-')} |\n")
    extra = "" if doc["n"] == N_GZ1 else (f", {doc['extrapolated_total_s_for_3999'] / 60:.0f} min extrapolated "
                                          "linearly to 3,999 (an overestimate: model loading and the report are "
                                          "fixed costs)")
    verdict = "met" if doc["extrapolated_total_s_for_3999"] <= TARGET_S else "not met"
    lines.append(f"\nTotal {doc['total_s'] / 60:.1f} min{extra}; target under 15 min on this machine: **{verdict}**.\n")
    if doc.get("notes"):
        lines.append("\n" + doc["notes"] + "\n")
    return "".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=None, help="seeded subset of gz1 galaxies (default: all 3,999)")
    p.add_argument("--families", nargs="+", default=None, help="measure only these families (default: all)")
    p.add_argument("--engine", default=None, help="measure.engine (default: the config's default, fast)")
    p.add_argument("--out", type=Path, default=RESULTS / "gz1_end_to_end.json")
    a = p.parse_args(argv)
    S.save_result(run(a.n, a.families, a.engine), a.out, render)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
