"""The old import paths of the code-layout redesign keep working, each with a DeprecationWarning."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("old_module, name, new_module, new_name", [
    ("galtaxa.multimodal", "MultimodalTaxonomy", "galtaxa.taxonomy.multimodal", "MultimodalTaxonomy"),
    ("galtaxa.multimodal", "format_ablation", "galtaxa.taxonomy.ablation", "format_ablation"),
    ("galtaxa.multimodal", "PAPER_ABLATION", "galtaxa.taxonomy.ablation", "PAPER_ABLATION"),
    ("galtaxa.io.mosaic", "MosaicSource", "galtaxa.io.survey_mosaic", "MosaicSource"),
    ("galtaxa.io.mosaic", "read_catalog", "galtaxa.io.survey_mosaic", "read_target_catalog"),
    ("galtaxa.label.mosaic", "make_mosaic", "galtaxa.label.thumbnails", "make_mosaic"),
    ("galtaxa.label.mosaic", "mosaic_stretch_for", "galtaxa.label.thumbnails", "mosaic_stretch_for"),
    ("galtaxa.reduce.multimodal", "MultimodalAutoencoder", "galtaxa.reduce.fusion_autoencoder",
     "MultimodalAutoencoder"),
    ("galtaxa.pipeline", "assemble_catalog", "galtaxa.catalog.assemble", "assemble_catalog"),
    ("galtaxa.pipeline", "multimodal_view", "galtaxa.preprocess.encoder_view", "multimodal_view"),
    ("galtaxa.io", "read_catalog", "galtaxa.io.survey_mosaic", "read_target_catalog"),
])
def test_old_path_warns_and_gives_the_new_object(old_module, name, new_module, new_name):
    old = importlib.import_module(old_module)
    with pytest.warns(DeprecationWarning, match=new_name):
        obj = getattr(old, name)
    assert obj is getattr(importlib.import_module(new_module), new_name)


def test_from_import_of_a_moved_module_warns():
    with pytest.warns(DeprecationWarning, match="galtaxa.taxonomy"):
        from galtaxa.multimodal import MultimodalTaxonomy  # noqa: F401
    with pytest.warns(DeprecationWarning, match="fusion_autoencoder"):
        from galtaxa.reduce.multimodal import MultimodalAutoencoder  # noqa: F401


def test_unknown_names_still_fail():
    import galtaxa.label.mosaic as old

    with pytest.raises(AttributeError, match="no_such_thing"):
        old.no_such_thing
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("galtaxa.io.no_such_module")


def test_new_paths_do_not_warn(recwarn):
    from galtaxa.catalog import assemble_catalog  # noqa: F401
    from galtaxa.io import read_target_catalog  # noqa: F401
    from galtaxa.pipeline import run_pipeline  # noqa: F401
    from galtaxa.taxonomy import MultimodalTaxonomy, UnsupervisedTaxonomy  # noqa: F401

    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)
                and "galtaxa" in str(w.message)]


def test_usmorph_from_config_is_the_builder():
    from galtaxa.config import load_config
    from galtaxa.pipeline.builders import usmorph_from_config
    from galtaxa.taxonomy import UnsupervisedTaxonomy

    cfg = load_config(None, {"cluster": {"n_clusters": 7}})
    with pytest.warns(DeprecationWarning, match="usmorph_from_config"):
        old = UnsupervisedTaxonomy.from_config(cfg)
    assert old.get_params() == usmorph_from_config(cfg).get_params()
    assert old.n_clusters == 7


@pytest.mark.parametrize("module, old, new", [
    ("galtaxa.cluster", "apply_mapping", "relabel"),
    ("galtaxa.cluster.alignment", "apply_mapping", "relabel"),
    ("galtaxa.preprocess", "crop_resize", "center_crop_resize"),
    ("galtaxa.preprocess.geometry", "crop_resize", "center_crop_resize"),
    ("galtaxa.preprocess", "estimate_background", "estimate_sky"),
    ("galtaxa.preprocess.background", "estimate_background", "estimate_sky"),
])
def test_renamed_public_names_warn(module, old, new):
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=new):
        assert getattr(mod, old) is getattr(mod, new)


def test_public_names_no_longer_clash():
    """Each public name means one thing across galtaxa's packages (the measure and supervise packages keep
    ``estimate_background`` and ``crop_resize``)."""
    import galtaxa.cluster
    import galtaxa.io
    import galtaxa.label
    import galtaxa.preprocess

    seen: dict[str, str] = {}
    for pkg in (galtaxa.cluster, galtaxa.io, galtaxa.label, galtaxa.preprocess, importlib.import_module("galtaxa.catalog")):
        for name in pkg.__all__:
            assert name not in seen, f"{name} is public in {seen.get(name)} and {pkg.__name__}"
            seen[name] = pkg.__name__
