"""The whole pipeline from a config: read, measure, cluster, catalog, report.

Every stage is cached in ``RUN_DIR/stages/<stage>-<hash>/`` (see
:mod:`galtaxa.cache`): a rerun after a crash or a config change recomputes only
what changed.  Whatever happens to a galaxy, it keeps its row in
``RUN_DIR/catalog.{parquet,csv,fits}`` with a ``status`` and a ``reason``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .cache import RunCache, Stage
from .galaxyset import GalaxySet
from .io.base import CutoutSource
from .status import OK, log
from .utils.atomic import atomic_path, atomic_write_text

__all__ = ["RunResult", "open_input", "make_conditioner", "read_stage", "measure_stage", "cluster_stage",
           "assemble_catalog", "run_pipeline", "run_on_galaxies", "report_run", "load_psf",
           "encoder_specs", "multimodal_view", "multimodal_features", "multimodal_taxonomy_from_config",
           "multimodal_stage", "multimodal_ablation", "mixture_fit"]

STAGES = ("read", "measure", "cluster", "report")


@dataclass
class RunResult:
    """What a pipeline run produced."""

    run_dir: Path
    catalog: pd.DataFrame
    paths: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def summary(self) -> str:
        """A short human-readable account of the run."""
        counts = self.catalog["status"].value_counts().to_dict()
        lines = [f"galtaxa run in {self.run_dir}: {len(self.catalog)} galaxies, status {counts}"]
        if "group" in self.catalog:
            kept = (self.catalog["group"] >= 0).sum()
            lines.append(f"  groups: {self.catalog.loc[self.catalog['group'] >= 0, 'group'].nunique()}, "
                         f"kept by the vote {kept} ({kept / len(self.catalog):.0%})")
        if "class" in self.catalog and (self.catalog["class"] != "").any():
            lines.append("  classes: " + ", ".join(f"{k} {v}" for k, v in
                                                  self.catalog.loc[self.catalog["class"] != "", "class"].value_counts().items()))
        for key, value in self.metrics.items():
            lines.append(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
        for key, value in self.paths.items():
            lines.append(f"  {key}: {value}")
        return "\n".join(lines)


# --------------------------------------------------------------------- inputs
def open_input(cfg: dict):
    """The :class:`~galtaxa.io.base.CutoutSource` described by ``cfg["input"]``."""
    from .io import open_dataset
    from .io.open import detect_kind

    inp = cfg["input"]
    if not inp["path"]:
        raise FileNotFoundError("input.path is not set in the config: point it at your cutouts")
    path = Path(inp["path"])
    kw = {}
    if inp["catalog"]:
        kind = "mosaic"
        kw.update(catalog=inp["catalog"], size=inp["cutout_size"], unit=inp["cutout_unit"])
    elif inp["kind"] != "auto":
        kind = inp["kind"]
    else:
        kind, path = detect_kind(path)
    if inp["hdu"] is not None and kind in ("fits", "mosaic"):
        kw["hdu"] = inp["hdu"]
    if kind == "images":
        kw["mode"] = inp["mode"]
        kw["check_placeholder"] = inp.get("detect_error_pictures", True)
        if inp["labels"] != "auto":  # null: no labels
            kw["labels"] = inp["labels"]
    if kind == "array" and inp.get("key"):
        kw["key"] = inp["key"]
    return open_dataset(path, kind=kind, **kw)


def resolve_auto_settings(cfg: dict, source) -> dict:
    """A copy of ``cfg`` with ``conditioning.scaling: auto`` replaced by the choice for ``source``.

    The choice (:func:`galtaxa.preprocess.condition.auto_scaling`) is logged and, through the config, recorded
    in the catalog header and the run's ``config.yaml``.
    """
    from .preprocess.condition import auto_scaling

    if cfg["conditioning"]["scaling"] != "auto":
        return cfg
    out = copy.deepcopy(cfg)
    out["conditioning"]["scaling"] = auto_scaling(source)
    log.info("conditioning.scaling: auto -> %s for a %s input", out["conditioning"]["scaling"],
             getattr(source, "kind", "?"))
    return out


def make_conditioner(cfg: dict, source=None):
    """The :class:`~galtaxa.preprocess.Conditioner` described by ``cfg["conditioning"]``.

    ``scaling: auto`` is resolved for ``source`` (see :func:`resolve_auto_settings`); without a source it
    falls back to ``"asinh"``.
    """
    from .preprocess import Conditioner

    if source is not None:
        cfg = resolve_auto_settings(cfg, source)
    c = cfg["conditioning"]
    channels = c["channels"]
    if isinstance(channels, str) and channels.isdigit():
        channels = int(channels)
    return Conditioner(size=c["size"], geometry=c["geometry"], crop_fraction=c["crop_fraction"],
                       frame_scale=c["frame_scale"],
                       background=c["background"],
                       scaling={"none": None, "auto": "asinh"}.get(c["scaling"], c["scaling"]),
                       channels=channels)


def _save_meta(gs: GalaxySet, directory: Path) -> None:
    with atomic_path(directory / "meta.parquet") as tmp:
        gs.meta.to_parquet(tmp, index=False)
    atomic_write_text(directory / "info.json", json.dumps(gs.info, indent=2, default=str))


# --------------------------------------------------------------------- stages
def read_stage(cfg: dict, cache: RunCache, source=None) -> tuple[GalaxySet, Stage]:
    """Read and condition every cutout into a memory-mapped GalaxySet (cached)."""
    from .io.base import build_galaxyset

    stage = cache.stage("read", {"input": cfg["input"], "conditioning": cfg["conditioning"]})
    if not stage.done:
        source = source or open_input(cfg)
        stage.begin()
        gs = build_galaxyset(source, make_conditioner(cfg, source), out=stage.path / "images.npy", desc="reading")
        _save_meta(gs, stage.path)
        stage.finish({"n": len(gs), "n_ok": int(gs.ok.sum())})
    return GalaxySet.load(stage.path), stage


#: Galaxies measured per resumable part of the measure stage (see :func:`measure_stage`).
MEASURE_CHUNK_SIZE = 256


class _SourceSlice(CutoutSource):
    """Rows ``index`` of a :class:`~galtaxa.io.base.CutoutSource`, read through it (one measure chunk).

    Picklable whenever the parent source is, so the chunk can be measured in worker processes.
    """

    def __init__(self, parent: CutoutSource, index):
        self.parent = parent
        self.index = np.asarray(index, dtype=int)
        self.kind = parent.kind
        super().__init__([parent.ids[i] for i in self.index], parent.meta.iloc[self.index], parent.path)

    def _read(self, i: int) -> np.ndarray:
        return self.parent._read(int(self.index[i]))


def _galaxies_slice(galaxies, start: int, stop: int):
    """Galaxies ``start:stop`` of a GalaxySet or a CutoutSource (nothing else is read)."""
    index = np.arange(start, stop)
    return galaxies.subset(index) if isinstance(galaxies, GalaxySet) else _SourceSlice(galaxies, index)


def _galaxies_fingerprint(galaxies, n_sample: int = 16) -> str:
    """SHA-256 (16 hex digits) of the ids, statuses and sources (and, for a GalaxySet, a sample of images).

    Keys the measure stage to the galaxies it measured, so a cache computed for other galaxies (another
    input given to :func:`run_on_galaxies` without an upstream read stage) is never reused.
    """
    meta = galaxies.meta
    h = hashlib.sha256()
    for col in ("id", "status", "source"):
        if col in meta:
            h.update("\x00".join(meta[col].astype(str)).encode() + b"\x01")
    if isinstance(galaxies, GalaxySet):
        h.update(repr((tuple(galaxies.images.shape), str(galaxies.images.dtype))).encode())
        n = len(galaxies)
        for i in np.unique(np.linspace(0, n - 1, num=min(n, n_sample)).astype(int)) if n else []:
            h.update(np.ascontiguousarray(galaxies.images[i]).tobytes())
    return h.hexdigest()[:16]


def load_psf(path) -> np.ndarray | None:
    """The PSF image of ``measure.psf`` (FITS primary/first image HDU or .npy), normalised to unit sum.

    Raises ``ValueError`` naming the file when it is not a finite, positive-sum 2-D image.
    """
    if path is None:
        return None
    path = Path(path).expanduser()
    if path.suffix == ".npy":
        psf = np.load(path)
    else:
        from astropy.io import fits

        with fits.open(path) as hdul:
            psf = next((h.data for h in hdul if h.data is not None and np.ndim(h.data) >= 2), None)
        if psf is None:
            raise ValueError(f"{path}: no image HDU holds a PSF")
    psf = np.squeeze(np.asarray(psf, dtype=np.float64))
    if psf.ndim != 2 or min(psf.shape) < 3 or not np.isfinite(psf).all() or psf.sum() <= 0:
        raise ValueError(f"{path}: a PSF must be a finite 2-D image of at least 3x3 px with a positive sum; "
                         f"got shape {psf.shape}")
    return psf / psf.sum()


def _read_part(path: Path, ids: list[str]) -> pd.DataFrame | None:
    """A finished measure part, or None when absent, unreadable or not for these ids (then it is redone)."""
    if not path.exists():
        return None
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        log.warning("measure: part %s is unreadable (%s); measuring it again", path.name, err)
        return None
    if "id" not in table or table["id"].astype(str).tolist() != ids:
        log.warning("measure: part %s holds other galaxies; measuring it again", path.name)
        return None
    return table


def measure_stage(cfg: dict, cache: RunCache, galaxies, upstream: tuple[Stage, ...] = (), progress: bool = True,
                  chunk_size: int | None = None) -> pd.DataFrame:
    """Non-parametric morphology of every galaxy (cached, resumable); ``galaxies`` at native, linear flux.

    The galaxies are measured in consecutive chunks of ``chunk_size`` (default :data:`MEASURE_CHUNK_SIZE`);
    each finished chunk is written atomically to ``part-<start>-<stop>.parquet`` in the stage folder, which
    is marked resumable, so a run killed mid-measurement measures only the unfinished chunks again and ends
    with the same table as an uninterrupted run.  A part that cannot be read back or holds other ids is
    redone.  When every chunk is done they are concatenated into ``measure.parquet``, the stage is marked
    finished and the parts are removed.  The stage key covers the measure settings, the upstream stages and
    a fingerprint of the galaxies (:func:`_galaxies_fingerprint`).
    """
    from .measure import measure

    m = cfg["measure"]
    size = int(MEASURE_CHUNK_SIZE if chunk_size is None else chunk_size)
    if size < 1:
        raise ValueError(f"chunk_size must be a positive number of galaxies, got {chunk_size!r}")
    psf = load_psf(m.get("psf"))
    settings = {k: m[k] for k in ("gain", "pixel_scale", "redshift")} | {"galaxies": _galaxies_fingerprint(galaxies)}
    if m.get("families") is not None:  # keyed only when chosen, so caches of full measurements stay valid
        settings["families"] = sorted(m["families"])
    if psf is not None:  # keyed by the PSF's pixels, not its file name
        settings["psf"] = hashlib.sha256(np.ascontiguousarray(psf).tobytes()).hexdigest()[:16]
    stage = cache.stage("measure", settings, upstream)
    out = stage.path / "measure.parquet"
    if not stage.done:
        stage.path.mkdir(parents=True, exist_ok=True)
        (stage.path / "resumable").touch()  # finished parts survive a crash
        stage.begin()
        for tmp in stage.path.glob(".part-*.tmp*"):  # temp files of a write interrupted by a kill
            tmp.unlink(missing_ok=True)
        ids = galaxies.meta["id"].astype(str).tolist()
        parts = []
        for start in range(0, len(ids), size):
            stop = min(len(ids), start + size)
            path = stage.path / f"part-{start:09d}-{stop:09d}.parquet"
            table = _read_part(path, ids[start:stop])
            if table is None:
                table = measure(_galaxies_slice(galaxies, start, stop), n_jobs=m["n_jobs"], gain=m["gain"],
                                psf=psf, pixel_scale=m["pixel_scale"], redshift=m["redshift"], progress=progress,
                                families=m.get("families"))
                with atomic_path(path) as tmp:
                    table.to_parquet(tmp, index=False)
            else:
                log.info("measure: galaxies %d-%d already measured (%s)", start, stop, path.name)
            parts.append(table)
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["id", "status", "reason"])
        if table["id"].astype(str).tolist() != ids:
            raise RuntimeError(f"measure stage {stage.path}: the parts do not add up to the input galaxies")
        with atomic_path(out) as tmp:
            table.to_parquet(tmp, index=False)
        stage.finish({"n_ok": int((table["status"] == OK).sum()), "chunk_size": size})
        for path in stage.path.glob("part-*.parquet"):
            path.unlink(missing_ok=True)
    return pd.read_parquet(out)


#: Figure of the reduction step written into the cluster stage folder (PCA variance curve or UMAP DB scan).
REDUCTION_FIGURES = ("pca_variance.png", "umap_db_scan.png")


def _plot_reduction(reducer, folder: Path) -> Path | None:
    """The PCA explained-variance curve or the UMAP Davies-Bouldin scan of a fitted reducer, as a PNG in ``folder``."""
    from .reduce import PCAReducer, UMAPReducer, plot_db_scan, plot_variance_curve

    if isinstance(reducer, PCAReducer):
        return plot_variance_curve(reducer, folder / REDUCTION_FIGURES[0])
    if isinstance(reducer, UMAPReducer) and reducer.scan_ is not None:
        return plot_db_scan(reducer, folder / REDUCTION_FIGURES[1])
    return None


def cluster_stage(cfg: dict, cache: RunCache, galaxies: GalaxySet, upstream: tuple[Stage, ...] = (),
                  progress: bool = True):
    """The unsupervised taxonomy (cached): returns (table, embedding, model directory)."""
    from .taxonomy import UnsupervisedTaxonomy

    settings = {k: cfg[k] for k in ("cae", "polar", "encoder", "reduce", "cluster")} | {"seed": cfg["seed"]}
    stage = cache.stage("cluster", settings, upstream)
    stage.path.mkdir(parents=True, exist_ok=True)
    (stage.path / "resumable").touch()  # encoder features resume batch by batch
    if not stage.done:
        stage.begin()
        model = UnsupervisedTaxonomy.from_config(cfg, progress=progress).fit(galaxies, cache_dir=stage.path / "features")
        table = model.table(galaxies)
        with atomic_path(stage.path / "cluster.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        np.save(stage.path / "embedding.npy", model.embedding_)
        model.save(stage.path / "model")
        pairwise = getattr(model.voting_, "pairwise_ari_", None)
        summary = {"kept_fraction": float((table["group"] >= 0).mean())}
        _plot_reduction(model.reducer_, stage.path)
        if getattr(model, "cae_", None) is not None:
            summary["cae_validation_mse"] = float(model.cae_.best_loss_)
            summary["cae_epochs"] = int(model.cae_.n_epochs_)
        if isinstance(pairwise, pd.DataFrame):
            pairwise.to_csv(stage.path / "pairwise_ari.csv")
        stage.finish(summary)
    table = pd.read_parquet(stage.path / "cluster.parquet")
    return table, np.load(stage.path / "embedding.npy"), stage.path / "model"


# ------------------------------------------------------------- route M3
def encoder_specs(encoders) -> list[dict]:
    """Normalise ``multimodal.encoders`` entries to ``{"name", "view", "checkpoint"}`` dicts.

    An entry is a timm name (``"efficientnet_lite0"``: the conditioned image), ``"name@polar"`` (the same
    encoder on the adaptive polar unfolding of the image) or a mapping ``{name, view, checkpoint}``.
    """
    out = []
    for spec in encoders:
        if isinstance(spec, str):
            name, _, view = spec.partition("@")
            out.append({"name": name, "view": view or "image", "checkpoint": None})
        elif isinstance(spec, dict) and spec.get("name"):
            out.append({"name": str(spec["name"]), "view": spec.get("view") or "image",
                        "checkpoint": spec.get("checkpoint")})
        else:
            raise ValueError(f"bad encoder entry {spec!r}: give a timm name, 'name@polar' or {{name, view, checkpoint}}")
        if out[-1]["view"] not in ("image", "polar"):
            raise ValueError(f"encoder view must be 'image' or 'polar'; got {out[-1]['view']!r} in {spec!r}")
    if not out:
        raise ValueError("multimodal.encoders is empty: name at least one encoder")
    return out


def multimodal_view(images: np.ndarray, sigma: float, zscore: bool, view: str, mean, std,
                    angle_step: float = 0.05) -> np.ndarray:
    """Method M3 conditioning of a batch for one encoder, ready for :meth:`Encoder.preprocess`.

    ``smooth (sigma px) -> [adaptive polar unfolding] -> per-image z-score``.  With ``zscore`` the image is
    written as ``z * std_c + mean_c`` so that the encoder's own normalisation ``(x - mean_c) / std_c`` gives
    back exactly the z-scored pixels ``z`` in every channel (single-channel images are repeated into three);
    without it each image is min-max scaled to [0, 1] (the encoder's input contract).
    """
    from .preprocess.smoothing import gaussian_smooth, zscore_images

    x = gaussian_smooth(np.asarray(images, dtype=np.float32), sigma) if sigma > 0 else np.asarray(images, np.float32)
    if view == "polar":
        from .preprocess.polar import polar_unfold

        x = np.asarray(polar_unfold(x, angle_step=angle_step), dtype=np.float32)
    if not zscore:
        lo = x.min(axis=(1, 2, 3), keepdims=True)
        span = x.max(axis=(1, 2, 3), keepdims=True) - lo
        return ((x - lo) / np.where(span > 0, span, 1)).astype(np.float32)
    z = zscore_images(x)
    if z.shape[1] == 1:
        z = np.repeat(z, 3, axis=1)
    c = min(z.shape[1], 3)
    m = np.asarray(mean, dtype=np.float32)[:c].reshape(1, c, 1, 1)
    s = np.asarray(std, dtype=np.float32)[:c].reshape(1, c, 1, 1)
    z[:, :c] = z[:, :c] * s + m
    return z


def multimodal_features(cfg: dict, cache: RunCache, galaxies: GalaxySet, upstream: tuple[Stage, ...] = (),
                        progress: bool = True) -> list[tuple[np.ndarray, Stage]]:
    """Deep features of every encoder of ``cfg["multimodal"]["encoders"]`` (one cached, resumable stage each).

    Returns ``[(features (N, D_i) memory map, stage), ...]``; rows of unusable galaxies are NaN.
    """
    import re

    from .encode import extract_features, get_encoder
    from .encode.features import galaxyset_fingerprint
    from .utils.progress import progress as _progress

    mm, enc = cfg["multimodal"], cfg["encoder"]
    fingerprint = galaxyset_fingerprint(galaxies)
    out = []
    for spec in encoder_specs(mm["encoders"]):
        settings = {"encoder": spec, "input_size": enc["input_size"], "sigma": mm["smoothing_sigma"],
                    "zscore": mm["zscore"], "images": fingerprint, "seed": cfg["seed"]}
        if spec["view"] == "polar":
            settings["angle_step"] = cfg["polar"]["angle_step"]
        stage = cache.stage(f"mmfeatures_{re.sub(r'[^A-Za-z0-9]+', '_', spec['name'])}_{spec['view']}", settings,
                            upstream)
        stage.path.mkdir(parents=True, exist_ok=True)
        (stage.path / "resumable").touch()  # features resume batch by batch
        feat_path = stage.path / "features" / "features.npy"
        if not stage.done:
            stage.begin()
            encoder = get_encoder(spec["name"], checkpoint=spec["checkpoint"], input_size=enc["input_size"],
                                  random_state=cfg["seed"])
            idx = np.flatnonzero(galaxies.ok)
            first = multimodal_view(np.asarray(galaxies.images[idx[:1]]), mm["smoothing_sigma"], mm["zscore"],
                                    spec["view"], encoder.mean, encoder.std, cfg["polar"]["angle_step"])
            view_path = stage.path / "view.npy"
            view = np.lib.format.open_memmap(view_path, mode="w+", dtype=np.float32,
                                             shape=(len(galaxies), *first.shape[1:]))
            for a in _progress(range(0, len(idx), 256), desc=f"M3 view {spec['name']}@{spec['view']}",
                               disable=None if progress else True):
                rows = idx[a:a + 256]
                view[rows] = multimodal_view(np.asarray(galaxies.images[rows]), mm["smoothing_sigma"], mm["zscore"],
                                             spec["view"], encoder.mean, encoder.std, cfg["polar"]["angle_step"])
            view.flush()
            extract_features(galaxies.with_images(view), encoder, batch_size=enc["batch_size"],
                             cache_dir=stage.path / "features", progress=progress)
            del view
            view_path.unlink(missing_ok=True)
            stage.finish({"encoder": f"{spec['name']}@{spec['view']}", "feature_dim": int(encoder.feature_dim)})
        out.append((np.load(feat_path, mmap_mode="r"), stage))
    return out


def _aligned_morphology(measured: pd.DataFrame, ids) -> pd.DataFrame:
    """The measurement table in the order of ``ids``; ids it lacks get ``status="failed"`` and a reason."""
    ids = [str(i) for i in ids]
    m = measured.assign(id=measured["id"].astype(str)).drop_duplicates("id").set_index("id").reindex(ids)
    missing = m["status"].isna().to_numpy()
    m["status"] = m["status"].fillna("failed")
    m.loc[missing, "reason"] = "no morphology measurement for this id"
    return m.reset_index()


def multimodal_taxonomy_from_config(cfg: dict, progress: bool = True):
    """A :class:`~galtaxa.multimodal.MultimodalTaxonomy` with the settings of ``cfg["multimodal"]``."""
    from .multimodal import MultimodalTaxonomy

    mm = cfg["multimodal"]
    bounds = {k: tuple(v) for k, v in mm["bounds"].items() if v is not None}
    return MultimodalTaxonomy(params=tuple(mm["params"]), purge=mm["purge"], bounds=bounds or None,
                              isolation_forest=mm["isolation_forest"], contamination=mm["contamination"],
                              bottleneck=mm["bottleneck"], epochs=mm["epochs"], n_components=mm["n_components"],
                              candidates=tuple(mm["candidates"]), covariance_type=mm["covariance_type"],
                              anomaly_quantile=mm["anomaly_quantile"],
                              confidence=mm["confidence"], random_state=cfg["seed"], progress=progress,
                              whiten=None if mm.get("whiten", "pca") == "none" else mm.get("whiten", "pca"))


#: What the M3 mixture was fitted with (:meth:`GMMClustering.fit_summary`), in the multimodal stage folder.
MIXTURE_FIT_FILE = "mixture_fit.json"


def mixture_fit(model_dir: Path) -> dict | None:
    """The mixture fit record beside a multimodal stage's ``model`` folder (None for stages written before it)."""
    path = Path(model_dir).parent / MIXTURE_FIT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _mixture_metrics(fit: dict) -> dict:
    """Run-summary lines of a mixture fit record: covariance, fallback, bottleneck rank."""
    fb = fit.get("fallback")
    return {"GMM covariance": f"{fit['covariance_type']} (reg_covar {fit['reg_covar']:.3g})",
            "GMM fallback": "none" if not fb else f"{fb['step']}: {fb['reason']}",
            "bottleneck effective rank": (f"{fit['effective_rank']:.1f} of {fit['input_dim']} dimensions (numerical "
                                          f"rank {fit['numerical_rank']}; the mixture sees {fit['mixture_dim']}, "
                                          f"whiten {fit['whiten']})")}


def multimodal_stage(cfg: dict, cache: RunCache, galaxies: GalaxySet, measured: pd.DataFrame,
                     upstream: tuple[Stage, ...] = (), progress: bool = True):
    """Route M3 (cached): encoders -> purge -> multimodal autoencoder -> GMM.

    Returns ``(table, embedding, model directory)`` like :func:`cluster_stage`: ``table`` has one row per
    galaxy with ``id, group, class_prob, anomaly, confident, log_likelihood, status, reason`` (purged galaxies:
    ``status="purged"`` and the reason; ``group=-1`` for every galaxy not clustered); ``embedding`` is the
    bottleneck, NaN rows for galaxies not clustered.  The stage folder also holds :data:`MIXTURE_FIT_FILE`
    (covariance type, ``reg_covar``, fallback used and why, effective rank of the bottleneck).
    """
    import hashlib

    blocks = multimodal_features(cfg, cache, galaxies, upstream, progress)
    morph = _aligned_morphology(measured, galaxies.ids)
    morph_hash = hashlib.sha256(pd.util.hash_pandas_object(morph, index=False).to_numpy().tobytes()).hexdigest()[:16]
    settings = {"multimodal": cfg["multimodal"], "seed": cfg["seed"], "morphology": morph_hash}
    stage = cache.stage("multimodal", settings, upstream + tuple(s for _, s in blocks))
    if not stage.done:
        stage.begin()
        model = multimodal_taxonomy_from_config(cfg, progress).fit([b for b, _ in blocks], morph)
        table = model.result_.copy()
        emb = np.full((len(table), model.embedding_.shape[1]), np.nan, dtype=np.float32)
        emb[model.kept_] = model.embedding_
        with atomic_path(stage.path / "multimodal.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        np.save(stage.path / "embedding.npy", emb)
        model.save(stage.path / "model")
        fit = model.gmm_.fit_summary()
        atomic_write_text(stage.path / MIXTURE_FIT_FILE, json.dumps(fit, indent=2, default=str))
        if getattr(model.gmm_, "bic_", None) is not None:
            model.gmm_.bic_.to_csv(stage.path / "bic.csv", index=False)
            model.gmm_.plot_bic(stage.path / "gmm_bic.png")
        clustered = table["group"] >= 0
        stage.finish({"n_clustered": int(clustered.sum()), "n_purged": int((table["status"] == "purged").sum()),
                      "n_components": int(model.gmm_.n_components_),
                      "anomaly_fraction": float(table.loc[clustered, "anomaly"].mean()) if clustered.any() else 0.0,
                      "confident_fraction": float(table.loc[clustered, "confident"].mean()) if clustered.any() else 0.0,
                      "bottleneck_effective_rank": fit["effective_rank"], "mixture_dim": fit["mixture_dim"],
                      "gmm_fallback": fit["fallback"]["step"] if fit["fallback"] else None})
    table = pd.read_parquet(stage.path / "multimodal.parquet")
    return table, np.load(stage.path / "embedding.npy"), stage.path / "model"


def _markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "-" if not np.isfinite(v) else f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def multimodal_ablation(cfg: dict, progress: bool = True, label_column: str = "label", ignore_labels=(),
                        deep_pca: int | None = 64) -> tuple[pd.DataFrame, dict]:
    """Selim et al.'s ablation on the input of ``cfg``: GMM on deep-only, morphology-only and fused spaces.

    Runs (or reuses from the cache) the read, measure, feature and M3 stages, then
    :meth:`MultimodalTaxonomy.ablation` with the fitted route (same purge, same number of components),
    scored against the CAS heuristic classes and, when the input has labels, against ``label_column``
    (values in ``ignore_labels`` count as unknown).  Writes ``RUN_DIR/ablation.{csv,md,txt}``.

    Returns
    -------
    (table, paths)
        ``table`` has one row per space with columns ``space, dim, n_galaxies, n_components, davies_bouldin,
        silhouette, confident_fraction, cas_accuracy, cas_ari`` [, ``label_accuracy, label_ari``] and the paper's
        ``paper_davies_bouldin, paper_silhouette``.
    """
    from .multimodal import PAPER_ABLATION, MultimodalTaxonomy, format_ablation

    source = open_input(cfg)
    cache = RunCache(cfg["run_dir"])
    galaxies, read = read_stage(cfg, cache, source)
    measured = measure_stage(cfg, cache, source, (read,), progress)
    _table, _emb, model_dir = multimodal_stage(cfg, cache, galaxies, measured, (read,), progress)
    blocks = [b for b, _ in multimodal_features(cfg, cache, galaxies, (read,), progress)]
    model = MultimodalTaxonomy.load(model_dir)
    model.progress = progress
    labels = None
    if label_column in galaxies.meta:
        lab = galaxies.meta[label_column].astype(object)
        ignore = {str(v) for v in ignore_labels}
        lab = lab.where(lab.notna() & ~lab.astype(str).isin(ignore), None)
        if lab.notna().any():
            labels = lab.map(lambda v: None if v is None else str(v)).to_numpy(dtype=object)
    table = model.ablation(blocks, _aligned_morphology(measured, galaxies.ids), labels=labels, deep_pca=deep_pca)
    table["paper_davies_bouldin"] = [PAPER_ABLATION.get(s, {}).get("davies_bouldin", np.nan) for s in table["space"]]
    table["paper_silhouette"] = [PAPER_ABLATION.get(s, {}).get("silhouette", np.nan) for s in table["space"]]
    run_dir = Path(cfg["run_dir"])
    paths = {"csv": run_dir / "ablation.csv", "md": run_dir / "ablation.md", "txt": run_dir / "ablation.txt"}
    with atomic_path(paths["csv"]) as tmp:
        table.to_csv(tmp, index=False)
    atomic_write_text(paths["md"], _markdown_table(table) + "\n")
    atomic_write_text(paths["txt"], format_ablation(table) + "\n")
    return table, paths


def write_mosaics(run_dir: Path, galaxies: GalaxySet, groups: np.ndarray, cfg: dict, preprocessed=None) -> Path:
    """Group mosaics, the inspection page and (if absent) the mapping template."""
    from .label import group_mosaics, write_inspection_page
    from .label.mosaic import mosaic_stretch_for

    table = group_mosaics(np.asarray(galaxies.images), groups, run_dir / "mosaics",
                          n_per_group=cfg["labelling"]["n_per_group"], seed=cfg["seed"], ids=galaxies.ids,
                          preprocessed=preprocessed, cell_px=64,
                          stretch=mosaic_stretch_for(cfg["conditioning"]["scaling"]))
    return write_inspection_page(table, run_dir / "inspect.html", mapping_template_path=run_dir / "mapping.yaml")


# ------------------------------------------------------------ run folder
def _holding_run_lock(func):
    """Run ``func(cfg, ...)`` with ``cfg["run_dir"]`` checked and locked (see :mod:`galtaxa.utils.rundir`)."""
    import functools

    @functools.wraps(func)
    def wrapper(cfg, *args, **kwargs):
        from .utils.rundir import run_lock

        with run_lock(cfg["run_dir"]):
            return func(cfg, *args, **kwargs)

    return wrapper


#: Outputs of a run that record the config hash they belong to (catalog header ``CFGHASH`` / provenance).
CATALOG_FORMATS_FILES = ("catalog.parquet", "catalog.csv", "catalog.fits")


def _output_hash(path: Path) -> str | None:
    """The config hash recorded in a catalog file, or None when it cannot be read."""
    from .catalog import read_catalog

    try:
        return read_catalog(path)[1].get("config_hash")
    except Exception:  # noqa: BLE001 - a half-written or foreign file is stale whatever the error
        return None


def _remove_stale_outputs(run_dir: Path, cfg: dict) -> list[Path]:
    """Remove catalogs (and the report) written for another config, before the new ones are written.

    A run killed between two catalog formats then leaves only files of one config (the new ones, or
    none), never ``catalog.parquet`` of the new config beside ``catalog.fits`` and a report of the old.
    """
    import shutil

    from .catalog.writer import config_hash

    new = config_hash(cfg)
    removed = []
    for name in CATALOG_FORMATS_FILES:
        path = run_dir / name
        if path.is_file() and _output_hash(path) != new:
            path.unlink()
            removed.append(path)
    report = run_dir / "report"
    if removed and report.is_dir():
        shutil.rmtree(report, ignore_errors=True)
        removed.append(report)
    if removed:
        log.info("removed outputs of another config: %s", ", ".join(p.name for p in removed))
    return removed


def _check_catalogs_agree(run_dir: Path) -> None:
    """Refuse a run folder whose catalogs belong to different configs (a run killed while writing them)."""
    hashes = {name: _output_hash(run_dir / name) for name in CATALOG_FORMATS_FILES if (run_dir / name).is_file()}
    if len(set(hashes.values())) > 1:
        listed = ", ".join(f"{k} ({v or 'unreadable'})" for k, v in hashes.items())
        raise ValueError(f"{run_dir}: the catalogs belong to different configs ({listed}); "
                         "run `galtaxa run CONFIG` again to rewrite them")


# ------------------------------------------------------------------- catalog
def assemble_catalog(meta: pd.DataFrame, measured: pd.DataFrame | None = None,
                     clustered: pd.DataFrame | None = None, mapping=None) -> pd.DataFrame:
    """One row per input galaxy: input metadata, morphology, groups and classes.

    The ``status``/``reason`` columns keep the earliest failure (reading,
    then clustering); the measurement has its own ``measure_status`` and
    ``measure_reason`` so a galaxy statmorph could not fit still gets a class.
    """
    cat = meta.copy()
    if measured is not None:
        m = measured.set_index("id").reindex(cat["id"]).reset_index()
        cols = [c for c in m.columns if c not in ("id", "status", "reason")]
        clash = [c for c in cols if c in cat.columns]
        if clash:  # an input column (e.g. a truth table) shares a name with a measurement: keep both
            cat = cat.rename(columns={c: f"input_{c}" for c in clash})
        cat["measure_status"] = m["status"].fillna("not_run").to_numpy()
        cat["measure_reason"] = m["reason"].fillna("").to_numpy()
        for c in cols:
            cat[c] = m[c].to_numpy()
    if clustered is not None:
        c = clustered.set_index("id").reindex(cat["id"]).reset_index()
        for col in [x for x in c.columns if x not in ("id", "status", "reason")]:
            cat[col] = c[col].to_numpy()
        upgrade = (cat["status"] == OK) & (c["status"].to_numpy() != OK)
        cat.loc[upgrade, "status"] = c.loc[upgrade.to_numpy(), "status"].to_numpy()
        cat.loc[upgrade, "reason"] = c.loc[upgrade.to_numpy(), "reason"].to_numpy()
        cat["group"] = cat["group"].fillna(-1).astype(int)
    if mapping is not None and "group" in cat:
        from .label import apply_mapping

        cat = apply_mapping(cat, mapping)
    elif "group" in cat:
        cat["class"] = ""
    return cat


# ------------------------------------------------------------------ the run
@_holding_run_lock
def run_on_galaxies(cfg: dict, galaxies: GalaxySet, raw=None, stages=None, progress: bool = True,
                    mapping=None, upstream: tuple[Stage, ...] = ()) -> RunResult:
    """Run measure/cluster/catalog/report on an already conditioned GalaxySet.

    Parameters
    ----------
    galaxies : GalaxySet
        Conditioned images (what the encoder sees).
    raw : GalaxySet or CutoutSource, optional
        The same galaxies at native size and linear flux for the morphology
        measurement (defaults to ``galaxies``).
    stages : iterable of {"measure", "cluster", "report"}, optional
        Which stages to run (all by default).
    mapping : str, dict or GroupMapping, optional
        Group -> class mapping (a YAML file filled by inspectors).
    """
    from .config import fit_to_input

    stages = set(stages or STAGES)
    run_dir = Path(cfg["run_dir"])
    notes: dict = {}
    if "cluster" in stages:  # before any slow stage: refuse or adjust what cannot be fitted on this many galaxies
        cfg, adjusted = fit_to_input(cfg, int(np.asarray(galaxies.ok).sum()))
        if adjusted:
            notes["config_adjusted"] = adjusted
    cache = RunCache(run_dir)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    measured = clustered = embedding = None
    result = RunResult(run_dir, galaxies.meta)
    for i, note in enumerate(notes.get("config_adjusted", []), 1):
        result.metrics[f"config adjusted ({i})"] = note
    if "measure" in stages and cfg["measure"]["enabled"]:
        measured = measure_stage(cfg, cache, raw if raw is not None else galaxies, upstream, progress)
    if "cluster" in stages and cfg.get("route", "usmorph") == "multimodal":
        if measured is None:  # the route fuses the morphology: measure (or reuse the cached table)
            measured = measure_stage(cfg, cache, raw if raw is not None else galaxies, upstream, progress)
        clustered, embedding, model_dir = multimodal_stage(cfg, cache, galaxies, measured, upstream, progress)
        ok = clustered["group"] >= 0
        result.metrics["GMM components"] = int(clustered.loc[ok, "group"].nunique())
        result.metrics["anomaly fraction (clustered)"] = float(clustered.loc[ok, "anomaly"].mean()) if ok.any() else 0.0
        result.metrics["confident fraction (clustered)"] = float(clustered.loc[ok, "confident"].mean()) if ok.any() else 0.0
        fit = mixture_fit(model_dir)
        if fit is not None:
            notes["mixture"] = fit
            result.metrics.update(_mixture_metrics(fit))
        result.paths["model"] = model_dir
        if (model_dir.parent / "gmm_bic.png").exists():
            result.paths["GMM BIC scan"] = model_dir.parent / "gmm_bic.png"
        result.paths["inspection page"] = write_mosaics(run_dir, galaxies, clustered["group"].to_numpy(), cfg)
    elif "cluster" in stages:
        clustered, embedding, model_dir = cluster_stage(cfg, cache, galaxies, upstream, progress)
        result.paths["model"] = model_dir
        for name in REDUCTION_FIGURES:
            if (model_dir.parent / name).exists():
                result.paths["reduction figure"] = model_dir.parent / name
        cae_dir = model_dir.parent / "features" / "cae"
        if cfg["cae"]["enabled"] and (cae_dir / "cae.json").exists():
            result.metrics["CAE reconstruction MSE (validation)"] = float(
                json.loads((cae_dir / "cae.json").read_text())["best_loss"])
            result.paths["CAE before/after"] = cae_dir / "before_after.png"
        result.paths["inspection page"] = write_mosaics(run_dir, galaxies, clustered["group"].to_numpy(), cfg)
    mapping = mapping if mapping is not None else cfg["labelling"]["mapping_file"]
    if isinstance(mapping, (str, Path)):
        from .label import load_mapping

        mapping = load_mapping(mapping)
    catalog = assemble_catalog(galaxies.meta, measured, clustered, mapping if clustered is not None else None)
    from .catalog import write_catalog

    _remove_stale_outputs(run_dir, cfg)
    paths = write_catalog(catalog, run_dir / "catalog", formats=cfg["output"]["formats"], config=cfg,
                          inputs=galaxies.info.get("input", cfg["input"]["path"]), seed=cfg["seed"],
                          ids=galaxies.ids, fit=notes or None)
    result.catalog = catalog
    result.paths.update({f"catalog ({k})": v for k, v in paths.items()})
    if embedding is not None:
        np.save(run_dir / "embedding.npy", embedding)
    if "report" in stages and cfg["report"]["enabled"]:
        result.paths["report"] = report_run(run_dir, galaxies=galaxies)
    return result


@_holding_run_lock
def run_pipeline(cfg: dict, stages=None, progress: bool = True) -> RunResult:
    """Read the input of ``cfg`` and run the pipeline (see :func:`run_on_galaxies`).

    The run folder is checked (a file, read-only: one clear :class:`~galtaxa.utils.rundir.RunDirError`) and
    locked for the whole run (``RUN_DIR/.lock``): a second run on the same folder stops with a message
    naming the process that holds it.
    """
    source = open_input(cfg)
    cfg = resolve_auto_settings(cfg, source)
    cache = RunCache(cfg["run_dir"])
    galaxies, read = read_stage(cfg, cache, source)
    log.info("read %s", galaxies)
    return run_on_galaxies(cfg, galaxies, raw=source, stages=stages, progress=progress, upstream=(read,))


def report_run(run_dir: str | Path, galaxies: GalaxySet | None = None, **kwargs) -> Path:
    """Build the validation report of a finished run from its catalog and embedding."""
    from .catalog import read_catalog
    from .report import build_report

    run_dir = Path(run_dir)
    cat_path = run_dir / "catalog.parquet"
    if not cat_path.exists():
        raise FileNotFoundError(f"{cat_path} not found: run `galtaxa run CONFIG` first")
    _check_catalogs_agree(run_dir)
    from .label.mosaic import mosaic_stretch_for

    catalog, prov = read_catalog(cat_path)
    emb_path = run_dir / "embedding.npy"
    features = np.load(emb_path) if emb_path.exists() else None
    if galaxies is None:
        read_dirs = sorted((run_dir / "stages").glob("read-*/done.json"))
        galaxies = GalaxySet.load(read_dirs[-1].parent) if read_dirs else None
    scaling = ((prov or {}).get("config") or {}).get("conditioning", {}).get("scaling")
    kwargs.setdefault("mosaic_stretch", mosaic_stretch_for(scaling))
    return build_report(catalog, run_dir / "report", features=features, galaxies=galaxies, **kwargs)
