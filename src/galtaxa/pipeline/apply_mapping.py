"""Putting the inspectors' group names into a finished run's catalog: ``galtaxa run`` with the run's mapping.

The names saved in ``RUN_DIR/mapping.yaml`` reach the catalog the way ``galtaxa run`` always puts them there:
the run's own ``config.yaml`` with ``labelling.mapping_file`` set to that file, run again by
:func:`galtaxa.pipeline.run_pipeline`.  Every stage is cached under a hash of what it depends on, which the
mapping is not part of, so nothing is read, measured or clustered again: the labelling step
(:func:`galtaxa.label.apply_mapping`: each group gets its inspectors' majority class, a tie or an unnamed group
stays unclassified, group -1 is never named) writes the catalogs, and the report is rewritten.  The classifier's
predictions of an earlier ``galtaxa predict`` (the ``sup_*`` columns) are carried over into the new catalog
(:func:`galtaxa.supervise.workflow.merge_predictions`, as ``predict`` merges them), since the classifier did not
change.

``python -m galtaxa.pipeline.apply_mapping RUN_DIR`` (:func:`main`) is what the inspection app's "apply" button
runs, in a process of its own (:class:`galtaxa.inspect.apply.ApplyJob`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..catalog import read_catalog, write_catalog
from ..config import load_config
from ..inspect.store import MAPPING_FILE
from ..status import log
from ..supervise.workflow import merge_predictions
from .run import run_pipeline

__all__ = ["apply_mapping_to_catalog", "main"]


def apply_mapping_to_catalog(run_dir: str | Path, progress: bool = False):
    """Run the labelling of ``run_dir`` again with its ``mapping.yaml``, reusing every cached stage.

    Parameters
    ----------
    run_dir : str or Path
        A run folder with the ``config.yaml`` its run wrote and a ``mapping.yaml``.
    progress : bool

    Returns
    -------
    galtaxa.pipeline.RunResult
    """
    run_dir = Path(run_dir).resolve()
    config = run_dir / "config.yaml"
    cfg = load_config(config, {"run_dir": str(run_dir),
                               "labelling": {"mapping_file": str(run_dir / MAPPING_FILE)}})
    before = run_dir / "catalog.parquet"
    predictions = None
    if before.is_file():
        old, _ = read_catalog(before)
        cols = [c for c in old.columns if str(c).startswith("sup_")]
        if cols:
            predictions = old[["id", *cols]].copy()
            predictions["id"] = predictions["id"].astype(str)
    result = run_pipeline(cfg, progress=progress)
    if predictions is not None:
        cat = result.catalog.copy()
        cat["id"] = cat["id"].astype(str)
        cat = merge_predictions(cat, predictions)
        write_catalog(cat, run_dir / "catalog", formats=cfg["output"]["formats"], config=cfg, seed=cfg["seed"],
                      ids=cat["id"].tolist())
        result.catalog = cat
        print(f"kept the classifier's predictions ({', '.join(c for c in predictions.columns if c != 'id')[:200]})",
              flush=True)
    return result


def main(argv=None) -> int:
    """``python -m galtaxa.pipeline.apply_mapping RUN_DIR``: :func:`apply_mapping_to_catalog`, its summary printed."""
    parser = argparse.ArgumentParser(prog="python -m galtaxa.pipeline.apply_mapping",
                                     description="put the classes of RUN_DIR/mapping.yaml into the run's catalog")
    parser.add_argument("run_dir", help="the run folder")
    args = parser.parse_args(argv)
    try:
        result = apply_mapping_to_catalog(args.run_dir)
    except Exception as err:  # noqa: BLE001 - one line for the page, whatever failed
        log.debug("apply failed", exc_info=True)
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return 1
    print(result.summary(), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover - the child process of the app's ApplyJob
    sys.exit(main())
