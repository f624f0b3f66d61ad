"""The pipeline configuration: one YAML file, validated before any work starts.

``galtaxa init`` writes a commented default (:func:`default_config_yaml`);
:func:`load_config` reads a YAML file, merges it over the defaults and checks
every key and value, so a typo fails at once with a message that says what to
change instead of an hour into a run.

Beyond the keys and types, :func:`validate_config` bounds what a config may hold: at most
:data:`MAX_CONFIG_VALUES` values once YAML anchors and aliases are expanded (an "alias bomb" of a few lines
would otherwise expand to billions when the config is written into the catalogs), nesting at most
:data:`MAX_CONFIG_DEPTH` deep, integers within what the libraries accept (``seed`` in ``0 .. 2**32 - 1``,
any other integer within ``+-(2**31 - 1)``).  Every path setting (:data:`PATH_KEYS`) has ``~`` and
``$VAR`` / ``${VAR}`` expanded here, once, so every part of galtaxa sees the same path; an unset variable is
refused.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from .status import log
from .compute.runner import check_scheduler

__all__ = ["ConfigError", "DEFAULTS", "default_config", "default_config_yaml", "load_config", "validate_config", "merge",
           "fit_to_input", "MIN_GALAXIES", "expand_path", "PATH_KEYS", "MAX_CONFIG_VALUES", "MAX_CONFIG_DEPTH",
           "MAX_CONFIG_BYTES", "SEED_MAX", "resolve_config_paths", "portable_config"]


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and what to change."""


#: Largest ``seed`` (NumPy's legacy generators and scikit-learn accept 32-bit seeds).
SEED_MAX = 2**32 - 1
#: Largest magnitude of any other integer setting (fits the C ints of the libraries below galtaxa).
INT_MAX = 2**31 - 1
#: Most values a config may hold once YAML anchors/aliases are expanded (a real config holds a few hundred).
MAX_CONFIG_VALUES = 100_000
#: Deepest nesting of lists and mappings in a config.
MAX_CONFIG_DEPTH = 32
#: Largest config file read.
MAX_CONFIG_BYTES = 4 * 2**20

#: The settings that are paths (``(section, key)``; ``""`` is the top level): ``~`` and ``$VAR`` are expanded
#: in them by :func:`validate_config`, as in the ``path`` of ``validation.references`` entries and the
#: ``checkpoint`` of ``multimodal.encoders`` mappings.
PATH_KEYS = (("", "run_dir"), ("input", "path"), ("input", "labels"), ("input", "catalog"),
             ("encoder", "checkpoint"), ("labelling", "mapping_file"), ("measure", "psf"),
             ("supervised", "checkpoint"), ("supervised", "galaxy_labels"), ("supervised", "adversarial_target"))

