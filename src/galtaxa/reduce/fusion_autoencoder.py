"""Multimodal autoencoder that fuses deep features and morphology into one bottleneck (method M3).

Selim et al. (Sci. Rep.) concatenate EfficientNet-B0 (1280-d) and ConvNeXt-Base (1024-d) embeddings with five
z-scored morphology parameters (C, A, S, Gini, M20) and compress the 2309-d vector to a 64-d bottleneck with a
multimodal autoencoder, which is then clustered by a Gaussian mixture.

Architecture (``M`` modalities, block ``m`` of dimension ``D_m``; ``h1, h2 = hidden``; ``b = bottleneck``)::

    x_m  --standardise (fitted mean/std per column)-->  x~_m
    encoder head m :  D_m -> h1 -> h2 -> b        (Linear + ReLU, last layer linear)
    fusion         :  concat(ReLU(heads)) (M*b) -> b   (Linear)             = z, the bottleneck
    decoder m      :  b -> h2 -> h1 -> D_m        (Linear + ReLU, last layer linear)

Loss: a weighted sum of per-modality mean squared errors, each normalised by the block's dimension,

.. math:: L = \\sum_{m=1}^{M} w_m \\; \\frac{1}{D_m} \\lVert \\hat{x}_m - \\tilde{x}_m \\rVert^2
          \\quad (\\text{averaged over the batch}).

* ``modality_weights="balanced"``: ``w_m = 1 / M``.  Every modality weighs the same whatever its width, so the
  2304 deep dimensions do not drown the 5 physical ones.
* ``modality_weights="concat"``: ``w_m = D_m / sum(D)``, which equals the plain MSE of the concatenated vector
  (what a single-input autoencoder on the 2309-d vector minimises); kept for comparison.
* a sequence of ``M`` non-negative numbers: explicit ``w_m`` (used as given).

``tests/reduce/test_fusion_autoencoder.py`` checks on synthetic data that the balanced loss makes the bottleneck carry
the morphology block (ridge R^2 from the bottleneck) far better than the concatenated MSE.

Training: Adam, mini-batches, a seeded validation split for early stopping (best weights restored), every
random draw seeded by ``random_state``, deterministic torch algorithms; blocks may be ``numpy.memmap`` (batches
are read and standardised on the fly).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted
from torch import nn

from ..persist.archive import Persistable
from ..training.trainer import StateDictPickle, Steps, Trainer, seeded_torch, train_val_split
from ..utils.device import pick_device
from ..utils.validation import Interval, positive_int_sequence, validate_params

__all__ = ["MultimodalAutoencoder", "build_multimodal_autoencoder"]


def build_multimodal_autoencoder(dims, bottleneck: int = 64, hidden=(512, 256)):
    """The network for blocks of widths ``dims``; ``forward(list of tensors) -> (z, list of reconstructions)``."""
    dims = [int(d) for d in dims]
    hidden = [int(h) for h in hidden]

    def mlp(sizes):
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    class _MultimodalAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleList(mlp([d, *hidden, bottleneck]) for d in dims)
            self.fuse = nn.Linear(bottleneck * len(dims), bottleneck)
            self.decoders = nn.ModuleList(mlp([bottleneck, *hidden[::-1], d]) for d in dims)

        def encode(self, blocks):
            return self.fuse(torch.cat([torch.relu(h(x)) for h, x in zip(self.heads, blocks)], dim=1))

        def forward(self, blocks):
            z = self.encode(blocks)
            return z, [dec(z) for dec in self.decoders]

    return _MultimodalAE()


class MultimodalAutoencoder(Persistable, StateDictPickle, TransformerMixin, BaseEstimator):
    """Fuse several feature blocks into one bottleneck with a balanced multimodal autoencoder (Selim et al.).

    Parameters
    ----------
    bottleneck : int
        Width of the shared bottleneck (64 in the paper).
    hidden : tuple of int
        Hidden widths of every encoder head (decoders mirror them).
    modality_weights : "balanced", "concat" or sequence of float
        Loss weights ``w_m``; see the module docstring for the formula.
    epochs : int
        Maximum passes over the data.
    batch_size : int
    lr : float
        Adam learning rate.
    weight_decay : float
        Adam L2 penalty.
    patience : int
        Early stopping: epochs without a lower validation loss before stopping.
    val_fraction : float in [0, 1)
        Held-out share for the validation loss (0: the training loss drives early stopping).
    random_state : int
    device : str, optional
        See :func:`galtaxa.utils.device.pick_device`.
    progress : bool

    Attributes
    ----------
    model_ : torch.nn.Module
        Trained network (best epoch), on the CPU between calls.
    dims_ : list of int
        Width of each block.
    means_, stds_ : list of ndarray
        Standardisation of each block (std 0 replaced by 1).
    weights_ : ndarray
        The ``w_m`` used.
    history_ : dict
        ``train_loss`` / ``val_loss`` per epoch and ``val_block_mse`` (per-modality MSE per epoch).
    best_epoch_, n_epochs_ : int
    """

    def __init__(self, bottleneck: int = 64, hidden=(512, 256), modality_weights="balanced", epochs: int = 100,
                 batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.0, patience: int = 10,
                 val_fraction: float = 0.1, random_state: int = 0, device=None, progress: bool = True):
        self.bottleneck = bottleneck
        self.hidden = hidden
        self.modality_weights = modality_weights
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ checks
    PARAM_CONSTRAINTS = {"bottleneck": Interval(int, 1, None), "hidden": positive_int_sequence(),
                         "epochs": Interval(int, 1, None), "batch_size": Interval(int, 1, None),
                         "lr": Interval(float, 0, None, closed="neither"), "weight_decay": Interval(float, 0, None),
                         "patience": Interval(int, 1, None), "val_fraction": Interval(float, 0, 1, closed="left"),
                         "random_state": Interval(int)}

    def _weights(self, dims) -> np.ndarray:
        w = self.modality_weights
        if isinstance(w, str):
            if w == "balanced":
                return np.full(len(dims), 1.0 / len(dims))
            if w == "concat":
                return np.asarray(dims, dtype=float) / float(sum(dims))
            raise ValueError(f"modality_weights must be 'balanced', 'concat' or a sequence; got {w!r}")
        w = np.asarray(w, dtype=float)
        if w.shape != (len(dims),) or not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
            raise ValueError(f"modality_weights must hold {len(dims)} non-negative numbers, not all zero; got "
                             f"{self.modality_weights!r}")
        return w

    @staticmethod
    def _check_blocks(blocks, dims=None) -> list:
        if not isinstance(blocks, (list, tuple)):  # one array-like block
            blocks = [blocks]
        if not blocks:
            raise ValueError("blocks must be a non-empty list of 2-d arrays (N, D_m)")
        out = []
        for i, b in enumerate(blocks):
            if isinstance(b, np.memmap):  # stays on disk: its values are checked batch by batch
                if b.ndim != 2 or b.shape[1] == 0:
                    raise ValueError(f"block {i} must be 2-d (N, D) with D >= 1; got shape {b.shape}")
            else:  # scikit-learn's checks: no sparse, complex or 1-d input, at least one row and one column
                b = check_array(b, dtype="numeric", ensure_all_finite=False, input_name=f"block {i}")
            out.append(b)
        n = {len(b) for b in out}
        if len(n) != 1:
            raise ValueError(f"blocks have different numbers of rows: {[len(b) for b in out]}")
        if n.pop() == 0:
            raise ValueError("blocks are empty (0 rows)")
        widths = [int(b.shape[1]) for b in out]
        if dims is not None and widths != list(dims):
            if len(widths) == len(dims) == 1:
                raise ValueError(f"X has {widths[0]} features, but MultimodalAutoencoder is expecting {dims[0]} "
                                 "features as input")
            raise ValueError(f"block widths {widths} differ from the fitted {list(dims)}")
        return out

    def _batch(self, blocks, idx, device):
        out = []
        for i, (b, mu, sd) in enumerate(zip(blocks, self.means_, self.stds_)):
            x = (np.asarray(b[idx], dtype=np.float64) - mu) / sd
            if not np.isfinite(x).all():
                rows = np.asarray(idx)[~np.isfinite(x).all(axis=1)]
                raise ValueError(f"block {i} has NaN/inf in row(s) {rows[:5].tolist()}; remove them first")
            out.append(torch.as_tensor(x.astype(np.float32)).to(device))
        return out

    @staticmethod
    def _moments(block, chunk: int = 65536):
        n, d = block.shape
        s, s2 = np.zeros(d), np.zeros(d)
        for a in range(0, n, chunk):
            x = np.asarray(block[a:a + chunk], dtype=np.float64)
            if not np.isfinite(x).all():
                bad = a + np.flatnonzero(~np.isfinite(x).all(axis=1))
                raise ValueError(f"a block has NaN/inf in row(s) {bad[:5].tolist()}; remove them first")
            s += x.sum(axis=0)
            s2 += (x * x).sum(axis=0)
        mean = s / n
        std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
        return mean, np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)

    # ------------------------------------------------------------------- fit
    def fit(self, blocks, y=None) -> "MultimodalAutoencoder":
        """Train on ``blocks``, a list of arrays ``(N, D_m)`` sharing their rows; returns ``self``."""
        validate_params(self)
        blocks = self._check_blocks(blocks)
        dims = [int(b.shape[1]) for b in blocks]
        weights = self._weights(dims)
        moments = [self._moments(b) for b in blocks]
        self.means_ = [m for m, _ in moments]
        self.stds_ = [s for _, s in moments]
        n = len(blocks[0])
        device = pick_device(self.device)
        gen = np.random.default_rng(self.random_state)
        val_idx, train_idx = train_val_split(n, self.val_fraction, gen)
        n_val = len(val_idx)
        w_t = torch.as_tensor(weights, dtype=torch.float32, device=device)

        def loss_fn(recs, xs):
            per = torch.stack([torch.mean((r - x) ** 2) for r, x in zip(recs, xs)])
            return (w_t * per).sum(), per

        with seeded_torch(self.random_state, device):
            model = build_multimodal_autoencoder(dims, self.bottleneck, self.hidden).to(device)
            opt = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)

            def batches(epoch):
                model.train()
                perm = train_idx[gen.permutation(len(train_idx))]
                return [np.sort(perm[s:s + self.batch_size]) for s in range(0, len(perm), self.batch_size)]

            def batch_loss(idx):
                xs = self._batch(blocks, idx, device)
                return loss_fn(model(xs)[1], xs)[0], len(idx)

            def validate(epoch):
                if n_val:
                    val_loss, per = self._evaluate(model, blocks, val_idx, device, weights)
                else:
                    val_loss, per = trainer.current["train_loss"], [float("nan")] * len(dims)
                return val_loss, {"val_loss": val_loss, "val_block_mse": per}

            trainer = Trainer(self.epochs, self.patience, "min", name="multimodal AE", progress=self.progress)
            trainer.run({"model": model}, opt, Steps(batches, batch_loss), validate)
        history = {k: [e[k] for e in trainer.history] for k in ("train_loss", "val_loss", "val_block_mse")}
        self.model_ = model.cpu().eval()
        self.dims_ = dims
        self.n_features_in_ = int(sum(dims))
        self.weights_ = weights
        self.history_ = history
        self.best_epoch_ = int(trainer.best_epoch)
        self.best_loss_ = float(trainer.best_value)
        self.n_epochs_ = len(history["train_loss"])
        return self

    def _evaluate(self, model, blocks, idx, device, weights):
        model.eval()
        sums = np.zeros(len(blocks))
        with torch.inference_mode():
            for s in range(0, len(idx), self.batch_size):
                xs = self._batch(blocks, idx[s:s + self.batch_size], device)
                _, recs = model(xs)
                sums += [float(torch.sum(torch.mean((r - x) ** 2, dim=1))) for r, x in zip(recs, xs)]
        per = sums / len(idx)
        return float(np.dot(weights, per)), per.tolist()

    # ------------------------------------------------------------- transform
    def _check_fitted(self) -> None:
        check_is_fitted(self, "model_", msg="this %(name)s is not fitted yet: call fit(blocks) or load(path)")

    def _run(self, blocks, reconstruct: bool):
        self._check_fitted()
        blocks = self._check_blocks(blocks, self.dims_)
        n = len(blocks[0])
        device = pick_device(self.device)
        model = self.model_.to(device).eval()
        z = np.empty((n, self.bottleneck), dtype=np.float32)
        recs = [np.empty((n, d), dtype=np.float32) for d in self.dims_] if reconstruct else None
        step = max(self.batch_size, 1024)
        with torch.inference_mode():
            for s in range(0, n, step):
                idx = np.arange(s, min(n, s + step))
                zb, rb = model(self._batch(blocks, idx, device))
                z[idx] = zb.float().cpu().numpy()
                if reconstruct:
                    for out, r, mu, sd in zip(recs, rb, self.means_, self.stds_):
                        out[idx] = (r.double().cpu().numpy() * sd + mu).astype(np.float32)
        self.model_ = model.cpu()
        return z, recs

    def transform(self, blocks) -> np.ndarray:
        """Bottleneck codes, float32 array (N, bottleneck)."""
        return self._run(blocks, reconstruct=False)[0]

    def reconstruct(self, blocks) -> list[np.ndarray]:
        """Reconstructed blocks in the original (unstandardised) units."""
        return self._run(blocks, reconstruct=True)[1]

    def block_mse(self, blocks) -> np.ndarray:
        """Per-modality reconstruction MSE in standardised units (the terms of the loss before weighting)."""
        blocks = self._check_blocks(blocks, getattr(self, "dims_", None))
        recs = self.reconstruct(blocks)
        return np.array([np.mean(((np.asarray(b, dtype=np.float64) - r) / sd) ** 2)
                         for b, r, sd in zip(blocks, recs, self.stds_)])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # the codes are the float32 network's output
        return tags

    # ------------------------------------------------------------ persistence (Persistable: one .npz file)
    _PERSISTED = ("dims_", "means_", "stds_", "weights_", "history_", "best_epoch_", "best_loss_", "n_epochs_")
    _NETWORK = "model_"

    def _build_model(self):
        """The untrained network for the fitted ``dims_`` (used by :meth:`load` and unpickling)."""
        return build_multimodal_autoencoder(self.dims_, self.bottleneck, self.hidden)
