"""``galtaxa init [CONFIG]``: write a commented YAML config with every default."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["register"]


def _cmd_init(args) -> int:
    from ..config import default_config_yaml

    path = Path(args.config)
    if path.exists() and not args.force:
        print(f"{path} exists; use --force to overwrite", file=sys.stderr)
        return 1
    path.write_text(default_config_yaml(args.input))
    print(f"wrote {path}: edit input.path, then `galtaxa run {path}`")
    return 0


def register(subparsers) -> None:
    """Add the ``init`` subcommand."""
    p = subparsers.add_parser("init", help="write a commented YAML config")
    p.add_argument("config", nargs="?", default="galtaxa.yaml")
    p.add_argument("--input", default=None, help="input path to put in the config")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_cmd_init)
