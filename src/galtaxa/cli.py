"""The ``galtaxa`` command line: the same stages as the Python API.

Subcommands (one module each in :mod:`galtaxa.commands`)
---------------------------------------------------------
info PATH        read a dataset and print what was found (galaxies, labels, bad files)
init [CONFIG]    write a commented YAML config with every default
run CONFIG       the whole pipeline: read, measure, cluster, catalog, report
measure CONFIG   non-parametric morphology only
cluster CONFIG   the unsupervised taxonomy only (plus the group mosaics)
report RUN_DIR   (re)build the validation report of a finished run
validate RUN_DIR --reference FILE   cross-match a reference catalog, compare classes, physical subsamples
inspect RUN_DIR  inspect and label the run in the browser (local web app)
demo             the pipeline on simulated galaxies + Hubble Deep Field cutouts (no download)
ablation CONFIG  method M3's ablation (deep-only, morphology-only, fused) beside the paper
train, predict, pretrain, adversarial, similar CONFIG   methods M4/M5 (the config's supervised: section)
"""

from __future__ import annotations

import argparse
import logging
import sys

from ._version import __version__

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    from .commands import register_all

    parser = argparse.ArgumentParser(prog="galtaxa", description="Galaxy morphology catalogs from survey cutouts.")
    parser.add_argument("--version", action="version", version=f"galtaxa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every skipped galaxy")
    register_all(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv=None) -> int:
    """Entry point of the ``galtaxa`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .config import ConfigError
    from .status import BadInputError

    try:
        return args.func(args)
    except (ConfigError, BadInputError, FileNotFoundError, ValueError) as err:  # user-facing messages
        print(f"galtaxa {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a read-only or locked run folder, a folder in a file's way
        print(f"galtaxa {args.command}: error: {err.strerror if err.strerror and not err.filename else err}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
