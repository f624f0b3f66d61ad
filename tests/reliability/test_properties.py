"""Property-based robustness: random arrays never crash conditioning, polar unfolding or measurement.

The contract under test (DESIGN.md, "Errors"): a stage either returns finite, well-shaped output or
refuses the galaxy with a ``BadInputError`` whose message says why; the measurement never raises and
never returns a NaN morphology value for a galaxy it calls ``ok`` unless a quality flag says so.
Example counts are small so the whole file runs in seconds.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from galtaxa import BadInputError
from galtaxa.io.base import check_image
from galtaxa.measure import MORPH_COLUMNS, measure_image
from galtaxa.preprocess import Conditioner
from galtaxa.taxonomy.polar import polar_unfold
from galtaxa.status import BAD_INPUT, FAILED, OK

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

_special = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e30, -1e30, 1e-30])


@st.composite
def raw_images(draw, max_side=40, max_channels=3):
    """Raw cutouts: any size from 1 px, 1-3 channels, noise, constants, blobs, NaN/inf patches."""
    c = draw(st.integers(1, max_channels))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    kind = draw(st.sampled_from(["noise", "blob", "constant", "special", "sparse"]))
    seed = draw(st.integers(0, 2**16))
    gen = np.random.default_rng(seed)
    if kind == "constant":
        img = np.full((c, h, w), draw(st.floats(-1e6, 1e6)), np.float32)
    elif kind == "special":
        img = draw(arrays(np.float32, (c, h, w), elements=st.one_of(_special, st.floats(-1e3, 1e3, width=32))))
    elif kind == "sparse":
        img = np.zeros((c, h, w), np.float32)
        img[:, gen.integers(h), gen.integers(w)] = gen.uniform(1, 1e4)
    else:
        img = gen.normal(0, draw(st.floats(1e-3, 1e3)), (c, h, w)).astype(np.float32)
        if kind == "blob":
            y, x = np.mgrid[:h, :w]
            img += 50 * np.exp(-((y - h / 2) ** 2 + (x - w / 2) ** 2) / (2 * max(1.0, min(h, w) / 6) ** 2))
    frac_nan = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]))
    if frac_nan:
        img[gen.random(img.shape) < frac_nan] = np.nan
    return img.astype(np.float32)


@pytest.mark.parametrize("scaling, background, geometry", [
    ("asinh", None, "crop"), ("zscore", "sigma_clip", "resize"), ("log", "border", "crop_resize")])
@FAST
@given(img=raw_images())
def test_conditioning_never_crashes_and_output_is_finite(img, scaling, background, geometry):
    cond = Conditioner(size=24, scaling=scaling, background=background, geometry=geometry)
    try:
        out = cond(img)
    except BadInputError as err:  # a refusal must say why
        assert str(err)
        return
    assert out.dtype == np.float32 and out.shape == (img.shape[0], 24, 24)
    assert np.isfinite(out).all()


@FAST
@given(img=raw_images(max_side=30))
def test_reader_check_then_condition_accepts_or_explains(img):
    """What build_galaxyset does per galaxy: check_image, then the conditioner; only BadInputError may escape."""
    try:
        out = Conditioner(size=16)(check_image(img, "x.fits"))
    except BadInputError as err:
        assert str(err)
    else:
        assert np.isfinite(out).all() and out.shape[1:] == (16, 16)


@FAST
@given(batch=st.lists(raw_images(max_side=24, max_channels=1), min_size=1, max_size=3),
       step=st.sampled_from([0.1, 0.3]))
def test_polar_unfold_is_finite_for_any_finite_input(batch, step):
    # the polar stage receives conditioned (finite, same-size) images: pad/crop and fill like the conditioner
    imgs = []
    for img in batch:
        canvas = np.zeros((1, 24, 24), np.float32)
        h, w = img.shape[1:]
        canvas[:, :h, :w] = np.nan_to_num(img, nan=0.0, posinf=1e6, neginf=-1e6)
        imgs.append(canvas)
    out, geom = polar_unfold(np.stack(imgs), angle_step=step, return_geometry=True)
    assert out.shape[0] == len(imgs) and np.isfinite(out).all()
    centres = geom["center"]
    # centres are the brightest pixel of the central disk plus a sub-pixel offset clipped to 1 px:
    # never far outside the image (no negative-index wrap-around)
    assert np.all((centres >= -1) & (centres <= 24))


CORE = ["C", "A", "S", "gini", "m20"]


@st.composite
def galaxy_like(draw):
    """Mostly measurable stamps: a noisy elliptical blob anywhere in 16-40 px, with NaN/inf pixels sprinkled."""
    h, w = draw(st.integers(16, 40)), draw(st.integers(16, 40))
    gen = np.random.default_rng(draw(st.integers(0, 2**16)))
    y, x = np.mgrid[:h, :w].astype(np.float32)
    cy, cx = gen.uniform(0.2, 0.8) * h, gen.uniform(0.2, 0.8) * w
    q, th, r0 = gen.uniform(0.3, 1), gen.uniform(0, np.pi), gen.uniform(1, 6)
    xr = (x - cx) * np.cos(th) + (y - cy) * np.sin(th)
    yr = (-(x - cx) * np.sin(th) + (y - cy) * np.cos(th)) / q
    img = draw(st.floats(0.5, 1e4)) * np.exp(-np.hypot(xr, yr) / r0) + gen.normal(0, 1, (h, w))
    bad = gen.random((h, w)) < draw(st.sampled_from([0.0, 0.02, 0.2]))
    img[bad] = gen.choice([np.nan, np.inf, -np.inf], size=bad.sum())
    return img.astype(np.float32)[None]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(img=st.one_of(galaxy_like(), galaxy_like(), galaxy_like(), raw_images(max_side=36, max_channels=2)))
def test_measure_never_raises_and_flags_nan(img):
    row = measure_image(img)
    assert set(MORPH_COLUMNS) <= set(row)
    assert row["status"] in (OK, BAD_INPUT, FAILED)
    if row["status"] != OK:
        assert row["reason"]  # every failure says why
        return
    values = np.array([row[c] for c in CORE], dtype=float)
    # an "ok" row either has all core parameters or a statmorph quality flag that warns about it
    assert np.isfinite(values).all() or row["flag"] > 0, row
    assert row["flag"] in (0, 1, 2)
