"""The parts of the two taxonomies built from flat settings: the documented defaults, the pipeline's config
sections and the files an older galtaxa wrote.

:class:`~galtaxa.taxonomy.UnsupervisedTaxonomy` and :class:`~galtaxa.taxonomy.MultimodalTaxonomy` take their
steps as estimators (``reducer=PCAReducer(...)``, ``gmm=GMMClustering(...)``, ...).  The functions here build
those estimators from one flat set of settings, the way a config file or an older galtaxa's constructor names
them:

* :func:`usmorph_parts`: ``cae`` (:class:`~galtaxa.taxonomy.cae.CAEDenoiser` or None), ``reducer``
  (:class:`~galtaxa.reduce.PCAReducer` or :class:`~galtaxa.reduce.UMAPReducer`) and ``voting``
  (:class:`~galtaxa.cluster.VotingClustering`);
* :func:`multimodal_parts`: ``purger`` (:class:`~galtaxa.cluster.purge.MorphologyPurger`, or ``False`` for no
  purge), ``autoencoder`` (:class:`~galtaxa.reduce.fusion_autoencoder.MultimodalAutoencoder`) and ``gmm``
  (:class:`~galtaxa.cluster.gmm.GMMClustering`).

Called with no settings but ``random_state`` and ``progress`` they give the taxonomies' default parts (what a
part left at ``None`` becomes).  :data:`USMORPH_FLAT` and :data:`MULTIMODAL_FLAT` name the flat settings, which
are also the constructor parameters of galtaxa before the taxonomies nested their parts: a file written then is
read through these functions.
"""

from __future__ import annotations

from sklearn.base import clone

from ..cluster import VotingClustering
from ..cluster.gmm import GMMClustering
from ..cluster.purge import DEFAULT_BOUNDS, DEFAULT_PARAMS, MorphologyPurger
from ..reduce import PCAReducer, UMAPReducer
from ..reduce.fusion_autoencoder import MultimodalAutoencoder
from .cae import CAEDenoiser

__all__ = ["usmorph_parts", "multimodal_parts", "part_to_fit", "USMORPH_FLAT", "MULTIMODAL_FLAT"]

#: Flat settings of :func:`usmorph_parts` (``random_state`` and ``progress`` aside).
USMORPH_FLAT = ("cae", "cae_kwargs", "reduce", "n_components", "umap_candidates", "fit_rows", "n_clusters",
                "algorithms", "min_agree", "mapping")

#: Flat settings of :func:`multimodal_parts` (``params``, ``random_state`` and ``progress`` aside).
MULTIMODAL_FLAT = ("purge", "bounds", "isolation_forest", "contamination", "bottleneck", "hidden", "modality_weights",
                   "epochs", "batch_size", "lr", "patience", "val_fraction", "n_components", "candidates",
                   "covariance_type", "anomaly_quantile", "confidence", "n_init", "whiten", "device")


def usmorph_parts(cae: bool = False, cae_kwargs: dict | None = None, reduce: str = "pca", n_components=50,
                  umap_candidates=tuple(range(50, 501, 50)), fit_rows: int | None = None, standardize: bool = True,
                  normalize: bool = False, axes=None, axes_weight: float = 1.0, n_clusters: int = 20,
                  algorithms=("kmeans", "birch", "ward"), min_agree: int = 2, mapping: str = "hungarian",
                  random_state: int = 0, progress: bool = True) -> dict:
    """The CAE, reducer and voting ensemble of :class:`~galtaxa.taxonomy.UnsupervisedTaxonomy` from flat settings.

    Parameters
    ----------
    cae : bool
        Denoise with a :class:`~galtaxa.taxonomy.cae.CAEDenoiser` (M1).
    cae_kwargs : dict, optional
        Its parameters (``random_state`` and ``progress`` default to the ones given here).
    reduce : {"pca", "umap"}
    n_components : int, float or "auto"
        PCA dimensions / variance target; UMAP dimensions or ``"auto"`` (the Davies-Bouldin scan of M2).
    umap_candidates : sequence of int
        Dimensions the UMAP scan tries.
    fit_rows : int, optional
        Out-of-core PCA (``reduce="pca"`` only).
    standardize : bool
        z-score every feature before the PCA (``reduce="pca"`` only; :class:`~galtaxa.reduce.PCAReducer`).
    normalize : bool
        Scale each galaxy's features to unit length before the PCA (``reduce="pca"`` only).
    axes : array (k, d), optional
        Fixed axes appended to the principal ones, e.g. a galaxy encoder's morphology axes
        (:func:`galtaxa.encode.morphology_axes.encoder_axes`); ``reduce="pca"`` only.
    axes_weight : float
        Their spread in units of the first principal component's (:class:`~galtaxa.reduce.PCAReducer`).
    n_clusters, algorithms, min_agree, mapping
        The voting ensemble; ``n_clusters`` is also the k of the UMAP scan (``scan_k``).
    random_state : int
        Seeds every part.
    progress : bool
        The CAE's progress bars.

    Returns
    -------
    dict
        ``{"cae": CAEDenoiser or None, "reducer": PCAReducer or UMAPReducer, "voting": VotingClustering}``.

    Raises
    ------
    ValueError
        For ``reduce`` other than ``"pca"``/``"umap"``, or ``fit_rows`` or ``axes`` with UMAP.
    """
    if reduce == "pca":
        reducer = PCAReducer(n_components=n_components, standardize=standardize, normalize=normalize,
                             random_state=random_state, fit_rows=fit_rows, axes=axes, axes_weight=axes_weight)
    elif fit_rows is not None:
        raise ValueError(f"fit_rows (out-of-core fitting) is for reduce='pca', not {reduce!r}: set it to None")
    elif axes is not None:
        raise ValueError(f"axes (fixed morphology axes) are appended by reduce='pca', not {reduce!r}")
    elif reduce == "umap":
        reducer = UMAPReducer(n_components=n_components, candidates=umap_candidates, scan_k=n_clusters,
                              random_state=random_state)
    else:
        raise ValueError(f"reduce must be 'pca' or 'umap', got {reduce!r}")
    denoiser = (CAEDenoiser(**{"random_state": random_state, "progress": progress, **(cae_kwargs or {})})
                if cae else None)
    voting = VotingClustering(n_clusters=n_clusters, algorithms=tuple(algorithms), min_agree=min_agree,
                              mapping=mapping, random_state=random_state)
    return {"cae": denoiser, "reducer": reducer, "voting": voting}


