"""galtaxa.pipeline: the whole pipeline from a config, one module per cached stage.

* :mod:`~galtaxa.pipeline.builders`: every "config -> object" builder (input, conditioner, PSF, encoders, the
  taxonomy routes, the supervised models).
* :mod:`~galtaxa.pipeline.plan`: :class:`RunPlan`, the config turned into those objects once per run.
* :mod:`~galtaxa.pipeline.stage_read`, :mod:`~galtaxa.pipeline.stage_measure`,
  :mod:`~galtaxa.pipeline.stage_adapt` (encoder adaptation), :mod:`~galtaxa.pipeline.stage_encode` (the deep
  features, both routes), :mod:`~galtaxa.pipeline.stage_cluster` (USmorph), :mod:`~galtaxa.pipeline.stage_multimodal`
  (M3), :mod:`~galtaxa.pipeline.stage_report` (the report, and ``validate_run``): the stages, each returning a
  result object.
* :mod:`~galtaxa.pipeline.run`: the run (stages in order, catalog, report) and the M3 ablation run.
* :mod:`~galtaxa.pipeline.outputs`: mosaics, group page and the run folder's catalogs.
"""
from .builders import (
    chunk_runner_from_config,
    encoder_specs,
    load_psf,
    make_conditioner,
    morphology_axes,
    multimodal_conditioning,
    multimodal_taxonomy_from_config,
    normalize_features,
    open_input,
    resolve_auto_settings,
    standardize_features,
    use_descriptors,
    usmorph_from_config,
)
from .plan import RunPlan
from .run import STAGES, RunResult, multimodal_ablation, run_on_galaxies, run_pipeline
from .stage_adapt import AdaptResult, adapt_stage
from .stage_cluster import ClusterResult, cluster_stage
from .stage_encode import EncodeResult, encode_multimodal, encode_usmorph
from .stage_measure import MEASURE_CHUNK_SIZE, measure_stage
from .stage_multimodal import MultimodalResult, mixture_fit, multimodal_stage
from .stage_read import ReadResult, read_stage
from .stage_report import report_run, validate_run

__all__ = ["STAGES", "MEASURE_CHUNK_SIZE", "AdaptResult", "ClusterResult", "EncodeResult", "MultimodalResult",
           "ReadResult", "RunPlan", "RunResult", "adapt_stage", "chunk_runner_from_config", "cluster_stage",
           "encode_multimodal", "encode_usmorph", "encoder_specs", "load_psf", "make_conditioner", "measure_stage",
           "mixture_fit", "morphology_axes", "multimodal_ablation", "multimodal_conditioning", "multimodal_stage",
           "multimodal_taxonomy_from_config", "normalize_features",
           "open_input", "read_stage", "report_run", "resolve_auto_settings", "run_on_galaxies", "run_pipeline",
           "standardize_features", "use_descriptors", "usmorph_from_config", "validate_run"]
