"""Galaxy encoder study: each training objective alone and the mix, against ImageNet, on the benchmark split only.

Every figure is measured on the **benchmark split** of ../shared/data/gz1 (``benchmarks/gz1_encoder_split.csv``:
the 40% of the galaxies that ``scripts/train_galaxy_encoder.py`` never sees), E / face-on S / edge-on S / merger.
For each representation (the ImageNet EfficientNet-Lite0 and every galaxy encoder file given):

* the images are conditioned as ``galtaxa run`` conditions JPEG composites (128 px, crop 0.38, display),
  handed to the encoder as the run hands them (:func:`run_pixels`: each image rescaled to [0, 1]; rows measured
  before this step, marked in the tables, read the conditioned pixels) and encoded through
  :func:`galtaxa.encode.get_encoder`;
* the clustering space is the one ``galtaxa run`` uses by default with the encoder (:func:`default_space`): the
  features reduced by PCA to ``reduce.n_components`` dimensions (16; galtaxa's ``PCAReducer``, fitted on these
  galaxies, as a run fits it on its own), scaled to unit length and z-scored first where ``reduce.normalize:
  auto`` and ``reduce.standardize: auto`` do so (galaxy encoders; rows measured before those defaults z-scored
  every encoder's features and scaled none), with the 16
  standardised image descriptors appended at weight 0.5 where ``reduce.descriptors: auto`` appends them (not for
  galtaxa's galaxy encoders, which were trained to predict them), and the encoder's morphology axes appended where
  ``reduce.morphology_axes: auto`` appends them (encoders that ship them: ``galtaxa-galaxy-v3`` and ``-v4``); rows measured
  before this default record none and were measured in this benchmark's former space, a plain PCA 50 of the
  features (not z-scored) + descriptors;
* 30-label linear probe (4 classes and 3 classes), kNN, and the vote at k = 20 (2 of 3 and 3 of 3), with the
  functions of ``benchmarks/representation.py``;
* "other survey": the same galaxies re-imaged as a survey at 0.26"/px would see them (1.52x magnified, another
  PSF, noise added), once in colour and once as a single band (r copied to 3 channels); the 30-label probe
  trained on the plain split scores them;
* with ``--adapt``: each encoder adapted label-free to these galaxies as ``galtaxa adapt`` would adapt it to a
  run of them (:class:`galtaxa.supervise.EncoderAdaptation`, the ``adapt:`` section's defaults: 2 epochs, last 2
  stages), by SimCLR alone (``simclr``) or by SimCLR and the prediction of the galaxies' own descriptors
  (``measurements``), then measured as above (a row per adaptation).

    python benchmarks/galaxy_encoder.py --encoders benchmarks/cache/galaxy_encoder/variants/*.safetensors

    python benchmarks/galaxy_encoder.py --no-imagenet --shipped galtaxa-galaxy-v2 --space-study --pipeline \
        --pipeline-variant nodesc:reduce.descriptors=false --adapt simclr measurements \
        --out benchmarks/results/galaxy_encoder_study.json

Results: ``benchmarks/results/galaxy_encoder.json`` and ``.md`` (``--out``: another file, for a study).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from gz1_fewlabel import machine  # noqa: E402
from representation import CLASSES, gz1_labels, knn_scores, probe_scores, purity, slug, vote_scores  # noqa: E402
from supervised import parse_recipe  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SPLIT = ROOT / "benchmarks" / "gz1_encoder_split.csv"
CACHE = ROOT / "benchmarks" / "cache" / "galaxy_encoder_bench"
RESULTS = ROOT / "benchmarks" / "results"
SIZE, CROP = 128, 0.38
#: SDSS 0.396"/px seen at 0.26"/px (a DECaLS-like survey)
OTHER_ZOOM = 0.396 / 0.26


def split_rows(source, part: str = "benchmark") -> np.ndarray:
    """Rows of ``source`` (gz1) in the ``benchmark`` or the ``encoder`` split of :data:`SPLIT`."""
    split = pd.read_csv(SPLIT, dtype=str)
    if split["objid"].tolist() != [str(i) for i in source.ids]:
        raise SystemExit(f"{SPLIT} does not list the galaxies of {DATA / 'gz1'} in order")
    return np.flatnonzero(split["split"].to_numpy() == part)


def conditioned(source, rows, kind: str) -> np.ndarray:
    """(n, 3, 128, 128) images of ``rows``: ``plain`` as galtaxa run conditions them, ``other`` / ``other_1band``
    re-imaged as the other survey would see them (cached)."""
    import torch

    from galtaxa.preprocess import Conditioner
    from galtaxa.supervise.augment import matched_noise, psf_blur
    from galtaxa.supervise.galaxy_encoder_training import reframe

    path = CACHE / f"{kind}_{len(rows)}.npy"
    if path.exists():
        return np.load(path)
    CACHE.mkdir(parents=True, exist_ok=True)
    if kind == "plain":
        cond = Conditioner(size=SIZE, geometry="crop_resize", crop_fraction=CROP, scaling="display")
        out = np.stack([cond(source.read(int(i))) for i in rows])
    else:
        gen = torch.Generator().manual_seed(7)
        out = []
        for a in range(0, len(rows), 64):
            x = torch.from_numpy(np.stack([source.read(int(i)) / 255.0 for i in rows[a:a + 64]]).astype(np.float32))
            v = reframe(x, SIZE, CROP, zoom=torch.full((len(x),), OTHER_ZOOM))
            v = psf_blur(v, gen, sigma=(1.0, 1.0001), p=1.0)
            v = matched_noise(v, gen, max_factor=1.0)
            if kind == "other_1band":
                v = v[:, 1:2].expand(-1, 3, -1, -1)
            out.append(v.clamp(0, 1).numpy())
        out = np.concatenate(out)
    np.save(path, out.astype(np.float32))
    return out


def descriptors(images, name: str) -> np.ndarray:
    from galtaxa.encode.descriptors import image_descriptors

    path = CACHE / f"descriptors_{name}_{len(images)}.npy"
    if path.exists():
        return np.load(path)
    d = image_descriptors(images)
    np.save(path, d)
    return d


def run_pixels(images) -> np.ndarray:
    """The pixels ``galtaxa run`` hands its encoder from conditioned images: the USmorph route's view without CAE
    and polar unfolding (:meth:`galtaxa.taxonomy.UnsupervisedTaxonomy.preprocess`, each image rescaled to [0, 1]; the
    M3 route's view of galtaxa's encoders is the same)."""
    from galtaxa.taxonomy import UnsupervisedTaxonomy

    return UnsupervisedTaxonomy(polar=False).preprocess(images)


class Space:
    """The pipeline's clustering space, fitted on the plain split: galtaxa's :class:`~galtaxa.reduce.PCAReducer`
    (features scaled to unit length and / or z-scored, then PCA, as ``galtaxa run`` reduces them; ``normalize``,
    ``standardize``) and the weighted standardised descriptors
    appended as ``UnsupervisedTaxonomy`` appends them (weight 0: none)."""

    def __init__(self, features, desc, n_components=16, weight=0.5, whiten=False, standardize=True, normalize=False,
                 axes=None, axes_weight=1.0):
        from galtaxa.reduce import PCAReducer

        self.pca = PCAReducer(n_components=min(n_components, features.shape[1]), whiten=whiten,
                              standardize=standardize, normalize=normalize, axes=axes, axes_weight=axes_weight,
                              random_state=0).fit(features)
        z = self.pca.transform(features)
        self.sd = float(z[:, 0].std()) or 1.0
        self.med = np.nanmedian(desc, axis=0)
        filled = np.where(np.isfinite(desc), desc, self.med)
        self.mean, self.scale = filled.mean(0), np.where(filled.std(0) > 0, filled.std(0), 1)
        self.weight = weight

    def __call__(self, features, desc):
        z = self.pca.transform(features) / self.sd
        if not self.weight:
            return np.asarray(z, dtype=np.float32)
        d = (np.where(np.isfinite(desc), desc, self.med) - self.mean) / self.scale
        return np.hstack([z, self.weight * d]).astype(np.float32)


def default_space(encoder_name: str, checkpoint=None) -> dict:
    """The clustering space ``galtaxa run`` uses by default with this encoder (the config's ``reduce`` section,
    ``auto`` settings resolved by :func:`galtaxa.pipeline.use_descriptors`,
    :func:`galtaxa.pipeline.standardize_features`, :func:`galtaxa.pipeline.normalize_features` and
    :func:`galtaxa.pipeline.morphology_axes`): :class:`Space` keywords and ``morphology_axes`` (whether the
    encoder's axes are appended; :func:`space_kwargs` turns it into the axes)."""
    from galtaxa.config import load_config
    from galtaxa.pipeline import morphology_axes, normalize_features, standardize_features, use_descriptors

    cfg = load_config(None, {"encoder": {"name": encoder_name,
                                         "checkpoint": None if checkpoint is None else str(checkpoint)}})
    return {"n_components": int(cfg["reduce"]["n_components"]),
            "weight": float(cfg["reduce"]["descriptor_weight"]) if use_descriptors(cfg) else 0.0,
            "standardize": standardize_features(cfg), "normalize": normalize_features(cfg),
            "morphology_axes": morphology_axes(cfg) is not None, "axes_weight": float(cfg["reduce"]["axes_weight"])}


def space_kwargs(space: dict, encoder_name: str, checkpoint=None) -> dict:
    """:class:`Space` keywords of a space record (:func:`default_space`, a ``SPACE_STUDY`` entry): its
    ``morphology_axes`` flag replaced by the encoder's axes."""
    from galtaxa.encode.morphology_axes import encoder_axes

    kw = {k: v for k, v in space.items() if k != "morphology_axes"}
    axes = encoder_axes(encoder_name, checkpoint) if space.get("morphology_axes") else None
    return kw | {"axes": None if axes is None else axes.directions}


def space_words(space: dict | None) -> str:
    """``PCA 16``, ``PCA 50 + descriptors at 0.5``; a row without a record: the former default."""
    if space is None:
        return "PCA 50 + descriptors, features not z-scored (this benchmark's former space)"
    return (("unit-length features, " if space.get("normalize") else "") + f"PCA {space['n_components']}"
            + (f" + descriptors at {space['weight']}" if space["weight"] else "")
            + (" + morphology axes" + (f" at {space['axes_weight']}" if space.get("axes_weight", 1.0) != 1.0 else "")
               if space.get("morphology_axes") else "")
            + ("" if space.get("standardize", True) else ", features not z-scored"))


def other_survey_scores(Z, Zo, y, split, draws=5, seed=0) -> float:
    from sklearn.metrics import f1_score

    from galtaxa.supervise.fewlabel import draw_few_labels, linear_probe

    tr, va, te = split
    yy = np.asarray(y, dtype=object).astype(str)
    scores = []
    for d, draw in enumerate(draw_few_labels(yy, tr, 30, draws, seed)):
        scaler, model, _ = linear_probe(Z[draw], yy[draw], Z[va], yy[va], seed=seed + d)
        scores.append(f1_score(yy[te], model.predict(scaler.transform(Zo[te])), average="macro", zero_division=0))
    return round(float(np.mean(scores)), 3)


#: Clustering spaces compared by ``--space-study`` (the default space is always measured).
SPACE_STUDY: dict = {}


def group_purity(groups: np.ndarray, y: np.ndarray) -> dict:
    """Kept fraction, purity (:func:`representation.purity`) and number of the groups on the labelled galaxies a
    group holds (``groups >= 0``; a galaxy set to -1 is not kept)."""
    labelled = np.array([isinstance(v, str) for v in y])
    keep = (groups >= 0) & labelled
    return {"kept": float(keep.sum() / labelled.sum()),
            "purity": purity(groups[keep], y[keep].astype(str)) if keep.any() else 0.0,
            "n_groups": int(len(np.unique(groups[keep])))}


def vote_seeds(Z, y, k: int = 20, seeds=(0, 1, 2)) -> dict:
    """The vote at ``k`` with 2 of 3 and 3 of 3 agreement, from one fit per seed (the 3-of-3 galaxies are those of
    the same fit whose three voters agree), averaged over ``seeds``: kept fraction and purity."""
    from galtaxa.cluster import VotingClustering

    out = {2: [], 3: []}
    for seed in seeds:
        vc = VotingClustering(n_clusters=k, min_agree=2, mapping="hungarian", random_state=seed).fit(Z)
        for agree in (2, 3):
            r = group_purity(np.where(vc.agreement_ >= agree, vc.labels_, -1), y)
            out[agree].append((r["kept"], r["purity"]))
    return {f"k{k}_agree{a}": {"kept": round(float(np.mean([v[0] for v in r])), 3),
                               "purity": round(float(np.mean([v[1] for v in r])), 3),
                               "purity_range": [round(float(min(v[1] for v in r)), 3),
                                                round(float(max(v[1] for v in r)), 3)]}
            for a, r in out.items()}


def split_parts(n: int, parts: int) -> list:
    """``parts`` disjoint sorted index arrays covering ``range(n)``: a seeded random partition (seed 0)."""
    order = np.random.default_rng(0).permutation(n)
    return [np.sort(p) for p in np.array_split(order, parts)]


#: With ``--vote-parts N``: the vote over voter seeds also on N disjoint parts of the split (0: not measured).
VOTE_PARTS = {"n": 0}


def vote_parts(features, desc, y, kw: dict) -> list:
    """:func:`vote_seeds` on each of ``VOTE_PARTS["n"]`` disjoint parts (:func:`split_parts`), each part in the
    :class:`Space` of keywords ``kw`` fitted on the part alone, as a run on those galaxies would fit it."""
    out = []
    for part in split_parts(len(y), VOTE_PARTS["n"]):
        Z = Space(features[part], desc[part], **kw)(features[part], desc[part])
        ok = np.isfinite(Z).all(1)
        out.append({"n": int(ok.sum()), **vote_seeds(Z[ok], y[part][ok])})
    return out


def evaluate(name, encoder, views: dict, desc: dict, y, checkpoint=None, adapted: bool = False) -> dict:
    t0 = time.perf_counter()
    feats = {k: encoder.encode(run_pixels(v), batch_size=64) for k, v in views.items()}
    seconds = (time.perf_counter() - t0) / sum(len(v) for v in views.values())
    settings = default_space(encoder.name, checkpoint)
    if adapted:  # as galtaxa run after its adapt stage: the original encoder's axes do not fit the adapted embedding
        settings["morphology_axes"] = False
    kwargs = space_kwargs(settings, encoder.name, checkpoint)
    space = Space(feats["plain"], desc["plain"], **kwargs)
    Z = space(feats["plain"], desc["plain"])
    summary, extra = probe_scores(Z, y)
    split = extra.pop("split")
    p = {str(r["n_per_class"]): r for r in summary.to_dict("records")}
    row = {"pixels": "run", "space": settings, "probe30_f1": round(float(p["30"]["macro_f1_mean"]), 3), "probe30_f1_std": round(float(p["30"]["macro_f1_std"]), 3),
           "probe_all_f1": round(float(p["all"]["macro_f1_mean"]), 3), **extra, **knn_scores(Z, y, split)}
    usable = np.isfinite(Z).all(1)
    row["vote"] = {f"k20_agree{a}": vote_scores(Z[usable], y[usable], 20, a) for a in (2, 3)}
    row["vote_seeds"] = vote_seeds(Z[usable], y[usable])
    if VOTE_PARTS["n"] > 1:
        row["vote_seeds_parts"] = vote_parts(feats["plain"], desc["plain"], y, kwargs)
    for k in ("other", "other_1band"):
        row[f"probe30_f1_{k}"] = other_survey_scores(Z, space(feats[k], desc[k]), y, split)
    row["probe30_f1_plain_test"] = other_survey_scores(Z, Z, y, split)
    row["seconds_per_galaxy_encode"] = round(seconds, 4)
    if SPACE_STUDY:
        row["space_study"] = {}
        for label, kw in SPACE_STUDY.items():
            study_kwargs = space_kwargs(kw, encoder.name, checkpoint)
            if kw.get("morphology_axes") and (adapted or study_kwargs["axes"] is None):
                continue  # an encoder without axes of its own: the row would repeat one without them
            study_space = Space(feats["plain"], desc["plain"], **study_kwargs)
            Zs = study_space(feats["plain"], desc["plain"])
            sm, ex = probe_scores(Zs, y)  # the draws of the default space's probe
            ok = np.isfinite(Zs).all(1)
            v = vote_seeds(Zs[ok], y[ok])
            row["space_study"][label] = {
                "probe30_f1": round(float(sm.loc[sm["n_per_class"].astype(str) == "30", "macro_f1_mean"].iloc[0]), 3),
                "three_class_f1_30": ex.get("three_class_f1_30"),
                "probe30_f1_other": other_survey_scores(Zs, study_space(feats["other"], desc["other"]), y, split),
                "probe30_f1_other_1band": other_survey_scores(Zs, study_space(feats["other_1band"],
                                                                              desc["other_1band"]), y, split),
                "probe30_f1_plain_test": other_survey_scores(Zs, Zs, y, split),
                "knn10_accuracy": knn_scores(Zs, y, ex["split"])["knn10_accuracy"],
                "k20_agree2": [round(v["k20_agree2"]["kept"], 3), round(v["k20_agree2"]["purity"], 3)],
                "k20_agree3": [round(v["k20_agree3"]["kept"], 3), round(v["k20_agree3"]["purity"], 3)]}
            if VOTE_PARTS["n"] > 1:
                row["space_study"][label]["parts"] = [
                    [p["k20_agree2"]["kept"], p["k20_agree2"]["purity"], p["k20_agree3"]["kept"],
                     p["k20_agree3"]["purity"]]
                    for p in vote_parts(feats["plain"], desc["plain"], y, study_kwargs)]
            print(f"   space {label}: {row['space_study'][label]}", flush=True)
    print(f"{name}: probe30 {row['probe30_f1']} (3-class {row['three_class_f1_30']}), kNN {row['knn10_accuracy']:.3f}, "
          f"k20 2/3 {row['vote']['k20_agree2']['kept']:.2f} @ {row['vote']['k20_agree2']['purity']:.3f}, "
          f"3/3 {row['vote']['k20_agree3']['kept']:.2f} @ {row['vote']['k20_agree3']['purity']:.3f} (3 seeds: "
          f"{row['vote_seeds']}), other survey "
          f"{row['probe30_f1_other']} / 1-band {row['probe30_f1_other_1band']} (plain {row['probe30_f1_plain_test']})",
          flush=True)
    return row


def parse_adaptation(spec: str) -> tuple[str, dict]:
    """``--adapt`` spec -> (label, EncoderAdaptation keywords): an objective name (``simclr``, ``measurements``) or
    ``LABEL:key=value,...`` (e.g. ``measurements4:objective=measurements,epochs=4``)."""
    label, kw = parse_recipe(spec)
    return label, kw or {"objective": label}


def adapted_encoder(name: str, encoder, label: str, kw: dict, images: np.ndarray):
    """``encoder`` adapted to ``images`` (the plain benchmark split) with the ``adapt:`` section's defaults and
    ``kw`` (cached in ``CACHE/adapt``); returns the adapted encoder and its record (seconds, losses)."""
    from galtaxa.supervise import EncoderAdaptation

    folder = CACHE / "adapt" / slug(f"{name}_{label}")
    t0 = time.perf_counter()
    ad = EncoderAdaptation(encoder, checkpoint_dir=folder, random_state=0, progress=False, **kw).fit(images)
    # the epochs' own times: a rerun resumes the cached adaptation in a moment
    record = {"params": kw, "seconds": round(sum(h.get("seconds", 0.0) for h in ad.history_), 1),
              "wall_s": round(time.perf_counter() - t0, 1), "n_galaxies": ad.n_galaxies_,
              "loss": [round(h["loss"], 4) for h in ad.history_]}
    print(f"{name} adapted ({label}): {record}", flush=True)
    return ad.encoder_, record


def apply_settings(cfg: dict, settings: dict | None) -> dict:
    """``cfg`` with each ``{"section.key": value}`` of ``settings`` set (``--pipeline-variant``, ``--m3-variant``)."""
    for key, value in (settings or {}).items():
        section, _, option = key.partition(".")
        cfg[section][option] = value
    return cfg


def pipeline_run(name: str, encoder_name: str, checkpoint, source, rows, y, folder: Path,
                 settings: dict | None = None) -> dict:
    """What a new user sees: the default ``galtaxa run`` (measurement off) on the benchmark split with this
    encoder; the vote's kept fraction and purity from the catalog, the 30-label probe of ``embedding.npy``.
    ``settings``: config keys to change, ``{"section.key": value}`` (``--pipeline-variant``)."""
    from galtaxa.pipeline import run_pipeline
    from stages import gz1_run_config

    cfg = gz1_run_config([DATA / "gz1" / "images" / f"{source.ids[i]}.jpeg" for i in rows], folder)
    cfg["measure"]["enabled"] = False
    cfg["report"]["enabled"] = False
    cfg["encoder"].update(name=encoder_name, checkpoint=None if checkpoint is None else str(checkpoint))
    apply_settings(cfg, settings)
    t0 = time.perf_counter()
    result = run_pipeline(cfg, progress=False, force=True)
    seconds = time.perf_counter() - t0
    cat = result.catalog.set_index("id").loc[[str(source.ids[i]) for i in rows]]
    g = cat["group"].to_numpy()
    out = {"seconds": round(seconds, 1)}
    for agree in (2, 3):
        r = group_purity(np.where(cat["agreement"].to_numpy() >= agree, g, -1), y)
        out[f"k20_agree{agree}"] = {"kept": r["kept"], "purity": r["purity"]}
    Z = np.load(Path(cfg["run_dir"]) / "embedding.npy")
    if len(Z) == len(rows):
        summary, extra = probe_scores(Z, y)
        p = {str(r["n_per_class"]): r for r in summary.to_dict("records")}
        out["probe30_f1"] = round(float(p["30"]["macro_f1_mean"]), 3)
        out["three_class_f1_30"] = extra["three_class_f1_30"]
    print(f"{name} (galtaxa run): {out}", flush=True)
    return out


def m3_run(name: str, encoders: list, source, rows, y, folder: Path = CACHE / "m3", settings: dict | None = None) -> dict:
    """The M3 route (``route: multimodal``) with its defaults on the benchmark split, its image branch given by
    ``encoders``: the purity of its groups (purged galaxies count as not kept).  Every call runs in one folder, so
    the read and measure stages (the same for every encoder) are computed once and the encode stages once per
    encoder.  ``settings``: config keys to change, ``{"section.key": value}`` (``--m3-variant``)."""
    from galtaxa.pipeline import run_pipeline
    from stages import gz1_run_config

    cfg = gz1_run_config([DATA / "gz1" / "images" / f"{source.ids[i]}.jpeg" for i in rows], folder)
    cfg["route"] = "multimodal"
    cfg["report"]["enabled"] = False
    cfg["multimodal"]["encoders"] = list(encoders)
    apply_settings(cfg, settings)
    t0 = time.perf_counter()
    result = run_pipeline(cfg, progress=False)
    cat = result.catalog.set_index("id").loc[[str(source.ids[i]) for i in rows]]
    m = machine()
    out = {"encoders": list(encoders), "seconds": round(time.perf_counter() - t0, 1),
           **group_purity(cat["group"].to_numpy(), y), **({"settings": settings} if settings else {}),
           "measured": {k: m.get(k) for k in ("git_commit", "date", "command")}}
    print(f"{name} (M3 route): {out}", flush=True)
    return out


#: Layouts of the M3 route's image branch measured by ``--m3``: the encoder on the image and on its polar
#: unfolding (the layout of the default ``multimodal.encoders``), or on the image alone.
M3_BRANCHES = {"image+polar": ("image", "polar"), "image": ("image",)}


def m3_runs(name: str, encoder_name: str, checkpoint, branches, source, rows, y, variants=(), parts: int = 1) -> dict:
    """:func:`m3_run` for each layout of ``branches`` (keys of :data:`M3_BRANCHES`) with this encoder, with the
    route's defaults and with each ``(label, settings)`` of ``variants`` (keyed ``"BRANCH, key=value, ..."``).
    With ``parts`` > 1, each also on that many disjoint parts of the split (a seeded random partition; keyed
    ``"..., part I of N"``): the route on a few hundred galaxies, where BIC allows fewer groups."""
    subsets = [("", rows, y, CACHE / "m3")]
    if parts > 1:
        subsets += [(f", part {i + 1} of {parts}", rows[p], y[p], CACHE / f"m3_part{i}")
                    for i, p in enumerate(split_parts(len(rows), parts))]
    out = {}
    for branch in branches:
        specs = [{"name": encoder_name, "view": view, **({} if checkpoint is None else {"checkpoint": str(checkpoint)})}
                 for view in M3_BRANCHES[branch]]
        for suffix, part_rows, part_y, folder in subsets:
            out[branch + suffix] = m3_run(f"{name}, {branch}{suffix}", specs, source, part_rows, part_y, folder)
            for _label, settings in variants:
                key = f"{branch}, {_settings_words(settings)}{suffix}"
                out[key] = m3_run(f"{name}, {key}", specs, source, part_rows, part_y, folder, settings=settings)
    return out


def sim_ari(encoder, n: int = 600, checkpoint=None) -> dict:
    """ARI of the vote against the six true types of the simulated set (``simulate(600, seed=0)``, the set of
    ``benchmarks/representation.py``; the encoder was trained on other seeds), conditioned as the demo conditions
    it (asinh, whole 100 px stamp) and reduced as the demo reduces it (``PCAReducer``, 30 dimensions, features
    scaled and z-scored as ``reduce``'s ``auto`` settings do for the encoder, its morphology axes appended where
    they do; no descriptors), k = 6 and 12, 2 of
    3.  (Rows measured before the ``auto`` settings: a plain PCA 30.)"""
    from sklearn.metrics import adjusted_rand_score

    from galtaxa.cluster import VotingClustering
    from galtaxa.datasets import simulate
    from galtaxa.preprocess import Conditioner

    path = CACHE / f"sim_{n}.npz"
    if path.exists():
        data = np.load(path, allow_pickle=False)
        images, types = data["images"], data["types"]
    else:
        gals, truth = simulate(n=n, size=100, seed=0)
        cond = Conditioner(size=100, geometry="crop", crop_fraction=1.0, scaling="asinh")
        images = np.stack([cond(np.asarray(im)) for im in gals.images])
        types = truth["type"].to_numpy(dtype=str)
        np.savez(path, images=images, types=types)
    from galtaxa.reduce import PCAReducer

    feats = encoder.encode(run_pixels(images), batch_size=64)
    space = space_kwargs(default_space(encoder.name, checkpoint), encoder.name, checkpoint)
    Z = PCAReducer(n_components=min(30, feats.shape[1]), standardize=space["standardize"],
                   normalize=space["normalize"], axes=space["axes"], axes_weight=space["axes_weight"],
                   random_state=0).fit_transform(feats)
    out = {}
    for k in (6, 12):
        vc = VotingClustering(n_clusters=k, min_agree=2, mapping="hungarian", random_state=0).fit(Z)
        keep = vc.labels_ >= 0
        out[f"k{k}"] = {"kept": round(float(keep.mean()), 3),
                        "ari": round(float(adjusted_rand_score(types[keep], vc.labels_[keep])), 3)}
    return out


def unlabelled_runs(name: str, encoder_name: str, checkpoint, folder: Path, mosaics: bool = True) -> dict:
    """The default ``galtaxa run`` (measurement off) on the unlabelled SDSS FITS stamps and HST AEGIS stamps of
    ../shared/data: how the vote groups them, with one mosaic per survey (rows = groups)."""
    from galtaxa.config import default_config
    from galtaxa.pipeline import RunPlan, read_stage, run_pipeline
    from galtaxa.cache import RunCache
    from galtaxa.label.thumbnails import make_mosaic, mosaic_stretch_for

    out = {}
    for survey in ("sdss_fits", "hst_aegis"):
        cfg = default_config()
        cfg["input"]["path"] = str(DATA / survey)
        cfg["run_dir"] = str(folder / survey)
        cfg["measure"]["enabled"] = False
        cfg["report"]["enabled"] = False
        cfg["encoder"].update(name=encoder_name, checkpoint=None if checkpoint is None else str(checkpoint))
        result = run_pipeline(cfg, progress=False, force=True)
        cat = result.catalog
        with RunPlan.from_config(cfg, progress=False) as plan:
            galaxies, _ = read_stage(plan, RunCache(cfg["run_dir"]))
        scaling = plan.cfg["conditioning"]["scaling"]
        groups = cat["group"].to_numpy()
        sizes = pd.Series(groups[groups >= 0]).value_counts()
        rows = []
        for g in sizes.index:
            members = np.flatnonzero(groups == g)[:8]
            rows.append(np.pad(members, (0, 8 - len(members)), constant_values=-1))
        order = np.concatenate(rows) if rows else np.zeros(0, int)
        images = np.asarray(galaxies.images)
        blank = np.zeros_like(images[0])
        cells = np.stack([images[i] if i >= 0 else blank for i in order]) if len(order) else images[:0]
        titles = [f"g{groups[i]}" if i >= 0 else "" for i in order]
        png = RESULTS / f"galaxy_encoder_{survey}_{slug(name)}.png"
        if mosaics and len(cells):
            make_mosaic(cells, png, ncols=8, titles=titles, cell_px=64,
                        stretch=mosaic_stretch_for(scaling))
        out[survey] = {"n_ok": int((cat["status"] == "ok").sum()), "groups": {int(g): int(c) for g, c in sizes.items()},
                       "rejected": int((groups == -1).sum()), "mosaic": png.name if mosaics else None}
        print(f"{name} on {survey}: {out[survey]}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoders", nargs="*", default=[], help="galaxy encoder files (.safetensors)")
    ap.add_argument("--shipped", nargs="*", default=None,
                    help="also these shipped galaxy encoders (no name: every one, galtaxa.encode.galaxy_encoder."
                         "SHIPPED_ENCODERS)")
    ap.add_argument("--no-imagenet", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "galaxy_encoder.json")
    ap.add_argument("--pipeline", action="store_true",
                    help="also run the default `galtaxa run` (measurement off) on the benchmark split per encoder")
    ap.add_argument("--surveys", action="store_true",
                    help="also the simulated set's ARI and the vote on the unlabelled SDSS FITS / HST AEGIS stamps")
    ap.add_argument("--m3", nargs="*", default=None, choices=sorted(M3_BRANCHES),
                    help="also the M3 route (route: multimodal, its defaults) with each encoder as its image branch: "
                         "on the image and on its polar unfolding (image+polar, the default's layout) and/or on the "
                         "image alone (image)")
    ap.add_argument("--m3-variant", action="append", default=[], metavar="LABEL:SECTION.KEY=VALUE,...",
                    help="with --m3, also the route with these config settings changed (e.g. "
                         "whiten:multimodal.whiten=standardize); repeatable")
    ap.add_argument("--m3-parts", type=int, default=1, metavar="N",
                    help="with --m3, also each M3 run on N disjoint parts of the split (a few hundred galaxies each)")
    ap.add_argument("--m3-only", action="store_true",
                    help="only the M3 runs: the encoders' other figures (and M3 rows of other layouts or settings) stay as stored")
    ap.add_argument("--pipeline-variant", action="append", default=[], metavar="LABEL:SECTION.KEY=VALUE,...",
                    help="with --pipeline, also the run with these config settings changed (e.g. "
                         "nodesc16:reduce.descriptors=false,reduce.n_components=16); repeatable")
    ap.add_argument("--adapt", nargs="+", default=None, metavar="SPEC",
                    help="also each encoder adapted to the benchmark split (label-free): simclr, measurements or "
                         "LABEL:key=value,... (EncoderAdaptation parameters); a row per adaptation")
    ap.add_argument("--survey", choices=("plain", "other", "other_1band"), default="plain",
                    help="the data set every figure (and --adapt) is measured on: the benchmark split as SDSS shows "
                         "it (plain) or re-imaged as the other survey (colour / one band); rows are named after it "
                         "(their 'other survey' columns then score the re-imaged galaxies against themselves)")
    ap.add_argument("--vote-parts", type=int, default=0, metavar="N",
                    help="also the vote over voter seeds on N disjoint parts of the split (a few hundred galaxies "
                         "each), each in a clustering space fitted on the part alone")
    ap.add_argument("--space-study", action="store_true",
                    help="also other clustering spaces: with and without descriptors, PCA 8 / 16 / 32 / 50, whitened, "
                         "features not z-scored, unit-length features with and without the morphology axes")
    args = ap.parse_args(argv)
    VOTE_PARTS["n"] = args.vote_parts
    if args.survey != "plain" and (args.pipeline or args.surveys or args.m3 is not None):
        ap.error("--pipeline, --surveys and --m3 run on the files of ../shared/data: not with --survey")
    pipeline_variants = list(map(parse_recipe, args.pipeline_variant))
    m3_branches, m3_variants = args.m3 or ["image+polar"], list(map(parse_recipe, args.m3_variant))
    if args.space_study:
        SPACE_STUDY.update({"pca50, no descriptors": {"n_components": 50, "weight": 0.0},
                            "pca50 + descriptors at 0.25": {"n_components": 50, "weight": 0.25},
                            "pca50 + descriptors": {"n_components": 50, "weight": 0.5},
                            "pca16 + descriptors": {"n_components": 16},
                            "pca8, no descriptors": {"n_components": 8, "weight": 0.0},
                            "pca16, no descriptors": {"n_components": 16, "weight": 0.0},
                            "pca32, no descriptors": {"n_components": 32, "weight": 0.0},
                            "whitened pca16, no descriptors": {"n_components": 16, "weight": 0.0, "whiten": True},
                            "pca16 + descriptors, features not z-scored": {"n_components": 16, "standardize": False},
                            "pca16, no descriptors, features not z-scored": {"n_components": 16, "weight": 0.0,
                                                                             "standardize": False},
                            # unit-length features (the default for galaxy encoders) with and without the axes
                            "unit-length pca16, no morphology axes": {"n_components": 16, "weight": 0.0,
                                                                      "normalize": True},
                            "unit-length pca8, no morphology axes": {"n_components": 8, "weight": 0.0,
                                                                     "normalize": True},
                            "unit-length pca8 + morphology axes": {"n_components": 8, "weight": 0.0,
                                                                   "normalize": True, "morphology_axes": True},
                            "unit-length pca32 + morphology axes": {"n_components": 32, "weight": 0.0,
                                                                    "normalize": True, "morphology_axes": True},
                            "unit-length pca16 + morphology axes at 0.5": {
                                "n_components": 16, "weight": 0.0, "normalize": True, "morphology_axes": True,
                                "axes_weight": 0.5},
                            "unit-length pca16 + morphology axes at 2": {
                                "n_components": 16, "weight": 0.0, "normalize": True, "morphology_axes": True,
                                "axes_weight": 2.0}})
    warnings.filterwarnings("ignore", category=UserWarning)
    import torch

    from galtaxa.encode import get_encoder
    from galtaxa.io import open_dataset

    torch.set_num_threads(args.threads)
    source = open_dataset(DATA / "gz1", kind="images")
    rows = split_rows(source)
    y = gz1_labels(source, rows)
    views = {k: conditioned(source, rows, k) for k in ("plain", "other", "other_1band")}
    desc = {k: descriptors(v, k) for k, v in views.items()}
    if args.survey != "plain":  # the re-imaged survey is the data set: every figure, and the adaptation, on it
        views["plain"], desc["plain"] = views[args.survey], desc[args.survey]
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = machine()
    results["n_benchmark"] = int(len(rows))
    results["classes"] = CLASSES
    encoders = [] if args.no_imagenet else [("ImageNet EfficientNet-Lite0", "efficientnet_lite0", None)]
    if args.shipped is not None:
        from galtaxa.encode.galaxy_encoder import SHIPPED_ENCODERS

        encoders += [(n, n, None) for n in (args.shipped or SHIPPED_ENCODERS)]
    encoders += [(Path(p).stem, "galtaxa-galaxy", p) for p in args.encoders]
    if args.survey != "plain":
        encoders = [(f"{name} on the {args.survey.replace('_', ' ')} survey", *rest) for name, *rest in encoders]
    for name, encoder_name, checkpoint in encoders:
        earlier = results.get("rows", {}).get(name, {})
        earlier_m3 = earlier.get("m3", {})  # each M3 figure records its own command
        if args.m3_only:
            row = earlier
            row["m3"] = earlier_m3 | m3_runs(name, encoder_name, checkpoint, m3_branches, source, rows, y,
                                             m3_variants, args.m3_parts)
            results.setdefault("rows", {})[name] = row
            args.out.write_text(json.dumps(results, indent=1, default=float))
            continue
        row = evaluate(name, get_encoder(encoder_name, checkpoint=checkpoint, input_size=SIZE), views, desc, y,
                       checkpoint)
        if args.surveys:
            enc = get_encoder(encoder_name, checkpoint=checkpoint, input_size=SIZE)
            row["sim"] = sim_ari(enc, checkpoint=checkpoint)
            print(f"{name} simulated set: {row['sim']}", flush=True)
            row["unlabelled"] = unlabelled_runs(name, encoder_name, checkpoint,
                                                CACHE / "surveys" / slug(name),
                                                mosaics=checkpoint is None)  # for ImageNet and the shipped one
        if args.pipeline:
            folder = CACHE / "runs" / slug(name)
            row["galtaxa_run"] = pipeline_run(name, encoder_name, checkpoint, source, rows, y, folder)
            for label, settings in pipeline_variants:
                row.setdefault("galtaxa_run_variants", {})[label] = {
                    "settings": settings, **pipeline_run(f"{name}, {label}", encoder_name, checkpoint, source, rows,
                                                         y, folder.with_name(f"{folder.name}_{label}"), settings)}
        if args.m3 is not None:
            row["m3"] = earlier_m3 | m3_runs(name, encoder_name, checkpoint, m3_branches, source, rows, y,
                                             m3_variants, args.m3_parts)
        elif earlier_m3:
            row["m3"] = earlier_m3
        m = machine()
        row["measured"] = {k: m.get(k) for k in ("git_commit", "date", "command")}
        for variant in row.get("galtaxa_run_variants", {}).values():
            variant.setdefault("measured", row["measured"])
        if earlier.get("galtaxa_run_variants"):  # the variants not rerun keep their figures and their records
            row["galtaxa_run_variants"] = earlier["galtaxa_run_variants"] | row.get("galtaxa_run_variants", {})
        if "space_study" not in row and "space_study" in earlier:  # as measured by its own command
            row["space_study"] = earlier["space_study"]
            row["space_study_measured"] = earlier.get("space_study_measured", earlier.get("measured"))
            row["space_study_pixels"] = earlier.get("space_study_pixels", earlier.get("pixels"))
        elif "space_study" in row:
            row["space_study_measured"], row["space_study_pixels"] = row["measured"], row["pixels"]
        results.setdefault("rows", {})[name] = row
        args.out.write_text(json.dumps(results, indent=1, default=float))
        for label, kw in map(parse_adaptation, args.adapt or []):
            encoder, record = adapted_encoder(name, get_encoder(encoder_name, checkpoint=checkpoint, input_size=SIZE),
                                              label, kw, views["plain"])
            adapted = evaluate(f"{name}, adapted ({label})", encoder, views, desc, y, adapted=True)
            adapted.update(adaptation=record, measured={k: m.get(k) for k in ("git_commit", "date", "command")})
            results["rows"][f"{name}, adapted ({label})"] = adapted
            args.out.write_text(json.dumps(results, indent=1, default=float))
    write_markdown(results, args.out.with_suffix(".md"))
    return 0


def _rows_with(results: dict, key: str) -> dict:
    """``{row name: row[key]}`` for the rows of ``results`` that measured ``key``."""
    return {k: r[key] for k, r in results.get("rows", {}).items() if key in r}


def _other_survey_cell(r: dict) -> str:
    """``colour / 1 band (plain)`` F1@30 of the re-imaged survey, ``-`` where not measured."""
    if "probe30_f1_other" not in r:
        return "-"
    return f"{r['probe30_f1_other']:.2f} / {r['probe30_f1_other_1band']:.2f} ({r['probe30_f1_plain_test']:.2f})"


def _settings_words(settings: dict) -> str:
    """``key=value, key=value``."""
    return ", ".join(f"{a}={b}" for a, b in settings.items())


#: Marks the rows measured on the conditioned pixels (before :func:`run_pixels`).
PIXELS_MARK = "°"


def _pixels_mark(row: dict) -> str:
    return "" if row.get("pixels") == "run" else f" {PIXELS_MARK}"


def write_markdown(results: dict, path: Path) -> None:
    m = results["machine"]
    lines = ["# Galaxy encoder: objectives and the ImageNet baseline on the gz1 benchmark split", "",
             f"{results['n_benchmark']} galaxies the encoders never saw (benchmarks/gz1_encoder_split.csv). Machine: "
             f"{m.get('platform')}, {m.get('cpu_count')} CPUs; commit {m.get('git_commit')}; {m.get('date')}; command "
             f"`{m.get('command')}`", "",
             "Vote columns: the mean over 3 seeds of the voters where measured (one seed otherwise). Rows measured by "
             "other commands than the one above say so below the tables.", "",
             "| representation | clustering space | F1@30 (4 classes) | 3-class F1@30 | F1@all | kNN10 acc | k20 2/3 "
             "kept, purity | k20 3/3 kept, purity | other survey F1@30: colour / 1 band (plain) | s/galaxy |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.get("rows", {}).items():
        if "vote" not in r:  # an encoder measured by --m3-only alone
            continue
        v = r.get("vote_seeds", r["vote"])  # the mean over 3 seeds where measured
        v2, v3 = v["k20_agree2"], v["k20_agree3"]
        lines.append(f"| {name}{_pixels_mark(r)} | {space_words(r.get('space'))} | {r['probe30_f1']:.3f} ± {r['probe30_f1_std']:.3f} | {r['three_class_f1_30']:.2f} | "
                     f"{r['probe_all_f1']:.2f} | {r['knn10_accuracy']:.2f} | {v2['kept']:.2f}, {v2['purity']:.3f} | "
                     f"{v3['kept']:.2f}, {v3['purity']:.3f} | {_other_survey_cell(r)} | "
                     f"{r['seconds_per_galaxy_encode']:.3f} |")
    if any(_pixels_mark(r) for r in results.get("rows", {}).values()):
        lines += ["", f"{PIXELS_MARK} Measured before the benchmark handed the encoders the pixels `galtaxa run` hands "
                      "them (each image rescaled to [0, 1]): these rows' encoders read the conditioned pixels, so "
                      "their figures describe a slightly different input than a run's (the `galtaxa run` table "
                      "below is the run itself). Their space-study and disjoint-part rows are marked alike."]
    runs = _rows_with(results, "galtaxa_run")
    if runs:
        lines += ["", "The default `galtaxa run` (measurement off) on the same galaxies, from its catalog and "
                      "`embedding.npy` (the wall time counts what the run computed: a rerun in the same folder "
                      "reuses the stages its settings share with the last run):", "",
                  "| representation | vote 2/3 kept, purity | vote 3/3 kept, purity | F1@30 of embedding.npy "
                  "(3 classes) | wall s |", "|---|---|---|---|---|"]
        variants = {f"{k}, {_settings_words(v['settings'])}": v
                    for k, r in results["rows"].items() for v in r.get("galtaxa_run_variants", {}).values()}
        for k, r in {**runs, **variants}.items():
            lines.append(f"| {k} | {r['k20_agree2']['kept']:.2f}, {r['k20_agree2']['purity']:.3f} | "
                         f"{r['k20_agree3']['kept']:.2f}, {r['k20_agree3']['purity']:.3f} | "
                         f"{r.get('probe30_f1', float('nan')):.3f} ({r.get('three_class_f1_30', float('nan')):.2f})"
                         f" | {r['seconds']:.0f} |")
    sims = {k: r for k, r in results.get("rows", {}).items() if "sim" in r}  # the whole row: sim and unlabelled
    if sims:
        lines += ["", "Other data: the simulated set (600 GalSim galaxies of six types, seed 0, conditioned as the demo "
                      "does; reduced as the demo reduces it: PCA 30 of the features scaled as `reduce`'s `auto` settings "
                      "scale them for the encoder, a plain PCA 30 for rows measured before them; vote 2 of 3) and the default `galtaxa run` on the unlabelled SDSS FITS and HST "
                      "AEGIS stamps (group sizes; mosaics: one row per group):", "",
                  "| representation | sim ARI k6 / k12 (kept) | SDSS FITS: groups (rejected) | HST AEGIS: groups "
                  "(rejected) |", "|---|---|---|---|"]
        for k, r in sims.items():
            u = r.get("unlabelled", {})

            def groups(survey):
                g = u.get(survey)
                return "-" if not g else (f"{len(g['groups'])}: " + " ".join(str(v) for v in g["groups"].values())
                                          + f" ({g['rejected']})" + (f", [mosaic]({g['mosaic']})" if g["mosaic"]
                                                                     else ""))

            lines.append(f"| {k} | {r['sim']['k6']['ari']:.2f} / {r['sim']['k12']['ari']:.2f} "
                         f"({r['sim']['k6']['kept']:.2f} / {r['sim']['k12']['kept']:.2f}) | {groups('sdss_fits')} | "
                         f"{groups('hst_aegis')} |")
    m3 = _rows_with(results, "m3")
    if m3:
        lines += ["", "The M3 route (`route: multimodal`, its defaults: measurement on, the encoder's view "
                      "`auto` (smoothing 1.5 px and z-score for ImageNet, as M3; the conditioned image for galtaxa's "
                      "encoders, as they were trained), "
                      "C A S Gini M20, purge, 64-d autoencoder, its bottleneck z-scored for diagonal covariances "
                      "and PCA-whitened for full ones (`whiten: auto`), GMM by BIC) with the encoder as its image branch "
                      "(image+polar: on the image and on its polar unfolding, the default layout; image: on the "
                      "image alone): purity of its groups over the labelled galaxies it groups (purged galaxies are "
                      "not kept):", "",
                  "| image branch | groups | kept | purity | wall s |", "|---|---|---|---|---|"]
        for k, by_branch in m3.items():
            for branch, r in by_branch.items():
                lines.append(f"| {k}, {branch} | {r['n_groups']} | {r['kept']:.2f} | {r['purity']:.3f} | "
                             f"{r['seconds']:.0f} |")
        lines += ["", "(The wall time includes the read and measure stages for the first run of a folder; later "
                      "runs reuse them and their encode stages.)"]
        lines += [f"- M3, {k}, {b}: commit {r['measured'].get('git_commit')}, {r['measured'].get('date')}, "
                  f"`{r['measured'].get('command')}`" for k, by_branch in m3.items() for b, r in by_branch.items()
                  if r.get("measured")]
    studies = _rows_with(results, "space_study")
    if studies:
        lines += ["", "Clustering spaces (`--space-study`): the same features, reduced otherwise than in the row's "
                      "default space (its clustering space column above); vote: mean over 3 seeds of the voters:", "",
                  "| representation, space | F1@30 | 3-class F1@30 | kNN10 acc | k20 2/3 kept, purity | "
                  "k20 3/3 kept, purity | other survey F1@30: colour / 1 band (plain) | on disjoint parts "
                  "(`--vote-parts`): 2/3 purity; 3/3 kept, purity |", "|---|---|---|---|---|---|---|---|"]
        for k, study in studies.items():
            for label, r in study.items():
                three = "-" if r.get("three_class_f1_30") is None else f"{r['three_class_f1_30']:.2f}"
                parts_cell = "; ".join(f"{p[1]:.3f}, {p[2]:.2f} at {p[3]:.3f}" for p in r.get("parts", [])) or "-"
                mark = _pixels_mark({"pixels": results["rows"][k].get("space_study_pixels")})
                lines.append(f"| {k}, {label}{mark} | {r['probe30_f1']:.3f} | {three} | {r['knn10_accuracy']:.2f} | "
                             f"{r['k20_agree2'][0]:.2f}, {r['k20_agree2'][1]:.3f} | {r['k20_agree3'][0]:.2f}, "
                             f"{r['k20_agree3'][1]:.3f} | {_other_survey_cell(r)} | {parts_cell} |")
        lines += [""] + [f"- Spaces of {k}: commit {rec.get('git_commit')}, {rec.get('date')}, `{rec.get('command')}`"
                         for k, rec in _rows_with(results, "space_study_measured").items() if k in studies]
    parts = _rows_with(results, "vote_seeds_parts")
    if parts:
        lines += ["", "The vote on disjoint parts of the split (`--vote-parts`: a seeded partition, each part clustered "
                      "in its default space fitted on the part alone, as a run on those galaxies would be; mean over "
                      "3 seeds of the voters):", "",
                  "| representation, part | galaxies | k20 2/3 kept, purity (range) | k20 3/3 kept, purity (range) |",
                  "|---|---|---|---|"]
        for k, rows_ in parts.items():
            for i, v in enumerate(rows_):
                a2, a3 = v["k20_agree2"], v["k20_agree3"]
                lines.append(f"| {k}, part {i + 1} of {len(rows_)}{_pixels_mark(results['rows'][k])} | "
                             f"{v.get('n', '-')} | {a2['kept']:.2f}, "
                             f"{a2['purity']:.3f} ({a2['purity_range'][0]:.3f}-{a2['purity_range'][1]:.3f}) | "
                             f"{a3['kept']:.2f}, {a3['purity']:.3f} ({a3['purity_range'][0]:.3f}-"
                             f"{a3['purity_range'][1]:.3f}) |")
    adapted = _rows_with(results, "adaptation")
    if adapted:
        lines += ["", "Adapted rows: the encoder of the row named, adapted label-free to the benchmark split "
                      "(`EncoderAdaptation`, the `adapt:` defaults: 2 epochs, last 2 stages, batch 64, lr 1e-4; "
                      "simclr: SimCLR alone; measurements: SimCLR + the galaxies' own 16 standardised descriptors "
                      "at weight 1), then measured as the other rows:", "",
                  "| row | parameters | galaxies | loss per epoch | adaptation s |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {_settings_words(r['params'])} | {r['n_galaxies']} | "
                  f"{' -> '.join(f'{v:.3f}' for v in r['loss'])} | {r['seconds']:.0f} |" for k, r in adapted.items()]
    other = {k: r["measured"] for k, r in results.get("rows", {}).items()
             if r.get("measured") and r["measured"].get("command") != m.get("command")}
    if other:
        lines += [""] + [f"- {k}: commit {v.get('git_commit')}, {v.get('date')}, `{v.get('command')}`"
                         for k, v in other.items()]
    any_row = next(iter(results.get("rows", {}).values()), None)
    if any_row:
        lines += ["", f"Purity of a single group (all galaxies called E): "
                      f"{any_row['vote']['k20_agree2']['majority_baseline']:.2f}."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