# (default, type(s) allowed, check or None, help text)
_SCHEMA: dict[str, dict[str, tuple]] = {
    "": {
        "seed": (0, int, lambda v: 0 <= v <= SEED_MAX, "seed for every random step (clustering, training, sampling), 0 to 4294967295 (2**32 - 1)"),
        "run_dir": ("galtaxa-run", str, lambda v: bool(v.strip()), "folder for cached stages, catalogs and the report (~ and $VAR are expanded)"),
        "route": ("usmorph", str, lambda v: v in ("usmorph", "multimodal"), "unsupervised route: usmorph (M1/M2 voting ensemble) | multimodal (M3 autoencoder + GMM)"),
    },
    "input": {
        "path": (None, (str, type(None)), None, "FITS/image folder, .h5, .npy/.npz, or a mosaic FITS"),
        "kind": ("auto", str, lambda v: v in ("auto", "fits", "images", "hdf5", "array", "mosaic", "catalog"), "reader: auto|fits|images|hdf5|array|mosaic|catalog (CSV/Parquet with id_str, file_loc)"),
        "labels": ("auto", (str, type(None)), None, "CSV of ids and labels for image folders ('auto' finds labels.csv)"),
        "hdu": (None, (int, str, type(None)), None, "FITS HDU index or EXTNAME (null: every image HDU)"),
        "mode": ("rgb", str, lambda v: v in ("rgb", "grey", "r", "g", "b"), "colour handling for JPEG/PNG: rgb|grey|r|g|b"),
        "catalog": (None, (str, type(None)), None, "RA/Dec catalog for cutouts from a mosaic"),
        "cutout_size": (100, (int, float), lambda v: v > 0, "mosaic cutout size"),
        "cutout_unit": ("pix", str, lambda v: v in ("pix", "arcsec"), "unit of cutout_size: pix|arcsec"),
        "key": (None, (str, type(None)), None, "array of an .npz archive holding the images (null: images/x/data/arr_0 or the only one)"),
        "detect_error_pictures": (True, bool, None, "reject survey error placeholders (flat canvas + text, e.g. SDSS 'getFrames() has failed') among JPEG/PNG pictures"),
    },
    "conditioning": {
        "size": (128, int, lambda v: v >= 16, "side of the square images fed to the pipeline (px)"),
        "geometry": ("crop_resize", str, lambda v: v in ("crop", "resize", "crop_resize", "frame"), "crop|resize|crop_resize|frame (centre on the galaxy, scale by its radius) to reach `size`"),
        "crop_fraction": (0.38, (int, float), lambda v: 0 < v <= 1, "central fraction kept before resizing (crop_resize; frame when no source is found); 0.38 suits SDSS/Galaxy Zoo-style stamps whose galaxy's R90 spans ~1/4 of the side"),
        "frame_scale": (1.5, (int, float), lambda v: v > 0, "half-side of the frame crop in units of the galaxy's r90 (geometry: frame)"),
        "background": (None, (str, type(None)), lambda v: v in (None, "sigma_clip", "border", "photutils"), "sky subtraction for raw counts: null|sigma_clip|border|photutils"),
        "scaling": ("auto", str, lambda v: v in ("auto", "display", "asinh", "linear", "log", "zscore", "none", "lupton"), "pixel scaling: auto (display for JPEG/PNG/HDF5 pictures, asinh for FITS flux)|display|asinh|linear|log|zscore|lupton|none"),
        "channels": ("all", (str, int), None, "all|mean|luminance|<index>"),
    },
    "cae": {
        "enabled": (False, bool, None, "denoise with a convolutional autoencoder trained on the data (M1)"),
        "latent_dim": (40, int, lambda v: v >= 2, "bottleneck size"),
        "epochs": (20, int, lambda v: v >= 1, "maximum training epochs (early stopping on validation loss)"),
    },
    "polar": {
        "enabled": (False, bool, None, "adaptive polar unfolding for rotation invariance (M1/M2; off by default: see the representation benchmark)"),
        "angle_step": (0.05, (int, float), lambda v: 0 < v < 1, "angular step of the rays (rad)"),
    },
    "encoder": {
        "name": ("galtaxa-galaxy-v1", str, None, "galtaxa-galaxy-v1 (galtaxa's galaxy encoder, shipped: 64-d, trained on Galaxy Zoo galaxies and simulations; galtaxa-galaxy with checkpoint: your own) or a timm model name (efficientnet_lite0: offline ImageNet weights; convnext_xlarge.fb_in22k, hf_hub:...)"),
        "checkpoint": (None, (str, type(None)), None, "local weights file; null = offline default / HF cache"),
        "input_size": (128, int, lambda v: v >= 32, "images are resized to this before the encoder"),
        "batch_size": (32, int, lambda v: v >= 1, "encoder batch size"),
        "tta": ("none", str, lambda v: v in ("none", "flips", "d4"), "average features over flips (4 views) or the 8 dihedral views: none|flips|d4"),
    },
    "adapt": {
        "enabled": (False, bool, None, "adapt the encoder to the run's own galaxies first (SimCLR on rotated, blurred, rescaled, noisier views; `galtaxa adapt`)"),
        "epochs": (2, int, lambda v: v >= 1, "adaptation epochs"),
        "train_blocks": (2, (int, str), lambda v: v == "all" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1), "network stages trained (the rest stays frozen) or 'all'"),
        "batch_size": (64, int, lambda v: v >= 2, "galaxies per step (the others of a batch are the negatives)"),
        "lr": (1e-4, (int, float), lambda v: v > 0, "learning rate of the trained stages"),
        "temperature": (0.2, (int, float), lambda v: v > 0, "NT-Xent temperature"),
        "max_galaxies": (20000, (int, type(None)), lambda v: v is None or v >= 2, "adapt on a seeded subset of at most this many galaxies"),
    },
    "reduce": {
        "method": ("pca", str, lambda v: v in ("pca", "umap"), "pca|umap"),
        "n_components": (50, (int, float, str), lambda v: v == "auto" or (isinstance(v, (int, float)) and v > 0), "dims (int), variance target (0-1, PCA) or 'auto' (UMAP Davies-Bouldin scan)"),
        "descriptors": (True, bool, None, "append 16 image descriptors (axis ratio, concentration, asymmetry, colours, ...) to the reduced features"),
        "descriptor_weight": (0.5, (int, float), lambda v: v > 0, "weight of the standardised descriptors against the reduced deep features"),
        "fit_rows": (None, (int, type(None)), lambda v: v is None or (not isinstance(v, bool) and v >= 2), "out-of-core PCA for large runs: fit it on a seeded random subsample of this many usable galaxies and project the features memory map chunk by chunk (memory: the subsample + one chunk); null = fit on all, in memory"),
    },
    "cluster": {
        "n_clusters": (20, int, lambda v: v >= 2, "groups per algorithm (k)"),
        "algorithms": (["kmeans", "birch", "ward"], list, lambda v: len(v) >= 1 and set(v) <= {"kmeans", "birch", "ward"}, "voters"),
        "min_agree": (2, int, lambda v: v >= 1, "keep a galaxy when at least this many voters agree"),
        "mapping": ("hungarian", str, lambda v: v in ("overlap", "hungarian"), "align voters to k-means: overlap|hungarian"),
    },
    "labelling": {
        "mapping_file": (None, (str, type(None)), None, "YAML with inspectors' group -> class assignments"),
        "n_per_group": (100, int, lambda v: v >= 1, "galaxies per group mosaic"),
    },
    "measure": {
        "enabled": (True, bool, None, "non-parametric morphology with statmorph"),
        "n_jobs": (-1, int, lambda v: v == -1 or v >= 1, "worker processes (-1 = all cores)"),
        "gain": (None, (int, float, type(None)), lambda v: v is None or v > 0, "electrons per count (null: weight map from the sky noise)"),
        "pixel_scale": (None, (int, float, str, type(None)), None, "arcsec/px (number or metadata column)"),
        "redshift": (None, (int, float, str, type(None)), None, "redshift (number or metadata column) for r_e in kpc"),
        "psf": (None, (str, type(None)), None, "PSF image (FITS or .npy, 2-D, the cutouts' pixel scale) for statmorph's Sersic fit; null = none"),
        "background": ("auto", str, lambda v: v in ("auto", "none"), "sky of each stamp: auto (estimated from the stamp and subtracted: raw counts, stamps with sky around the galaxy) | none (the cutouts are already sky-subtracted, e.g. cut from a sky-subtracted mosaic or simulated: an estimate from a stamp the galaxy fills takes its wings for sky)"),
        "families": (None, (list, type(None)), lambda v: v is None or (len(v) >= 1 and set(v) <= {"cas", "gini_m20", "mid", "sersic", "g2_psi"}), "statistic families measured: null = all, or a list of cas, gini_m20, mid, sersic, g2_psi (M3 needs [cas, gini_m20])"),
        "engine": ("fast", str, lambda v: v in ("fast", "exact", "statmorph"), "how the morphology is computed: fast (statmorph's definitions within a stated tolerance, about 10x faster than plain statmorph; benchmarks/results/measure_speed.md) | exact (statmorph's numbers to 1e-9, about 3x faster) | statmorph (plain statmorph on the whole stamp, the reference)"),
    },
    "compute": {
        "scheduler": ("local", str, lambda v: _scheduler_ok(v), "where the per-galaxy stages run: local (this process, no Dask) | processes (a Dask LocalCluster of n_workers processes) | the address of a dask.distributed scheduler, e.g. tcp://10.0.0.5:8786 (`galtaxa run --scheduler`)"),
        "n_workers": (None, (int, type(None)), lambda v: v is None or v >= 1, "worker processes of scheduler: processes (null = one per core)"),
        "chunk_size": (256, int, lambda v: v >= 1, "galaxies per task and per resumable part (the measure stage; the read stage on Dask)"),
        "retries": (2, int, lambda v: v >= 0, "times a Dask task that failed is run again (a task whose worker died is rescheduled by Dask)"),
    },
    "multimodal": {
        "smoothing_sigma": (1.5, (int, float), lambda v: v >= 0, "Gaussian smoothing sigma (px) before the encoders; 0 = none (M3)"),
        "zscore": (True, bool, None, "z-score each image; the encoder then sees exactly the z-scored pixels (M3)"),
        "encoders": (["efficientnet_lite0", "efficientnet_lite0@polar"], list, lambda v: _encoders_ok(v), "encoders fused: timm names, 'name@polar' for the polar-unfolded view, or {name, view, checkpoint} mappings"),
        "params": (["C", "A", "S", "gini", "m20"], list, lambda v: len(v) >= 1 and all(isinstance(p, str) and p for p in v), "morphology columns fused with the deep features (z-scored)"),
        "purge": (True, bool, None, "drop galaxies outside the bounds and Isolation Forest outliers (kept in the catalog as 'purged')"),
        "bounds": ({"C": [1.0, 7.0], "A": [None, 1.0]}, dict, lambda v: _bounds_ok(v), "kept interval low < value <= high per column (null = open side; a column set to null has no bound)"),
        "isolation_forest": (True, bool, None, "Isolation Forest over the z-scored parameters after the bounds"),
        "contamination": (0.01, (float, str), lambda v: v == "auto" or (isinstance(v, float) and 0 < v <= 0.5), "Isolation Forest share flagged: float in (0, 0.5] or 'auto'"),
        "bottleneck": (64, int, lambda v: v >= 2, "size of the multimodal autoencoder bottleneck"),
        "epochs": (100, int, lambda v: v >= 1, "maximum autoencoder epochs (early stopping on a validation split)"),
        "n_components": ("bic", (int, str), lambda v: v == "bic" or (isinstance(v, int) and v >= 1), "GMM components: an integer or 'bic'"),
        "covariance_type": ("full", str, lambda v: v in ("full", "tied", "diag", "spherical"), "GMM covariances: full (M3) | diag | tied | spherical; full needs > bottleneck members per component (falls back to diag when it cannot be fitted)"),
        "whiten": ("pca", str, lambda v: v in ("pca", "standardize", "none"), "map of the bottleneck before the GMM: pca (z-score + PCA whitening to its effective rank) | standardize | none"),
        "candidates": (list(range(2, 21)), list, lambda v: len(v) >= 1 and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in v), "component numbers scanned by BIC"),
        "anomaly_quantile": (0.02, float, lambda v: 0 <= v < 0.5, "share of lowest GMM log-likelihood flagged as anomalies"),
        "confidence": (0.85, float, lambda v: 0 <= v < 1, "membership probability above which a galaxy is 'confident'"),
    },
    "report": {
        "enabled": (True, bool, None, "write the HTML validation report"),
    },
    "validation": {
        "references": ([], list, None, "reference catalogs joined to the run: [{path, by: id|sky, id_column, ra_column, dec_column, max_sep_arcsec, prefix, rules: gz_hubble|gz2|gz_decals|gz1|gz1_leaf|FILE.yaml}] (galtaxa validate)"),
        "subsample": ([], (list, str), None, "physical subsample for the morphology, ETG/LTG and completeness sections, e.g. ['mass > 1e10', '0.2 < z < 1.2'] (input or reference columns)"),
    },
    "supervised": {
        "labels": ("label", str, None, "training labels: a metadata column (e.g. 'label') or 'taxonomy' (confident classes of the run catalog)"),
        "label_map": ({}, dict, None, "optional relabelling, e.g. {'1': S, '2': S}; a label mapped to null is dropped"),
        "backbone": ("efficientnet_lite0", str, None, "timm model name of the classifier backbone"),
        "pretrained": (True, bool, None, "start from ImageNet weights (false: from scratch)"),
        "checkpoint": (None, (str, type(None)), None, "backbone weights, e.g. RUN_DIR/supervised/ssl/encoder.safetensors from `galtaxa pretrain`"),
        "mode": ("auto", str, lambda v: v in ("auto", "finetune", "partial", "linear"), "auto (finetune on a GPU, partial on a CPU)|finetune (every weight, augmented images)|partial (last trainable_stages stages on cached activations of the 8 dihedral views)|linear (head on cached pooled features)"),
        "trainable_stages": (2, int, lambda v: v >= 1, "backbone stages trained in partial mode, counted from the last"),
        "head": ("softmax", str, lambda v: v in ("softmax", "sigmoid"), "softmax (multi-class) | sigmoid (multi-label)"),
        "input_size": (128, int, lambda v: v >= 16, "network input side (px)"),
        "epochs": (6, int, lambda v: v >= 1, "maximum epochs (early stopping on validation macro-F1)"),
        "batch_size": (32, int, lambda v: v >= 1, "batch size"),
        "lr": (1e-3, (int, float), lambda v: v > 0, "AdamW peak learning rate (one-cycle schedule)"),
        "balance": ("class_weight", (str, type(None)), lambda v: v in (None, "class_weight", "sampler"), "null|class_weight|sampler for imbalanced classes"),
        "augment": ("m4", (str, list), None, "augmentation of mode finetune: preset (m4, m4_geometric, m5, rotate, none) or list of steps"),
        "tta": ("none", str, lambda v: v in ("none", "flips", "d4"), "average predictions over flips (4 views) or the 8 dihedral views: none|flips|d4"),
        "patience": (5, int, lambda v: v >= 1, "epochs without improvement before stopping"),
        "split": ([0.7, 0.1, 0.2], list, lambda v: len(v) == 3 and all(x > 0 for x in v) and abs(sum(v) - 1) < 1e-6, "train / validation / test fractions (stratified, seeded; test never used for early stopping or calibration)"),
        "prior": ("train", (str, dict, type(None)), lambda v: v is None or v == "train" or isinstance(v, dict), "class prior of the outputs: train (training frequencies) | {class: weight} | null (raw outputs)"),
        "calibrate": (True, bool, None, "temperature scaling on the validation split"),
        "target_precision": (0.9, (int, float), lambda v: 0 < v <= 1, "precision the confidence threshold is chosen for on validation"),
        "confidence_threshold": (None, (int, float, type(None)), lambda v: v is None or 0 <= v <= 1, "fixed confidence threshold below which galaxies are unclassified (null: from target_precision)"),
        "decision": ("counts", str, lambda v: v in ("counts", "argmax"), "class of each galaxy: counts (per-class log-offsets so that each class is predicted as often as the calibrated probabilities expect; fitted on the classified set, or on the validation split for sets smaller than it) | argmax (the most probable class)"),
        "galaxy_labels": (None, (str, type(None)), None, "CSV id,class of single-galaxy labels added to the taxonomy's classes (labels: taxonomy)"),
        "ssl_method": ("simclr", str, lambda v: v in ("simclr", "autoencoder"), "self-supervised pretraining: simclr|autoencoder"),
        "ssl_backbone": ("resnet18", str, None, "timm model pretrained by `galtaxa pretrain`"),
        "ssl_epochs": (20, int, lambda v: v >= 1, "self-supervised epochs"),
        "ssl_input_size": (64, int, lambda v: v >= 32, "self-supervised input side (px)"),
        "temperature": (0.1, (int, float), lambda v: v > 0, "SimCLR NT-Xent temperature"),
        "adversarial_target": (None, (str, type(None)), None, "folder/file of target galaxies for `galtaxa adversarial`"),
        "adversarial_threshold": (0.7, (int, float), lambda v: 0 < v < 1, "score above which a labelled galaxy joins the adversarial test split"),
    },
    "output": {
        "formats": (["parquet", "csv", "fits"], list, lambda v: set(v) <= {"parquet", "csv", "fits"}, "catalog formats"),
    },
}


