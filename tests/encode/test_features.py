"""extract_features: a resumed extraction equals an uninterrupted one, a foreign cache is refused, a non-finite
image is marked failed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from galtaxa.encode import extract_features, get_encoder
from galtaxa.galaxyset import GalaxySet
from galtaxa.status import BAD_INPUT, FAILED, OK

torch.set_num_threads(1)


def _set(rng, n=19):
    imgs = rng.random((n, 1, 24, 24), dtype=np.float32)
    imgs[4] = np.nan  # -> bad_input row from GalaxySet.from_arrays
    return GalaxySet.from_arrays(imgs, ids=[f"g{i}" for i in range(n)])


class Crash(RuntimeError):
    pass


def test_extract_features_resumes_identically(tiny, tmp_path, rng):
    gs = _set(rng)
    full = extract_features(gs, tiny, batch_size=4, progress=False)
    assert full.shape == (19, 1280)
    assert np.isnan(full[4]).all() and np.isfinite(full[gs.ok]).all()
    np.testing.assert_allclose(full[gs.ok], tiny.encode(gs.images[gs.ok]), rtol=1e-4, atol=1e-5)

    calls = []

    def crash_after_two(done, total):
        calls.append((done, total))
        if done == 2:
            raise Crash("simulated crash")

    cache = tmp_path / "feats"
    with pytest.raises(Crash):
        extract_features(gs, tiny, batch_size=4, cache_dir=cache, progress=False, on_batch=crash_after_two)
    assert np.load(cache / "done.npy").tolist() == [True, True, False, False, False]
    partial = np.load(cache / "features.npy")
    assert np.isfinite(partial[[0, 1, 2, 3, 5, 6, 7, 8]]).all() and np.isnan(partial[9:]).all()

    resumed_calls = []
    out = extract_features(gs, tiny, cache_dir=cache, progress=False, num_workers=2,
                           on_batch=lambda d, t: resumed_calls.append(d))
    assert resumed_calls == [3, 4, 5]  # only the unfinished batches were computed ("auto" reused size 4)
    assert isinstance(out, np.memmap)
    np.testing.assert_array_equal(np.asarray(out), full)
    side = json.loads((cache / "features.json").read_text())
    assert side["encoder"]["name"] == "efficientnet_lite0" and side["chunk_size"] == 4
    assert gs.meta.loc[4, "status"] == BAD_INPUT  # untouched


def test_extract_features_refuses_foreign_cache(tiny, tmp_path, rng):
    gs = _set(rng)
    extract_features(gs, tiny, batch_size=8, cache_dir=tmp_path, progress=False)
    other = get_encoder("efficientnet_lite0", pretrained=False, input_size=32, random_state=8)
    with pytest.raises(ValueError, match="computed with encoder"):
        extract_features(gs, other, cache_dir=tmp_path, progress=False)
    gs2 = GalaxySet.from_arrays(np.asarray(gs.images) * 0.5 + 0.1, ids=gs.ids)
    gs2.meta.loc[4, ["status", "reason"]] = [BAD_INPUT, "x"]
    with pytest.raises(ValueError, match="another image set"):
        extract_features(gs2, tiny, cache_dir=tmp_path, progress=False)


def test_non_finite_image_marks_failed(tiny, rng):
    imgs = rng.random((5, 1, 24, 24)).astype(np.float32)
    imgs[2, 0, 3, 3] = np.inf
    meta = pd.DataFrame({"status": [OK] * 5, "reason": [""] * 5})
    gs = GalaxySet(np.array(list("abcde")), imgs, meta)
    feats = extract_features(gs, tiny, batch_size=2, progress=False)
    assert np.isnan(feats[2]).all() and np.isfinite(feats[[0, 1, 3, 4]]).all()
    assert gs.meta.loc[2, "status"] == FAILED and "non-finite" in gs.meta.loc[2, "reason"]
    assert (gs.meta.loc[[0, 1, 3, 4], "status"] == OK).all()
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(gs, tiny, batch_size=-1)
