"""``galtaxa validate RUN_DIR --reference FILE``: compare a finished run with a reference catalog."""

from __future__ import annotations

from .run import run_dir_argument

__all__ = ["register"]


def _cmd_validate(args) -> int:
    from ..pipeline import validate_run  # lazy: seconds of library, not for --help

    refs = None
    if args.reference:
        refs = []
        for i, path in enumerate(args.reference):
            entry = {"path": path, "by": args.by, "id_column": args.id_column, "run_id_column": args.run_id_column,
                     "ra_column": args.ra_column, "dec_column": args.dec_column, "run_ra_column": args.run_ra_column,
                     "run_dec_column": args.run_dec_column, "max_sep_arcsec": args.max_sep,
                     "prefix": args.prefix if len(args.reference) == 1 else f"{args.prefix.rstrip('_')}{i + 1}_",
                     "rules": None if args.rules in (None, "none") else args.rules}
            refs.append(entry)
    result, report = validate_run(args.run_dir, refs, args.subsample, tsne=not args.no_tsne)
    for ref in result.references:
        m = ref.match.summary
        line = f"{ref.name}: {m['n_matched']} of {m['n_run']} galaxies matched by {m['method']}"
        cmp_ = ref.comparison
        if cmp_ is not None:
            o = cmp_.overall
            line += (f"; agreement of the run's {cmp_.labelling} with the reference classes: "
                     f"{100 * o.fraction:.1f}% ({o.k}/{o.n}, 95% CI {100 * o.low:.1f}-{100 * o.high:.1f}%)")
            if cmp_.cross_fitted is not None:
                cf = cmp_.cross_fitted
                line += f"; cross-fitted {100 * cf.fraction:.1f}% (95% CI {100 * cf.low:.1f}-{100 * cf.high:.1f}%)"
        elif ref.skipped:
            line += f"; no comparison ({ref.skipped})"
        print(line)
    if result.subsample is not None:
        print(f"subsample {result.subsample.description}: {result.subsample.n} of {result.subsample.mask.size} galaxies")
    print(f"matched catalog: {args.run_dir}/validation/catalog.parquet")
    print(f"report: {report}")
    return 0


def register(subparsers) -> None:
    """Add the ``validate`` subcommand."""
    p = subparsers.add_parser("validate", help="cross-match a run with a reference catalog and compare classes")
    p.add_argument("run_dir", type=run_dir_argument, help="the folder of a finished run, whose catalog is validated")
    p.add_argument("--reference", action="append", default=None, metavar="FILE",
                   help="reference catalog (CSV, Parquet, FITS); repeat for several (default: the run config's "
                        "validation.references)")
    p.add_argument("--by", choices=("id", "sky"), default="id", help="join by id or by sky position")
    p.add_argument("--id-column", default="id", help="reference id column (by id)")
    p.add_argument("--run-id-column", default="id", help="run catalog id column (by id)")
    p.add_argument("--ra-column", default="ra", help="reference RA column in degrees (by sky)")
    p.add_argument("--dec-column", default="dec", help="reference Dec column in degrees (by sky)")
    p.add_argument("--run-ra-column", default="ra", help="run catalog RA column (by sky)")
    p.add_argument("--run-dec-column", default="dec", help="run catalog Dec column (by sky)")
    p.add_argument("--max-sep", type=float, default=1.0, help="largest separation of a sky match (arcsec)")
    p.add_argument("--prefix", default="ref_", help="prefix of the joined reference columns")
    p.add_argument("--rules", default=None,
                   help="rules turning reference columns into classes: gz_hubble, gz2, gz_decals, gz1, gz1_leaf or "
                        "a YAML file (default: none, the columns are joined only)")
    p.add_argument("--subsample", action="append", default=None, metavar="EXPR",
                   help="physical subsample, e.g. 'mass > 1e10' (repeat: all must hold; default: the config's)")
    p.add_argument("--no-tsne", action="store_true", help="skip the t-SNE map (silhouettes are still computed)")
    p.set_defaults(func=_cmd_validate)