def _scheduler_ok(value) -> bool:
    """``local``, ``processes`` or a scheduler address (:func:`galtaxa.compute.runner.check_scheduler`)."""
    try:
        check_scheduler(value)
    except ValueError:
        return False
    return True


def _encoders_ok(specs) -> bool:
    """Each entry: a timm name, ``"name@image"`` / ``"name@polar"``, or a mapping {name, view, checkpoint}."""
    if not specs:
        return False
    for spec in specs:
        if isinstance(spec, str):
            name, _, view = spec.partition("@")
            if not name or view not in ("", "image", "polar"):
                return False
        elif isinstance(spec, Mapping):
            if not isinstance(spec.get("name"), str) or not spec["name"] or not set(spec) <= {"name", "view", "checkpoint"}:
                return False
            if spec.get("view", "image") not in ("image", "polar"):
                return False
            if not isinstance(spec.get("checkpoint"), (str, type(None))):
                return False
        else:
            return False
    return True


def _bounds_ok(bounds) -> bool:
    """``{column: [low, high] or null}`` with numbers or nulls and low < high."""
    for col, pair in bounds.items():
        if pair is None:
            continue
        if not isinstance(col, str) or not isinstance(pair, (list, tuple)) or len(pair) != 2:
            return False
        if any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))) for v in pair):
            return False
        if None not in pair and not pair[0] < pair[1]:
            return False
    return True


