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

Errors
------
Any failure ends with one line on stderr, ``galtaxa COMMAND: error: ...``, and exit status 2: the messages of
galtaxa's own checks name the file or setting and the problem; an error galtaxa did not foresee is given with
its type and text and the advice to rerun with ``--debug``, which prints the traceback instead
(:func:`error_line`).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys

from ._version import __version__
from .commands import register_all

__all__ = ["main", "build_parser", "error_line"]

_DEBUG_HELP = "print the traceback of an error (default: one line saying what went wrong)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(prog="galtaxa", description="Galaxy morphology catalogs from survey cutouts.")
    parser.add_argument("--version", action="version", version=f"galtaxa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every skipped galaxy")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True)
    register_all(subparsers)
    for sub in set(subparsers.choices.values()):  # `galtaxa run CONFIG --debug` as well as `galtaxa --debug run`
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return parser


def error_line(err: BaseException) -> str:
    """The one-line message ``galtaxa`` prints for ``err`` (without the ``galtaxa CMD: error:`` prefix).

    galtaxa's own errors (:class:`ValueError` and its subclasses: config, bad input, unsafe or invalid files)
    carry a message naming the file or setting; an :class:`OSError` is given with its file; running out of
    memory or nesting too deep (a file nested thousands of levels deep) say so; any other exception is a
    fault galtaxa did not foresee, given with its type and the advice to rerun with ``--debug``.

    Parameters
    ----------
    err : BaseException

    Returns
    -------
    str
        One line (line breaks of multi-line messages kept only for config problem lists).
    """
    from .config import ConfigError  # lazy: yaml, tqdm: not for --help

    if isinstance(err, ConfigError):  # a list of every problem, one per line
        return str(err)
    if isinstance(err, MemoryError):
        detail = f" ({err})" if str(err) else ""
        return (f"out of memory{detail}: lower the sizes in the config (conditioning.size, batch sizes, "
                "encoder.input_size) or use a machine with more memory; rerun with --debug for the traceback")
    if isinstance(err, RecursionError):
        return ("a file or request is nested too deeply to be read (RecursionError); rerun with --debug for the "
                "traceback")
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
        # a full disk, a read-only or locked run folder, a folder in a file's way
        text = err.strerror if err.strerror and not err.filename else str(err)
    elif isinstance(err, (ValueError, FileNotFoundError)):
        text = str(err)
    else:
        text = (f"unexpected {type(err).__name__}: {err} (rerun with --debug for the traceback, and please report "
                "it)")
    return re.sub(r"\s*[\r\n\u2028\u2029]+\s*", " ", text)


def main(argv=None) -> int:
    """Entry point of the ``galtaxa`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except Exception as err:  # noqa: BLE001 - every failure is one line (a traceback only with --debug)
        if getattr(args, "debug", False):
            raise
        print(f"galtaxa {args.command}: error: {error_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
