"""Selim et al.'s ablation of the multimodal route (method M3): one Gaussian mixture on the deep-only,
morphology-only and fused spaces, scored side by side and printed next to the paper's numbers.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.metrics import davies_bouldin_score, silhouette_score

from ..cluster.heuristics import cas_classes, matched_accuracy

__all__ = ["PAPER_ABLATION", "ablation", "format_ablation", "markdown_table"]

#: Selim et al.'s ablation (GMM on each space): Davies-Bouldin (lower is better) and silhouette.
PAPER_ABLATION = {
    "deep": {"dim": 2304, "davies_bouldin": 2.14, "silhouette": 0.18},
    "morph": {"dim": 5, "davies_bouldin": 1.12, "silhouette": 0.31},
    "fused": {"dim": 64, "davies_bouldin": 0.86, "silhouette": 0.44},
}


def ablation(taxonomy, deep_blocks, morph, labels=None, n_components=None, deep_pca: int | None = 64,
             silhouette_sample: int = 5000, params=None) -> pd.DataFrame:
    """GMM on the deep-only, morphology-only and fused spaces, scored as in Selim et al.'s ablation.

    Parameters
    ----------
    taxonomy : MultimodalTaxonomy
        Its settings are used, and when it is fitted its morphology columns, autoencoder and number of
        mixture components.
    deep_blocks, morph
        As for :meth:`MultimodalTaxonomy.fit`; the same screening and purge are applied (a fresh clone of the
        taxonomy's purger), so all three spaces hold the same galaxies.
    labels : array-like of length N, optional
        Reference labels for every input row (``""``/None/NaN = unknown); scored when given.
    n_components : int or "bic", optional
        Mixture components for all three spaces.  Default: the fitted mixture's K when the taxonomy is
        fitted, else the taxonomy's ``gmm.n_components``.  ``"bic"`` lets each space pick its own K.
    deep_pca : int or None
        The deep space is the concatenation of the deep blocks, each column standardised; a full-covariance
        GMM on 2304 dimensions needs ~2.6 M parameters per component (singular with a few thousand
        galaxies), so by default it is first projected onto its top ``deep_pca`` principal components
        (seeded randomized PCA).  ``None`` clusters the standardised space directly.
    silhouette_sample : int
        Silhouette on a seeded random sample of at most this many galaxies (``O(n^2)`` cost).
    params : sequence of str, optional
        Morphology columns (default: the fitted ones, else ``taxonomy.params``).

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
    fitted = hasattr(taxonomy, "gmm_")
    if params is None:
        params = taxonomy.params_ if fitted else taxonomy.params
    if n_components is None:
        n_components = taxonomy.gmm_.n_components_ if fitted else taxonomy._make_gmm().n_components
    blocks, params = taxonomy._check_inputs(deep_blocks, morph, params)
    if labels is not None:
        labels = np.asarray(labels, dtype=object)
        if labels.shape != (len(morph),):
            raise ValueError(f"labels must have one entry per row ({len(morph)}); got shape {labels.shape}")
    if not isinstance(silhouette_sample, numbers.Integral) or silhouette_sample < 2:
        raise ValueError(f"silhouette_sample must be an integer >= 2; got {silhouette_sample!r}")
    _, params, status, _, kept, fused, _ = taxonomy._prepare(blocks, morph, params, fit=True)
    rows = np.flatnonzero(kept)
    if len(rows) < 10:
        raise ValueError(f"only {len(rows)} galaxies left after screening and purging; cannot run the ablation")

    deep = np.concatenate([f.astype(np.float64) for f in fused[:-1]], axis=1)
    deep = (deep - deep.mean(axis=0)) / np.where(deep.std(axis=0) > 0, deep.std(axis=0), 1.0)
    if deep_pca is not None and deep.shape[1] > deep_pca:
        k = int(min(deep_pca, len(rows) - 1))
        deep = PCA(n_components=k, svd_solver="randomized", random_state=taxonomy.random_state).fit_transform(deep)
    m = fused[-1].astype(np.float64)
    m = (m - m.mean(axis=0)) / np.where(m.std(axis=0) > 0, m.std(axis=0), 1.0)
    if fitted and taxonomy.autoencoder_.dims_ == [f.shape[1] for f in fused]:
        z = taxonomy.autoencoder_.transform(fused)
    else:
        z = taxonomy._make_autoencoder().fit(fused).transform(fused)
    spaces = {"deep": deep, "morph": m, "fused": z.astype(np.float64)}

    cas = cas_classes(morph.iloc[rows]).to_numpy(dtype=object)
    out = []
    for name, x in spaces.items():
        g = taxonomy._make_gmm(n_components).fit(x)
        lab = g.labels_
        n_lab = len(np.unique(lab))
        db = float(davies_bouldin_score(x, lab)) if 1 < n_lab < len(x) else np.nan
        sil = (float(silhouette_score(x, lab, sample_size=min(silhouette_sample, len(x)),
                                      random_state=taxonomy.random_state)) if 1 < n_lab < len(x) else np.nan)
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
    widths = [max(len(h), *(len(cells[i]) for cells in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = "  ".join("{:<%d}" % w if i == 0 else "{:>%d}" % w for i, w in enumerate(widths))
    text = [fmt.format(*head), "  ".join("-" * w for w in widths)] + [fmt.format(*cells) for cells in lines]
    text.append("paper: Selim et al. (Sci. Rep.), GMM ablation on 4,950 SDSS galaxies (DB lower, silhouette "
                "higher is better)")
    return "\n".join(text)


def markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    """``df`` as a Markdown table; floats with ``digits`` decimals, non-finite ones as ``-``."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "-" if not np.isfinite(v) else f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)