def default_config() -> dict:
    """A fresh nested dict holding every default."""
    cfg: dict[str, Any] = {}
    for section, keys in _SCHEMA.items():
        target = cfg if section == "" else cfg.setdefault(section, {})
        for key, (default, *_rest) in keys.items():
            target[key] = copy.deepcopy(default)
    return cfg


DEFAULTS = default_config()


def merge(base: Mapping, override: Mapping) -> dict:
    """Recursively merge ``override`` into a copy of ``base``."""
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_expanded_size(cfg, where: str) -> None:
    """Refuse a config holding more than :data:`MAX_CONFIG_VALUES` values once aliases are expanded, or nested
    deeper than :data:`MAX_CONFIG_DEPTH` (a self-referencing alias too).

    YAML anchors and aliases make one object appear in many places; the count walks the config as JSON or a
    YAML dump without aliases would write it, and stops at the limit, so a few lines that expand to billions
    of values are refused in microseconds.
    """
    count = 0
    stack = [(cfg, 0)]
    while stack:
        obj, depth = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            raise ConfigError(f"{where} expands to more than {MAX_CONFIG_VALUES:,} values (YAML anchors and aliases "
                              "repeated inside each other?); a galtaxa config holds a few hundred")
        if isinstance(obj, Mapping):
            children = [v for kv in obj.items() for v in kv]
        elif isinstance(obj, (list, tuple, set)):
            children = list(obj)
        else:
            continue
        if depth >= MAX_CONFIG_DEPTH and children:
            raise ConfigError(f"{where} is nested more than {MAX_CONFIG_DEPTH} levels deep (or an alias refers to "
                              "itself); a galtaxa config has sections of settings, a few levels deep")
        stack.extend((c, depth + 1) for c in children)


