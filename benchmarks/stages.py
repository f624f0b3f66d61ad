"""Per-stage benchmarks of galtaxa against the papers'-style reference (benchmarks/reference).

Every function times one stage on the same data for galtaxa and (where one exists) the reference, galtaxa
first then the reference, so that the speed-up is a ratio measured within seconds on the same load; each
returns a list of result records (dicts) with the wall time, galaxies per second, the peak resident memory of
the stage and the load average, plus stage-specific checks (agreement of outputs).

Peak memory per stage: on Linux the process high-water mark (``VmHWM``) is reset before each timed block by
writing ``5`` to ``/proc/self/clear_refs`` and read after it; worker processes are reported through
``getrusage(RUSAGE_CHILDREN)`` (their lifetime maximum).  Where the reset is not allowed the process
lifetime peak (``ru_maxrss``) is reported and flagged.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is not a package on the import path when run as a script
    sys.path.insert(0, str(ROOT))

from benchmarks.reference import (  # noqa: E402
    cluster_reference,
    condition_reference,
    encode_reference,
    polar_unfold_reference,
    read_reference,
    reduce_reference,
    vote_reference,
)

__all__ = ["machine_info", "git_commit", "command_line", "StageTimer", "gz1_files", "stage_read",
           "stage_condition", "stage_cae", "stage_polar", "stage_encode", "stage_reduce", "stage_cluster",
           "stage_measure", "stage_write", "simulated_images", "save_result", "gz1_run_config", "STAGES"]

STAGES = ("read", "condition", "cae", "polar", "encode", "reduce", "cluster", "measure", "write")
GZ1 = ROOT.parent / "shared" / "data" / "gz1"


# ------------------------------------------------------------------ provenance
def machine_info() -> dict:
    """Platform, cores, RAM, library versions and the accelerator (none here)."""
    import torch

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (no GPU lent to this run)"
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(), "ram_gib": round(ram, 1),
            "python": platform.python_version(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "gpu": gpu}


def git_commit() -> str:
    """``git rev-parse --short HEAD`` (+ ``-dirty`` when the tree has changes), or ``"unknown"``."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def command_line(script: str | None = None, argv=None) -> str:
    """The exact command that produced the numbers, relative to the repository root.

    ``script`` and ``argv`` default to ``sys.argv``; runners called from Python pass their own.
    """
    if script is None:
        script, argv = sys.argv[0], sys.argv[1:] if argv is None else argv
    try:
        script = str(Path(script).resolve().relative_to(ROOT))
    except ValueError:
        pass
    return ".venv/bin/python " + " ".join(shlex.quote(str(a)) for a in [script, *(argv or [])])


