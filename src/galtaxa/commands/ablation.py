"""``galtaxa ablation CONFIG``: the ablation and proxy validation of the multimodal route (method M3).

Runs (or reuses from the run directory's cache) the read, measure, feature and multimodal stages of the config,
then clusters the deep-only, morphology-only and fused spaces with the same Gaussian mixture and prints the
table beside Selim et al.'s numbers: Davies-Bouldin, silhouette, Hungarian-matched accuracy and ARI against the
CAS heuristic classes (Conselice 2003) and, when the input has labels, against the labels.  The table is saved
as ``RUN_DIR/ablation.csv``, ``ablation.md`` and ``ablation.txt``.  ``galtaxa run`` with ``route: multimodal``
runs the route itself.
"""

from __future__ import annotations

from .run import load_config_args

__all__ = ["register"]


def _cmd_ablation(args) -> int:
    cfg = load_config_args(args, route="multimodal")  # validate before importing the heavy stages
    from ..pipeline import multimodal_ablation  # lazy: seconds of library, not for --help
    from ..taxonomy import format_ablation

    table, paths = multimodal_ablation(cfg, progress=not args.quiet, label_column=args.label_column,
                                       ignore_labels=tuple(args.ignore_label),
                                       deep_pca=None if args.deep_pca == 0 else args.deep_pca)
    print(format_ablation(table))
    for kind, path in paths.items():
        print(f"  {kind}: {path}")
    return 0


def register(subparsers) -> None:
    """Add the ``ablation`` subcommand."""
    p = subparsers.add_parser("ablation", help="M3 ablation: GMM on deep-only, morphology-only and fused spaces",
                              description=__doc__.splitlines()[0])
    p.add_argument("config", help="YAML config (its multimodal section is used; route is forced to multimodal)")
    p.add_argument("--run-dir", default=None, help="override run_dir of the config")
    p.add_argument("--label-column", default="label", help="reference label column of the input (default: label)")
    p.add_argument("--ignore-label", action="append", default=[], metavar="VALUE",
                   help="label value treated as unknown (repeatable), e.g. --ignore-label 4")
    p.add_argument("--deep-pca", type=int, default=64,
                   help="PCA dimensions of the deep-only space before its GMM (0: none; default 64)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_ablation)
