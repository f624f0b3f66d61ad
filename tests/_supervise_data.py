"""Tiny synthetic image sets for the supervise tests."""

import numpy as np


def blobs(n=80, size=32, seed=0):
    """Two separable classes: round Gaussian blobs (0) and elongated bars (1) at random angles, (N, 1, H, W)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    imgs, y = [], []
    for i in range(n):
        c = i % 2
        a = rng.uniform(0, np.pi)
        u = xx * np.cos(a) + yy * np.sin(a)
        v = -xx * np.sin(a) + yy * np.cos(a)
        s1, s2 = (4.0, 4.0) if c == 0 else (7.0, 1.5)
        img = np.exp(-0.5 * ((u / s1) ** 2 + (v / s2) ** 2)) + rng.normal(0, 0.03, (size, size))
        imgs.append(img)
        y.append(c)
    return np.asarray(imgs, np.float32)[:, None], np.asarray(y)


class Interrupt(Exception):
    """Raised by :func:`interrupt_after` to stop a training as a crash would."""


def interrupt_after(last_epoch: int):
    """An ``on_epoch_end(epoch, entry)`` callback that raises :class:`Interrupt` once ``last_epoch`` (0-based) has
    ended and been checkpointed."""
    def stop(epoch, entry):
        if epoch == last_epoch:
            raise Interrupt
    return stop
