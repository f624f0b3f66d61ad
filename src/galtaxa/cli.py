"""The ``galtaxa`` command line: the same stages as the Python API.

Subcommands
-----------
info PATH        read a dataset and print what was found (galaxies, labels, bad files)
init [CONFIG]    write a commented YAML config with every default
run CONFIG       the whole pipeline: read, measure, cluster, catalog, report
measure CONFIG   non-parametric morphology only
cluster CONFIG   the unsupervised taxonomy only (plus the group mosaics)
report RUN_DIR   (re)build the validation report of a finished run
demo             the pipeline on simulated galaxies + Hubble Deep Field cutouts (no download)
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._version import __version__

__all__ = ["main", "build_parser"]


def _cmd_info(args) -> int:
    from .io import describe, format_description, open_dataset

    kwargs = {}
    if args.hdu is not None:
        kwargs["hdu"] = int(args.hdu) if args.hdu.isdigit() else args.hdu
    if args.labels:
        kwargs["labels"] = args.labels
    source = open_dataset(args.path, **kwargs)
    print(format_description(describe(source, read_pixels=not args.quick)))
    return 0


def _cmd_init(args) -> int:
    from .config import default_config_yaml

    path = Path(args.config)
    if path.exists() and not args.force:
        print(f"{path} exists; use --force to overwrite", file=sys.stderr)
        return 1
    path.write_text(default_config_yaml(args.input))
    print(f"wrote {path}: edit input.path, then `galtaxa run {path}`")
    return 0


def _load(args):
    from .config import load_config

    overrides = {}
    if getattr(args, "run_dir", None):
        overrides["run_dir"] = args.run_dir
    return load_config(args.config, overrides)


def _cmd_run(args) -> int:
    cfg = _load(args)  # validate before importing the heavy stages
    from .pipeline import run_pipeline

    result = run_pipeline(cfg, stages=args.stages)
    print(result.summary())
    return 0


def _cmd_measure(args) -> int:
    args.stages = ("measure",)
    return _cmd_run(args)


def _cmd_cluster(args) -> int:
    args.stages = ("cluster",)
    return _cmd_run(args)


def _cmd_report(args) -> int:
    from .pipeline import report_run

    path = report_run(args.run_dir)
    print(f"report: {path}")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    result = run_demo(out=args.out, n_simulated=args.n, seed=args.seed, fast=args.fast)
    print(result.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(prog="galtaxa", description="Galaxy morphology catalogs from survey cutouts.")
    parser.add_argument("--version", action="version", version=f"galtaxa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every skipped galaxy")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="read a dataset and describe it")
    p.add_argument("path", help="FITS/image folder, .h5, .npy/.npz or FITS file")
    p.add_argument("--hdu", default=None, help="FITS HDU index or name")
    p.add_argument("--labels", default=None, help="labels CSV for image folders")
    p.add_argument("--quick", action="store_true", help="list files only; do not read pixels")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("init", help="write a commented YAML config")
    p.add_argument("config", nargs="?", default="galtaxa.yaml")
    p.add_argument("--input", default=None, help="input path to put in the config")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_cmd_init)

    for name, func, text in (
        ("run", _cmd_run, "the whole pipeline"),
        ("measure", _cmd_measure, "morphology measurement only"),
        ("cluster", _cmd_cluster, "unsupervised taxonomy only"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("config", help="YAML config (galtaxa init writes one)")
        p.add_argument("--run-dir", default=None, help="override run_dir of the config")
        p.set_defaults(func=func, stages=None)

    p = sub.add_parser("report", help="build the validation report of a run")
    p.add_argument("run_dir")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("demo", help="run on simulated + Hubble Deep Field galaxies")
    p.add_argument("--out", default="galtaxa-demo", help="output folder")
    p.add_argument("--n", type=int, default=300, help="number of simulated galaxies")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fast", action="store_true", help="smaller everything (used by the tests)")
    p.set_defaults(func=_cmd_demo)

    import importlib

    from .commands import COMMAND_MODULES

    for name in COMMAND_MODULES:
        importlib.import_module(f"galtaxa.commands.{name}").register(sub)
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
