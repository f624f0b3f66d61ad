"""``galtaxa inspect RUN_DIR``: start the inspection app (:mod:`galtaxa.inspect`) on a finished run."""

from __future__ import annotations

import argparse

from .run import run_dir_argument

__all__ = ["register"]


def _cmd_inspect(args) -> int:
    from ..inspect import create_app, serve  # lazy: seconds of library, not for --help

    app = create_app(args.run_dir, inspector=args.inspector, host=args.host)
    serve(app, host=args.host, port=args.port, open_browser=not args.no_browser)
    return 0


def _port(value: str) -> int:
    """A TCP port, 0 to 65535 (a larger number would be taken modulo 65536 by the socket layer)."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0 to 65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number: ports run from 0 (any free port) to 65535")
    return port


def register(subparsers) -> None:
    """Add the ``inspect`` subcommand."""
    text = "inspect and label a run in the browser (groups, single galaxies, the uncertain ones)"
    p = subparsers.add_parser("inspect", help=text, description=text + ". Choices are saved at once into RUN_DIR: "
                              "mapping.yaml, labels_inspected.csv, group_comments.csv.")
    p.add_argument("run_dir", type=run_dir_argument, help="run folder of `galtaxa run` (it must hold the catalog)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 shares it on a "
                        "trusted network)")
    p.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0 = any free port)")
    p.add_argument("--inspector", default=None, help="your name, under which choices are saved (changeable on the page)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser (print the address only)")
    p.set_defaults(func=_cmd_inspect)
