"""Every "config -> object" builder of galtaxa in one place.

Each function takes a validated config (:func:`galtaxa.config.load_config`) and returns the object its section
describes: the input source, the conditioner, the PSF, the encoder list of method M3, the two taxonomy routes
and the supervised models.  Stages and commands build objects only through these.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..encode import get_encoder
from ..encode.galaxy_encoder import is_galaxy_encoder
from ..encode.morphology_axes import MorphologyAxes, encoder_axes
from ..io.open import InputNotFoundError, open_input_section
from ..preprocess import Conditioner
from ..preprocess.condition import auto_scaling
from ..status import log
from ..supervise import AutoencoderSSL, GalaxyClassifier, SimCLR
from ..supervise.adapt import EncoderAdaptation
from ..taxonomy import MultimodalTaxonomy, UnsupervisedTaxonomy
from ..taxonomy.parts import multimodal_parts, usmorph_parts
from ..compute.runner import LOCAL, ChunkRunner

__all__ = ["open_input", "resolve_auto_settings", "use_descriptors", "standardize_features", "normalize_features",
           "morphology_axes", "morphology_directions",
           "multimodal_conditioning", "make_conditioner", "load_psf", "encoder_specs",
           "encoder_from_config", "adaptation_from_config", "usmorph_from_config", "multimodal_taxonomy_from_config",
           "classifier_from_config", "ssl_from_config"]


def open_input(cfg: dict):
    """The :class:`~galtaxa.io.base.CutoutSource` described by ``cfg["input"]``.

    Parameters
    ----------
    cfg : dict
        A validated config.

    Returns
    -------
    CutoutSource

    Raises
    ------
    FileNotFoundError
        When ``input.path`` is not set.
    """
    inp = cfg["input"]
    if not inp["path"]:
        raise FileNotFoundError("input.path is not set in the config: point it at your cutouts")
    if not Path(inp["path"]).exists():
        raise InputNotFoundError(f"cannot open {inp['path']}: no such file or folder (check input.path in the config)")
    return open_input_section(inp)


def use_descriptors(cfg: dict) -> bool:
    """Whether the clustering space appends the 16 image descriptors (``reduce.descriptors``).

    ``auto`` is false for galtaxa's galaxy encoders and true for the others: a galaxy encoder was trained to
    predict these descriptors (its ``measure`` objective), so its embedding already carries them, and appending
    them again counts them twice and brings their dependence on the survey's pixel scale and depth back (on the
    gz1 benchmark split, ``galtaxa-galaxy-v2`` at PCA 16 without them: 30-label probe 0.622 against 0.605 with
    them, and no loss on the re-imaged survey, where with them it loses 0.03); an ImageNet encoder sees colour
    and flattening least, and the descriptors add them (30-label probe 0.525 against 0.489;
    ``benchmarks/results/galaxy_encoder.md``).
    """
    return _reduce_choice(cfg, "descriptors", galaxy_encoder=False)


def standardize_features(cfg: dict) -> bool:
    """Whether the PCA z-scores every deep feature first (``reduce.standardize``).

    ``auto`` is true for galtaxa's galaxy encoders and false for the others.  A galaxy encoder's 64 features were
    all trained on galaxies and z-scoring them changes little (on the gz1 benchmark split the default ``galtaxa
    run`` keeps 90% at vote purity 0.866 with it, 86% at 0.855 without).  An ImageNet encoder's 1,280 pooled
    features include many that vary little on galaxies; z-scored, each weighs as much as the informative ones, and
    the run keeps 84% at purity 0.790 against 82% at 0.835 without it, and its probe collapses on one-band images
    of the re-imaged survey (30-label F1 0.26 against 0.51; ``benchmarks/results/galaxy_encoder_standardize.md``).
    """
    return _reduce_choice(cfg, "standardize", galaxy_encoder=True)


def normalize_features(cfg: dict) -> bool:
    """Whether each galaxy's deep features are scaled to unit length before the PCA (``reduce.normalize``).

    ``auto`` is true for galtaxa's galaxy encoders and false for the others.  A galaxy encoder is trained with
    contrastive losses on the unit sphere (the NT-Xent of its views, the supervised contrastive loss of its
    classes), so the direction of its embedding carries the morphology and its length mostly the contrast of the
    picture.  On the gz1 benchmark split, ``galtaxa-galaxy-v3`` with unit-length features: 30-label probe 0.649
    against 0.629, unanimous vote 52% kept at purity 0.866 against 37% at 0.869; ``galtaxa-galaxy-v2``: the vote's
    2-of-3 purity over three voter seeds 0.857 (range 0.852-0.860) at 89% kept, against 0.845 (0.831-0.856) at
    87%, the probe 0.618 against 0.622, no loss on the re-imaged survey.  The ImageNet Lite0 gains nothing (purity
    0.819 against 0.824) and loses on the one-band re-imaged survey (0.45 against 0.51;
    ``benchmarks/results/galaxy_encoder.md``).
    """
    return _reduce_choice(cfg, "normalize", galaxy_encoder=True)


def morphology_axes(cfg: dict, checkpoint="config") -> MorphologyAxes | None:
    """The morphology axes the PCA appends (``reduce.morphology_axes``), or ``None``.

    A galaxy encoder may ship the Fisher discriminant directions of its embedding for the Galaxy Zoo classes of its
    own training galaxies (:mod:`galtaxa.encode.morphology_axes`).  ``auto`` appends them when the encoder ships
    them and ``reduce.method`` is ``pca``.  On the gz1 benchmark split, with ``galtaxa-galaxy-v3``: 30-label probe
    0.664 against 0.640, the default run's vote 93% kept at purity 0.868 against 90% at 0.861 (over three voter
    seeds 0.866 against 0.856; on three disjoint thirds 0.845 / 0.876 / 0.887 against 0.843 / 0.871 / 0.881), the
    unanimous galaxies neither more nor purer; the re-imaged survey's probe loses 0.022 / 0.028 (colour / one band)
    against its plain probe.  With ``galtaxa-galaxy-v4``: probe 0.673 against 0.656, the run 91% at 0.867 against
    90% at 0.869, unanimous 48% at 0.876 against 45% at 0.894 (``benchmarks/results/galaxy_encoder.md``).  The
    default ``galtaxa-galaxy-v5`` ships its axes too.

    Parameters
    ----------
    cfg : dict
    checkpoint : path-like or None
        The encoder weights the features come from; ``"config"`` (default): ``encoder.checkpoint``.  The adapt
        stage's weights have no axes of their own (their embedding moved), so none are appended to them.

    Raises
    ------
    ValueError
        ``true`` with an encoder that ships no axes, or with ``reduce.method: umap``.
    """
    value = cfg["reduce"]["morphology_axes"]
    if value is False or (value == "auto" and cfg["reduce"]["method"] != "pca"):
        return None
    checkpoint = cfg["encoder"]["checkpoint"] if checkpoint == "config" else checkpoint
    axes = encoder_axes(cfg["encoder"]["name"], checkpoint)
    if value is True and cfg["reduce"]["method"] != "pca":
        raise ValueError("reduce.morphology_axes: true needs reduce.method: pca (the axes are appended to the PCA's)")
    if value is True and axes is None and checkpoint == cfg["encoder"]["checkpoint"]:
        raise ValueError(f"reduce.morphology_axes: true, but the encoder {cfg['encoder']['name']!r} ships no "
                         "morphology axes (a NAME.axes.npz file beside its weights); set it to auto or false")
    return axes


def morphology_directions(cfg: dict, checkpoint="config"):
    """The directions ``(k, d)`` of :func:`morphology_axes` that the PCA appends (its ``axes``), or ``None``."""
    axes = morphology_axes(cfg, checkpoint)
    return None if axes is None else axes.directions


def _reduce_choice(cfg: dict, key: str, galaxy_encoder: bool) -> bool:
    """``reduce.<key>`` as a bool: an explicit choice, or for ``auto`` ``galaxy_encoder`` with galtaxa's galaxy
    encoders and its opposite with the others."""
    value = cfg["reduce"][key]
    if value == "auto":
        return galaxy_encoder == is_galaxy_encoder(cfg["encoder"]["name"])
    return bool(value)


#: The ``auto`` settings of the ``reduce`` section resolved by the encoder, and the function that chooses each.
_REDUCE_AUTO = {"descriptors": use_descriptors, "standardize": standardize_features,
                "normalize": normalize_features, "morphology_axes": lambda cfg: morphology_axes(cfg) is not None}


#: Method M3's conditioning of the encoders' view (Selim et al.): Gaussian smoothing 1.5 px, then a z-score.
M3_CONDITIONING = {"smoothing_sigma": 1.5, "zscore": True}


def multimodal_conditioning(mm: dict, name: str) -> dict:
    """The view that the M3 route's encoder ``name`` reads: ``{"smoothing_sigma": float, "zscore": bool}``.

    An explicit ``multimodal.smoothing_sigma`` / ``multimodal.zscore`` applies to every encoder.  ``auto`` gives
    each encoder the pixels it was trained on: M3's smoothed, z-scored image (sigma 1.5 px) for timm encoders, as
    the paper feeds its ImageNet CNNs, and the conditioned image itself (no smoothing; each image rescaled to
    [0, 1], as the USmorph route hands every image to its encoder) for galtaxa's galaxy encoders, which were
    trained on the conditioned images (``scripts/train_galaxy_encoder.py``; v4 on exactly these rescaled pixels).  On the gz1
    benchmark split, at 10 components, the route's groups with ``galtaxa-galaxy-v3`` score a purity of 0.832
    against 0.772 on the smoothed, z-scored view, and 0.809-0.858 against 0.722-0.810 on three disjoint thirds of
    it; the ImageNet Lite0 gains from the conditioned image on the whole split (0.788 against 0.764) and loses on
    one third (0.718 against 0.765), so it keeps M3's view (``benchmarks/results/galaxy_encoder.md``).

    Parameters
    ----------
    mm : dict
        The config's ``multimodal`` section.
    name : str
        The encoder's name (``multimodal.encoders``).

    Returns
    -------
    dict
    """
    trained_view = {"smoothing_sigma": 0.0, "zscore": False} if is_galaxy_encoder(name) else M3_CONDITIONING
    return {key: (trained_view[key] if mm[key] == "auto" else mm[key]) for key in M3_CONDITIONING}


def resolve_auto_settings(cfg: dict, source) -> dict:
    """A copy of ``cfg`` with ``conditioning.scaling: auto`` replaced by the choice for ``source``,
    ``reduce.descriptors``, ``reduce.standardize``, ``reduce.normalize`` and ``reduce.morphology_axes: auto`` by the
    choices for the encoder (:func:`use_descriptors`, :func:`standardize_features`, :func:`normalize_features`,
    :func:`morphology_axes`), and
    ``multimodal.smoothing_sigma`` and ``multimodal.zscore: auto`` by the choice for the M3 encoders
    (:func:`multimodal_conditioning`) when the route is M3's and they all read the same view.

    The choices (:func:`galtaxa.preprocess.condition.auto_scaling`) are logged and, through the config, recorded
    in the catalog header and the run's ``config.yaml``.

    Parameters
    ----------
    cfg : dict
    source : CutoutSource

    Returns
    -------
    dict
        ``cfg`` itself when nothing is ``auto``, else a resolved copy.
    """
    reduce_auto = [key for key in _REDUCE_AUTO if cfg["reduce"][key] == "auto"]
    view_auto = ([key for key in M3_CONDITIONING if cfg["multimodal"][key] == "auto"]
                 if cfg["route"] == "multimodal" else [])  # the USmorph route reads no M3 view
    if cfg["conditioning"]["scaling"] != "auto" and not reduce_auto and not view_auto:
        return cfg
    out = copy.deepcopy(cfg)
    if cfg["conditioning"]["scaling"] == "auto":
        out["conditioning"]["scaling"] = auto_scaling(source)
        log.info("conditioning.scaling: auto -> %s for a %s input", out["conditioning"]["scaling"],
                 getattr(source, "kind", "?"))
    for key in reduce_auto:
        out["reduce"][key] = _REDUCE_AUTO[key](cfg)
        log.info("reduce.%s: auto -> %s for the encoder %s", key, out["reduce"][key], cfg["encoder"]["name"])
    names = [spec["name"] for spec in encoder_specs(cfg["multimodal"]["encoders"])]
    for key in view_auto:
        choices = {multimodal_conditioning(cfg["multimodal"], name)[key] for name in names}
        if len(choices) == 1:  # encoders of both kinds keep 'auto': each reads the view it was trained on
            out["multimodal"][key] = choices.pop()
            log.info("multimodal.%s: auto -> %s for %s", key, out["multimodal"][key], ", ".join(names))
    return out


def make_conditioner(cfg: dict, source=None):
    """The :class:`~galtaxa.preprocess.Conditioner` described by ``cfg["conditioning"]``.

    Parameters
    ----------
    cfg : dict
    source : CutoutSource, optional
        ``scaling: auto`` is resolved for it (:func:`resolve_auto_settings`); without a source it falls back
        to ``"asinh"``.

    Returns
    -------
    Conditioner
    """
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


def load_psf(path) -> np.ndarray | None:
    """The PSF image of ``measure.psf`` (FITS primary/first image HDU or .npy), normalised to unit sum.

    Parameters
    ----------
    path : path-like or None

    Returns
    -------
    numpy.ndarray or None
        None when ``path`` is None.

    Raises
    ------
    ValueError
        Naming the file when it is not a finite, positive-sum 2-D image.
    """
    if path is None:
        return None
    path = Path(path).expanduser()
    if path.suffix == ".npy":
        psf = np.load(path)
    else:
        with fits.open(path) as hdul:
            psf = next((h.data for h in hdul if h.data is not None and np.ndim(h.data) >= 2), None)
        if psf is None:
            raise ValueError(f"{path}: no image HDU holds a PSF")
    psf = np.squeeze(np.asarray(psf, dtype=np.float64))
    if psf.ndim != 2 or min(psf.shape) < 3 or not np.isfinite(psf).all() or psf.sum() <= 0:
        raise ValueError(f"{path}: a PSF must be a finite 2-D image of at least 3x3 px with a positive sum; "
                         f"got shape {psf.shape}")
    return psf / psf.sum()


def encoder_specs(encoders) -> list[dict]:
    """Normalise ``multimodal.encoders`` entries to ``{"name", "view", "checkpoint"}`` dicts.

    Parameters
    ----------
    encoders : sequence
        Each entry a timm name (``"efficientnet_lite0"``: the conditioned image), ``"name@polar"`` (the same
        encoder on the adaptive polar unfolding of the image) or a mapping ``{name, view, checkpoint}``.

    Returns
    -------
    list of dict

    Raises
    ------
    ValueError
        For an empty list, an unreadable entry or an unknown view.

    Examples
    --------
    >>> encoder_specs(["efficientnet_lite0@polar"])
    [{'name': 'efficientnet_lite0', 'view': 'polar', 'checkpoint': None}]
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


