"""The multimodal taxonomy route (method M3, Selim et al., Sci. Rep.): purge -> fuse -> autoencoder -> GMM.

Steps of :class:`MultimodalTaxonomy`:

1. **Screen.** Rows whose morphology ``status`` (from :mod:`galtaxa.measure`) is not ``"ok"`` keep that status and
   reason; rows with NaN/inf deep features get ``status="failed"`` and a reason naming the block.
2. **Purge** (:class:`galtaxa.cluster.purge.MorphologyPurger`): NaN parameters, the rule bounds
   ``1 < C <= 7, A <= 1``, then an Isolation Forest on the z-scored parameters -> ``status="purged"``.
3. **Fuse** the deep blocks (e.g. EfficientNet-B0 1280-d and ConvNeXt-Base 1024-d) with the morphology block
   (C, A, S, Gini, M20; z-scored by the autoencoder's standardisation) in a
   :class:`galtaxa.reduce.multimodal.MultimodalAutoencoder` with a balanced per-modality loss -> 64-d bottleneck.
4. **Whiten** the bottleneck (``whiten="pca"``: z-score, then PCA whitening to its effective rank, so a collapsed
   or redundant bottleneck dimension never makes the mixture's covariances singular) and report its effective
   rank (``bottleneck_rank_``).
5. **Cluster** it with :class:`galtaxa.cluster.gmm.GMMClustering`: ``group``, ``class_prob``
   (largest membership probability), ``confident`` (``class_prob > 0.85``), ``anomaly`` (bottom 2 % of the
   log-likelihood).  A covariance type or K that cannot be fitted falls back (regularisation scaled to the data,
   diagonal covariances, fewer components) with a warning; ``gmm_.fallback_`` records the rung used.

Every input row is in the output table, in input order; rows not clustered have ``group = -1``.

:meth:`MultimodalTaxonomy.ablation` reproduces the paper's ablation (GMM on the deep-only, morphology-only and
fused spaces) and :func:`format_ablation` prints it next to the paper's numbers.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .cluster.gmm import GMMClustering
from .cluster.heuristics import cas_classes, matched_accuracy
from .cluster.purge import DEFAULT_BOUNDS, DEFAULT_PARAMS, MorphologyPurger
from .reduce.multimodal import MultimodalAutoencoder
from .status import FAILED, OK, PURGED, log
from .utils.atomic import atomic_path, atomic_write_text

__all__ = ["MultimodalTaxonomy", "format_ablation", "PAPER_ABLATION"]

#: Selim et al.'s ablation (GMM on each space): Davies-Bouldin (lower is better) and silhouette.
PAPER_ABLATION = {
    "deep": {"dim": 2304, "davies_bouldin": 2.14, "silhouette": 0.18},
    "morph": {"dim": 5, "davies_bouldin": 1.12, "silhouette": 0.31},
    "fused": {"dim": 64, "davies_bouldin": 0.86, "silhouette": 0.44},
}

_RESULT_COLUMNS = ["id", "group", "class_prob", "anomaly", "confident", "log_likelihood", "status", "reason"]


class MultimodalTaxonomy(BaseEstimator):
    """Purge, fuse deep + morphology features in a multimodal autoencoder, cluster with a GMM (Selim et al.).

    Parameters
    ----------
    params : sequence of str
        Morphology columns fused with the deep features (default C, A, S, gini, m20).
    purge : bool
        Apply the rule bounds and the Isolation Forest (missing parameters are always screened out).
    bounds, isolation_forest, contamination
        See :class:`galtaxa.cluster.purge.MorphologyPurger`.
    bottleneck, hidden, modality_weights, epochs, batch_size, lr, patience, val_fraction
        See :class:`galtaxa.reduce.multimodal.MultimodalAutoencoder`.
    n_components, candidates, covariance_type, anomaly_quantile, confidence, n_init, whiten
        See :class:`galtaxa.cluster.gmm.GMMClustering` (``whiten`` default ``"pca"`` here: the mixture is fitted on
        the whitened bottleneck restricted to its effective rank).
    random_state : int
        Seeds the forest, the autoencoder and the mixture.
    device : str, optional
    progress : bool

    Attributes
    ----------
    purger_ : MorphologyPurger or None
    autoencoder_ : MultimodalAutoencoder
    gmm_ : GMMClustering
    params_ : list of str
    kept_ : ndarray of bool
        Rows that reached the autoencoder and the mixture.
    embedding_ : ndarray, shape (kept_.sum(), bottleneck)
    bottleneck_rank_ : dict
        ``{"effective_rank", "numerical_rank", "mixture_dim", "dim"}`` of the fitted bottleneck (see
        :meth:`GMMClustering.fit_summary`).
    result_ : pandas.DataFrame
        One row per input galaxy: ``id, group, class_prob, anomaly, confident, log_likelihood, status, reason``.

    Examples
    --------
    >>> tax = MultimodalTaxonomy(n_components="bic").fit([effnet, convnext], morph)   # doctest: +SKIP
    >>> tax.result_.head()                                                           # doctest: +SKIP
    """

    def __init__(self, params=DEFAULT_PARAMS, purge: bool = True, bounds=DEFAULT_BOUNDS,
                 isolation_forest: bool = True, contamination=0.01, bottleneck: int = 64, hidden=(512, 256),
                 modality_weights="balanced", epochs: int = 100, batch_size: int = 128, lr: float = 1e-3,
                 patience: int = 10, val_fraction: float = 0.1, n_components="bic", candidates=range(2, 21),
                 covariance_type: str = "full", anomaly_quantile: float = 0.02, confidence: float = 0.85,
                 n_init: int = 3, random_state: int = 0, device=None, progress: bool = True, whiten="pca"):
        self.params = params
        self.purge = purge
        self.bounds = bounds
        self.isolation_forest = isolation_forest
        self.contamination = contamination
        self.bottleneck = bottleneck
        self.hidden = hidden
        self.modality_weights = modality_weights
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.n_components = n_components
        self.candidates = candidates
        self.covariance_type = covariance_type
        self.anomaly_quantile = anomaly_quantile
        self.confidence = confidence
        self.n_init = n_init
        self.random_state = random_state
        self.device = device
        self.progress = progress
        self.whiten = whiten

    # -------------------------------------------------------------- builders
    def _purger(self, params) -> MorphologyPurger:
        return MorphologyPurger(params=params, bounds=self.bounds if self.purge else None,
                                isolation_forest=bool(self.purge and self.isolation_forest),
                                contamination=self.contamination, random_state=self.random_state)

    def _autoencoder(self) -> MultimodalAutoencoder:
        return MultimodalAutoencoder(bottleneck=self.bottleneck, hidden=self.hidden,
                                     modality_weights=self.modality_weights, epochs=self.epochs,
                                     batch_size=self.batch_size, lr=self.lr, patience=self.patience,
                                     val_fraction=self.val_fraction, random_state=self.random_state,
                                     device=self.device, progress=self.progress)

    def _gmm(self, n_components=None) -> GMMClustering:
        return GMMClustering(n_components=self.n_components if n_components is None else n_components,
                             candidates=self.candidates, covariance_type=self.covariance_type,
                             anomaly_quantile=self.anomaly_quantile, confidence=self.confidence,
                             random_state=self.random_state, n_init=self.n_init, progress=self.progress,
                             whiten=getattr(self, "whiten", "pca"))

    # ---------------------------------------------------------------- checks
    @staticmethod
    def _check_inputs(deep_blocks, morph, params):
        if isinstance(deep_blocks, np.ndarray):
            deep_blocks = [deep_blocks]
        if not isinstance(deep_blocks, (list, tuple)) or not deep_blocks:
            raise ValueError("deep_blocks must be a non-empty list of 2-d feature arrays (N, D)")
        if not isinstance(morph, pd.DataFrame):
            raise ValueError(f"morph must be a pandas DataFrame (galtaxa.measure output); got {type(morph).__name__}")
        blocks = []
        for i, b in enumerate(deep_blocks):
            b = b if isinstance(b, np.memmap) else np.asarray(b)
            if b.ndim != 2:
                raise ValueError(f"deep block {i} must be 2-d (N, D); got shape {b.shape}")
            if len(b) != len(morph):
                raise ValueError(f"deep block {i} has {len(b)} rows but the morphology table has {len(morph)}")
            blocks.append(b)
        if len(morph) == 0:
            raise ValueError("no galaxies given (0 rows)")
        params = [str(p) for p in params]
        missing = [p for p in params if p not in morph.columns]
        if missing:
            raise ValueError(f"morphology table lacks column(s) {missing}; it has {list(morph.columns)}")
        return blocks, params

    @staticmethod
    def _screen(blocks, morph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Status/reason from the measurement and from non-finite deep features; ``usable`` mask."""
        n = len(morph)
        status = np.full(n, OK, dtype=object)
        reason = np.full(n, "", dtype=object)
        if "status" in morph.columns:
            st = morph["status"].fillna(OK).astype(str).to_numpy()
            why = (morph["reason"].fillna("").astype(str).to_numpy() if "reason" in morph.columns
                   else np.full(n, "", dtype=object))
            bad = (st != OK) & (st != "")
            status[bad] = st[bad]
            reason[bad] = why[bad]
        for i, b in enumerate(blocks):
            for a in range(0, n, 65536):
                fin = np.isfinite(np.asarray(b[a:a + 65536], dtype=np.float64)).all(axis=1)
                rows = a + np.flatnonzero(~fin)
                rows = rows[status[rows] == OK]
                status[rows] = FAILED
                reason[rows] = f"deep feature block {i} has NaN/inf"
        return status, reason, status == OK

    def _ids(self, morph) -> np.ndarray:
        if "id" in morph.columns:
            return morph["id"].astype(str).to_numpy(dtype=object)
        return np.asarray([str(i) for i in morph.index], dtype=object)

    def _table(self, morph, status, reason, kept, gmm: GMMClustering, z) -> pd.DataFrame:
        n = len(morph)
        out = pd.DataFrame({"id": self._ids(morph), "group": np.full(n, -1, dtype=int),
                            "class_prob": np.full(n, np.nan), "anomaly": np.zeros(n, dtype=bool),
                            "confident": np.zeros(n, dtype=bool), "log_likelihood": np.full(n, np.nan),
                            "status": status, "reason": reason})
        if kept.any():
            proba = gmm.predict_proba(z)
            ll = gmm.score_samples(z)
            idx = np.flatnonzero(kept)
            out.loc[idx, "group"] = proba.argmax(axis=1)
            out.loc[idx, "class_prob"] = proba.max(axis=1)
            out.loc[idx, "confident"] = proba.max(axis=1) > gmm.confidence
            out.loc[idx, "log_likelihood"] = ll
            out.loc[idx, "anomaly"] = ll <= gmm.anomaly_threshold_
        return out[_RESULT_COLUMNS]

    def _prepare(self, deep_blocks, morph, params, fit: bool):
        blocks, params = self._check_inputs(deep_blocks, morph, params)
        status, reason, usable = self._screen(blocks, morph)
        sub = morph.iloc[np.flatnonzero(usable)]
        if fit:
            purger = self._purger(params)
            if len(sub):
                purger.fit(sub)
                keep_sub, why_sub = purger.keep_, purger.reasons_
            else:
                keep_sub, why_sub = np.zeros(0, dtype=bool), pd.Series([], dtype=object)
        else:
            purger = self.purger_
            keep_sub, why_sub = purger.predict(sub) if len(sub) else (np.zeros(0, bool), pd.Series([], dtype=object))
        idx = np.flatnonzero(usable)
        status[idx[~keep_sub]] = PURGED
        reason[idx[~keep_sub]] = why_sub.to_numpy(dtype=object)[~keep_sub]
        kept = status == OK
        rows = np.flatnonzero(kept)
        fused = [np.asarray(b[rows], dtype=np.float32) for b in blocks]
        fused.append(morph.iloc[rows][params].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32))
        return blocks, params, status, reason, kept, fused, purger

    # ------------------------------------------------------------------- fit
    def fit(self, deep_blocks, morph, params=None) -> "MultimodalTaxonomy":
        """Run purge -> autoencoder -> GMM on ``deep_blocks`` (list of (N, D_i)) and ``morph`` (N rows).

        ``params`` overrides the constructor's morphology columns.  Sets ``result_`` (one row per input).
        """
        params = self.params if params is None else params
        _, params, status, reason, kept, fused, purger = self._prepare(deep_blocks, morph, params, fit=True)
        n_kept = int(kept.sum())
        min_rows = max(10, self.n_components if isinstance(self.n_components, numbers.Integral) else 2)
        if n_kept < min_rows:
            raise ValueError(f"only {n_kept} of {len(morph)} galaxies are left after screening and purging "
                             f"(need at least {min_rows}); statuses: {pd.Series(status).value_counts().to_dict()}")
        log.info("multimodal: %d of %d galaxies go to the autoencoder", n_kept, len(morph))
        self.purger_ = purger
        self.autoencoder_ = self._autoencoder().fit(fused)
        self.embedding_ = self.autoencoder_.transform(fused)
        self.gmm_ = self._gmm().fit(self.embedding_)
        fit = self.gmm_.fit_summary()
        self.bottleneck_rank_ = {"effective_rank": fit["effective_rank"], "numerical_rank": fit["numerical_rank"],
                                 "mixture_dim": fit["mixture_dim"], "dim": fit["input_dim"]}
        log.info("multimodal: the %d-d bottleneck has effective rank %.1f (numerical rank %d); the mixture sees %d "
                 "dimensions", fit["input_dim"], fit["effective_rank"], fit["numerical_rank"], fit["mixture_dim"])
        self.params_ = params
        self.n_deep_blocks_ = len(fused) - 1
        self.kept_ = kept
        self.result_ = self._table(morph, status, reason, kept, self.gmm_, self.embedding_)
        # fit-time anomalies: exactly the bottom quantile (ties at the threshold aside)
        self.result_.loc[np.flatnonzero(kept), "anomaly"] = self.gmm_.anomaly_
        return self

    def fit_predict(self, deep_blocks, morph, params=None) -> pd.DataFrame:
        """:meth:`fit` and return ``result_``."""
        return self.fit(deep_blocks, morph, params).result_

    def _check_fitted(self) -> None:
        if not hasattr(self, "gmm_"):
            raise ValueError("this MultimodalTaxonomy is not fitted yet: call fit(deep_blocks, morph) or load(dir)")

    def predict(self, deep_blocks, morph) -> pd.DataFrame:
        """Classify (new) galaxies with the fitted purger, autoencoder and mixture; one row per input."""
        self._check_fitted()
        blocks = [deep_blocks] if isinstance(deep_blocks, np.ndarray) else deep_blocks
        if len(blocks) != self.n_deep_blocks_:
            raise ValueError(f"got {len(blocks)} deep blocks; the model was fitted on {self.n_deep_blocks_}")
        _, _, status, reason, kept, fused, _ = self._prepare(blocks, morph, self.params_, fit=False)
        z = self.autoencoder_.transform(fused) if kept.any() else np.zeros((0, self.autoencoder_.bottleneck))
        return self._table(morph, status, reason, kept, self.gmm_, z)

    # ------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Write the fitted route into folder ``path``: ``taxonomy.json``, ``purger.npz`` and ``gmm.npz``
        (:mod:`galtaxa.utils.persist`: no pickle), ``autoencoder/``, ``embedding.npy`` and ``result.csv``."""
        from .utils.persist import save_estimator

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        params = self.get_params(deep=False)
        params["params"] = list(params["params"])
        params["hidden"] = [int(h) for h in params["hidden"]]
        params["candidates"] = [int(c) for c in params["candidates"]]
        params["bounds"] = None if params["bounds"] is None else {k: list(v) for k, v in params["bounds"].items()}
        mw = params["modality_weights"]
        params["modality_weights"] = mw if isinstance(mw, str) else [float(v) for v in mw]
        params["device"] = None if params["device"] is None else str(params["device"])
        if isinstance(params["n_components"], numbers.Integral):
            params["n_components"] = int(params["n_components"])
        record = {"params": params, "fitted_params": self.params_, "n_deep_blocks": self.n_deep_blocks_}
        self.autoencoder_.save(path / "autoencoder")
        save_estimator(self.purger_, path / "purger.npz")
        save_estimator(self.gmm_, path / "gmm.npz")
        with atomic_path(path / "result.csv") as tmp:
            self.result_.to_csv(tmp, index=False)
        with atomic_path(path / "embedding.npy") as tmp:
            np.save(tmp, self.embedding_)
        atomic_write_text(path / "taxonomy.json", json.dumps(record, indent=2))
        return path

    @classmethod
    def load(cls, path) -> "MultimodalTaxonomy":
        """Read a route written by :meth:`save` (predicts new galaxies without refitting); reading it never
        executes code from the files.

        Raises
        ------
        galtaxa.utils.safe_load.UnsafeFileError
            For a folder written by an older galtaxa (``purger.joblib``, ``gmm.joblib``: pickles): refit instead.
        """
        from .utils.persist import load_estimator
        from .utils.safe_load import refuse_legacy_pickles

        path = Path(path)
        if not (path / "taxonomy.json").is_file():
            raise FileNotFoundError(f"{path} does not hold a saved MultimodalTaxonomy (taxonomy.json missing)")
        if not ((path / "purger.npz").is_file() and (path / "gmm.npz").is_file()):
            refuse_legacy_pickles([path / "purger.joblib", path / "gmm.joblib"],
                                  f"fit the route again and save it (for a pipeline run, delete the stage folder "
                                  f"{path.parent} and run again)")
            raise FileNotFoundError(f"{path} does not hold a saved MultimodalTaxonomy (purger.npz or gmm.npz missing)")
        record = json.loads((path / "taxonomy.json").read_text())
        params = record["params"]
        params["params"] = tuple(params["params"])
        params["hidden"] = tuple(params["hidden"])
        if params["bounds"] is not None:
            params["bounds"] = {k: tuple(v) for k, v in params["bounds"].items()}
        self = cls(**params)
        self.params_ = list(record["fitted_params"])
        self.n_deep_blocks_ = int(record["n_deep_blocks"])
        self.autoencoder_ = MultimodalAutoencoder.load(path / "autoencoder")
        self.purger_ = load_estimator(path / "purger.npz", expected=MorphologyPurger)
        self.gmm_ = load_estimator(path / "gmm.npz", expected=GMMClustering)
        self.result_ = pd.read_csv(path / "result.csv", keep_default_na=False,
                                   dtype={"id": str, "status": str, "reason": str})
        self.result_["class_prob"] = pd.to_numeric(self.result_["class_prob"], errors="coerce")
        self.result_["log_likelihood"] = pd.to_numeric(self.result_["log_likelihood"], errors="coerce")
        self.embedding_ = np.load(path / "embedding.npy", allow_pickle=False)
        self.kept_ = (self.result_["group"].to_numpy() >= 0)
        return self

    # -------------------------------------------------------------- ablation
    def ablation(self, deep_blocks, morph, labels=None, n_components=None, deep_pca: int | None = 64,
                 silhouette_sample: int = 5000, params=None) -> pd.DataFrame:
        """GMM on the deep-only, morphology-only and fused spaces, scored as in Selim et al.'s ablation.

        Parameters
        ----------
        deep_blocks, morph
            As for :meth:`fit`; the same screening and purge are applied (a fresh purger with this object's
            settings), so all three spaces hold the same galaxies.
        labels : array-like of length N, optional
            Reference labels for every input row (``""``/None/NaN = unknown); scored when given.
        n_components : int or "bic", optional
            Mixture components for all three spaces.  Default: the fitted mixture's K when this object is
            fitted, else ``self.n_components``.  ``"bic"`` lets each space pick its own K.
        deep_pca : int or None
            The deep space is the concatenation of the deep blocks, each column standardised; a full-covariance
            GMM on 2304 dimensions needs ~2.6 M parameters per component (singular with a few thousand
            galaxies), so by default it is first projected onto its top ``deep_pca`` principal components
            (seeded randomized PCA).  ``None`` clusters the standardised space directly.
        silhouette_sample : int
            Silhouette on a seeded random sample of at most this many galaxies (``O(n^2)`` cost).
        params : sequence of str, optional
            Morphology columns (default: the fitted ones, else ``self.params``).

        Returns
        -------
        pandas.DataFrame
            Rows ``deep``, ``morph``, ``fused`` with columns ``space, dim, n_galaxies, n_components,
            davies_bouldin, silhouette, confident_fraction, cas_accuracy, cas_ari`` and, with ``labels``,
            ``label_accuracy, label_ari``.  Davies-Bouldin and silhouette are computed in the space that was
            clustered (PCA space for ``deep``), Euclidean.  CAS reference classes: :func:`cas_classes`.
            Accuracies are Hungarian-matched (:func:`matched_accuracy`).

        Notes
        -----
        Internal indices compare partitions *within* one space; across spaces of different dimension and
        geometry (a learned 64-d code against 5 z-scored parameters) they are only indicative, as in the paper.
        """
        from sklearn.decomposition import PCA
        from sklearn.metrics import davies_bouldin_score, silhouette_score

        fitted = hasattr(self, "gmm_")
        if params is None:
            params = self.params_ if fitted else self.params
        if n_components is None:
            n_components = self.gmm_.n_components_ if fitted else self.n_components
        blocks, params = self._check_inputs(deep_blocks, morph, params)
        if labels is not None:
            labels = np.asarray(labels, dtype=object)
            if labels.shape != (len(morph),):
                raise ValueError(f"labels must have one entry per row ({len(morph)}); got shape {labels.shape}")
        if not isinstance(silhouette_sample, numbers.Integral) or silhouette_sample < 2:
            raise ValueError(f"silhouette_sample must be an integer >= 2; got {silhouette_sample!r}")
        _, params, status, _, kept, fused, _ = self._prepare(blocks, morph, params, fit=True)
        rows = np.flatnonzero(kept)
        if len(rows) < 10:
            raise ValueError(f"only {len(rows)} galaxies left after screening and purging; cannot run the ablation")

        deep = np.concatenate([f.astype(np.float64) for f in fused[:-1]], axis=1)
        deep = (deep - deep.mean(axis=0)) / np.where(deep.std(axis=0) > 0, deep.std(axis=0), 1.0)
        if deep_pca is not None and deep.shape[1] > deep_pca:
            k = int(min(deep_pca, len(rows) - 1))
            deep = PCA(n_components=k, svd_solver="randomized", random_state=self.random_state).fit_transform(deep)
        m = fused[-1].astype(np.float64)
        m = (m - m.mean(axis=0)) / np.where(m.std(axis=0) > 0, m.std(axis=0), 1.0)
        if fitted and self.autoencoder_.dims_ == [f.shape[1] for f in fused]:
            z = self.autoencoder_.transform(fused)
        else:
            z = self._autoencoder().fit(fused).transform(fused)
        spaces = {"deep": deep, "morph": m, "fused": z.astype(np.float64)}

        cas = cas_classes(morph.iloc[rows]).to_numpy(dtype=object)
        out = []
        for name, x in spaces.items():
            g = self._gmm(n_components).fit(x)
            lab = g.labels_
            n_lab = len(np.unique(lab))
            db = float(davies_bouldin_score(x, lab)) if 1 < n_lab < len(x) else np.nan
            sil = (float(silhouette_score(x, lab, sample_size=min(silhouette_sample, len(x)),
                                          random_state=self.random_state)) if 1 < n_lab < len(x) else np.nan)
            cs = matched_accuracy(cas, lab)
            row = {"space": name, "dim": int(x.shape[1]), "n_galaxies": int(len(x)),
                   "n_components": int(g.n_components_), "davies_bouldin": db, "silhouette": sil,
                   "confident_fraction": float(g.confident_.mean()), "cas_accuracy": cs.accuracy,
                   "cas_ari": cs.ari}
            if labels is not None:
                ls = matched_accuracy(labels[rows], lab)
                row.update(label_accuracy=ls.accuracy, label_ari=ls.ari)
            out.append(row)
        return pd.DataFrame(out)


def format_ablation(df: pd.DataFrame) -> str:
    """A plain-text table of :meth:`MultimodalTaxonomy.ablation` beside Selim et al.'s numbers.

    Columns: space, dimension, K, our Davies-Bouldin / silhouette, the paper's, CAS-matched accuracy and ARI,
    and the label-matched accuracy and ARI when present.
    """
    required = {"space", "dim", "n_components", "davies_bouldin", "silhouette"}
    if not isinstance(df, pd.DataFrame) or not required <= set(df.columns):
        raise ValueError(f"format_ablation needs a DataFrame with columns {sorted(required)}")

    def f(v, nd=2):
        return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"

    head = ["space", "dim", "K", "DB", "sil", "paper DB", "paper sil", "paper dim"]
    extra = [c for c in ("cas_accuracy", "cas_ari", "label_accuracy", "label_ari") if c in df.columns]
    names = {"cas_accuracy": "CAS acc", "cas_ari": "CAS ARI", "label_accuracy": "label acc",
             "label_ari": "label ARI"}
    head += [names[c] for c in extra]
    lines = []
    for _, r in df.iterrows():
        p = PAPER_ABLATION.get(r["space"], {})
        cells = [str(r["space"]), str(int(r["dim"])), str(int(r["n_components"])), f(r["davies_bouldin"]),
                 f(r["silhouette"]), f(p.get("davies_bouldin")), f(p.get("silhouette")),
                 str(p.get("dim", "-"))]
        cells += [f(r[c], 3) for c in extra]
        lines.append(cells)
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = "  ".join("{:<%d}" % w if i == 0 else "{:>%d}" % w for i, w in enumerate(widths))
    text = [fmt.format(*head), "  ".join("-" * w for w in widths)] + [fmt.format(*l) for l in lines]
    text.append("paper: Selim et al. (Sci. Rep.), GMM ablation on 4,950 SDSS galaxies (DB lower, silhouette "
                "higher is better)")
    return "\n".join(text)
