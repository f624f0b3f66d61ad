"""``galtaxa demo``: the pipeline on simulated galaxies + Hubble Deep Field cutouts (no download)."""

from __future__ import annotations

from .run import FORCE_HELP, run_dir_argument

__all__ = ["register"]


def _cmd_demo(args) -> int:
    from ..demo import run_demo  # lazy: seconds of library, not for --help

    result = run_demo(out=args.out, n_simulated=args.n, seed=args.seed, fast=args.fast, force=args.force)
    print(result.summary())
    return 0


def register(subparsers) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser("demo", help="run on simulated + Hubble Deep Field galaxies")
    p.add_argument("--out", default="galtaxa-demo", type=run_dir_argument, help="output folder (~ and $VAR expanded)")
    p.add_argument("--n", type=int, default=300, help="number of simulated galaxies")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated galaxies and of every random step")
    p.add_argument("--fast", action="store_true", help="smaller everything (used by the tests)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.set_defaults(func=_cmd_demo)