def encoder_from_config(cfg: dict, name: str | None = None, checkpoint=None):
    """The :class:`~galtaxa.encode.Encoder` of the config's ``encoder`` section.

    Parameters
    ----------
    cfg : dict
    name : str, optional
        Another model name (default ``encoder.name``).
    checkpoint : path-like, optional
        Other weights (default ``encoder.checkpoint``).

    Returns
    -------
    Encoder
    """
    enc = cfg["encoder"]
    return get_encoder(name or enc["name"], checkpoint=checkpoint or enc["checkpoint"], input_size=enc["input_size"])


def adaptation_from_config(cfg: dict, checkpoint_dir=None, progress: bool = True):
    """The :class:`~galtaxa.supervise.EncoderAdaptation` of the config's ``adapt`` section, for the encoder of its
    ``encoder`` section."""
    a = cfg["adapt"]
    return EncoderAdaptation(encoder_from_config(cfg), epochs=a["epochs"], train_blocks=a["train_blocks"],
                             batch_size=a["batch_size"], lr=a["lr"], temperature=a["temperature"],
                             objective=a["objective"], measure_weight=float(a["measure_weight"]),
                             measure_targets=a["measure_targets"],
                             max_galaxies=a["max_galaxies"], checkpoint_dir=checkpoint_dir, random_state=cfg["seed"],
                             progress=progress)