_VAR = re.compile(r"\$(\w+|\{[^}]*\})")


def expand_path(value: str, key: str = "path") -> str:
    """``value`` with ``~`` / ``~user`` and ``$VAR`` / ``${VAR}`` expanded, as a shell would.

    Used for every path setting of a config (:data:`PATH_KEYS`) and for the ``RUN_DIR`` arguments of the
    commands, so that ``run_dir: ~/x`` and ``run_dir: $HOME/x`` name the same folder everywhere.

    Parameters
    ----------
    value : str
        The path as written.
    key : str
        The setting's name, for the message.

    Returns
    -------
    str
        The expanded path (relative paths stay relative).

    Raises
    ------
    ConfigError
        When ``value`` names an environment variable that is not set, or a ``~user`` that does not exist.

    Examples
    --------
    >>> import os
    >>> expand_path("$HOME/x") == expand_path("~/x") == os.path.join(os.path.expanduser("~"), "x")
    True
    """
    unset = [m.group(1).strip("{}") for m in _VAR.finditer(value) if m.group(1).strip("{}") not in os.environ]
    if unset:
        raise ConfigError(f"'{key}' = {value!r} names the environment variable {unset[0]!r}, which is not set: "
                          "set it or write the path out")
    out = os.path.expanduser(os.path.expandvars(value))
    if out.startswith("~"):
        raise ConfigError(f"'{key}' = {value!r}: no user {out.split('/')[0][1:]!r} to expand {out.split('/')[0]!r} "
                          "for; write the path out")
    return out


def _path_settings(cfg: Mapping):
    """``(container, key, name)`` of every path setting present in ``cfg``: :data:`PATH_KEYS`, the ``path`` of
    ``validation.references`` entries and the ``checkpoint`` of ``multimodal.encoders`` mappings (``input.labels:
    auto`` is not a path)."""
    found = []
    for section, key in PATH_KEYS:
        target = cfg if not section else cfg.get(section)
        if isinstance(target, dict) and key in target:
            found.append((target, key, f"{section}.{key}" if section else key))
    refs = (cfg.get("validation") or {}).get("references") if isinstance(cfg.get("validation"), Mapping) else None
    for i, ref in enumerate(refs if isinstance(refs, list) else []):
        if isinstance(ref, dict) and "path" in ref:
            found.append((ref, "path", f"validation.references[{i}].path"))
    multimodal = cfg.get("multimodal")
    encoders = multimodal.get("encoders") if isinstance(multimodal, Mapping) else None
    for i, spec in enumerate(encoders if isinstance(encoders, list) else []):
        if isinstance(spec, dict) and "checkpoint" in spec:
            found.append((spec, "checkpoint", f"multimodal.encoders[{i}].checkpoint"))
    return [(c, k, n) for c, k, n in found
            if isinstance(c[k], str) and c[k] and not (n == "input.labels" and c[k] == "auto")]


