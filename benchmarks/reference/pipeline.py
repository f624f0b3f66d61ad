"""The papers'-style pipeline, one image at a time (benchmarks only; see the package docstring)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["read_reference", "condition_reference", "polar_unfold_reference", "encode_reference",
           "reduce_reference", "cluster_reference", "vote_reference"]


def read_reference(files) -> list[np.ndarray]:
    """Read pictures one by one with PIL into (C, H, W) float32 arrays (no checks, like the papers' loop)."""
    from PIL import Image

    out = []
    for f in files:
        with Image.open(f) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32)
        out.append(np.transpose(arr, (2, 0, 1)).copy())
    return out


def condition_reference(image: np.ndarray, size: int = 100, softening: float = 0.1) -> np.ndarray:
    """Central crop to ``size`` then per-image asinh stretch to [0, 1]: ``asinh(x / (s max)) / asinh(1 / s)``."""
    c, h, w = image.shape
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    crop = image[:, top:top + size, left:left + size].astype(np.float32)
    crop = crop - np.median(crop)
    peak = crop.max()
    if peak <= 0:
        return np.zeros_like(crop)
    out = np.arcsinh(crop / (softening * peak)) / np.arcsinh(1.0 / softening)
    return np.clip(out, 0, 1).astype(np.float32)


def _bilinear(img: np.ndarray, y: float, x: float) -> float:
    """Bilinear interpolation of a 2-D image at (y, x), inside [0, H-1] x [0, W-1]."""
    h, w = img.shape
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    y0, x0 = min(max(y0, 0), h - 1), min(max(x0, 0), w - 1)
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    dy, dx = y - y0, x - x0
    return ((1 - dy) * (1 - dx) * img[y0, x0] + (1 - dy) * dx * img[y0, x1]
            + dy * (1 - dx) * img[y1, x0] + dy * dx * img[y1, x1])


def polar_unfold_reference(image: np.ndarray, angle_step: float = 0.05, upsample: int = 2, fill: float = 0.0,
                           mirror: bool = True) -> np.ndarray:
    """Adaptive polar unfolding of ONE image (C, H, W) with explicit loops over rays and radii.

    Centre: brightest pixel of the channel mean inside the inscribed disk; reference direction: towards the
    faintest pixel of that disk; ``floor(2 pi / angle_step)`` rays at ``phi0 + 2 pi k / n``; radii
    ``j / upsample`` for ``j < floor(upsample min(H, W) / 2)``; bilinear samples; outside the image -> ``fill``
    (NOT the papers' negative-index wrap-around). Mirror: ``[P[:, R-1..1], P[:, 0..R-1]]``.
    """
    c, h, w = image.shape
    mean = image.mean(axis=0)
    cy0, cx0 = (h - 1) / 2, (w - 1) / 2
    best, worst = -np.inf, np.inf
    py = px = fy = fx = 0
    for y in range(h):  # the papers' code scans the pixels for the extreme values
        for x in range(w):
            if (y - cy0) ** 2 + (x - cx0) ** 2 > (min(h, w) / 2) ** 2:
                continue
            v = mean[y, x]
            if v > best:
                best, py, px = v, y, x
            if v < worst:
                worst, fy, fx = v, y, x
    if best <= worst:
        py, px, phi0 = cy0, cx0, 0.0
    else:
        phi0 = math.atan2(fy - py, fx - px)
    n_angles = int(math.floor(2 * math.pi / angle_step + 1e-9))
    n_radii = int(math.floor(upsample * min(h, w) / 2 + 1e-9))
    polar = np.empty((c, n_angles, n_radii), dtype=np.float32)
    eps = 1e-4
    for k in range(n_angles):
        theta = phi0 + 2 * math.pi * k / n_angles
        st, ct = math.sin(theta), math.cos(theta)
        for j in range(n_radii):
            r = j / upsample
            y, x = py + r * st, px + r * ct
            if y < -eps or y > h - 1 + eps or x < -eps or x > w - 1 + eps:
                polar[:, k, j] = fill
                continue
            y, x = min(max(y, 0.0), h - 1.0), min(max(x, 0.0), w - 1.0)
            for ch in range(c):
                polar[ch, k, j] = _bilinear(image[ch], y, x)
    if mirror:
        polar = np.concatenate([polar[:, :, 1:][:, :, ::-1], polar], axis=2)
    return polar


def encode_reference(images, encoder) -> np.ndarray:
    """One encoder call per image (batch of one), as the papers' feature loop does."""
    import torch

    out = np.empty((len(images), encoder.feature_dim), dtype=np.float32)
    with torch.no_grad():
        for i in range(len(images)):
            x = encoder.preprocess(np.asarray(images[i:i + 1], dtype=np.float32))
            out[i] = encoder.model(x).float().cpu().numpy()[0]
    return out


def reduce_reference(features: np.ndarray, n_components: int = 50, random_state: int = 0) -> np.ndarray:
    """scikit-learn ``StandardScaler`` + ``PCA(n_components)`` with default settings."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    return PCA(n_components=n_components, random_state=random_state).fit_transform(
        StandardScaler().fit_transform(features))


def cluster_reference(z: np.ndarray, n_clusters: int = 20, random_state: int = 0) -> dict[str, np.ndarray]:
    """k-means, BIRCH and Ward with scikit-learn defaults (``Birch(n_clusters=20)``, threshold 0.5)."""
    from sklearn.cluster import AgglomerativeClustering, Birch, KMeans

    return {
        "kmeans": KMeans(n_clusters=n_clusters, random_state=random_state).fit_predict(z),
        "birch": Birch(n_clusters=n_clusters).fit_predict(z),
        "ward": AgglomerativeClustering(n_clusters=n_clusters).fit_predict(z),
    }


def vote_reference(labels: dict[str, np.ndarray], min_agree: int = 2) -> np.ndarray:
    """Overlap mapping to the k-means labels and a per-galaxy majority vote in a Python loop (-1 = rejected)."""
    ref = labels["kmeans"]
    mapped = [ref]
    for name in ("birch", "ward"):
        lab = labels[name]
        mapping = {}
        for g in np.unique(lab):
            vals, counts = np.unique(ref[lab == g], return_counts=True)
            mapping[g] = vals[np.argmax(counts)]
        mapped.append(np.array([mapping[g] for g in lab]))
    out = np.full(len(ref), -1)
    for i in range(len(ref)):
        votes = [m[i] for m in mapped]
        best = max(set(votes), key=lambda v: (votes.count(v), v == votes[0]))
        if votes.count(best) >= min_agree:
            out[i] = best
    return out
