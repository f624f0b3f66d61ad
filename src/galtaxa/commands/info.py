"""``galtaxa info PATH``: read a dataset and print what was found (galaxies, labels, bad files)."""

from __future__ import annotations

__all__ = ["register"]


def _cmd_info(args) -> int:
    from ..io import describe, format_description, open_dataset  # lazy: seconds of library, not for --help

    kwargs = {}
    if args.hdu is not None:
        kwargs["hdu"] = int(args.hdu) if args.hdu.isdigit() else args.hdu
    if args.labels:
        kwargs["labels"] = args.labels
    source = open_dataset(args.path, **kwargs)
    print(format_description(describe(source, read_pixels=not args.quick)))
    return 0


def register(subparsers) -> None:
    """Add the ``info`` subcommand."""
    p = subparsers.add_parser("info", help="read a dataset and describe it")
    p.add_argument("path", help="FITS/image folder, .h5, .npy/.npz or FITS file")
    p.add_argument("--hdu", default=None, help="FITS HDU index or name")
    p.add_argument("--labels", default=None, help="labels CSV for image folders")
    p.add_argument("--quick", action="store_true", help="list files only; do not read pixels")
    p.set_defaults(func=_cmd_info)