def _expand_paths(full: dict, problems: list[str]) -> None:
    """Expand ``~`` and ``$VAR`` in every path setting of ``full`` in place (:func:`expand_path`)."""
    for container, key, name in _path_settings(full):
        try:
            container[key] = expand_path(container[key], name)
        except ConfigError as err:
            problems.append(str(err))


def resolve_config_paths(cfg: dict, base) -> dict:
    """Make the relative path settings of a config file name files beside it, in place.

    The usual convention (Make, Snakemake, CMake): a relative path written in a config file is relative to the
    file's own folder, so that a run folder holding its ``config.yaml`` can be copied or moved and the config
    still names what is inside it.  Paths given on the command line or left at their defaults stay relative to
    the working directory.  ``~`` and ``$VAR`` are expanded first (an absolute result stays as it is); a value
    that cannot be expanded is left for :func:`validate_config` to report.

    Parameters
    ----------
    cfg : dict
        The mapping read from the file.
    base : path-like
        The file's folder.

    Returns
    -------
    dict
        ``cfg``.
    """
    base = Path(base).absolute()
    for container, key, name in _path_settings(cfg):
        try:
            expanded = expand_path(container[key], name)
        except ConfigError:
            continue
        if not os.path.isabs(expanded):
            container[key] = os.path.normpath(os.path.join(base, expanded))
    return cfg


def portable_config(cfg: Mapping, folder) -> dict:
    """A copy of ``cfg`` to write into ``folder/config.yaml``: what lies inside ``folder`` as relative paths.

    Paths inside ``folder`` (``run_dir`` itself is ``.``) become relative to it, every other path absolute, so
    that the file read back with :func:`load_config` (which resolves against the file's folder,
    :func:`resolve_config_paths`) names the same files, and still names the run's own files after the folder is
    copied or moved.

    Parameters
    ----------
    cfg : mapping
        A validated config.
    folder : path-like
        Where the config file is written.

    Returns
    -------
    dict
    """
    out = copy.deepcopy(dict(cfg))
    folder = Path(os.path.abspath(folder))
    for container, key, _name in _path_settings(out):
        path = Path(os.path.abspath(container[key]))
        try:
            container[key] = path.relative_to(folder).as_posix()
        except ValueError:
            container[key] = str(path)
    return out


