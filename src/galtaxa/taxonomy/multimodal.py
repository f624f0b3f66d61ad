"""The multimodal taxonomy route (method M3, Selim et al., Sci. Rep.): purge -> fuse -> autoencoder -> GMM.

Steps of :class:`MultimodalTaxonomy`:

1. **Screen.** Rows whose morphology ``status`` (from :mod:`galtaxa.measure`) is not ``"ok"`` keep that status and
   reason; rows with NaN/inf deep features get ``status="failed"`` and a reason naming the block.
2. **Purge** (:class:`galtaxa.cluster.purge.MorphologyPurger`): NaN parameters, the rule bounds
   ``1 < C <= 7, A <= 1``, then an Isolation Forest on the z-scored parameters -> ``status="purged"``.
3. **Fuse** the deep blocks (e.g. EfficientNet-B0 1280-d and ConvNeXt-Base 1024-d) with the morphology block
   (C, A, S, Gini, M20; z-scored by the autoencoder's standardisation) in a
   :class:`galtaxa.reduce.fusion_autoencoder.MultimodalAutoencoder` with a balanced per-modality loss -> 64-d bottleneck.
4. **Scale** the bottleneck (``whiten="auto"``: for full covariances z-score then PCA whitening to its effective
   rank, so a collapsed or redundant dimension never makes them singular; for diagonal ones a z-score of every
   dimension, since the whitening would only drop axes, see :func:`galtaxa.taxonomy.parts.multimodal_parts`) and
   report its effective rank (``bottleneck_rank_``).
5. **Cluster** it with :class:`galtaxa.cluster.gmm.GMMClustering`: ``group``, ``class_prob``
   (largest membership probability), ``confident`` (``class_prob > 0.85``), ``anomaly`` (bottom 2 % of the
   log-likelihood).  A covariance type or K that cannot be fitted falls back (regularisation scaled to the data,
   diagonal covariances, fewer components) with a warning; ``gmm_.fallback_`` records the rung used.

Every input row is in the output table, in input order; rows not clustered have ``group = -1``.

:mod:`galtaxa.taxonomy.ablation` reproduces the paper's ablation (GMM on the deep-only, morphology-only and
fused spaces) and prints it next to the paper's numbers.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..cluster.gmm import GMMClustering
from ..cluster.purge import DEFAULT_PARAMS, MorphologyPurger
from ..persist.archive import Persistable
from ..persist.safe_load import refuse_legacy_pickles
from ..reduce.fusion_autoencoder import MultimodalAutoencoder
from ..status import FAILED, OK, PURGED, log
from ..utils.validation import Instance, Options, validate_params
from .ablation import ablation
from .parts import MULTIMODAL_FLAT, multimodal_parts, part_to_fit

__all__ = ["MultimodalTaxonomy"]

_RESULT_COLUMNS = ["id", "group", "class_prob", "anomaly", "confident", "log_likelihood", "status", "reason"]


class MultimodalTaxonomy(Persistable, BaseEstimator):
    """Purge, fuse deep + morphology features in a multimodal autoencoder, cluster with a GMM (Selim et al.).

    A scikit-learn meta-estimator: its steps are estimators given as parameters (``None``: the default part), so
    ``get_params()`` lists their parameters as ``autoencoder__epochs``, ``gmm__n_components``, ... and
    ``set_params(gmm__n_components=5)`` changes them.  :meth:`fit` fits clones of the parts (``purger_``,
    ``autoencoder_``, ``gmm_``); the parts given are never changed.  Each parameter is named after the fitted
    attribute it becomes.

    Parameters
    ----------
    params : sequence of str
        Morphology columns fused with the deep features (default C, A, S, gini, m20).  They are the data the route
        reads, not a setting of a part: the purger screens these columns (its own ``params`` is replaced by them
        on its clone).
    purger : MorphologyPurger, False or None
        The purge (:class:`galtaxa.cluster.purge.MorphologyPurger`).  ``None``: the rule bounds ``1 < C <= 7,
        A <= 1`` and an Isolation Forest (``contamination=0.01``), seeded with ``random_state``.  ``False``: no
        purge (rows with missing parameters are still screened out).
    autoencoder : MultimodalAutoencoder, optional
        The fusion network (:class:`galtaxa.reduce.fusion_autoencoder.MultimodalAutoencoder`).  ``None``: its
        defaults (64-d bottleneck, hidden layers 512 and 256, balanced modalities, 100 epochs) with
        ``random_state`` and ``progress``.
    gmm : GMMClustering, optional
        The mixture (:class:`galtaxa.cluster.gmm.GMMClustering`).  ``None``: ``n_components="bic"`` over
        ``candidates=range(2, 21)``, full covariances, ``whiten="auto"`` (PCA whitening for full covariances, a
        z-score for diagonal ones; note that GMMClustering's own default is no scaling), with ``random_state`` and
        ``progress``.
    random_state : int
        Seeds the default parts (those left at ``None``).
    progress : bool
        Progress bars of the default parts.

    Notes
    -----
    Shared settings live in one place: a part given explicitly keeps its own ``random_state``, ``progress`` and
    number of components (the taxonomy reads ``gmm.n_components`` for its "too few galaxies" check);
    ``random_state`` and ``progress`` here configure only the parts left at ``None``.  The one exception is
    ``params`` (the columns, see above).  :func:`galtaxa.taxonomy.parts.multimodal_parts` builds the three parts
    from the flat settings of the pipeline's ``multimodal:`` config section.

    Attributes
    ----------
    purger_ : MorphologyPurger
        The fitted purge (bounds and forest off when ``purger=False``).
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
    >>> tax = MultimodalTaxonomy(gmm=GMMClustering(n_components=8, whiten="auto"))           # doctest: +SKIP
    >>> tax.set_params(autoencoder=MultimodalAutoencoder(bottleneck=32), gmm__n_components=6)  # doctest: +SKIP
    >>> tax.fit([effnet, convnext], morph).result_.head()                                   # doctest: +SKIP
    """

    def __init__(self, params=DEFAULT_PARAMS, purger=None, autoencoder=None, gmm=None, random_state: int = 0,
                 progress: bool = True):
        self.params = params
        self.purger = purger
        self.autoencoder = autoencoder
        self.gmm = gmm
        self.random_state = random_state
        self.progress = progress

    PARAM_CONSTRAINTS = {"purger": [Instance(MorphologyPurger), Options(False), None],
                         "autoencoder": [Instance(MultimodalAutoencoder), None], "gmm": [Instance(GMMClustering), None]}

    # -------------------------------------------------------------- the parts (clones; never the arguments)
    def _part(self, name: str):
        return part_to_fit(self, name, multimodal_parts)

    def _make_purger(self, params) -> MorphologyPurger:
        purger = self._part("purger")
        if purger is False:  # no purge: only the screening of missing parameters
            purger = MorphologyPurger(bounds=None, isolation_forest=False, random_state=self.random_state)
        return purger.set_params(params=params)

    def _make_autoencoder(self) -> MultimodalAutoencoder:
        return self._part("autoencoder")

    def _make_gmm(self, n_components=None) -> GMMClustering:
        gmm = self._part("gmm")
        return gmm if n_components is None else gmm.set_params(n_components=n_components)

    # ------------------------------------------------------------ files of an older galtaxa (flat parameters)
    def _persist_setstate(self, state: dict) -> None:
        # a file written before the parts were nested holds their flat settings: the same parts are built from them
        flat = {k: state.pop(k) for k in MULTIMODAL_FLAT if k in state}
        if flat:
            parts = multimodal_parts(params=state.get("params", DEFAULT_PARAMS), random_state=state.get("random_state", 0),
                                     progress=state.get("progress", True), **flat)
            state.update(parts)
        super()._persist_setstate(state)

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
            purger = self._make_purger(params)
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
    def fit(self, deep_blocks, morph) -> "MultimodalTaxonomy":
        """Run purge -> autoencoder -> GMM on ``deep_blocks`` (list of (N, D_i)) and ``morph`` (N rows).

        Parameters
        ----------
        deep_blocks : list of array-like, each (N, D_i)
        morph : pandas.DataFrame
            The morphology table, N rows.

        Returns
        -------
        MultimodalTaxonomy
            ``self``, with ``result_`` (one row per input).
        """
        validate_params(self)
        gmm = self._make_gmm()
        _, params, status, reason, kept, fused, purger = self._prepare(deep_blocks, morph, self.params, fit=True)
        n_kept = int(kept.sum())
        min_rows = max(10, gmm.n_components if isinstance(gmm.n_components, numbers.Integral) else 2)
        if n_kept < min_rows:
            raise ValueError(f"only {n_kept} of {len(morph)} galaxies are left after screening and purging "
                             f"(need at least {min_rows}); statuses: {pd.Series(status).value_counts().to_dict()}")
        log.info("multimodal: %d of %d galaxies go to the autoencoder", n_kept, len(morph))
        self.purger_ = purger
        self.autoencoder_ = self._make_autoencoder().fit(fused)
        self.embedding_ = self.autoencoder_.transform(fused)
        self.gmm_ = gmm.fit(self.embedding_)
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

    def fit_predict(self, deep_blocks, morph) -> pd.DataFrame:
        """:meth:`fit` and return ``result_``."""
        return self.fit(deep_blocks, morph).result_

    def _check_fitted(self) -> None:
        check_is_fitted(self, "gmm_")

    def predict(self, deep_blocks, morph) -> pd.DataFrame:
        """Classify (new) galaxies with the fitted purger, autoencoder and mixture; one row per input."""
        self._check_fitted()
        blocks = [deep_blocks] if isinstance(deep_blocks, np.ndarray) else deep_blocks
        if len(blocks) != self.n_deep_blocks_:
            raise ValueError(f"got {len(blocks)} deep blocks; the model was fitted on {self.n_deep_blocks_}")
        _, _, status, reason, kept, fused, _ = self._prepare(blocks, morph, self.params_, fit=False)
        z = self.autoencoder_.transform(fused) if kept.any() else np.zeros((0, self.autoencoder_.bottleneck))
        return self._table(morph, status, reason, kept, self.gmm_, z)

    # ------------------------------------------------------------ persistence (Persistable: one .npz file)
    _PERSISTED = ("params_", "n_deep_blocks_", "autoencoder_", "purger_", "gmm_", "result_", "embedding_", "kept_",
                  "bottleneck_rank_")
    _FITTED_MARK = "gmm_"

    @classmethod
    def load(cls, path) -> "MultimodalTaxonomy":
        """Read a route written by :meth:`save` (:class:`~galtaxa.persist.archive.Persistable`); it predicts new
        galaxies without refitting, and reading it never executes code from the file.

        Parameters
        ----------
        path : path-like

        Returns
        -------
        MultimodalTaxonomy

        Raises
        ------
        galtaxa.persist.safe_load.UnsafeFileError
            For a folder written by an older galtaxa (``purger.joblib``, ``gmm.joblib``: pickles): refit instead.
        """
        refuse_legacy_pickles([Path(path) / "purger.joblib", Path(path) / "gmm.joblib"],
                              f"fit the route again and save it (for a pipeline run, delete the stage folder "
                              f"{Path(path).parent} and run again)")
        return super().load(path)

    # -------------------------------------------------------------- ablation
    def ablation(self, deep_blocks, morph, labels=None, n_components=None, deep_pca: int | None = 64,
                 silhouette_sample: int = 5000, params=None) -> pd.DataFrame:
        """Selim et al.'s ablation with this route's settings: see :func:`galtaxa.taxonomy.ablation.ablation`."""
        return ablation(self, deep_blocks, morph, labels=labels, n_components=n_components, deep_pca=deep_pca,
                        silhouette_sample=silhouette_sample, params=params)
