"""``galtaxa init [CONFIG]``: write a commented YAML config with every default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..utils.atomic import atomic_write_text

__all__ = ["register"]


def _cmd_init(args) -> int:
    from ..config import default_config_yaml, expand_path  # lazy: yaml, tqdm: not for --help

    path = Path(expand_path(args.config, "config"))
    if path.exists() and not args.force:
        print(f"{path} exists; use --force to overwrite", file=sys.stderr)
        return 1
    input_path = args.input
    if input_path is not None:  # given relative to the working directory; the config's paths are relative to its folder
        input_path = os.path.relpath(os.path.abspath(expand_path(input_path, "--input")), path.parent.absolute())
        input_path += "/" if args.input.endswith("/") and not input_path.endswith("/") else ""
    atomic_write_text(path, default_config_yaml(input_path))
    print(f"wrote {path}: edit input.path, then `galtaxa run {path}`")
    return 0


def register(subparsers) -> None:
    """Add the ``init`` subcommand."""
    p = subparsers.add_parser("init", help="write a commented YAML config")
    p.add_argument("config", nargs="?", default="galtaxa.yaml",
                   help="the YAML file to write (default galtaxa.yaml); ~ and $VAR expanded")
    p.add_argument("--input", default=None,
                   help="input path to put in the config (written relative to the config's folder)")
    p.add_argument("--force", action="store_true", help="overwrite an existing config file")
    p.set_defaults(func=_cmd_init)
