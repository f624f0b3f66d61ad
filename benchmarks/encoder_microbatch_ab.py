"""Interleaved A/B of the CPU encoder: micro-batches (``cpu_micro_batch``) against one forward pass per batch of 32.

256 synthetic exponential blobs of 100 x 100 px, ``extract_features`` with the offline EfficientNet-Lite0 at 224 and
128 px, ``--reps`` repetitions alternating the two settings in one process (the only fair comparison on a VM whose
speed drifts between runs).  Prints galaxies/s per repetition.

    .venv/bin/python benchmarks/encoder_microbatch_ab.py [--reps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=256)
    args = ap.parse_args(argv)

    import torch

    import galtaxa.encode.registry as registry
    from galtaxa.encode import extract_features, get_encoder
    from galtaxa.galaxyset import GalaxySet

    torch.set_num_threads(args.threads)
    gen = np.random.default_rng(0)
    y, x = np.mgrid[:100, :100] - 49.5
    imgs = np.stack([np.exp(-np.hypot(x, y) / gen.uniform(3, 15)) + 0.05 * gen.random((100, 100))
                     for _ in range(args.n)]).astype(np.float32)
    gs = GalaxySet.from_arrays(imgs, ids=[str(i) for i in range(args.n)])
    micro = registry.cpu_micro_batch
    try:
        for size in (224, 128):
            enc = get_encoder("efficientnet_lite0", input_size=size)
            for rep in range(args.reps):
                for name, fn in (("micro-batches", micro), ("whole batch of 32", lambda s: 10**6)):
                    registry.cpu_micro_batch = fn
                    t = time.perf_counter()
                    extract_features(gs, enc, progress=False)
                    print(f"{size} px  rep {rep}  {name:18s} {args.n / (time.perf_counter() - t):7.1f} galaxies/s",
                          flush=True)
    finally:
        registry.cpu_micro_batch = micro
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