def chunk_runner_from_config(cfg: dict, progress: bool = True):
    """The :class:`~galtaxa.compute.runner.ChunkRunner` of the config's ``compute:`` section (where the chunks of a
    stage run: this process, a local Dask cluster or a Dask scheduler).

    Parameters
    ----------
    cfg : dict
    progress : bool

    Returns
    -------
    ChunkRunner
    """
    c = cfg.get("compute") or {}
    return ChunkRunner(c.get("scheduler", LOCAL), c.get("n_workers"), c.get("chunk_size", 256), c.get("retries", 2),
                       progress)


def usmorph_from_config(cfg: dict, progress: bool = True):
    """The :class:`~galtaxa.taxonomy.UnsupervisedTaxonomy` of the config's cae, polar, encoder, reduce and
    cluster sections (methods M1/M2).

    The ``cae``, ``reduce`` (method, n_components, fit_rows, standardize, normalize, morphology_axes, axes_weight)
    and ``cluster`` sections
    become the taxonomy's parts (``cae``, ``reducer``, ``voting``) through
    :func:`~galtaxa.taxonomy.parts.usmorph_parts`, seeded with ``seed``; the UMAP scan scores with
    ``cluster.n_clusters``.

    Parameters
    ----------
    cfg : dict
    progress : bool

    Returns
    -------
    UnsupervisedTaxonomy
    """
    parts = usmorph_parts(
        cae=cfg["cae"]["enabled"], cae_kwargs={"latent_dim": cfg["cae"]["latent_dim"], "epochs": cfg["cae"]["epochs"]},
        reduce=cfg["reduce"]["method"], n_components=cfg["reduce"]["n_components"],
        fit_rows=cfg["reduce"].get("fit_rows"), standardize=standardize_features(cfg),
        normalize=normalize_features(cfg), axes=morphology_directions(cfg),
        axes_weight=float(cfg["reduce"]["axes_weight"]), n_clusters=cfg["cluster"]["n_clusters"],
        algorithms=tuple(cfg["cluster"]["algorithms"]), min_agree=cfg["cluster"]["min_agree"],
        mapping=cfg["cluster"]["mapping"], random_state=cfg["seed"], progress=progress)
    return UnsupervisedTaxonomy(
        polar=cfg["polar"]["enabled"], angle_step=cfg["polar"]["angle_step"],
        encoder=cfg["encoder"]["name"], checkpoint=cfg["encoder"]["checkpoint"],
        input_size=cfg["encoder"]["input_size"], batch_size=cfg["encoder"]["batch_size"],
        tta=cfg["encoder"]["tta"], descriptors=use_descriptors(cfg),
        descriptor_weight=cfg["reduce"]["descriptor_weight"],
        random_state=cfg["seed"], progress=progress, **parts,
    )