def multimodal_parts(params=DEFAULT_PARAMS, purge: bool = True, bounds=DEFAULT_BOUNDS, isolation_forest: bool = True,
                     contamination=0.01, bottleneck: int = 64, hidden=(512, 256), modality_weights="balanced",
                     epochs: int = 100, batch_size: int = 128, lr: float = 1e-3, patience: int = 10,
                     val_fraction: float = 0.1, n_components="bic", candidates=range(2, 21),
                     covariance_type: str = "full", anomaly_quantile: float = 0.02, confidence: float = 0.85,
                     n_init: int = 3, whiten="auto", device=None, random_state: int = 0, progress: bool = True) -> dict:
    """The purger, autoencoder and mixture of :class:`~galtaxa.taxonomy.MultimodalTaxonomy` from flat settings.

    Parameters
    ----------
    params : sequence of str
        The morphology columns the purger screens.
    purge : bool
        Apply the rule bounds and the Isolation Forest; ``False`` gives ``purger=False`` (missing parameters
        are still screened out by the taxonomy).
    bounds, isolation_forest, contamination
        See :class:`~galtaxa.cluster.purge.MorphologyPurger`.
    bottleneck, hidden, modality_weights, epochs, batch_size, lr, patience, val_fraction, device
        See :class:`~galtaxa.reduce.fusion_autoencoder.MultimodalAutoencoder`.
    n_components, candidates, covariance_type, anomaly_quantile, confidence, n_init, whiten
        See :class:`~galtaxa.cluster.gmm.GMMClustering` (``whiten="auto"`` here: the bottleneck PCA-whitened to its
        effective rank for full and tied covariances, z-scored for diagonal ones, :func:`~galtaxa.cluster.gmm.
        auto_whitening`.  With diagonal covariances, what the route fits on a few thousand galaxies or fewer, the
        whitening keeps a few axes and weighs each the same: on the gz1 benchmark split, with 10 components, the
        groups of the route with ``galtaxa-galaxy-v3`` score a purity of 0.832 z-scored against 0.752 whitened,
        and 0.809-0.858 against 0.777-0.799 on three disjoint thirds of it; with the ImageNet Lite0 0.759 against
        0.716, 0.753-0.778 against 0.711-0.747; ``benchmarks/results/galaxy_encoder.md``).
    random_state : int
        Seeds the forest, the autoencoder and the mixture.
    progress : bool
        Their progress bars.

    Returns
    -------
    dict
        ``{"purger": MorphologyPurger or False, "autoencoder": MultimodalAutoencoder, "gmm": GMMClustering}``.
    """
    purger = (MorphologyPurger(params=tuple(params), bounds=bounds, isolation_forest=isolation_forest,
                               contamination=contamination, random_state=random_state) if purge else False)
    autoencoder = MultimodalAutoencoder(bottleneck=bottleneck, hidden=hidden, modality_weights=modality_weights,
                                        epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                                        val_fraction=val_fraction, random_state=random_state, device=device,
                                        progress=progress)
    gmm = GMMClustering(n_components=n_components, candidates=candidates, covariance_type=covariance_type,
                        anomaly_quantile=anomaly_quantile, confidence=confidence, random_state=random_state,
                        n_init=n_init, progress=progress, whiten=whiten)
    return {"purger": purger, "autoencoder": autoencoder, "gmm": gmm}


def part_to_fit(taxonomy, name: str, defaults):
    """The part ``name`` of ``taxonomy`` that a fit may change: a clone of the one given, or, for ``None``, the
    default part that ``defaults`` (:func:`usmorph_parts` or :func:`multimodal_parts`) builds with the taxonomy's
    ``random_state`` and ``progress``; ``False`` (no such step) is returned as it is.  The part given is never
    fitted itself."""
    given = getattr(taxonomy, name)
    if given is None:
        return defaults(random_state=taxonomy.random_state, progress=taxonomy.progress)[name]
    return given if given is False else clone(given)
