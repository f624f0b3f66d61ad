"""``galtaxa report RUN_DIR``: (re)build the validation report of a finished run."""

from __future__ import annotations

from .run import run_dir_argument

__all__ = ["register"]


def _cmd_report(args) -> int:
    from ..pipeline import report_run  # lazy: seconds of library, not for --help

    path = report_run(args.run_dir)
    print(f"report: {path}")
    return 0


def register(subparsers) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser("report", help="build the validation report of a run")
    p.add_argument("run_dir", type=run_dir_argument, help="the folder of a finished run (its catalog and config)")
    p.set_defaults(func=_cmd_report)
