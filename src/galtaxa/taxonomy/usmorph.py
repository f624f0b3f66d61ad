"""The unsupervised taxonomy of methods M1/M2 as one fitted, saveable object.

``images -> [CAE denoise] -> [adaptive polar unfolding] -> pretrained encoder [averaged over flips]
-> PCA | UMAP [+ image descriptors] -> voting ensemble (k-means, BIRCH, Ward) -> groups``

References
----------
Fang et al. 2025, A&A 693, A141 (USmorph with ConvNeXt + PCA);
Fang et al. 2025, arXiv:2512.15137 (ConvNeXt + UMAP, Davies-Bouldin scan).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from ..cluster import VotingClustering
from ..encode import extract_features, get_encoder
from ..encode.descriptors import image_descriptors
from .cae import CAEDenoiser
from .polar import polar_unfold
from ..preprocess.scaling import unit_range
from ..reduce import PCAReducer, RowView, UMAPReducer
from ..reduce.rows import finite_rows
from ..status import FAILED, OK, REJECTED
from ..utils.atomic import atomic_save_npy
from ..utils.fingerprint import galaxies_fingerprint
from ..persist.archive import Persistable
from ..utils.rundir import open_memmap_checked
from ..utils.validation import Instance, validate_params
from ..persist.safe_load import refuse_legacy_pickles
from .parts import USMORPH_FLAT, part_to_fit, usmorph_parts

__all__ = ["UnsupervisedTaxonomy"]


class UnsupervisedTaxonomy(Persistable, ClusterMixin, BaseEstimator):
    """USmorph-style unsupervised taxonomy, a scikit-learn estimator on a :class:`~galtaxa.galaxyset.GalaxySet`.

    A scikit-learn meta-estimator: its model steps are estimators given as parameters (``None``: the default
    part), so ``get_params()`` lists their parameters as ``reducer__n_components``, ``voting__n_clusters``, ... and
    ``set_params(voting__n_clusters=8)`` changes them.  :meth:`fit` fits clones of the parts (``cae_``,
    ``reducer_``, ``voting_``); the parts given are never changed.  Each parameter is named after the fitted
    attribute it becomes.

    Parameters
    ----------
    cae : CAEDenoiser, optional
        Train this convolutional autoencoder (:class:`galtaxa.taxonomy.cae.CAEDenoiser`) on the images and encode
        the denoised images (M1).  ``None`` (default): no denoising.
    polar : bool
        Unfold the images in adaptive polar coordinates before encoding.
    angle_step : float
        Angular step of the polar unfolding (rad).
    encoder : str
        timm model name; ``"efficientnet_lite0"`` loads the offline ImageNet weights.
    checkpoint : str, optional
        Local weights file for ``encoder``.
    input_size : int
        Side the encoder sees (images are resized).
    batch_size : int
        Encoder batch size.
    tta : {"none", "flips", "d4"}
        Average the encoder's features over the image's flips or its 8 dihedral views (exact invariance
        to those symmetries; one forward pass per view).
    descriptors : bool
        Append the 16 image descriptors of :mod:`galtaxa.encode.descriptors` (axis ratio, concentration,
        asymmetry, colours, ...) to the reduced deep features: the clustering space is
        ``[z / sd(z_1), w * (d - mean) / sd]`` with ``z`` the PCA/UMAP output, ``z_1`` its first column,
        ``d`` the descriptors (missing values replaced by their median) and ``w = descriptor_weight``.
    descriptor_weight : float
        Weight ``w`` of the standardised descriptors against the reduced deep features.
    reducer : PCAReducer or UMAPReducer, optional
        The reduction of the encoder features (:class:`galtaxa.reduce.PCAReducer`, or
        :class:`galtaxa.reduce.UMAPReducer` for M2, e.g. ``UMAPReducer(n_components="auto", scan_k=20)`` for the
        Davies-Bouldin scan).  ``None``: ``PCAReducer(n_components=50)`` seeded with ``random_state``.  A PCA with
        ``fit_rows`` is fitted out of core on a subsample and projects the features memory map chunk by chunk.
    voting : VotingClustering, optional
        The voting ensemble (:class:`galtaxa.cluster.VotingClustering`).  ``None``: ``n_clusters=20``,
        ``algorithms=("kmeans", "birch", "ward")``, ``min_agree=2``, ``mapping="hungarian"`` (VotingClustering's
        own default mapping is ``"overlap"``), seeded with ``random_state``.
    random_state : int
        Seeds the encoder and the default parts (those left at ``None``).
    progress : bool
        Progress bars (the encoder, the descriptors).
    cache_dir : path-like, optional
        Folder where :meth:`fit` keeps the preprocessed images, the encoder features (resumable batch by
        batch), the descriptors and the trained CAE, so an interrupted fit resumes.
    runner : ChunkRunner, optional
        With a Dask scheduler and ``cache_dir``, :meth:`fit` encodes on the workers
        (:func:`~galtaxa.encode.extract_features`'s ``runner``); None: here.

    Notes
    -----
    Shared settings live in one place: a part given explicitly keeps its own ``random_state``, ``progress`` and
    sizes.  The taxonomy reads the voting ensemble's ``n_clusters`` for its "too few usable galaxies" check; the
    UMAP scan scores candidates with the reducer's own ``scan_k`` (set it to the ensemble's ``n_clusters``, as
    :func:`galtaxa.taxonomy.parts.usmorph_parts` and the pipeline's config do).  That function builds the three
    parts from the flat settings of the pipeline's ``cae``, ``reduce`` and ``cluster`` config sections.

    Attributes
    ----------
    cae_ : CAEDenoiser
        The fitted denoiser (with ``cae`` only).
    reducer_ : PCAReducer or UMAPReducer
    labels_ : ndarray of int, shape (N,)
        Group of every input image; -1 = rejected by the vote or unusable.
    agreement_ : ndarray of int
        Number of voters agreeing with the assigned group.
    features_ : ndarray, shape (N, D)
        Encoder features (NaN rows for unusable images).
    embedding_ : ndarray, shape (N, d)
        Reduced features the clustering saw.
    voting_ : VotingClustering

    Examples
    --------
    >>> tax = UnsupervisedTaxonomy(voting=VotingClustering(n_clusters=5, mapping="hungarian"),
    ...                            cache_dir="run/features").fit(galaxies)                  # doctest: +SKIP
    >>> tax.labels_, tax.predict(new_galaxies)                                          # doctest: +SKIP
    >>> tax.set_params(reducer=PCAReducer(n_components=20), voting__min_agree=3)          # doctest: +SKIP
    """

    def __init__(self, cae=None, polar: bool = True, angle_step: float = 0.05, encoder: str = "efficientnet_lite0",
                 checkpoint: str | None = None, input_size: int = 224, batch_size: int = 32, tta: str = "none",
                 descriptors: bool = False, descriptor_weight: float = 0.5, reducer=None, voting=None,
                 random_state: int = 0, progress: bool = True, cache_dir=None, runner=None):
        self.cae = cae
        self.polar = polar
        self.angle_step = angle_step
        self.encoder = encoder
        self.checkpoint = checkpoint
        self.input_size = input_size
        self.batch_size = batch_size
        self.tta = tta
        self.descriptors = descriptors
        self.descriptor_weight = descriptor_weight
        self.reducer = reducer
        self.voting = voting
        self.random_state = random_state
        self.progress = progress
        self.cache_dir = cache_dir
        self.runner = runner

    PARAM_CONSTRAINTS = {"cae": [Instance(CAEDenoiser), None], "reducer": [Instance(PCAReducer, UMAPReducer), None],
                         "voting": [Instance(VotingClustering), None]}

    # -------------------------------------------------------------- the parts (clones; never the arguments)
    def _part(self, name: str):
        return part_to_fit(self, name, usmorph_parts)

    # ------------------------------------------------------------ files of an older galtaxa (flat parameters)
    def _persist_setstate(self, state: dict) -> None:
        # a file written before the parts were nested holds their flat settings (``cae`` a bool then): the same
        # parts are built from them
        if any(k in state for k in USMORPH_FLAT if k != "cae"):
            flat = {k: state.pop(k) for k in USMORPH_FLAT if k in state}
            if not isinstance(flat.get("cae", False), (bool, np.bool_)):
                raise ValueError(f"cae must be a bool beside flat settings; got {type(flat['cae']).__name__}")
            state.update(usmorph_parts(random_state=state.get("random_state", 0), **flat))
        super()._persist_setstate(state)

    # ------------------------------------------------------------- the steps
    def _encoder(self):
        if getattr(self, "_encoder_obj", None) is None:
            saved = getattr(self, "unrestored_paths_", {}).get("checkpoint")
            if self.checkpoint is None and saved is not None:
                raise ValueError(f"this taxonomy was fitted with the encoder weights {saved!r}; paths are never read "
                                 "from a model file: set its checkpoint (tax.checkpoint = PATH) before encoding")
            self._encoder_obj = get_encoder(self.encoder, checkpoint=self.checkpoint, input_size=self.input_size,
                                            random_state=self.random_state, tta=self.tta)
        return self._encoder_obj

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """CAE denoising (if fitted) then polar unfolding, rescaled to [0, 1] per image."""
        out = np.asarray(images, dtype=np.float32)
        if self.cae is not None and getattr(self, "cae_", None) is not None:
            out = self.cae_.transform(out)
        if self.polar:
            out = polar_unfold(out, angle_step=self.angle_step)
        return unit_range(out)

    def _features(self, galaxies, cache_dir=None) -> np.ndarray:
        out = None
        if cache_dir is not None:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            out = Path(cache_dir) / "preprocessed.npy"
        pre = galaxies.with_images(self.preprocess_set(galaxies, out=out))
        runner = self.runner if cache_dir is not None else None  # the workers write their parts into cache_dir
        return extract_features(pre, self._encoder(), batch_size=self.batch_size, cache_dir=cache_dir,
                                progress=self.progress, runner=runner)

    def preprocess_set(self, galaxies, out: str | Path | None = None, chunk: int = 512) -> np.ndarray:
        """Preprocess the usable images of a GalaxySet chunk by chunk (others stay zero).

        With ``out`` the result is a memory-mapped ``.npy`` file, so 10^5-10^6
        unfolded images never need to fit in RAM at once.
        """
        ok = galaxies.ok
        idx = np.flatnonzero(ok)
        sample = self.preprocess(np.asarray(galaxies.images[idx[:1]]))
        shape = (len(galaxies), *sample.shape[1:])
        if out is None:
            result = np.zeros(shape, dtype=np.float32)
        else:
            result = open_memmap_checked(out, shape, np.float32, what=f"preprocessed images {shape}")
            result[:] = 0
        for start in range(0, len(idx), chunk):
            rows = idx[start:start + chunk]
            result[rows] = self.preprocess(np.asarray(galaxies.images[rows]))
        if out is not None:
            result.flush()
        return result

    def _descriptors(self, galaxies, rows, cache_dir=None) -> np.ndarray:
        """Image descriptors of ``rows``, cached beside the features as ``descriptors-<fingerprint>.npy`` (the
        fingerprint of the image set, so a cache of other images is never reused)."""
        path = None if cache_dir is None else Path(cache_dir) / f"descriptors-{galaxies_fingerprint(galaxies, columns=())}.npy"
        if path is not None and path.exists():
            saved = np.load(path)
            if saved.shape[0] == len(galaxies):
                return saved[rows]
        out = np.full((len(galaxies), 16), np.nan, dtype=np.float32)
        out[rows] = image_descriptors(galaxies.images[rows] if len(rows) else np.zeros((0, 1, 8, 8)),
                                      progress=self.progress)
        if path is not None:
            atomic_save_npy(path, out)
        return out[rows]

    def _clustering_space(self, z: np.ndarray, desc: np.ndarray | None, fit: bool) -> np.ndarray:
        """The space the voters see: the reduced features, with the weighted descriptors appended."""
        z = np.asarray(z, dtype=np.float32)
        if not self.descriptors:
            return z
        if fit:
            sd = float(z[:, 0].std()) if len(z) > 1 else 1.0
            med = np.nanmedian(desc, axis=0)
            med = np.where(np.isfinite(med), med, 0.0)
            filled = np.where(np.isfinite(desc), desc, med)
            scale = filled.std(axis=0)
            self.hybrid_ = {"deep_scale": sd if sd > 0 else 1.0, "descriptor_median": med.astype(np.float64),
                            "descriptor_mean": filled.mean(axis=0).astype(np.float64),
                            "descriptor_scale": np.where(scale > 0, scale, 1.0).astype(np.float64)}
        h = self.hybrid_
        filled = np.where(np.isfinite(desc), desc, h["descriptor_median"])
        d = (filled - h["descriptor_mean"]) / h["descriptor_scale"]
        return np.hstack([z / h["deep_scale"], self.descriptor_weight * d]).astype(np.float32)

    def _usable_features(self, feats, rows: np.ndarray):
        """The features of ``rows``: a copy in memory, or with the reducer's ``fit_rows`` (an out-of-core PCA) a
        :class:`~galtaxa.reduce.RowView` of the memory map that the reducer reads by chunks."""
        if getattr(self.reducer_, "fit_rows", None) is None:
            return feats[rows]
        return RowView(feats, rows)

    # ------------------------------------------------------------------- fit
    def fit_view(self, galaxies, cache_dir=None) -> "UnsupervisedTaxonomy":
        """Fit what the encoder's view of the images needs: the CAE of M1 (nothing without ``cae``).

        With ``cache_dir`` the trained CAE is kept there as ``cae.npz`` (a rerun after a crash reads it back) with
        ``cae_before_after.png``, eight seeded usable galaxies before and after denoising.

        Parameters
        ----------
        galaxies : GalaxySet
        cache_dir : path-like, optional

        Returns
        -------
        UnsupervisedTaxonomy
            ``self``, with ``cae_`` when ``cae``.
        """
        validate_params(self)
        if self.cae is None:
            return self
        ok = galaxies.ok
        saved = None if cache_dir is None else Path(cache_dir) / "cae.npz"
        if saved is not None and saved.exists():  # resume: trained before a crash (written atomically)
            self.cae_ = CAEDenoiser.load(saved)
        else:
            self.cae_ = self._part("cae")
            self.cae_.fit(np.asarray(galaxies.images[ok]))
            if saved is not None:
                Path(cache_dir).mkdir(parents=True, exist_ok=True)
                self.cae_.save(saved)
        if saved is not None and not (saved.parent / "cae_before_after.png").exists():
            # what the denoiser does, for the user to look at: 8 seeded usable galaxies, input/CAE/residual
            pick = np.sort(np.random.default_rng(self.random_state).choice(np.flatnonzero(ok), min(8, int(ok.sum())),
                                                                            replace=False))
            self.cae_.plot_before_after(np.asarray(galaxies.images[pick]), n=len(pick),
                                        path=saved.parent / "cae_before_after.png")
        return self

    def encode(self, galaxies, cache_dir=None) -> np.ndarray:
        """The encoder features of the galaxies' view (:meth:`preprocess`, after :meth:`fit_view`).

        Parameters
        ----------
        galaxies : GalaxySet
        cache_dir : path-like, optional
            Where the preprocessed images and the features are kept (``features.npy``, resumable batch by
            batch; with ``runner`` the workers write their parts there).

        Returns
        -------
        numpy.ndarray, shape (N, D)
            NaN rows for the unusable galaxies (a memory map with ``cache_dir``).
        """
        return self._features(galaxies, cache_dir)

    def fit(self, galaxies, y=None, features=None) -> "UnsupervisedTaxonomy":
        """Fit every step on a :class:`~galtaxa.galaxyset.GalaxySet`.

        Parameters
        ----------
        galaxies : GalaxySet
            Galaxies whose status is not ``"ok"`` keep ``labels_ = -1``.
        y : None
            Ignored (unsupervised).
        features : numpy.ndarray, shape (N, D), optional
            The galaxies' encoder features, already computed by :meth:`encode` (the pipeline's encode stage);
            then :meth:`fit_view` must have run (or ``cae_`` been set) for :meth:`predict` on new galaxies.
            Default: :meth:`fit_view` and :meth:`encode` here, caching in ``cache_dir``.

        Returns
        -------
        UnsupervisedTaxonomy
            ``self``, fitted.
        """
        validate_params(self)
        cache_dir = self.cache_dir
        ok = galaxies.ok
        voting = self._part("voting")
        if ok.sum() < voting.n_clusters:
            raise ValueError(f"only {ok.sum()} usable galaxies for {voting.n_clusters} groups: lower "
                             "voting.n_clusters")
        if features is None:
            self.fit_view(galaxies, cache_dir)
            features = self.encode(galaxies, cache_dir)
        elif len(features) != len(galaxies):
            raise ValueError(f"features has {len(features)} rows for {len(galaxies)} galaxies")
        self.reducer_ = self._part("reducer")
        feats = features
        usable = ok & finite_rows(feats)
        self.features_ = feats
        rows = np.flatnonzero(usable)
        desc = self._descriptors(galaxies, rows, cache_dir) if self.descriptors else None
        z = self._clustering_space(self.reducer_.fit_transform(self._usable_features(feats, rows)), desc, fit=True)
        emb = np.full((len(galaxies), z.shape[1]), np.nan, dtype=np.float32)
        emb[usable] = z
        self.embedding_ = emb
        self.voting_ = voting.fit(z)
        self.labels_ = np.full(len(galaxies), -1, dtype=int)
        self.agreement_ = np.zeros(len(galaxies), dtype=int)
        self.labels_[usable] = self.voting_.labels_
        self.agreement_[usable] = self.voting_.agreement_
        self.usable_ = usable
        self.ids_ = np.asarray(galaxies.ids)
        return self

    def table(self, galaxies) -> pd.DataFrame:
        """Per-galaxy result: id, status, reason, group, agreement and each voter's aligned label."""
        df = galaxies.meta[["id", "status", "reason"]].copy()
        df["group"] = self.labels_
        df["agreement"] = self.agreement_
        algorithms = self.voting_.algorithms
        votes = np.full((len(df), len(algorithms)), -1, dtype=int)
        votes[self.usable_] = self.voting_.votes_
        for j, name in enumerate(algorithms):
            df[f"group_{name}"] = votes[:, j]
        lost = (df["status"] == OK) & ~self.usable_
        df.loc[lost, "status"] = FAILED
        df.loc[lost, "reason"] = "encoder produced non-finite features"
        rejected = (df["status"] == OK) & (df["group"] < 0)
        df.loc[rejected, "status"] = REJECTED
        df.loc[rejected, "reason"] = (f"fewer than {self.voting_.min_agree} of {len(algorithms)} clustering "
                                      "algorithms agree")
        return df

    # ------------------------------------------------------------ new data
    def fit_predict(self, galaxies, y=None) -> np.ndarray:
        """:meth:`fit` and return ``labels_``.

        Parameters
        ----------
        galaxies : GalaxySet
        y : None
            Ignored.

        Returns
        -------
        numpy.ndarray of int
            Group per galaxy, -1 = rejected or unusable.
        """
        return self.fit(galaxies).labels_

    def predict(self, galaxies) -> np.ndarray:
        """Groups of new galaxies, without refitting (:meth:`predict_votes` also gives the agreement).

        Parameters
        ----------
        galaxies : GalaxySet

        Returns
        -------
        numpy.ndarray of int
            Group per galaxy, -1 = rejected by the vote or unusable.
        """
        return self.predict_votes(galaxies)[0]

    def predict_votes(self, galaxies) -> tuple[np.ndarray, np.ndarray]:
        """Groups and agreement counts for new galaxies, without refitting.

        Parameters
        ----------
        galaxies : GalaxySet

        Returns
        -------
        labels, agreement : numpy.ndarray of int
            Group per galaxy (-1 = rejected or unusable) and the number of voters agreeing with it.
        """
        usable, z = self._new_space(galaxies)
        labels = np.full(len(galaxies), -1, dtype=int)
        agreement = np.zeros(len(galaxies), dtype=int)
        if z is not None:
            lab, agr, _votes = self.voting_.predict_votes(z)
            labels[usable], agreement[usable] = lab, agr
        return labels, agreement

    def transform(self, galaxies, cache_dir=None) -> np.ndarray:
        """The clustering space of new galaxies (the fitted reducer and descriptor scaling), without refitting.

        Parameters
        ----------
        galaxies : GalaxySet
        cache_dir : path-like, optional
            Where their encoder features and descriptors are cached (default: not cached).

        Returns
        -------
        numpy.ndarray, float32, shape (N, d)
            One row per galaxy; NaN rows for the unusable ones.
        """
        usable, z = self._new_space(galaxies, cache_dir)
        out = np.full((len(galaxies), 0 if z is None else z.shape[1]), np.nan, dtype=np.float32)
        if z is not None:
            out[usable] = z
        return out

    def _new_space(self, galaxies, cache_dir=None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(usable, z)``: the usable galaxies and their clustering-space rows (None when there are none)."""
        check_is_fitted(self, "voting_")
        feats = self._features(galaxies, cache_dir)
        usable = galaxies.ok & finite_rows(feats)
        rows = np.flatnonzero(usable)
        if not rows.size:
            return usable, None
        desc = self._descriptors(galaxies, rows, cache_dir) if self.descriptors else None
        return usable, self._clustering_space(self.reducer_.transform(self._usable_features(feats, rows)), desc,
                                              fit=False)

    # ---------------------------------------------------------- persistence (Persistable: one .npz file)
    _PERSISTED = ("cae_", "reducer_", "voting_", "hybrid_")
    _TRANSIENT_PARAMS = ("progress", "cache_dir", "runner")
    _PATH_PARAMS = ("checkpoint",)
    _FITTED_MARK = "voting_"

    @classmethod
    def load(cls, path: str | Path, progress: bool = True) -> "UnsupervisedTaxonomy":
        """Read a taxonomy written by :meth:`save` (:class:`~galtaxa.persist.archive.Persistable`): the CAE, the
        reducer, the voting ensemble and the descriptor scaling; reading it never executes code from the file.

        Parameters
        ----------
        path : path-like
        progress : bool
            Progress bars of the loaded taxonomy.

        Returns
        -------
        UnsupervisedTaxonomy

        Raises
        ------
        galtaxa.persist.safe_load.UnsafeFileError
            For a folder written by an older galtaxa with ``fitted.pkl`` (a pickle): refit instead.
        """
        refuse_legacy_pickles([Path(path) / "fitted.pkl"],
                              f"fit the taxonomy again and save it (for a pipeline run, delete the stage folder "
                              f"{Path(path).parent} and run again)")
        self = super().load(path)
        self.progress = progress
        return self

