"""galtaxa's faster measurement gives statmorph's numbers: rotation, sky box, footprint, whole galaxies."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest
import skimage.transform
import statmorph
from astropy.utils.exceptions import AstropyDeprecationWarning
from photutils.segmentation import SegmentationImage

from galtaxa.galaxyset import GalaxySet
from galtaxa.measure import measure, measure_one, segment_central_source
from galtaxa.measure.fast_statmorph import FastSourceMorphology
from galtaxa.measure.footprint import footprint_slices
from galtaxa.measure.rotation import rotate180, rotate180_mask
from galtaxa.measure.statmorph_run import FAMILY_COLUMNS, MORPH_COLUMNS


#: The Levenberg-Marquardt Sersic fit turns differences of 1e-16 in its starting guess (the elliptical half-light
#: radius, from exact-overlap sums added in another order) into about 1e-9: its columns are compared to 1e-6.
SERSIC_COLUMNS = ("sersic_n", "r_e_px", "r_e_arcsec", "r_e_kpc")


def test_rotate180_is_skimage_rotate(rng):
    worst = 0.0
    for k in range(120):
        ny, nx = rng.integers(12, 60, 2)
        image = rng.normal(size=(ny, nx)) * 100
        mask = rng.random((ny, nx)) < 0.2
        center = (rng.uniform(-0.5, nx - 0.5), rng.uniform(-0.5, ny - 0.5))
        if k % 4 == 0:  # half-integer centres: the nearest-pixel mask rounds exactly halfway
            center = (round(center[0] * 2) / 2, round(center[1] * 2) / 2)
        ref = skimage.transform.rotate(image, 180.0, center=center)
        ref_mask = skimage.transform.rotate(mask, 180.0, center=center) >= 0.5
        worst = max(worst, np.abs(rotate180(image, center) - ref).max() / np.abs(image).max())
        assert np.array_equal(rotate180_mask(mask, center), ref_mask)
        y0, x0 = rng.integers(-8, ny), rng.integers(-8, nx)  # windows reaching past the edges
        window = (slice(max(y0, 0), y0 + 20), slice(max(x0, 0), x0 + 15))
        np.testing.assert_allclose(rotate180(image, center, window), ref[window], rtol=0, atol=1e-11)
        assert np.array_equal(rotate180_mask(mask, center, window), ref_mask[window])
    assert worst < 1e-13


def test_footprint_is_statmorphs_stamp(rng):
    for _ in range(60):
        ny, nx = rng.integers(30, 120, 2)
        seg = np.zeros((ny, nx), np.int32)
        y0, x0 = rng.integers(0, ny - 3), rng.integers(0, nx - 3)
        seg[y0:y0 + rng.integers(1, ny - y0), x0:x0 + rng.integers(1, nx - x0)] = 1
        extent, min_size = rng.choice([1.0, 1.5, 2.5, 4.0]), int(rng.choice([2, 7, 48]))
        fake = types.SimpleNamespace(_segmap=SegmentationImage(seg), label=1, _image=seg,
                                     _cutout_extent=extent, _min_cutout_size=min_size - min_size % 2)
        assert footprint_slices(seg, extent, min_size) == statmorph.SourceMorphology._slice_stamp.fget(fake)
    with pytest.raises(ValueError, match="empty"):
        footprint_slices(np.zeros((5, 5)))


def _synthetic(rng, size=120, neighbours=True):
    """A noisy elliptical galaxy off-centre in a large stamp, optionally with two masked neighbours."""
    y, x = np.mgrid[:size, :size].astype(float)
    r = np.hypot((x - 52.3) / 1.4, y - 57.8)
    image = 400 * np.exp(-(r / 5.0) ** 0.8) + 60 * np.exp(-np.hypot(x - 58, y - 52) / 2.0)
    if neighbours:
        image += 300 * np.exp(-np.hypot(x - 15, y - 20) / 2.0) + 200 * np.exp(-np.hypot(x - 100, y - 95) / 3.0)
    return image + rng.normal(0, 2.0, image.shape)


def test_fast_morphology_equals_statmorph_on_every_quantity(rng):
    image = _synthetic(rng)
    seg, info = segment_central_source(image, background=0.0, rms=2.0)
    kw = dict(mask=info["other_mask"], weightmap=np.full(image.shape, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = statmorph.SourceMorphology(image, seg, 1, **kw)
        fast = FastSourceMorphology(image, seg, 1, **kw)
    for name in statmorph.statmorph._quantity_names + ["flag", "flag_sersic"]:
        rel = 1e-6 if name.startswith("sersic_") else 1e-9  # as SERSIC_COLUMNS
        assert float(fast[name]) == pytest.approx(float(ref[name]), rel=rel, abs=1e-12), name


def test_sky_box_scan_is_statmorphs(rng):
    image = _synthetic(rng, size=90, neighbours=False)
    seg, _ = segment_central_source(image, background=0.0, rms=2.0)
    for mask in (None, "corners", "crowded", "full"):
        m = np.zeros(image.shape, bool)
        if mask == "corners":  # the first free boxes of the scan are masked: found further on
            m[:40, :] = True
        elif mask == "crowded":  # no 32 px box left: statmorph halves the size
            m[::20, :] = True
            m[:, ::20] = True
        elif mask == "full":  # nothing left at all: no sky box, flag 2
            m[:] = True
            m[seg > 0] = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fast = FastSourceMorphology(image, seg, 1, mask=None if mask is None else m,
                                        weightmap=np.full(image.shape, 2.0), quantities=["sky_sigma"])
            fast.flag = 0
            ours = FastSourceMorphology._slice_skybox.fget(fast)
            our_flag, fast.flag = fast.flag, 0
            expected = statmorph.SourceMorphology._slice_skybox.fget(fast)
        assert ours == expected, mask
        assert our_flag == fast.flag == (2 if mask == "full" else 0), mask
        if mask == "crowded":
            assert ours[0].stop - ours[0].start < 32  # the halving path was taken


def test_measure_one_equals_plain_statmorph_on_the_whole_stamp(rng):
    """The footprint (statmorph's own stamp, 72 px here) cut out of a 200 px stamp changes no number."""
    image = np.zeros((200, 200))
    image[40:160, 30:150] = _synthetic(rng)
    image[~np.isfinite(image)] = 0
    image += rng.normal(0, 2.0, image.shape) * (image == 0)
    fast = measure_one(image, background="auto")
    ref = measure_one(image, background="auto", engine="statmorph")
    assert fast["status"] == ref["status"] == "ok", (fast["reason"], ref["reason"])
    for col in MORPH_COLUMNS:
        if col in ("flag", "flag_sersic"):
            assert fast[col] == ref[col], col
        elif np.isfinite(ref[col]):
            assert fast[col] == pytest.approx(ref[col], rel=1e-6 if col in SERSIC_COLUMNS else 1e-9), col
        else:
            assert np.isnan(fast[col]), col


def test_families_fill_only_their_columns(rng):
    image = _synthetic(rng, size=80, neighbours=False)
    full = measure_one(image, background=None)
    part = measure_one(image, background=None, families=["cas", "gini_m20"])
    assert part["status"] == "ok"
    chosen = set(FAMILY_COLUMNS["cas"]) | set(FAMILY_COLUMNS["gini_m20"])
    for col in MORPH_COLUMNS:
        if col in chosen:
            assert part[col] == pytest.approx(full[col], rel=1e-12), col
        elif col == "flag_sersic":
            assert part[col] == -1
        elif col != "flag":
            assert np.isnan(part[col]), col
    g2 = measure_one(image, background=None, families=["g2_psi"])
    assert g2["g2"] == pytest.approx(full["g2"]) and g2["psi"] == pytest.approx(full["psi"])
    assert np.isnan(g2["C"])
    with pytest.raises(ValueError, match="families"):
        measure_one(image, families=["cas", "colour"])
    table = measure(GalaxySet.from_arrays(image[None, None].astype(np.float32)), n_jobs=1, progress=False,
                    background=None, families=["mid"])
    assert np.isfinite(table.loc[0, "multimode"]) and np.isnan(table.loc[0, "gini"])
    assert table.loc[0, "flag_sersic"] == -1
    with pytest.raises(ValueError, match="families"):
        measure(GalaxySet.from_arrays(image[None, None].astype(np.float32)), n_jobs=1, families=[])


def test_segmentation_uses_no_deprecated_photutils_api(rng):
    image = _synthetic(rng, size=96)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", AstropyDeprecationWarning)  # photutils 3 renamed npixels, nlevels, nproc
        seg, info = segment_central_source(image, background=0.0, rms=2.0)
    assert seg[58, 52] == 1 and info["n_sources"] >= 2


@pytest.mark.slow
def test_native_gz1_stamps_give_statmorphs_numbers(shared_data):
    """Six native 423 px Galaxy Zoo stamps as the measure stage reads them; the 300-galaxy version with timings is
    ``benchmarks/measure_speed.py``."""
    from galtaxa.io import open_dataset
    from galtaxa.measure.measure import measure_image

    source = open_dataset(shared_data / "gz1", mode="rgb")
    for i in np.random.default_rng(1).choice(len(source.ids), 6, replace=False):
        image = source.read(int(i))
        fast = measure_image(image, background="auto")
        ref = measure_image(image, background="auto", engine="statmorph")
        assert fast["status"] == ref["status"], (i, fast["reason"], ref["reason"])
        for col in MORPH_COLUMNS:
            if col in ("flag", "flag_sersic", "status"):
                assert fast[col] == ref[col], (i, col)
            elif np.isfinite(ref[col]):
                assert fast[col] == pytest.approx(ref[col], rel=1e-6 if col in SERSIC_COLUMNS else 1e-8), (i, col)
