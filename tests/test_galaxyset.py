"""GalaxySet: save / load / subset / mark, non-finite and constant images, lengths, unique ids."""

import numpy as np
import pandas as pd
import pytest

from galtaxa import GalaxySet


def test_galaxyset_save_load_subset_mark(tmp_path):
    rng = np.random.default_rng(1)
    gs = GalaxySet.from_arrays(rng.normal(size=(6, 10, 10)), ids=[f"a{i}" for i in range(6)], survey="test")
    gs.mark([1, 2], "failed", "measure: no source")
    gs.mark([2], "purged", "ignored: already failed")
    assert list(gs.meta["status"])[:3] == ["ok", "failed", "failed"]
    assert gs.meta.at[2, "reason"] == "measure: no source"
    back = GalaxySet.load(gs.save(tmp_path / "set"))
    np.testing.assert_array_equal(np.asarray(back.images), gs.images)
    pd.testing.assert_frame_equal(back.meta, gs.meta)
    assert back.info == {"survey": "test"}
    sub = gs.subset(gs.ok)
    assert list(sub.ids) == ["a0", "a3", "a4", "a5"] and sub.images.shape[0] == 4


def test_from_arrays_flags_nan_and_constant():
    arr = np.random.default_rng(2).normal(size=(3, 1, 8, 8)).astype(np.float32)
    arr[1] = np.nan
    arr[2] = 4.0
    gs = GalaxySet.from_arrays(arr)
    assert list(gs.meta["status"]) == ["ok", "bad_input", "bad_input"]
    assert np.isfinite(gs.images).all()


def test_galaxyset_validates_lengths():
    with pytest.raises(ValueError, match="same length"):
        GalaxySet(["a", "b"], np.zeros((3, 1, 4, 4), np.float32), pd.DataFrame(index=range(2)))


def test_galaxyset_refuses_duplicate_ids():
    with pytest.raises(ValueError, match="unique.*'a'"):
        GalaxySet.from_arrays(np.random.default_rng(0).normal(size=(2, 8, 8)), ids=["a", "a"])