def multimodal_taxonomy_from_config(cfg: dict, progress: bool = True):
    """The :class:`~galtaxa.taxonomy.MultimodalTaxonomy` of ``cfg["multimodal"]`` (method M3).

    The section's purge, autoencoder and mixture settings become the taxonomy's parts (``purger``,
    ``autoencoder``, ``gmm``) through :func:`~galtaxa.taxonomy.parts.multimodal_parts`, seeded with ``seed``.

    Parameters
    ----------
    cfg : dict
    progress : bool

    Returns
    -------
    MultimodalTaxonomy
    """
    mm = cfg["multimodal"]
    bounds = {k: tuple(v) for k, v in mm["bounds"].items() if v is not None}
    parts = multimodal_parts(params=tuple(mm["params"]), purge=mm["purge"], bounds=bounds or None,
                             isolation_forest=mm["isolation_forest"], contamination=mm["contamination"],
                             bottleneck=mm["bottleneck"], epochs=mm["epochs"], n_components=mm["n_components"],
                             candidates=tuple(mm["candidates"]), covariance_type=mm["covariance_type"],
                             anomaly_quantile=mm["anomaly_quantile"], confidence=mm["confidence"],
                             whiten=None if mm.get("whiten", "auto") == "none" else mm.get("whiten", "auto"),
                             random_state=cfg["seed"], progress=progress)
    return MultimodalTaxonomy(params=tuple(mm["params"]), random_state=cfg["seed"], progress=progress, **parts)