def _int_problems(value, name: str) -> list[str]:
    """Integers (also inside lists and mappings) beyond what the libraries take, named by setting."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        if name == "seed":  # its own range is the schema's check (0 to SEED_MAX)
            return []
        if not -INT_MAX <= value <= INT_MAX:
            return [f"'{name}' = {value} is out of range ({-INT_MAX} to {INT_MAX})"]
        return []
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _int_problems(v, f"{name}.{k}")]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _int_problems(v, f"{name}[{i}]")]
    return []


def _short(value, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters (a config value may be long)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def _type_name(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def validate_config(cfg: Mapping, where: str = "config") -> dict:
    """Check keys, types and values; return the config with defaults filled in.

    Raises
    ------
    ConfigError
        Listing every problem found, each with the key and what to change.
    """
    _check_expanded_size(cfg, where)
    problems = []
    known_sections = {s for s in _SCHEMA if s}
    for key, value in cfg.items():
        if key in _SCHEMA[""]:
            continue
        if key not in known_sections:
            problems.append(f"unknown key '{key}' (known: {', '.join(sorted(known_sections | set(_SCHEMA[''])))})")
        elif not isinstance(value, Mapping):
            problems.append(f"'{key}' must be a mapping of settings, got {type(value).__name__}")
    full = merge(DEFAULTS, {k: v for k, v in cfg.items() if k in _SCHEMA[""] or isinstance(v, Mapping)})
    _expand_paths(full, problems)
    for section, keys in _SCHEMA.items():
        values = full if section == "" else full.get(section, {})
        if section and isinstance(cfg.get(section), Mapping):
            for key in cfg[section]:
                if key not in keys:
                    problems.append(f"unknown key '{section}.{key}' (known: {', '.join(keys)})")
        for key, (_default, types, check, help_text) in keys.items():
            name = f"{section}.{key}" if section else key
            value = values.get(key)
            types_t = types if isinstance(types, tuple) else (types,)
            if isinstance(value, bool) and bool not in types_t:
                ok_type = False
            elif float in types_t and isinstance(value, int) and not isinstance(value, bool):
                ok_type = True
            else:
                ok_type = isinstance(value, types_t)
            out_of_range = _int_problems(value, name) if ok_type else []
            if not ok_type:
                problems.append(f"'{name}' must be {_type_name(types)}, got {_short(value)} ({help_text})")
            elif out_of_range:
                problems += [f"{p} ({help_text})" for p in out_of_range]
            elif check is not None and not check(value):
                problems.append(f"'{name}' has an impossible value {_short(value)} ({help_text})")
    if full["route"] == "multimodal" and full["measure"]["enabled"] is False:
        problems.append("'route: multimodal' fuses the morphology parameters: set 'measure.enabled' to true")
    if full["reduce"]["fit_rows"] is not None and full["reduce"]["method"] != "pca":
        problems.append(f"'reduce.fit_rows' (out-of-core fitting) is for 'reduce.method: pca', not "
                        f"{full['reduce']['method']!r}: set it to null or use pca")
    algos = full["cluster"]["algorithms"]
    if isinstance(algos, list) and isinstance(full["cluster"]["min_agree"], int) and full["cluster"]["min_agree"] > len(algos):
        problems.append(
            f"'cluster.min_agree' = {full['cluster']['min_agree']} is above the number of algorithms ({len(algos)}): "
            "lower it or add voters"
        )
    ckpt = full["encoder"]["checkpoint"]
    if isinstance(ckpt, str) and not Path(ckpt).expanduser().exists():
        problems.append(f"'encoder.checkpoint' file {ckpt!r} does not exist: give the path of a local weights file or null")
    sup_ckpt = full["supervised"]["checkpoint"]
    if isinstance(sup_ckpt, str) and not Path(sup_ckpt).expanduser().exists():
        problems.append(f"'supervised.checkpoint' file {sup_ckpt!r} does not exist: give the backbone weights "
                        "(e.g. RUN_DIR/supervised/ssl/encoder.safetensors from `galtaxa pretrain`) or null")
    psf = full["measure"]["psf"]
    if isinstance(psf, str) and not Path(psf).expanduser().exists():
        problems.append(f"'measure.psf' file {psf!r} does not exist: give a FITS or .npy PSF image or null")
    mapping_file = full["labelling"]["mapping_file"]
    if isinstance(mapping_file, str) and not Path(mapping_file).expanduser().exists():
        problems.append(f"'labelling.mapping_file' {mapping_file!r} does not exist (run `galtaxa cluster` first, then fill the template)")
    val = full["validation"]
    if isinstance(val.get("references"), list) and isinstance(val.get("subsample"), (list, str)) \
            and (val["references"] or val["subsample"]):
        from .validation.spec import spec_problems  # scikit-learn (2.8 s): only a config with a validation

        problems += spec_problems(val)
    if problems:
        raise ConfigError(f"{where} is invalid:\n  - " + "\n  - ".join(problems))
    return full


#: Fewest usable galaxies each route can cluster.
MIN_GALAXIES = {"usmorph": 4, "multimodal": 10}


def fit_to_input(cfg: Mapping, n_galaxies: int) -> tuple[dict, list[str]]:
    """Check the clustering settings against the number of usable galaxies, before any slow stage.

    Called once the input is read (the galaxy count is known) and before measurement.  A combination that
    cannot be fitted is adjusted (each change returned as a sentence and logged as a warning) or refused.

    * ``route: multimodal``: a Gaussian-mixture component in ``D = min(multimodal.bottleneck, N - 1)``
      dimensions (the whitened bottleneck has at most ``N - 1``) must not have more free parameters
      (:func:`galtaxa.cluster.gmm.parameters_per_component`) than there are galaxies.  Otherwise the covariance
      type becomes ``diag``; if diagonal components are still too many parameters, the bottleneck is lowered to
      the largest ``D`` with ``2 D + 1 <= N``.  Candidates ``K`` above ``N / (D + 1)`` (full covariances) or
      ``N / 2`` are dropped from ``multimodal.candidates``, keeping at least the smallest.  A given
      ``multimodal.n_components`` above ``N / 2`` is refused.
    * ``route: usmorph``: ``cluster.n_clusters`` above ``N / 2`` (fewer than two galaxies per group) is lowered
      to ``max(2, N // 2)``; ``reduce.n_components`` (an integer) above ``N - 1`` is lowered to ``N - 1``.

    Parameters
    ----------
    cfg : mapping
        A validated config (:func:`validate_config`).
    n_galaxies : int
        Galaxies that reached the pipeline (read without error).

    Returns
    -------
    (dict, list of str)
        The (possibly adjusted) config, a copy, and one sentence per adjustment (empty when none).

    Raises
    ------
    ConfigError
        When too few galaxies are given for the route, or a fixed number of components cannot be fitted; the
        message says what to change.
    """
    from .cluster.gmm import parameters_per_component  # scikit-learn (2.8 s): not for every config read

    out = copy.deepcopy(dict(cfg))
    n = int(n_galaxies)
    route = out.get("route", "usmorph")
    need = MIN_GALAXIES.get(route, 2)
    if n < need:
        raise ConfigError(f"route '{route}' needs at least {need} usable galaxies; the input has {n}: add galaxies "
                          "(or check why the others could not be read: status and reason in the catalog)")
    notes: list[str] = []
    if route == "multimodal":
        mm = out["multimodal"]
        k_fixed = mm["n_components"] if isinstance(mm["n_components"], int) else None
        if k_fixed is not None and k_fixed > n // 2:
            raise ConfigError(f"'multimodal.n_components' = {k_fixed} groups for {n} galaxies leaves fewer than two "
                              f"per group: set it to at most {n // 2} or to 'bic'")
        dim = min(int(mm["bottleneck"]), n - 1)
        cov = mm["covariance_type"]
        if parameters_per_component(dim, cov) > n:
            was = f"{cov} covariances in {dim} dimensions ({parameters_per_component(dim, cov)} parameters per " \
                  f"component)"
            if cov in ("full", "tied") and parameters_per_component(dim, "diag") <= n:
                mm["covariance_type"] = cov = "diag"
                notes.append(f"multimodal.covariance_type: {was} cannot be fitted on {n} galaxies; using 'diag' "
                             f"({parameters_per_component(dim, 'diag')} parameters per component)")
            else:
                new_dim = max(2, (n - 1) // 2)
                cov_new = "diag" if cov in ("full", "tied") else cov
                notes.append(f"multimodal.bottleneck: {was} cannot be fitted on {n} galaxies; using "
                             f"{cov_new} covariances and a {new_dim}-d bottleneck (was {mm['bottleneck']})")
                mm["covariance_type"] = cov = cov_new
                mm["bottleneck"] = dim = min(int(mm["bottleneck"]), new_dim)
        k_max = max(1, n // (dim + 1)) if cov == "full" else max(1, n // 2)
        cands = sorted(set(mm["candidates"]))
        if k_fixed is None and cands[-1] > k_max:
            kept = [c for c in cands if c <= k_max] or cands[:1]
            notes.append(f"multimodal.candidates: K above {k_max} cannot be fitted on {n} galaxies with {cov} "
                         f"covariances in {dim} dimensions; scanning {kept} (was {cands})")
            mm["candidates"] = kept
    else:
        cl, red = out["cluster"], out["reduce"]
        if cl["n_clusters"] > n // 2:
            k = max(2, n // 2)
            notes.append(f"cluster.n_clusters: {cl['n_clusters']} groups for {n} galaxies leaves fewer than two per "
                         f"group; using {k}")
            cl["n_clusters"] = k
        nc = red["n_components"]
        if isinstance(nc, int) and not isinstance(nc, bool) and nc > n - 1:
            notes.append(f"reduce.n_components: {nc} dimensions for {n} galaxies; using {n - 1}")
            red["n_components"] = n - 1
    for note in notes:
        log.warning("config adjusted to the %d galaxies of the input: %s", n, note)
    return out, notes


def load_config(path: str | Path | None = None, overrides: Mapping | None = None) -> dict:
    """Read a YAML config (or none: the defaults), apply ``overrides``, validate.

    Relative paths in the file are relative to the file's folder (:func:`resolve_config_paths`); those in
    ``overrides`` (the command line's) to the working directory.
    """
    cfg: dict = {}
    where = "config"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.exists():
            raise ConfigError(f"config file {path} not found (create one with `galtaxa init {path}`)")
        if not path.is_file():  # a folder, or a FIFO / device that a read would block on
            raise ConfigError(f"config file {path} is {'a folder' if path.is_dir() else 'not a regular file'}: "
                              "give a YAML file")
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} is {size:,} bytes; a galtaxa config is a few KB (at most "
                              f"{MAX_CONFIG_BYTES:,} bytes are read)")
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = raw[:err.start].count(b"\n") + 1
            raise ConfigError(f"{path}: line {line} is not UTF-8 (byte 0x{raw[err.start]:02x}); save the config "
                              "as UTF-8") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as err:
            for mark in (getattr(err, "context_mark", None), getattr(err, "problem_mark", None)):
                if mark is not None:
                    mark.name = str(path)  # PyYAML names a string "<unicode string>"
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        except RecursionError:
            raise ConfigError(f"{path} is nested too deeply to be read (at most {MAX_CONFIG_DEPTH} levels make "
                              "sense)") from None
        if loaded is not None and not isinstance(loaded, Mapping):
            raise ConfigError(f"{path} must hold a mapping of sections, got {type(loaded).__name__}")
        _check_expanded_size(loaded or {}, where)
        cfg = resolve_config_paths(dict(loaded or {}), path.parent)
    if overrides:
        cfg = merge(cfg, overrides)
    return validate_config(cfg, where)


def default_config_yaml(input_path: str | None = None) -> str:
    """The default config as YAML, every key with a comment explaining it."""
    lines = ["# galtaxa pipeline configuration (galtaxa init). Every key is optional; defaults shown.", ""]
    for section, keys in _SCHEMA.items():
        indent = ""
        if section:
            lines.append(f"{section}:")
            indent = "  "
        for key, (default, _types, _check, help_text) in keys.items():
            value = input_path if (section, key) == ("input", "path") and input_path else default
            dumped = yaml.safe_dump(value, default_flow_style=True).strip()
            if dumped.endswith("\n...") or dumped.endswith("..."):
                dumped = dumped.replace("\n...", "").replace("...", "").strip()
            lines.append(f"{indent}{key}: {dumped}  # {help_text}")
        lines.append("")
    return "\n".join(lines)
