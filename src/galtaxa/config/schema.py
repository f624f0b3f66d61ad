"""The config schema: every key with its default, type, check and help text (:data:`_SCHEMA`), the defaults
(:data:`DEFAULTS`), the limits of a config, and the commented YAML of ``galtaxa init``."""

from __future__ import annotations

import copy
from typing import Any, Mapping

import yaml

from ..compute.runner import check_scheduler

__all__ = ["ConfigError", "DEFAULTS", "DEFAULT_GALAXY_ENCODER", "PATH_KEYS", "SEED_MAX", "INT_MAX", "MAX_CONFIG_VALUES", "MAX_CONFIG_DEPTH",
           "MAX_CONFIG_BYTES", "default_config", "default_config_yaml", "merge"]


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

#: The galaxy encoder of the defaults (``encoder.name``, ``multimodal.encoders``, the demo): the one place that
#: names it.  Shipped encoders: :data:`galtaxa.encode.galaxy_encoder.SHIPPED_ENCODERS`.
DEFAULT_GALAXY_ENCODER = "galtaxa-galaxy-v5"

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
        "name": (DEFAULT_GALAXY_ENCODER, str, None, f"{DEFAULT_GALAXY_ENCODER} (galtaxa's galaxy encoder, shipped with its earlier versions galtaxa-galaxy-v1 to -v3: 64-d, trained on Galaxy Zoo galaxies and simulations; galtaxa-galaxy with checkpoint: your own) or a timm model name (efficientnet_lite0: offline ImageNet weights; convnext_xlarge.fb_in22k, hf_hub:...)"),
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
        "objective": ("simclr", str, lambda v: v in ("simclr", "measurements"), "simclr|measurements: SimCLR alone, or SimCLR and predicting each galaxy's own 16 image descriptors (C, A, S, Gini, M20, axis ratio, colours, ...): label-free, survey-specific"),
        "measure_weight": (1.0, (int, float), lambda v: v >= 0, "weight of the measurement loss against SimCLR's (objective: measurements)"),
        "measure_targets": ("all", str, lambda v: v in ("all", "morphology"), "all|morphology: the 16 descriptors, or the 11 of shape, light profile and colour (not size in pixels, depth, crowding, neighbours)"),
        "max_galaxies": (20000, (int, type(None)), lambda v: v is None or v >= 2, "adapt on a seeded subset of at most this many galaxies"),
    },
    "reduce": {
        "method": ("pca", str, lambda v: v in ("pca", "umap"), "pca|umap"),
        "n_components": (16, (int, float, str), lambda v: v == "auto" or (isinstance(v, (int, float)) and v > 0), "dims (int), variance target (0-1, PCA) or 'auto' (UMAP Davies-Bouldin scan)"),
        "descriptors": ("auto", (bool, str), lambda v: isinstance(v, bool) or v == "auto", "append 16 image descriptors (axis ratio, concentration, asymmetry, colours, ...) to the reduced features: true|false|auto (false for galtaxa's galaxy encoders, which were trained to predict them; true for other encoders)"),
        "standardize": ("auto", (bool, str), lambda v: isinstance(v, bool) or v == "auto", "z-score every feature before the PCA (method: pca): true|false|auto (true for galtaxa's galaxy encoders; false for other encoders, whose many near-constant features z-scoring would weigh as much as the informative ones)"),
        "normalize": ("auto", (bool, str), lambda v: isinstance(v, bool) or v == "auto", "scale each galaxy's features to unit length before the PCA (method: pca), so that only their direction counts: true|false|auto (true for galtaxa's galaxy encoders, trained with contrastive losses on the unit sphere; false for other encoders)"),
        "descriptor_weight": (0.5, (int, float), lambda v: v > 0, "weight of the standardised descriptors against the reduced deep features"),
        "morphology_axes": ("auto", (bool, str), lambda v: isinstance(v, bool) or v == "auto", "append the encoder's morphology axes (the directions of its embedding that separate the Galaxy Zoo classes of its own training galaxies, shipped beside its weights as NAME.axes.npz) to the PCA axes (method: pca): true|false|auto (true when the encoder ships them: galtaxa-galaxy-v3 and later)"),
        "axes_weight": (1.0, (int, float), lambda v: not isinstance(v, bool) and v > 0, "spread of each morphology axis in units of the first principal component's"),
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
        "smoothing_sigma": ("auto", (int, float, str), lambda v: v == "auto" or (not isinstance(v, (bool, str)) and v >= 0), "Gaussian smoothing sigma (px) before the encoders; 0 = none; auto: 0 for galtaxa's galaxy encoders (the pixels they were trained on), 1.5 for timm encoders (M3)"),
        "zscore": ("auto", (bool, str), lambda v: v == "auto" or isinstance(v, bool), "z-score each image, the encoder then sees exactly the z-scored pixels (M3), else scale it to [0, 1]; auto: false for galtaxa's galaxy encoders (the pixels they were trained on), true for timm encoders"),
        "encoders": ([DEFAULT_GALAXY_ENCODER], list, lambda v: _encoders_ok(v), f"encoders fused with the morphology: {DEFAULT_GALAXY_ENCODER} (galtaxa's galaxy encoder, the default: on the gz1 benchmark split its groups are purer than those of the ImageNet Lite0 on the image and its polar unfolding), timm names (efficientnet_lite0, ...), 'name@polar' for the polar-unfolded view, or {{name, view, checkpoint}} mappings"),
        "params": (["C", "A", "S", "gini", "m20"], list, lambda v: len(v) >= 1 and all(isinstance(p, str) and p for p in v), "morphology columns fused with the deep features (z-scored)"),
        "purge": (True, bool, None, "drop galaxies outside the bounds and Isolation Forest outliers (kept in the catalog as 'purged')"),
        "bounds": ({"C": [1.0, 7.0], "A": [None, 1.0]}, dict, lambda v: _bounds_ok(v), "kept interval low < value <= high per column (null = open side; a column set to null has no bound)"),
        "isolation_forest": (True, bool, None, "Isolation Forest over the z-scored parameters after the bounds"),
        "contamination": (0.01, (float, str), lambda v: v == "auto" or (isinstance(v, float) and 0 < v <= 0.5), "Isolation Forest share flagged: float in (0, 0.5] or 'auto'"),
        "bottleneck": (64, int, lambda v: v >= 2, "size of the multimodal autoencoder bottleneck"),
        "epochs": (100, int, lambda v: v >= 1, "maximum autoencoder epochs (early stopping on a validation split)"),
        "n_components": ("bic", (int, str), lambda v: v == "bic" or (isinstance(v, int) and v >= 1), "GMM components: an integer or 'bic'"),
        "covariance_type": ("full", str, lambda v: v in ("full", "tied", "diag", "spherical"), "GMM covariances: full (M3) | diag | tied | spherical; full needs > bottleneck members per component (falls back to diag when it cannot be fitted)"),
        "whiten": ("auto", str, lambda v: v in ("auto", "pca", "standardize", "none"), "map of the bottleneck before the GMM: auto (pca for full and tied covariances, standardize for diag and spherical ones) | pca (z-score + PCA whitening to its effective rank) | standardize (z-score every dimension) | none"),
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
        "backbone": ("galtaxa-galaxy-v2", str, None, "the classifier's backbone: galtaxa's galaxy encoder (fine-tuning starts from it; v2, whose start is better calibrated than v3's on the gz1 benchmark split: ECE 0.024 against 0.039, macro-F1 0.664 against 0.650) or a timm model name, e.g. efficientnet_lite0 (ImageNet)"),
        "pretrained": (True, bool, None, "start from the backbone's trained weights: galaxies for galtaxa-galaxy-v1/-v2/-v3, ImageNet for timm models (false: from scratch)"),
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