def classifier_from_config(cfg: dict, out: Path, progress: bool = True):
    """The :class:`~galtaxa.supervise.GalaxyClassifier` of ``cfg["supervised"]`` (method M4).

    Parameters
    ----------
    cfg : dict
    out : Path
        The run's ``supervised/`` folder; checkpoints go to ``out / "checkpoints"``.
    progress : bool

    Returns
    -------
    GalaxyClassifier
    """
    s = cfg["supervised"]
    return GalaxyClassifier(backbone=s["backbone"], pretrained=s["pretrained"], checkpoint=s["checkpoint"],
                            mode=s["mode"], trainable_stages=s["trainable_stages"], head=s["head"],
                            input_size=s["input_size"], epochs=s["epochs"], batch_size=s["batch_size"],
                            lr=float(s["lr"]), balance=s["balance"], augment=s["augment"], tta=s["tta"],
                            patience=s["patience"], val_fraction=float(s["split"][1]), prior=s["prior"],
                            calibrate=s["calibrate"], target_precision=float(s["target_precision"]),
                            confidence_threshold=s["confidence_threshold"], decision=s["decision"],
                            checkpoint_dir=Path(out) / "checkpoints", random_state=cfg["seed"], progress=progress)


def ssl_from_config(cfg: dict, out: Path, progress: bool = True):
    """The self-supervised model of ``cfg["supervised"]`` (method M5): SimCLR or the autoencoder.

    Parameters
    ----------
    cfg : dict
    out : Path
        The run's ``supervised/`` folder; checkpoints and the encoder go to ``out / "ssl"``.
    progress : bool

    Returns
    -------
    SimCLR or AutoencoderSSL
    """
    s = cfg["supervised"]
    common = dict(backbone=s["ssl_backbone"], input_size=s["ssl_input_size"], epochs=s["ssl_epochs"],
                  checkpoint_dir=Path(out) / "ssl", random_state=cfg["seed"], progress=progress)
    if s["ssl_method"] == "simclr":
        return SimCLR(temperature=float(s["temperature"]), **common)
    return AutoencoderSSL(**common)