# ------------------------------------------------------------------ timing
def _vm_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class StageTimer:
    """Times a block: wall and CPU seconds, peak RSS of the block (MiB), children's peak RSS, load average."""

    def __enter__(self):
        self.reset_ok = _reset_peak()
        self.load_before = os.getloadavg()[0]
        self.cpu0 = time.process_time()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.cpu_seconds = time.process_time() - self.cpu0
        hwm = _vm_kib("VmHWM") if self.reset_ok else None
        self.peak_rss_mib = (hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024
        self.children_peak_rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        self.load = max(self.load_before, os.getloadavg()[0])
        return False

    def record(self, stage: str, impl: str, n: int, **extra) -> dict:
        rec = {"stage": stage, "impl": impl, "n": int(n), "seconds": round(self.seconds, 4),
               "gal_per_s": round(n / self.seconds, 2) if self.seconds > 0 else None,
               "cpu_seconds": round(self.cpu_seconds, 3), "peak_rss_mib": round(self.peak_rss_mib, 1),
               "peak_is_process_lifetime": not self.reset_ok, "load_avg_1min": round(self.load, 2)}
        rec.update(extra)
        return rec


@contextmanager
def _threads(n: int | None):
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ------------------------------------------------------------------ data
def gz1_files(n: int | None = None, seed: int = 0) -> list[Path]:
    """``n`` gz1 JPEGs (a seeded random subset, sorted; all 3,999 when ``n`` is None)."""
    files = sorted((GZ1 / "images").glob("*.jpeg"))
    if not files:
        raise FileNotFoundError(f"no gz1 images under {GZ1}/images")
    if n is not None and n < len(files):
        idx = np.sort(np.random.default_rng(seed).choice(len(files), n, replace=False))
        files = [files[i] for i in idx]
    return files


def link_folder(files, folder: Path) -> Path:
    """A folder of symbolic links to ``files`` (so the galtaxa reader sees exactly this subset)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        dst = folder / Path(f).name
        if not dst.exists():
            dst.symlink_to(Path(f).resolve())
    return folder


def gz1_run_config(files, tmp: Path) -> dict:
    """The default galtaxa config on ``files`` (gz1 JPEGs linked into ``tmp/gz1/images``, labels from gz1's
    ``labels.csv``), its run folder ``tmp/run``."""
    from galtaxa.config import default_config

    folder = link_folder(files, Path(tmp) / "gz1" / "images")
    cfg = default_config()
    cfg["input"].update(path=str(folder.parent), labels=str(GZ1 / "labels.csv"), kind="images")
    cfg["run_dir"] = str(Path(tmp) / "run")
    return cfg


def simulated_images(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """``n`` simulated single-band galaxies (GalSim, :func:`galtaxa.datasets.simulate`) as (N, 1, H, W)."""
    from galtaxa.datasets import simulate

    galaxies, _truth = simulate(n=n, size=size, seed=seed)
    return np.asarray(galaxies.images, dtype=np.float32)


# ------------------------------------------------------------------ stages
def stage_read(files) -> tuple[list[dict], list[np.ndarray]]:
    """galtaxa's ImageFolderSource (with placeholder detection) vs a bare PIL loop."""
    from galtaxa.io import open_dataset

    for f in files:  # warm the page cache so that neither implementation pays the first disk read
        Path(f).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        folder = link_folder(files, Path(tmp) / "images")
        src = open_dataset(folder, kind="images", labels=None)
        out = []
        with StageTimer() as t:
            raws, bad = [], 0
            for _i, img, _reason in src.iter_images():
                raws.append(img)
                bad += img is None
        out.append(t.record("read", "galtaxa", len(files), bad_input=int(bad)))
        with StageTimer() as t:
            ref = read_reference(files)
        out.append(t.record("read", "reference", len(files)))
    return out, [r if r is not None else ref[i] for i, r in enumerate(raws)]


def stage_condition(raws, size: int = 100) -> tuple[list[dict], np.ndarray]:
    """galtaxa's Conditioner (crop, asinh; per image as build_galaxyset calls it) vs the reference crop+asinh."""
    from galtaxa.preprocess import Conditioner

    cond = Conditioner(size=size, geometry="crop", scaling="asinh")
    with StageTimer() as t:
        out, reasons = cond.transform_batch(raws, errors="collect")
    recs = [t.record("condition", "galtaxa", len(raws), bad_input=sum(bool(r) for r in reasons))]
    with StageTimer() as t:
        _ref = [condition_reference(r, size) for r in raws]
    recs.append(t.record("condition", "reference", len(raws)))
    return recs, out


def stage_cae(images, epochs: int = 2, threads: int | None = None) -> list[dict]:
    """CAE denoiser: training per epoch and inference throughput vs the bare forward pass (no reference)."""
    import torch

    from galtaxa.taxonomy.cae import CAEDenoiser

    recs = []
    images = _unit(np.asarray(images, dtype=np.float32))
    with _threads(threads):
        cae = CAEDenoiser(epochs=epochs, patience=epochs, random_state=0, progress=False)
        with StageTimer() as t:
            cae.fit(images)
        recs.append(t.record("cae", "galtaxa fit", len(images), epochs=epochs,
                             s_per_epoch=round(t.seconds / epochs, 3)))
        with StageTimer() as t:
            den = cae.transform(images)
        model = cae.model_ if hasattr(cae, "model_") else None
        bare = None
        if model is not None:
            x = torch.as_tensor(np.asarray(images[:256], dtype=np.float32))
            h, w = x.shape[-2:]
            ph, pw = cae._padded(h, w)
            x = torch.nn.functional.pad(x, (0, pw - w, 0, ph - h))
            with torch.inference_mode():
                model(x[:8])
                t0 = time.perf_counter()
                for s in range(0, len(x), cae.batch_size):
                    model(x[s:s + cae.batch_size])
                bare = (time.perf_counter() - t0) * len(images) / len(x)
        recs.append(t.record("cae", "galtaxa transform", len(images),
                             bare_forward_s=None if bare is None else round(bare, 4),
                             ratio_to_bare=None if bare is None else round(t.seconds / bare, 3),
                             finite=bool(np.isfinite(den).all())))
    return recs


def stage_polar(images, ref_n: int = 50, angle_step: float = 0.05) -> tuple[list[dict], np.ndarray]:
    """galtaxa's batched polar_unfold vs the reference loop (on ``ref_n`` images), with output agreement."""
    from galtaxa.taxonomy.polar import polar_unfold

    recs = []
    with StageTimer() as t:
        polar = polar_unfold(images, angle_step=angle_step)
    recs.append(t.record("polar", "galtaxa (default: smoothed, sub-pixel centre)", len(images)))
    m = min(ref_n, len(images))
    with StageTimer() as t:
        same = polar_unfold(images[:m], angle_step=angle_step, smooth_sigma=0, subpixel=False)
    recs.append(t.record("polar", "galtaxa (papers' centre: raw brightest pixel)", m))
    with StageTimer() as t:
        ref = np.stack([polar_unfold_reference(np.asarray(images[i]), angle_step=angle_step) for i in range(m)])
    diff = np.abs(ref - same).reshape(m, -1).max(axis=1)
    scale = np.abs(ref).reshape(m, -1).max(axis=1) + 1e-12
    rel = diff / scale
    recs.append(t.record("polar", "reference (per image, loops over rays and radii)", m,
                         max_abs_diff=float(diff.max()), median_rel_diff=float(np.median(rel)),
                         frac_rel_diff_below_1e4=float(np.mean(rel < 1e-4))))
    return recs, polar


def _unit(x: np.ndarray) -> np.ndarray:
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    hi = x.max(axis=(1, 2, 3), keepdims=True)
    return ((x - lo) / np.where(hi > lo, hi - lo, 1)).astype(np.float32)


def stage_encode(polar, encoder=None, batch_size: int = 32, ref_n: int = 64, num_workers: int = 1,
                 channels_last: bool = False) -> tuple[list[dict], np.ndarray]:
    """extract_features vs the bare model forward on the same batches vs one encoder call per image."""
    import torch

    from galtaxa.encode import extract_features, get_encoder
    from galtaxa.galaxyset import GalaxySet

    enc = encoder or get_encoder("efficientnet_lite0", input_size=224, channels_last=channels_last)
    images = _unit(np.asarray(polar))
    gs = GalaxySet.from_arrays(images)
    recs = []
    # warm-up (first call allocates)
    enc.forward_batch(images[:2])
    with StageTimer() as t:
        feats = extract_features(gs, enc, batch_size=batch_size, progress=False, num_workers=num_workers)
    stage_s = t.seconds
    batches = [enc.preprocess(images[s:s + batch_size]) for s in range(0, len(images), batch_size)]
    with StageTimer() as tb:
        with torch.inference_mode():
            for x in batches:
                enc.model(x)
    del batches
    recs.append(t.record("encode", f"galtaxa extract_features (batch {batch_size}, {num_workers} loader thread)",
                         len(images), bare_forward_s=round(tb.seconds, 3),
                         ratio_to_bare=round(stage_s / tb.seconds, 3), channels_last=channels_last,
                         encoder=enc.name, input_size=enc.input_size))
    recs.append(tb.record("encode", "bare model forward (preprocessed batches)", len(images)))
    m = min(ref_n, len(images))
    with StageTimer() as t:
        ref = encode_reference(images[:m], enc)
    err = float(np.abs(ref - feats[:m]).max() / (np.abs(feats[:m]).max() + 1e-12))
    recs.append(t.record("encode", "reference (one encoder call per image)", m, max_rel_diff_vs_galtaxa=err))
    return recs, np.asarray(feats)


def stage_reduce(features, n_components: int = 50) -> tuple[list[dict], np.ndarray]:
    """PCAReducer vs scikit-learn StandardScaler + PCA with defaults."""
    from galtaxa.reduce import PCAReducer

    with StageTimer() as t:
        z = PCAReducer(n_components=n_components, random_state=0).fit_transform(features)
    recs = [t.record("reduce", "galtaxa PCAReducer", len(features), dims=f"{features.shape[1]}->{z.shape[1]}")]
    with StageTimer() as t:
        zr = reduce_reference(features, n_components)
    # same subspace up to signs: compare absolute correlations of the first components
    corr = [abs(np.corrcoef(z[:, k], zr[:, k])[0, 1]) for k in range(min(5, z.shape[1]))]
    recs.append(t.record("reduce", "reference sklearn PCA", len(features), min_abs_corr_first5=float(min(corr))))
    return recs, np.asarray(z, dtype=np.float32)


def stage_cluster(z, n_clusters: int = 20) -> tuple[list[dict], np.ndarray]:
    """VotingClustering vs scikit-learn defaults (k-means, Birch(n_clusters=20), Ward) + a Python vote loop."""
    import warnings

    from sklearn.metrics import adjusted_rand_score

    from galtaxa.cluster import VotingClustering

    with StageTimer() as t, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vc = VotingClustering(n_clusters=n_clusters, mapping="hungarian", min_agree=2, random_state=0).fit(z)
    recs = [t.record("cluster", "galtaxa VotingClustering", len(z), kept=round(vc.kept_fraction_, 4),
                     pairwise_ari=vc.pairwise_ari_.round(3).to_dict())]
    with StageTimer() as t:
        raw = cluster_reference(z, n_clusters)
        lab = vote_reference(raw)
    ari = {k: round(float(adjusted_rand_score(raw[k], vc.raw_labels_[k])), 4) for k in raw}
    recs.append(t.record("cluster", "reference sklearn defaults", len(z), kept=round(float(np.mean(lab >= 0)), 4),
                         ari_vs_galtaxa_per_voter=ari,
                         ref_birch_vs_ward_ari=round(float(adjusted_rand_score(raw["birch"], raw["ward"])), 4)))
    return recs, vc.labels_


def stage_measure(source_images: list[np.ndarray], n_jobs: int = 2, n_total: int | None = None) -> list[dict]:
    """galtaxa measure() with ``n_jobs`` workers vs the same serially (statmorph one galaxy at a time)."""
    from galtaxa.galaxyset import GalaxySet
    from galtaxa.measure import measure

    arr = np.stack([np.asarray(r, dtype=np.float32).mean(axis=0) for r in source_images])[:, None]
    gs = GalaxySet.from_arrays(arr)
    recs = []
    for impl, jobs in ((f"galtaxa measure (n_jobs={n_jobs})", n_jobs), ("serial (n_jobs=1, papers' loop)", 1)):
        with StageTimer() as t:
            table = measure(gs, n_jobs=jobs, progress=False)
        extra = {"ok": int((table["status"] == "ok").sum()), "children_peak_rss_mib": round(t.children_peak_rss_mib, 1)}
        if n_total:
            extra["extrapolated_s_for_n_total"] = round(t.seconds * n_total / len(arr), 1)
            extra["n_total"] = n_total
        recs.append(t.record("measure", impl, len(arr), **extra))
    return recs


def stage_write(n: int, labels=None) -> list[dict]:
    """write_catalog (Parquet + CSV + FITS with provenance) vs a bare pandas to_csv."""
    import pandas as pd

    from galtaxa.catalog import write_catalog

    rng = np.random.default_rng(0)
    cols = ["C", "A", "S", "gini", "m20", "sersic_n", "r_e_px"]
    table = pd.DataFrame({"id": [f"g{i}" for i in range(n)], "status": "ok", "reason": "",
                          "group": labels if labels is not None else rng.integers(-1, 20, n),
                          **{c: rng.normal(size=n) for c in cols}})
    with tempfile.TemporaryDirectory() as tmp, StageTimer() as t:
        write_catalog(table, Path(tmp) / "catalog", formats=("parquet", "csv", "fits"), seed=0, ids=table["id"])
    recs = [t.record("write", "galtaxa write_catalog (parquet+csv+fits)", n)]
    with tempfile.TemporaryDirectory() as tmp, StageTimer() as t:
        table.to_csv(Path(tmp) / "catalog.csv", index=False)
    recs.append(t.record("write", "reference pandas to_csv", n))
    return recs


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def save_result(doc: dict, out: Path, render) -> Path:
    """Write a benchmark's result document ``out`` (JSON) and ``render(doc)`` beside it (``.md``).

    The hand-written reading of the numbers (``notes``) of the previous document at ``out`` is kept.
    """
    import json

    out = Path(out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    if previous.get("notes") and "notes" not in doc:
        doc["notes"] = previous["notes"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, default=str))
    out.with_suffix(".md").write_text(render(doc))
    return out
