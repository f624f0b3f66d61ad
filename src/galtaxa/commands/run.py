"""``galtaxa run CONFIG`` (the whole pipeline), ``galtaxa measure CONFIG`` (morphology only),
``galtaxa adapt CONFIG`` (adapt the encoder to the run's galaxies, as ``adapt: {enabled: true}`` does before
clustering) and ``galtaxa cluster CONFIG`` (the unsupervised taxonomy only, plus the group mosaics)."""

from __future__ import annotations

import argparse

__all__ = ["FORCE_HELP", "load_config_args", "register", "run_dir_argument"]

#: Help of ``--force`` on every command that writes into a run folder.
FORCE_HELP = ("write into a non-empty run_dir that galtaxa did not create (its files are kept, except those of the "
              "same name as galtaxa's outputs)")


def run_dir_argument(value: str) -> str:
    """The ``type`` of every ``RUN_DIR`` argument: ``~`` and ``$VAR`` expanded as in a config's ``run_dir``
    (:func:`galtaxa.config.expand_path`), so a quoted ``"~/x"`` names the same folder as ``run_dir: ~/x``."""
    from ..config import ConfigError, expand_path  # lazy: yaml, tqdm: not for --help

    try:
        return expand_path(value, "RUN_DIR")
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def load_config_args(args, **overrides) -> dict:
    """The validated config of ``args.config`` with ``--run-dir`` and ``overrides`` applied."""
    from ..config import load_config, merge  # lazy: yaml, tqdm: not for --help

    if getattr(args, "run_dir", None):
        overrides["run_dir"] = args.run_dir
    if getattr(args, "scheduler", None):
        overrides = merge(overrides, {"compute": {"scheduler": args.scheduler}})
    return load_config(args.config, overrides)


def _cmd_run(args) -> int:
    cfg = load_config_args(args, **args.overrides)  # validate before importing the heavy stages
    from ..pipeline import run_pipeline  # lazy: seconds of library, not for --help

    result = run_pipeline(cfg, stages=args.stages, force=args.force)
    print(result.summary())
    return 0


def register(subparsers) -> None:
    """Add the ``run``, ``measure``, ``adapt`` and ``cluster`` subcommands."""
    for name, stages, overrides, text in (
        ("run", None, {}, "the whole pipeline"),
        ("measure", ("measure",), {}, "morphology measurement only"),
        ("adapt", ("adapt",), {"adapt": {"enabled": True}},
         "adapt the encoder to the run's own galaxies (self-supervised; then `run` uses it when adapt.enabled is true)"),
        ("cluster", ("cluster",), {}, "unsupervised taxonomy only"),
    ):
        p = subparsers.add_parser(name, help=text)
        p.add_argument("config", help="YAML config (galtaxa init writes one)")
        p.add_argument("--run-dir", default=None, type=run_dir_argument, help="override run_dir of the config")
        p.add_argument("--force", action="store_true", help=FORCE_HELP)
        p.add_argument("--scheduler", default=None,
                       help="override compute.scheduler: local (this process, no Dask) | processes (a Dask "
                            "LocalCluster, compute.n_workers processes) | tcp://HOST:PORT of a dask.distributed "
                            "scheduler")
        p.set_defaults(func=_cmd_run, stages=stages, overrides=overrides)
