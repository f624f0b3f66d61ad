"""galtaxa's faster measurement gives statmorph's numbers: every quantity, the sky box, whole galaxies."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statmorph

from galtaxa.measure import segment_central_source
from galtaxa.measure.fast_statmorph import FastSourceMorphology
from galtaxa.measure.statmorph_run import MORPH_COLUMNS

from _blobs import galaxy_with_neighbours


#: The Levenberg-Marquardt Sersic fit turns differences of 1e-16 in its starting guess (the elliptical half-light
#: radius, from exact-overlap sums added in another order) into about 1e-9: its columns are compared to 1e-6.
SERSIC_COLUMNS = ("sersic_n", "r_e_px", "r_e_arcsec", "r_e_kpc")


def test_fast_morphology_equals_statmorph_on_every_quantity(rng):
    image = galaxy_with_neighbours(rng)
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
    image = galaxy_with_neighbours(rng, size=90, neighbours=False)
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
