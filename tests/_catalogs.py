"""Small catalogs shared by the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def vote_outcomes():
    """12 galaxies: 1 failed, 3 rejected by the vote, 2 kept in a group the mapping leaves unnamed, 6 classified."""
    status = ["failed"] + ["rejected"] * 3 + ["ok"] * 8
    group = [-1, -1, -1, -1, 5, 5, 0, 0, 0, 1, 1, 1]
    cls = ["", "", "", "", "", "", "SPH", "SPH", "SPH", "LTD", "LTD", "LTD"]
    g = np.random.default_rng(0)
    return pd.DataFrame({"id": [f"g{i}" for i in range(12)], "status": status, "reason": "", "group": group,
                         "class": cls, "sersic_n": np.r_[np.nan, g.uniform(0.5, 5, 11)],
                         "gini": np.r_[np.nan, g.uniform(0.3, 0.7, 11)]})


CLASSES = np.array(["SPH", "ETD", "LTD", "IRR", "UNC"])
MORPH = ["sersic_n", "r_e_kpc", "gini", "m20", "C", "A", "S"]


def synthetic_catalog(n=300, seed=0, d=16):
    """Catalog with per-class morphology (like the papers' medians), 30% rejected, 5 failed, features, labels."""
    g = np.random.default_rng(seed)
    k = g.integers(0, 5, n)
    cat = pd.DataFrame({
        "id": [f"g{i:04d}" for i in range(n)],
        "status": "ok",
        "reason": "",
        "group": k * 4 + g.integers(0, 4, n),
        "class": CLASSES[k].astype(object),
        "label": np.where(k <= 1, "E", "S").astype(object),
        "sersic_n": np.array([4.0, 1.8, 1.1, 0.75, 1.5])[k] * np.exp(0.25 * g.normal(size=n)),
        "r_e_kpc": np.array([2.0, 2.5, 3.8, 4.4, 3.0])[k] * np.exp(0.3 * g.normal(size=n)),
        "gini": np.array([0.57, 0.52, 0.49, 0.47, 0.5])[k] + 0.03 * g.normal(size=n),
        "m20": np.array([-2.1, -1.8, -1.55, -1.2, -1.6])[k] + 0.15 * g.normal(size=n),
        "C": np.array([3.6, 3.0, 2.75, 2.5, 2.9])[k] + 0.2 * g.normal(size=n),
        "A": np.abs(np.array([0.05, 0.08, 0.12, 0.25, 0.1])[k] + 0.04 * g.normal(size=n)),
        "S": np.abs(0.02 + 0.02 * g.normal(size=n)),
    })
    flip = g.random(n) < 0.1
    cat.loc[flip, "label"] = np.where(cat.loc[flip, "label"] == "E", "S", "E")
    rej = g.random(n) < 0.3
    cat.loc[rej, ["status", "reason", "class", "group"]] = ["rejected", "voters disagree", "", -1]
    cat.loc[:4, ["status", "reason", "class", "group"]] = ["failed", "statmorph failed: test", "", -1]
    cat.loc[:4, MORPH] = np.nan
    feats = g.normal(0, 3, (5, d))[k] + g.normal(size=(n, d))
    return cat, feats.astype(np.float32)
